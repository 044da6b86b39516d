/*
 * runckpt: the checkpoints of one training run: taking the directory (lock,
 * leftover temporaries, run identity), resuming, the cadence of writes, the
 * metrics history they carry, and pruning. The file format is ckpt's; this
 * module decides when and where.
 *
 * A checkpoint directory belongs to one run: every checkpoint carries the
 * run's identity; --keep prunes only its files; a new run into a directory
 * with another run's checkpoints is refused; resuming from an older
 * checkpoint of the run sets the newer ones aside (DIR/abandoned-<step>-<n>).
 * Rank 0 reads and writes files; the functions marked Collective are called
 * by every rank, which all learn the outcome.
 */
#ifndef DPT_RUNCKPT_H
#define DPT_RUNCKPT_H

#include <stdint.h>

#include "dptrain/ckpt.h"
#include "dptrain/config.h"
#include "dptrain/dist.h"
#include "dptrain/net.h"
#include "dptrain/optim.h"

typedef struct {
    const DptConfig *cfg;
    const DptDist *d;
    const DptArch *arch;        /* the model being trained (views, not owned) */
    float *params;
    DptOptim *opt;
    int shared_model;           /* params and opt state shared by the node's ranks (one writer per node) */
    int64_t batch;              /* the global batch */
    int lock_fd;                /* rank 0: the directory lock */
    char *history;              /* rank 0: the metrics lines so far (carried by checkpoints) */
    size_t hist_len, hist_cap;
    int64_t last_step;          /* global step of the newest checkpoint written or resumed from (-1: none) */
    char last_path[DPT_PATH_MAX + 32];
    char run_id[DPT_RUN_ID_LEN];/* rank 0: this run's identity */
    double write_s;             /* seconds of the last write */
    const DptDataMeta *meta;    /* rank 0: class names and standardisation of the data, kept in checkpoints */
    double last_clock;          /* dpt_clock() of the newest write (or of the open), for --checkpoint-minutes */
    unsigned saves_done;        /* SIGUSR2 arrivals counted when the newest checkpoint was written */
    int saves_warned;           /* rank 0 said that SIGUSR2 has nothing to do without --checkpoint-dir */
} DptRunCkpt;

/* Takes --checkpoint-dir (if any), resumes from --resume (if any) into
 * params, opt and *ts (else *ts is the start), gives the run its identity
 * and claims the directory for it. Collective. */
DptStatus dpt_runckpt_open(DptRunCkpt *c, const DptConfig *cfg, const DptDist *d, const DptArch *arch, float *params,
                           DptOptim *opt, int shared_model, int64_t batch, DptTrainState *ts);
/* Does this rank ask for a checkpoint after the coming step: --checkpoint-minutes
 * have passed since the last, or a SIGUSR2 came since? Its answer goes into
 * the step's control words (DPT_ASK_SAVE), so that all ranks agree. */
int dpt_runckpt_ask(DptRunCkpt *c);
/* Is a checkpoint due after global_step (cadence; a stop, the last step or a
 * rank's request: forced)? */
int dpt_runckpt_due(const DptRunCkpt *c, int64_t global_step, int forced);
/* Writes the state at (epoch in progress, steps of it taken, global step,
 * the epoch's loss/correct/count sums so far), then prunes. Collective. */
DptStatus dpt_runckpt_write(DptRunCkpt *c, int64_t epoch, int64_t step, int64_t global_step, const double sums[3]);
/* Rank 0: keeps an epoch's metrics line for the checkpoints to carry. */
DptStatus dpt_runckpt_record(DptRunCkpt *c, const char *line);
void dpt_runckpt_close(DptRunCkpt *c);

#endif
