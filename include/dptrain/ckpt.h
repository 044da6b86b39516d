/*
 * ckpt: model files and checkpoints in the HDF5 layout of DESIGN.md:
 *
 *   /                        attrs format, format_version, dptrain_version
 *   /model                   attrs layers, hidden, output, cost
 *   /model/layer_<l>/weight  [out, in] float32 (y = W x + b)
 *   /model/layer_<l>/bias    [out] float32
 *   /config                  the resolved configuration, as text
 * and, in checkpoints only:
 *   /optimizer               attrs kind, lr, momentum, beta1, beta2, eps, decay, t, mu_prod;
 *                            one dataset per state vector ([n_params] float32)
 *   /train                   attrs epoch, step, global_step, seed, batch, deterministic,
 *                            rng ("derived": shuffles come from seed and epoch),
 *                            epoch_loss, epoch_correct, epoch_count, ranks, threads,
 *                            run_id (the run identity), kernel (micro-kernel of the gradients)
 *   /metrics/history         the metrics lines so far (one JSON object each), as text
 *
 * Every dataset is chunked with the Fletcher32 checksum, so a damaged file
 * fails to load. Written whole or not at all (temporary file in the same
 * directory, flush, fsync, rename, fsync of the directory). Only rank 0
 * writes (replicas are identical). Not collective.
 */
#ifndef DPT_CKPT_H
#define DPT_CKPT_H

#include <stdio.h>

#include "dptrain/data.h"
#include "dptrain/net.h"
#include "dptrain/status.h"

#define DPT_MODEL_FORMAT "dptrain-model"
#define DPT_CKPT_FORMAT "dptrain-checkpoint"
#define DPT_FORMAT_VERSION 1

/* Writes a model; meta (may be NULL): the class names and standardisation of
 * the data it was trained on, kept for predict. */
DptStatus dpt_ckpt_save_model(const char *path, const DptArch *arch, const float *params, const char *config_text,
                              const DptDataMeta *meta);

#include "dptrain/optim.h"

/* A run identity: 16 hex digits and the terminator. */
#define DPT_RUN_ID_LEN 17

/* Where training stands: enough to continue exactly. */
typedef struct {
    int64_t epoch;            /* the epoch in progress (0-based) */
    int64_t step;             /* steps of that epoch already taken */
    int64_t global_step;      /* optimiser steps taken in all */
    int64_t seed;
    int64_t batch;            /* the global batch */
    int deterministic;
    int ranks, threads;       /* of the run that wrote it (for information) */
    double epoch_loss, epoch_correct, epoch_count; /* sums over the epoch's steps so far */
    char run_id[DPT_RUN_ID_LEN]; /* the run this state belongs to ("" in files written before run identities) */
    char kernel[16];          /* micro-kernel that computed the gradients ("" if not recorded) */
} DptTrainState;

/* Writes a checkpoint (model, optimiser state, training state, config text,
 * metrics history). */
DptStatus dpt_ckpt_save(const char *path, const DptArch *arch, const float *params, const DptOptim *opt,
                        const DptTrainState *ts, const char *config_text, const char *metrics_text,
                        const DptDataMeta *meta);

/* Reads a checkpoint into buffers sized for `arch` and an optimiser already
 * initialised with the same kind; the file must hold the same architecture
 * and optimiser (else DPT_EINPUT naming what differs). *metrics_text is
 * malloc'd (may be NULL). */
DptStatus dpt_ckpt_load(const char *path, const DptArch *arch, float *params, DptOptim *opt, DptTrainState *ts,
                        char **metrics_text);

/* Reads the architecture and parameters of a model or checkpoint file;
 * *params is allocated (64-byte aligned) and owned by the caller. */
DptStatus dpt_ckpt_load_model(const char *path, DptArch *arch, float **params);

/* Is this HDF5 file one of ours (model or checkpoint)? 0 for a dataset. */
int dpt_ckpt_is_ours(const char *path);

/* Prints format, architecture, parameter count (and training state). */
DptStatus dpt_ckpt_describe(const char *path, FILE *out);

/* Loads a model or checkpoint from an HDF5 file image in memory, whole (the
 * fuzzers' entry point). */
DptStatus dpt_ckpt_check_image(const void *buf, size_t len);

/* The run identity of a checkpoint file into id ("" if it has none);
 * returns 0 if the file does not open as a checkpoint. */
int dpt_ckpt_read_run_id(const char *path, char *id, size_t len);

#endif
