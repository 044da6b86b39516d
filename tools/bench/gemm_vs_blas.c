/* One product, C[M][N] = A[M][K] B[K][N] (row-major, both operands as
 * stored), by dptrain's GEMM and by OpenBLAS's sgemm: the median GFLOP/s
 * (2 M N K per product) of each, after one warm-up call. Usage:
 *   gemm_vs_blas [both|dptrain|openblas] [M N K (1024 1024 1024)] [repetitions (11)]
 * "both" times the two alternately in one process, with their ratio: on one
 * thread only, since with more each runtime's idle threads keep spinning
 * (OpenMP's after a region, OpenBLAS's after a call) and take the cores from
 * the other's; on several threads run "dptrain" and "openblas" as separate
 * processes (tools/bench/bench does). Threads: OMP_NUM_THREADS for dptrain,
 * OPENBLAS_NUM_THREADS for OpenBLAS, whose threads take the main thread's
 * CPUs: leave OMP_PROC_BIND and OMP_PLACES unset for it (with them the
 * OpenMP runtime pins the main thread to one core at start). DPT_MC and
 * DPT_KERNEL choose dptrain's block rows and kernel as in training.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    const char *mode = argc > 1 ? argv[1] : "both";
    const int ours = strcmp(mode, "openblas") != 0, blas = strcmp(mode, "dptrain") != 0;
    if (strcmp(mode, "both") && strcmp(mode, "dptrain") && strcmp(mode, "openblas")) {
        fprintf(stderr, "gemm_vs_blas: '%s'; expected both, dptrain or openblas\n", mode);
        return 2;
    }
    const size_t M = (size_t)arg(argc, argv, 2, 1024, 1, 16384), N = (size_t)arg(argc, argv, 3, 1024, 1, 16384);
    const size_t K = (size_t)arg(argc, argv, 4, 1024, 1, 16384);
    const int reps = (int)arg(argc, argv, 5, 11, 1, MAX_REPS);
    float *A = malloc(M * K * sizeof *A), *B = malloc(K * N * sizeof *B), *C = malloc(M * N * sizeof *C);
    if (!A || !B || !C) {
        fprintf(stderr, "gemm_vs_blas: out of memory for %zu x %zu x %zu\n", M, N, K);
        return 1;
    }
    for (size_t i = 0; i < M * K; i++)
        A[i] = (float)(i % 13) / 13.0f - 0.5f;
    for (size_t i = 0; i < K * N; i++)
        B[i] = (float)(i % 11) / 11.0f - 0.5f;
    double t_ours[MAX_REPS], t_blas[MAX_REPS];
    for (int r = -1; r < reps; r++) {   /* r = -1: the warm-up */
        double t0 = bench_now();
        if (ours)
            dpt_gemm(C, N, 0, A, K, 1, B, N, 1, M, N, K);
        double t1 = bench_now();
        if (blas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B, (int)N,
                        0.0f, C, (int)N);
        double t2 = bench_now();
        if (r >= 0) {
            t_ours[r] = t1 - t0;
            t_blas[r] = t2 - t1;
        }
    }
    const double gf = 2.0 * (double)M * (double)N * (double)K / 1e9;
    const double mo = ours ? bench_median(t_ours, reps) : 0, mb = blas ? bench_median(t_blas, reps) : 0;
    printf("%zu x %zu x %zu", M, N, K);
    if (ours) {
        const size_t mc = dpt_kern_block_rows(NULL);
        printf(", kernels %s, blocks of %zu rows: dptrain %.1f GFLOP/s", dpt_kern_name(), mc, gf / mo);
    }
    if (blas)
        printf("%s OpenBLAS %.1f GFLOP/s", ours ? "," : ":", gf / mb);
    if (ours && blas)
        printf(", ratio %.2f", mb / mo);
    printf("\n");
    free(A);
    free(B);
    free(C);
    return 0;
}
