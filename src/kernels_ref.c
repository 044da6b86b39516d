/*
 * The naive twins of the three products (HPCG's _ref convention): plain
 * loops, sums in double, kept frozen as the oracle that tests compare the
 * optimised kernels against. Part of the kernels module.
 */
#include "dptrain/kernels.h"

void dpt_kern_forward_ref(float *Z, const float *X, const float *W, const float *b,
                          size_t n, size_t in, size_t out)
{
    for (size_t r = 0; r < n; r++)
        for (size_t o = 0; o < out; o++) {
            double s = 0.0;
            for (size_t i = 0; i < in; i++)
                s += (double)X[r * in + i] * W[o * in + i];
            Z[r * out + o] = (float)(s + b[o]);
        }
}

void dpt_kern_weight_grad_ref(float *dW, int accumulate, const float *D, const float *A,
                              size_t n, size_t in, size_t out)
{
    for (size_t o = 0; o < out; o++)
        for (size_t i = 0; i < in; i++) {
            double s = accumulate ? dW[o * in + i] : 0.0;
            for (size_t r = 0; r < n; r++)
                s += (double)D[r * out + o] * A[r * in + i];
            dW[o * in + i] = (float)s;
        }
}

void dpt_kern_input_grad_ref(float *dA, const float *D, const float *W, size_t n, size_t in, size_t out)
{
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < in; i++) {
            double s = 0.0;
            for (size_t o = 0; o < out; o++)
                s += (double)D[r * out + o] * W[o * in + i];
            dA[r * in + i] = (float)s;
        }
}
