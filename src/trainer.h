/*
 * trainer: what a training run owns, and its set-up: the architecture and
 * the parameters (from --init-from or drawn on rank 0, broadcast), their
 * optimiser state (one copy per node in shared memory with the shared-memory
 * reduction, each rank updating its slice; else one per rank), the data
 * splits in node-shared memory, the global batch, the step and its buffers.
 * A private header of train.c and trainer.c. Collective.
 */
#ifndef DPT_TRAINER_H
#define DPT_TRAINER_H

#include "dptrain/config.h"
#include "dptrain/data.h"
#include "dptrain/dist.h"
#include "dptrain/infer.h"
#include "dptrain/metrics.h"
#include "dptrain/net.h"
#include "dptrain/optim.h"
#include "dptrain/step.h"

/* What a run owns: the model, its optimiser, the data, the step. */
typedef struct {
    const DptConfig *cfg;
    const DptDist *d;
    DptArch arch;
    float *params;        /* [n_params]; with shared_model, the node's one copy */
    DptOptim opt;
    int shared_model;     /* parameters and optimiser state in node-shared memory, each rank updating a slice */
    void *model_win;      /* their window */
    size_t own_lo, own_hi;/* the slice this rank updates ([0, n_params) when not shared) */
    DptWork work;         /* activations, for steps and evaluation; its wp_* views point into wp */
    float *wp;            /* W kept packed (dpt_net_wpack), beside params and like them node-shared; NULL: off */
    void *wp_win;         /* its window, when shared */
    DptStep step;
    DptSplit split[DPT_N_SPLITS];
    void *win[DPT_N_SPLITS];
    uint32_t *perm;       /* [N] this epoch's order */
    size_t batch;         /* global B */
    size_t n_train, steps_per_epoch;
    DptTimers timers;
    DptDataMeta meta;     /* rank 0: the data's class names and standardisation, kept in checkpoints and the model */
} Trainer;

/* Validates the configuration and sets everything up (an error on any rank
 * is every rank's). Collective. */
DptStatus dpt_trainer_init(Trainer *t, const DptConfig *c, const DptDist *d);
/* Once, after the micro-kernel is final (deterministic mode's agreement, a
 * resumed checkpoint's kernel: the copies' layout is the kernel's) and
 * before the first step: the packed copies of W chosen and allocated, then
 * filled from the parameters, each rank its own slice, the node waiting for
 * all (the optimiser's steps keep them current). Collective. */
DptStatus dpt_trainer_wpack(Trainer *t);
/* Releases what init acquired (also after a failed init). Collective. */
void dpt_trainer_free(Trainer *t);

#endif
