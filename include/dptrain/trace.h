/*
 * trace: the per-step record of training (--trace FILE.h5), written by rank 0:
 *
 *   /trace/step              [S] int64    the global step of each record (0: the start)
 *   /trace/loss              [S] float32  the global mini-batch's mean cost (NaN at step 0)
 *   /trace/grad_norm_weight  [S, L] float32  Frobenius norm of the averaged dC/dW_l
 *   /trace/grad_norm_bias    [S, L] float32  norm of the averaged dC/db_l
 *   /trace/params            [S, k] float32  optional: chosen parameters (--trace-params)
 *                                            or the projection of theta - theta_0 on two
 *                                            fixed random unit directions (--trace-project)
 *   /trace attrs: layers, every, param_names (comma-separated)
 *
 * Records are buffered in memory (no allocation per step) and appended to
 * extendible, chunked datasets every DPT_TRACE_BUFFER records and at the end.
 * Not collective: only rank 0 holds a trace.
 */
#ifndef DPT_TRACE_H
#define DPT_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dptrain/net.h"
#include "dptrain/status.h"

#define DPT_TRACE_BUFFER 1024
#define DPT_TRACE_MAX_PARAMS 64

typedef struct DptTrace DptTrace;

/* Parses "layer:i:j,..." (j = "b" for bias i of the layer) into parameter
 * offsets; at most DPT_TRACE_MAX_PARAMS. */
DptStatus dpt_trace_parse_params(const char *spec, const DptArch *arch, size_t *offsets, char names[][32],
                                 int *n);

/* project: 0, or the seed of two random directions (then offsets unused). */
DptStatus dpt_trace_open(DptTrace **t, const char *path, const DptArch *arch, int64_t every, const size_t *offsets,
                         char names[][32], int n_params, int project, uint64_t seed, const float *theta0);
/* Is `step` one to record (every --trace-every steps, and step 0)? */
int dpt_trace_wants(const DptTrace *t, int64_t step);
/* A record in two halves: the gradient part right after the reduction (grad
 * holds the SUMS, the norms are taken of grad / count; grad NULL: none), and
 * the parameters after the update, which completes the record. */
void dpt_trace_grads(DptTrace *t, int64_t step, double loss, const float *grad, double count);
DptStatus dpt_trace_params(DptTrace *t, const float *params);
/* For `dptrain info`: is this a trace file, and what does it hold? */
int dpt_trace_is_trace(const char *path);
DptStatus dpt_trace_describe(const char *path, FILE *out);

/* Flushes and closes (NULL-safe). */
DptStatus dpt_trace_close(DptTrace **t);

#endif
