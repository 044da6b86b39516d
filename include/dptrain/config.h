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

/* The longest path (or other text value) an option takes: names derived from
 * it (temporary and checkpoint files) are built in buffers of this size. */
#define DPT_PATH_MAX 1024

/* A text value the configuration owns (see DptConfig.strings). */
typedef struct DptConfigString DptConfigString;

/* Text values (paths, the trace list) are "" when not given, else point to a
 * copy the configuration allocated when the value was set (through
 * dpt_config_set or the parsers) and frees in dpt_config_free; a copy of
 * the struct shares them. */
typedef struct {
    const char *config;                 /* the INI file read, if any */
    const char *data;                   /* dataset file */
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
    const char *init_from;
    int deterministic;
    int64_t det_block;                  /* samples per fixed block in deterministic mode */
    int64_t check_every;                /* steps between replica checks (0 = only at the end) */
    DptReduceKind reduce;               /* --reduce: how gradients are summed over ranks */
    int overlap;                        /* reduce buckets during backprop: 1, 0, or -1 (auto: with shm) */
    int eval_train;                     /* full pass over the training set each epoch */
    const char *save;
    const char *metrics;
    int quiet;
    int64_t log_every;                  /* a progress line every N steps (0: off) */
    int print_config;                   /* print the resolved configuration and exit */
    int progress;                       /* progress bar on a terminal */
    /* Checkpoints and traces. */
    const char *checkpoint_dir;
    int64_t checkpoint_every;
    int checkpoint_epoch;               /* also checkpoint at the end of every epoch */
    double checkpoint_minutes;          /* also checkpoint when this much wall time passed since the last (0: off) */
    int64_t keep;
    double signal_grace;                /* seconds during which repeated stop signals are ignored */
    const char *resume;
    const char *trace;                  /* --trace FILE.h5 */
    int64_t trace_every;
    const char *trace_params;           /* layer:i:j,... */
    int trace_project;
    DptConfigString *strings;           /* the text values set so far (owned) */
} DptConfig;

void dpt_config_defaults(DptConfig *c);
/* Frees the text values the configuration owns; every text value is then "". */
void dpt_config_free(DptConfig *c);
/* Sets option `name` (as on the command line, without "--") to value. */
DptStatus dpt_config_set(DptConfig *c, const char *name, const char *value);
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
