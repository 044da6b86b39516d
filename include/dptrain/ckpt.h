/*
 * ckpt: model files (and, later, checkpoints) in the HDF5 layout of DESIGN.md:
 *
 *   /                        attrs format, format_version, dptrain_version
 *   /model                   attrs layers, hidden, output, cost
 *   /model/layer_<l>/weight  [out, in] float32 (y = W x + b)
 *   /model/layer_<l>/bias    [out] float32
 *   /config                  the resolved configuration, as text
 *
 * Written whole or not at all (temporary file, flush, fsync, rename). Only
 * rank 0 writes (replicas are identical). Not collective.
 */
#ifndef DPT_CKPT_H
#define DPT_CKPT_H

#include <stdio.h>

#include "dptrain/net.h"
#include "dptrain/status.h"

#define DPT_MODEL_FORMAT "dptrain-model"
#define DPT_CKPT_FORMAT "dptrain-checkpoint"
#define DPT_FORMAT_VERSION 1

DptStatus dpt_ckpt_save_model(const char *path, const DptArch *arch, const float *params, const char *config_text);

/* Reads the architecture and parameters of a model or checkpoint file;
 * *params is allocated (64-byte aligned) and owned by the caller. */
DptStatus dpt_ckpt_load_model(const char *path, DptArch *arch, float **params);

/* Is this HDF5 file one of ours (model or checkpoint)? 0 for a dataset. */
int dpt_ckpt_is_ours(const char *path);

/* Prints format, architecture, parameter count (and training state). */
DptStatus dpt_ckpt_describe(const char *path, FILE *out);

#endif
