/*
 * config: the options of `dptrain train`, from an INI file (parsed by inih)
 * and the command line (which overrides the file), validated, and printed
 * back as the resolved configuration (stored in every model file).
 *
 * One table in config.c holds every option: name, type, field, help. The
 * same names serve as command-line options (--name) and INI keys (name).
 */
#ifndef DPT_CONFIG_H
#define DPT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "dptrain/kernels.h"
#include "dptrain/net.h"
#include "dptrain/optim.h"
#include "dptrain/dist.h"
#include "dptrain/status.h"

#define DPT_PATH_MAX 1024

typedef struct {
    char config[DPT_PATH_MAX];          /* the INI file read, if any */
    char data[DPT_PATH_MAX];            /* dataset file */
    int sizes[DPT_MAX_LAYERS + 1];      /* --layers */
    int n_sizes;
    DptAct hidden, output;
    DptCost cost;
    DptOptHyper opt;                    /* --optimizer and its hyper-parameters */
    DptSchedule sched;                  /* --lr (sched.lr, eta), --lr-schedule and its parameters */
    double clip_norm;                   /* clip the averaged gradient to this norm (0: off) */
    double weight_decay;                /* lambda (L2 on weights) */
    int64_t batch;                      /* global mini-batch; 0 = full batch */
    int64_t batch_per_rank;             /* > 0: the global batch is this times the ranks (replaces batch) */
    int64_t epochs;
    int64_t max_steps;                  /* stop after this many steps (0: no limit) */
    int64_t seed;
    DptInit init;
    char init_from[DPT_PATH_MAX];
    int deterministic;
    int64_t det_block;                  /* samples per fixed block in deterministic mode */
    int64_t check_every;                /* steps between replica checks (0 = only at the end) */
    DptReduceKind reduce;               /* --reduce: how gradients are summed over ranks */
    int overlap;                        /* reduce buckets during backprop: 1, 0, or -1 (auto: with shm) */
    int eval_train;                     /* full pass over the training set each epoch */
    char save[DPT_PATH_MAX];
    char metrics[DPT_PATH_MAX];
    int quiet;
    int64_t log_every;                  /* a progress line every N steps (0: off) */
    int print_config;                   /* print the resolved configuration and exit */
    int progress;                       /* progress bar on a terminal */
    /* Checkpoints and traces. */
    char checkpoint_dir[DPT_PATH_MAX];
    int64_t checkpoint_every;
    int checkpoint_epoch;               /* also checkpoint at the end of every epoch */
    int64_t keep;
    double signal_grace;                /* seconds during which repeated stop signals are ignored */
    char resume[DPT_PATH_MAX];
    char trace[DPT_PATH_MAX];           /* --trace FILE.h5 */
    int64_t trace_every;
    char trace_params[DPT_PATH_MAX];    /* layer:i:j,... */
    int trace_project;
} DptConfig;

void dpt_config_defaults(DptConfig *c);
/* Applies --config FILE (if given) then the other options. args: the words
 * after the command name. */
DptStatus dpt_config_parse(DptConfig *c, int argc, char **argv);
DptStatus dpt_config_load_ini(DptConfig *c, const char *path);
DptStatus dpt_config_validate(const DptConfig *c);
/* The resolved configuration as INI text; returns bytes written (or needed). */
size_t dpt_config_format(const DptConfig *c, char *buf, size_t len);
/* Only the options whose values differ from the defaults, one per line. */
size_t dpt_config_format_changed(const DptConfig *c, char *buf, size_t len);
void dpt_config_help(FILE *out);

#endif
