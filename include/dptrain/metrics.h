/*
 * metrics: phase timers (handles, CoMD-style) and the per-epoch JSONL file.
 * Timers are per rank; the min/mean/max over ranks is taken by the caller
 * through dist. The file is written by rank 0 only.
 */
#ifndef DPT_METRICS_H
#define DPT_METRICS_H

#include <stdio.h>

#include "dptrain/status.h"

typedef enum {
    DPT_T_DATA = 0,      /* gathering batches */
    DPT_T_COMPUTE,       /* forward, loss, backward */
    DPT_T_REDUCE,        /* exposed allreduce time (waiting on the reduction) */
    DPT_T_UPDATE,        /* averaging, optimiser step */
    DPT_T_EVAL,          /* evaluation passes */
    DPT_T_CKPT,          /* writing checkpoints */
    DPT_T_COUNT
} DptTimer;

extern const char *const dpt_timer_names[DPT_T_COUNT];

typedef struct {
    double total[DPT_T_COUNT];   /* seconds accumulated */
    double started[DPT_T_COUNT];
} DptTimers;

void dpt_timer_start(DptTimers *t, DptTimer which);
void dpt_timer_stop(DptTimers *t, DptTimer which);

typedef struct {
    FILE *fp;            /* NULL when no file was asked for, or on ranks > 0 */
    char path[1024];
} DptMetricsFile;

DptStatus dpt_metrics_open(DptMetricsFile *m, const char *path);
/* Writes one line (a complete JSON object, without the newline) and flushes. */
DptStatus dpt_metrics_write(DptMetricsFile *m, const char *json);
void dpt_metrics_close(DptMetricsFile *m);

#endif
