/*
 * train: the data-parallel training loop, and the sharded evaluation that
 * `train`, `eval` and `predict` share.
 *
 * One step: gather the rank's contiguous slice of the global batch -> forward
 * -> loss -> backward (gradient SUMS) -> allreduce of gradients and control
 * words -> divide by the global count -> identical optimiser step everywhere.
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

/* `dptrain eval`: loss and accuracy of a model on a split ("" = test if
 * present, else train). */
DptStatus dpt_eval_run(const char *model, const char *data, const char *split, const DptDist *d);

/* `dptrain predict`: outputs [N, K] and predicted classes [N] to out. */
DptStatus dpt_predict_run(const char *model, const char *data, const char *split, const char *out,
                          const DptDist *d);

/* Hash of a float buffer (for replica checks and tests). */
uint64_t dpt_train_hash(const float *p, size_t n, uint64_t h);

#endif
