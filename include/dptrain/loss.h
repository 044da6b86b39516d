/*
 * loss: the costs and the output error delta = dC_x/dz_L of one sample.
 *
 *   mse: C_x = 1/2 sum_i (a_i - y_i)^2;  delta = (a - y) * f'(z)  (full
 *        Jacobian for softmax outputs)
 *   bce: C_x = -sum_i [y_i ln a_i + (1 - y_i) ln(1 - a_i)], sigmoid outputs;
 *        delta = a - y
 *   cce: softmax outputs: C_x = -sum_i y_i ln a_i, delta = a * sum(y) - y
 *        (= a - y for one-hot y); sigmoid outputs: the sum of per-unit binary
 *        terms, as bce.
 * Logs are computed from the pre-activations z (log-sum-exp, softplus), so a
 * saturated output gives a large finite cost, never NaN.
 */
#ifndef DPT_LOSS_H
#define DPT_LOSS_H

#include <stddef.h>

#include "dptrain/kernels.h"

typedef enum { DPT_COST_MSE = 0, DPT_COST_BCE, DPT_COST_CCE } DptCost;

/* Names <-> costs ("mse", "bce", "cce"); parse returns -1 if unknown. */
const char *dpt_cost_name(DptCost c);
int dpt_cost_parse(const char *s);

/* Cost of one sample with k outputs; writes delta[k] when delta != NULL. */
double dpt_loss_sample(float *delta, const float *a, const float *z, const float *y, size_t k,
                       DptAct output, DptCost cost);

/* Is (output, cost) a combination we train? Returns NULL if yes, else why not. */
const char *dpt_loss_check(DptAct output, DptCost cost);

/* Index of the largest a_i (ties: the first); for k == 1, a_0 > 0.5. */
int dpt_loss_predict(const float *a, size_t k);

#endif
