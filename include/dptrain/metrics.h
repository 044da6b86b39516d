/*
 * metrics: the clock, phase timers (handles, CoMD-style), what the process
 * costs (peak memory, page faults), and the per-epoch record: one JSON line
 * in the --metrics file and the timing table of the summary. Timers are per
 * rank; the min/mean/max over ranks is taken by the caller (through dist)
 * and handed in. The file is written by rank 0 only. Base layer: no MPI.
 */
#ifndef DPT_METRICS_H
#define DPT_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dptrain/status.h"

/* Seconds on a monotonic clock. */
double dpt_clock(void);

typedef enum {
    DPT_T_DATA = 0,      /* gathering batches */
    DPT_T_COMPUTE,       /* forward, loss, backward */
    DPT_T_REDUCE,        /* exposed allreduce time (waiting on the reduction) */
    DPT_T_UPDATE,        /* averaging, optimiser step */
    DPT_T_EVAL,          /* evaluation passes */
    DPT_T_CKPT,          /* writing checkpoints */
    DPT_T_FORWARD,       /* within compute: the forward products (kernels' own clock) */
    DPT_T_WGRAD,         /* within compute: the weight-gradient products */
    DPT_T_IGRAD,         /* within compute: the input-gradient products */
    DPT_T_COUNT
} DptTimer;

/* The phases' keys in the metrics file ("data", ..., "forward_products", ...). */
extern const char *const dpt_timer_names[DPT_T_COUNT];

typedef struct {
    double total[DPT_T_COUNT];   /* seconds accumulated */
    double started[DPT_T_COUNT];
} DptTimers;

void dpt_timer_start(DptTimers *t, DptTimer which);
void dpt_timer_stop(DptTimers *t, DptTimer which);

/* Minor page faults of this process so far; its peak resident memory in MiB. */
long dpt_metrics_page_faults(void);
double dpt_metrics_max_rss_mb(void);

/* One epoch, as the metrics file records it. NaN: not measured (null). */
typedef struct {
    int64_t epoch, step;                 /* 1-based epoch; global step at its end */
    double train_loss, train_acc;        /* over the epoch's mini-batches */
    double train_eval_loss, train_eval_acc, test_loss, test_acc, val_loss, val_acc;
    double samples_per_s, epoch_s, elapsed_s, lr;
    int ranks, threads;
    double max_rss_mb;
    long step_page_faults;
    double time[DPT_T_COUNT][3];         /* per phase: min, mean, max over ranks (s) */
} DptEpochRecord;

/* The record as one JSON object (no newline); returns the length. */
size_t dpt_metrics_json(const DptEpochRecord *r, char *buf, size_t len);
/* The phase times (min, mean, max over ranks) as the summary's table, the
 * products indented under compute. */
size_t dpt_metrics_timing_table(const double time[DPT_T_COUNT][3], char *buf, size_t len);

typedef struct {
    FILE *fp;            /* NULL when no file was asked for, or on ranks > 0 */
    char path[1024];
} DptMetricsFile;

DptStatus dpt_metrics_open(DptMetricsFile *m, const char *path);
/* Writes one line (a complete JSON object, without the newline) and flushes. */
DptStatus dpt_metrics_write(DptMetricsFile *m, const char *json);
void dpt_metrics_close(DptMetricsFile *m);

#endif
