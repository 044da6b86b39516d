/*
 * Where a team of threads loses time in one product, for the products of
 * [784,1024,1024,10] at one batch: for each thread count T,
 *   - an OpenMP barrier and an empty parallel region (fork and join), in µs;
 *   - each product on T threads, the team sharing each block's tiles;
 *   - the same product's 1/T share (rows of the batch, or units of the
 *     weight gradient) on one thread alone, times T: what T workers that
 *     never meet would take, so "share" = that / the team's time.
 * Median of the repetitions; GFLOP/s count 2 M N K. Usage:
 *   bench_threads [batch (1024)] [repetitions (15)] [thread counts...]
 * (default 1 2 4 8 16, those up to omp_get_num_procs()). Bind the threads
 * (OMP_PROC_BIND=close OMP_PLACES=cores, dptrain's own default) when
 * comparing counts.
 */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dptrain/kernels.h"

enum { MAX_REPS = 101 };

typedef struct {
    const char *name;
    int kind;             /* 0 forward, 1 weight gradient, 2 input gradient */
    size_t in, out;
} Product;

typedef struct {
    float *X, *W, *b, *D, *Z, *dW, *dA;
    size_t n;
} Bufs;

/* The product on the current team, rows (forward, input gradient: of the
 * batch) or units (weight gradient) [0, m) of it. */
static void run(const Product *p, const Bufs *B, size_t m)
{
    const size_t in = p->in, out = p->out;
    if (p->kind == 0)
        dpt_kern_forward_act(B->Z, NULL, B->X, B->W, NULL, B->b, DPT_ACT_LINEAR, m, in, out);
    else if (p->kind == 1 && m == out)   /* the whole product as training runs it */
        dpt_kern_weight_grad(B->dW, 0, B->D, B->X, B->n, in, out);
    else if (p->kind == 1)   /* a share of the units, on one thread */
        dpt_gemm(B->dW, in, 0, B->D, 1, out, B->X, in, 1, m, in, B->n);
    else
        dpt_kern_input_grad(B->dA, B->D, B->W, NULL, m, in, out);
}

static double median_time(const Product *p, const Bufs *B, size_t m, int reps)
{
    double t[MAX_REPS];
    run(p, B, m);   /* warm-up: packing buffers and caches */
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        run(p, B, m);
        t[r] = omp_get_wtime() - t0;
    }
    return bench_median(t, reps);
}

/* µs per barrier and per empty parallel region on T threads. */
static void sync_costs(int T, double *barrier_us, double *fork_us)
{
    enum { NB = 20000, NF = 5000 };
    omp_set_num_threads(T);
    double t0 = omp_get_wtime();
#pragma omp parallel
    {
        for (int i = 0; i < NB; i++) {
#pragma omp barrier
        }
    }
    *barrier_us = 1e6 * (omp_get_wtime() - t0) / NB;
    volatile int sink = 0;
    t0 = omp_get_wtime();
    for (int i = 0; i < NF; i++) {
#pragma omp parallel
        {
            if (omp_get_thread_num() == 0)
                sink = sink + 1;
        }
    }
    *fork_us = 1e6 * (omp_get_wtime() - t0) / NF;
}

static float *filled(size_t n, unsigned seed)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_threads: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

int main(int argc, char **argv)
{
    const size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    int reps = argc > 2 ? atoi(argv[2]) : 15;
    if (n == 0 || reps < 1) {
        fprintf(stderr, "usage: bench_threads [batch (1024)] [repetitions (15)] [thread counts...]\n");
        return 2;
    }
    reps = reps > MAX_REPS ? MAX_REPS : reps;
    int counts[32], nc = 0;
    for (int i = 3; i < argc && nc < 32; i++)
        counts[nc++] = atoi(argv[i]);
    if (nc == 0)
        for (int t = 1; t <= 16 && t <= omp_get_num_procs(); t *= 2)
            counts[nc++] = t;
    const Product prods[] = {
        {"forward 784->1024", 0, 784, 1024},    {"forward 1024->1024", 0, 1024, 1024},
        {"wgrad 784->1024", 1, 784, 1024},      {"wgrad 1024->1024", 1, 1024, 1024},
        {"igrad 1024->1024", 2, 1024, 1024},
    };
    const size_t np = sizeof prods / sizeof prods[0], mx = 1024;
    Bufs B = {filled(n * mx, 1), filled(mx * mx, 2), filled(mx, 3), filled(n * mx, 4),
              filled(n * mx, 5), filled(mx * mx, 6), filled(n * mx, 7), n};
    printf("kernels %s, batch %zu, median of %d; threads bound: OMP_PROC_BIND=%s OMP_PLACES=%s\n",
           dpt_kern_name(), n, reps, getenv("OMP_PROC_BIND") ? getenv("OMP_PROC_BIND") : "(unset)",
           getenv("OMP_PLACES") ? getenv("OMP_PLACES") : "(unset)");
    printf("%3s %-20s %9s %9s %9s %8s\n", "T", "product", "shared ms", "GFLOP/s", "alone ms", "share");
    for (int c = 0; c < nc; c++) {
        const int T = counts[c] > 0 ? counts[c] : 1;
        double bar, fork;
        sync_costs(T, &bar, &fork);
        printf("%3d barrier %.2f us, empty parallel region %.2f us\n", T, bar, fork);
        for (size_t i = 0; i < np; i++) {
            const Product *p = &prods[i];
            const size_t M = p->kind == 1 ? p->out : n, m = (M + (size_t)T - 1) / (size_t)T;
            const double flops = 2.0 * (double)n * (double)p->in * (double)p->out;
            omp_set_num_threads(T);
            const double ts = median_time(p, &B, M, reps);
            omp_set_num_threads(1);
            const double ta = median_time(p, &B, m, reps) * (double)M / (double)m;
            printf("%3d %-20s %9.3f %9.1f %9.3f %8.2f\n", T, p->name, 1e3 * ts, flops / ts / 1e9, 1e3 * ta / T,
                   ta / T / ts);
        }
    }
    free(B.X); free(B.W); free(B.b); free(B.D); free(B.Z); free(B.dW); free(B.dA);
    return 0;
}
