/*
 * train: the training run, read as a table of contents:
 *
 *   set up (trainer, checkpoints and resume, records)
 *   for each epoch:  for each step: step (step.c) -> update (optimiser)
 *                                   -> after-step hooks (trace, replica check, checkpoint policy)
 *                    after the epoch: evaluate, record, epoch checkpoint
 *   finish (replica check, stop report, final checkpoint, summary, save)
 *
 * Every rank applies the identical update to identical parameters.
 * Collective: every function here is called by all ranks.
 */
#ifndef DPT_TRAIN_H
#define DPT_TRAIN_H

#include "dptrain/config.h"
#include "dptrain/dist.h"
#include "dptrain/status.h"

/* Results of a run, for callers and tests. */
typedef struct {
    int64_t steps;          /* optimiser steps taken */
    double train_loss;      /* mean cost over the last epoch's mini-batches */
    double test_loss, test_acc;  /* last evaluation (NaN if no test split) */
    uint64_t param_hash;    /* hash of the final parameters */
} DptTrainResult;

/* Trains as configured. On success the model is saved if asked. If
 * final_params is not NULL it receives a malloc'd copy of the parameters. */
DptStatus dpt_train_run(const DptConfig *cfg, const DptDist *d, DptTrainResult *res, float **final_params);

/* The averaged gradient (and mean cost) of the first `count` samples of
 * epoch 0's order, at the initial parameters, computed and reduced exactly as
 * a training step does it. grad has room for the network's parameters. */
DptStatus dpt_train_gradient(const DptConfig *cfg, const DptDist *d, size_t count, float *grad, double *loss);

/* For tests: called on every rank after each optimiser step with the global
 * step and the parameters (a test may change them, to see the replica check
 * fire). NULL: none. */
typedef void (*DptAfterStepHook)(void *ctx, int64_t global_step, float *params, size_t n_params);
void dpt_train_set_test_hook(DptAfterStepHook fn, void *ctx);

#endif
