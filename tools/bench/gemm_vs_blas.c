/* One product, dptrain's GEMM against OpenBLAS's sgemm, on the same
 * threads (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS: set both alike):
 * C[M][N] = A[M][K] B[K][N], row-major, both operands as stored. The two
 * are timed alternately, after one warm-up call each; prints the median
 * GFLOP/s (2 M N K per product) of each and their ratio. DPT_MC and
 * DPT_KERNEL choose dptrain's block rows and kernel as in training. Usage:
 *   gemm_vs_blas [M N K (1024 1024 1024)] [repetitions (11)]
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "dptrain/kernels.h"

enum { MAX_REPS = 101 };

static long arg(int argc, char **argv, int i, long dflt, long lo, long hi)
{
    if (argc <= i)
        return dflt;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "gemm_vs_blas: argument %d is '%s'; expected a whole number from %ld to %ld\n", i, argv[i],
                lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const size_t M = (size_t)arg(argc, argv, 1, 1024, 1, 16384), N = (size_t)arg(argc, argv, 2, 1024, 1, 16384);
    const size_t K = (size_t)arg(argc, argv, 3, 1024, 1, 16384);
    const int reps = (int)arg(argc, argv, 4, 11, 1, MAX_REPS);
    float *A = malloc(M * K * sizeof *A), *B = malloc(K * N * sizeof *B), *C = malloc(M * N * sizeof *C);
    if (!A || !B || !C) {
        fprintf(stderr, "gemm_vs_blas: out of memory for %zu x %zu x %zu\n", M, N, K);
        return 1;
    }
    for (size_t i = 0; i < M * K; i++)
        A[i] = (float)(i % 13) / 13.0f - 0.5f;
    for (size_t i = 0; i < K * N; i++)
        B[i] = (float)(i % 11) / 11.0f - 0.5f;
    double ours[MAX_REPS], blas[MAX_REPS];
    for (int r = -1; r < reps; r++) {   /* r = -1: the warm-up */
        double t0 = bench_now();
        dpt_gemm(C, N, 0, A, K, 1, B, N, 1, M, N, K);
        double t1 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B, (int)N, 0.0f,
                    C, (int)N);
        double t2 = bench_now();
        if (r >= 0) {
            ours[r] = t1 - t0;
            blas[r] = t2 - t1;
        }
    }
    const double t_ours = bench_median(ours, reps), t_blas = bench_median(blas, reps);
    const double gf = 2.0 * (double)M * (double)N * (double)K / 1e9;
    const char *from;
    const size_t mc = dpt_kern_block_rows(&from);
    printf("%zu x %zu x %zu, kernels %s, blocks of %zu rows: dptrain %.1f GFLOP/s, OpenBLAS %.1f, ratio %.2f\n", M, N, K,
           dpt_kern_name(), mc, gf / t_ours, gf / t_blas, t_blas / t_ours);
    free(A);
    free(B);
    free(C);
    return 0;
}
