/* The practical peak: OpenBLAS's sgemm on 1024 x 1024 x 1024, GFLOP/s
 * (2 n^3 per product), the median of 7 timed repetitions after a warm-up.
 * Threads from OPENBLAS_NUM_THREADS. Prints one number. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    float *A = malloc(sizeof(float) * n * n), *B = malloc(sizeof(float) * n * n), *C = malloc(sizeof(float) * n * n);
    for (long i = 0; i < (long)n * n; i++) {
        A[i] = (float)(i % 17) / 17.0f;
        B[i] = (float)(i % 13) / 13.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    double g[7];
    for (int r = 0; r < 7; r++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        g[r] = 2.0 * n * (double)n * n / (bench_now() - t0) / 1e9;
    }
    printf("%.2f\n", bench_median(g, 7));
    free(A);
    free(B);
    free(C);
    return 0;
}
