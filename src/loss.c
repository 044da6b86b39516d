#include "dptrain/loss.h"

#include <math.h>

static const char *const cost_names[] = {"mse", "bce", "cce"};

const char *dpt_cost_name(DptCost c) { return cost_names[c]; }
int dpt_cost_parse(const char *s) { return dpt_name_index(cost_names, 3, s); }

/* ln(1 + e^x) without overflow. */
static double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

const char *dpt_loss_check(DptAct output, DptCost cost)
{
    if (output != DPT_ACT_SIGMOID && output != DPT_ACT_SOFTMAX && output != DPT_ACT_LINEAR)
        return "the output layer must be sigmoid, softmax or linear";
    if (cost == DPT_COST_BCE && output != DPT_ACT_SIGMOID)
        return "--cost bce needs --output sigmoid";
    if (cost == DPT_COST_CCE && output == DPT_ACT_LINEAR)
        return "--cost cce needs --output softmax or sigmoid";
    return NULL;
}

double dpt_loss_sample(float *delta, const float *a, const float *z, const float *y, size_t k,
                       DptAct output, DptCost cost)
{
    double c = 0.0;
    if (cost == DPT_COST_MSE) {
        for (size_t i = 0; i < k; i++) {
            double e = (double)a[i] - y[i];
            c += 0.5 * e * e;
        }
        if (!delta)
            return c;
        if (output == DPT_ACT_SOFTMAX) {
            /* delta_j = sum_i (a_i - y_i) da_i/dz_j = a_j ((a_j - y_j) - sum_i (a_i - y_i) a_i) */
            double s = 0.0;
            for (size_t i = 0; i < k; i++)
                s += ((double)a[i] - y[i]) * a[i];
            for (size_t j = 0; j < k; j++)
                delta[j] = (float)(a[j] * (((double)a[j] - y[j]) - s));
        } else if (output == DPT_ACT_SIGMOID) {
            for (size_t i = 0; i < k; i++)
                delta[i] = (a[i] - y[i]) * a[i] * (1.0f - a[i]);
        } else {
            for (size_t i = 0; i < k; i++)
                delta[i] = a[i] - y[i];
        }
        return c;
    }
    if (output == DPT_ACT_SOFTMAX) {
        /* -sum y_i ln a_i with ln a_i = z_i - lse(z); delta_j = a_j sum(y) - y_j */
        double mx = z[0];
        for (size_t i = 1; i < k; i++)
            mx = z[i] > mx ? z[i] : mx;
        double s = 0.0, ysum = 0.0;
        for (size_t i = 0; i < k; i++)
            s += exp((double)z[i] - mx);
        double lse = mx + log(s);
        for (size_t i = 0; i < k; i++) {
            c -= y[i] * ((double)z[i] - lse);
            ysum += y[i];
        }
        if (delta)
            for (size_t j = 0; j < k; j++)
                delta[j] = (float)(a[j] * ysum - y[j]);
        return c;
    }
    /* sigmoid units, per-unit binary cross-entropy:
     * -[y ln s(z) + (1-y) ln(1-s(z))] = softplus(z) - y z */
    for (size_t i = 0; i < k; i++)
        c += softplus(z[i]) - (double)y[i] * z[i];
    if (delta)
        for (size_t i = 0; i < k; i++)
            delta[i] = a[i] - y[i];
    return c;
}

int dpt_loss_predict(const float *a, size_t k)
{
    if (k == 1)
        return a[0] > 0.5f;
    size_t best = 0;
    for (size_t i = 1; i < k; i++)
        if (a[i] > a[best])
            best = i;
    return (int)best;
}
