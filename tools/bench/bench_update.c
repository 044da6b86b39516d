/*
 * The optimiser's update on a team of threads, its parameters split flat
 * (a contiguous range each) against split by each layer's units
 * (dpt_optim_set_blocks, as the trainer does), with the memory traffic of
 * the step around it: before each update the forward product reads every
 * W and the weight gradient writes every dW on the same team, so each
 * split finds dW, W and the optimiser's state where training leaves them.
 * The two splits run alternately in one process, so both see the same
 * machine state, on two copies of the model that swap splits every round
 * (so that neither split keeps the copy whose placement in memory happens
 * to suit the caches: alone on one thread, where the two splits do the
 * same work, the copies differed by up to 15 %). Prints the median update
 * time of each split in µs and their ratio. Usage:
 *   bench_update [batch (10)] [repetitions (40)] [optimiser (momentum)] [layers (784,1024,1024,10)]
 * Threads: OMP_NUM_THREADS, bound as dptrain binds them
 * (OMP_PROC_BIND=close OMP_PLACES=cores).
 */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dptrain/kernels.h"
#include "dptrain/net.h"
#include "dptrain/optim.h"

enum { MAX_REPS = 401, MAX_L = 16 };

static void *need(void *p)
{
    if (!p) {
        fprintf(stderr, "bench_update: out of memory\n");
        exit(1);
    }
    return p;
}

static float *filled(size_t n, unsigned seed)
{
    float *p = need(malloc((n ? n : 1) * sizeof *p));
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = ((float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.01f;
    }
    return p;
}

typedef struct {
    float *w, *g;
    DptOptim o;
} Model;

int main(int argc, char **argv)
{
    const size_t n = argc > 1 ? (size_t)atol(argv[1]) : 10;
    int reps = argc > 2 ? atoi(argv[2]) : 40;
    const int kind = dpt_optim_parse(argc > 3 ? argv[3] : "momentum");
    int sizes[MAX_L + 1], L = 0;
    char spec[256];
    snprintf(spec, sizeof spec, "%s", argc > 4 ? argv[4] : "784,1024,1024,10");
    for (char *tok = strtok(spec, ","); tok && L <= MAX_L; tok = strtok(NULL, ","))
        sizes[L++] = atoi(tok);
    L--;
    if (n == 0 || reps < 1 || kind < 0 || L < 1) {
        fprintf(stderr, "usage: bench_update [batch (10)] [repetitions (40)] [optimiser (momentum)] "
                        "[layers (784,1024,1024,10)]\n");
        return 2;
    }
    reps = reps > MAX_REPS ? MAX_REPS : reps;
    DptArch arch;
    if (dpt_arch_init(&arch, sizes, L + 1, DPT_ACT_RELU, DPT_ACT_SOFTMAX, DPT_COST_CCE) != DPT_OK) {
        fprintf(stderr, "bench_update: %s\n", dpt_err_message());
        return 2;
    }
    DptOptBlock blocks[2 * DPT_MAX_LAYERS];
    const int n_blocks = dpt_net_blocks(&arch, blocks);
    const size_t np = arch.n_params;
    size_t mx = 0;
    for (int l = 0; l <= L; l++)
        mx = (size_t)sizes[l] > mx ? (size_t)sizes[l] : mx;
    float *X = filled(n * mx, 1), *D = filled(n * mx, 2), *Z = filled(n * mx, 3);
    DptOptHyper h = {.kind = (DptOptKind)kind, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                     .decay = 0.9};
    Model m[2];
    for (int v = 0; v < 2; v++) {
        m[v].w = filled(np, 10);
        m[v].g = filled(np, 11);
        if (dpt_optim_init(&m[v].o, &h, np) != DPT_OK ||
            dpt_optim_set_blocks(&m[v].o, blocks, n_blocks, (size_t)dpt_kern_panel_rows()) != DPT_OK) {
            fprintf(stderr, "bench_update: %s\n", dpt_err_message());
            return 1;
        }
    }
    double t[2][2 * MAX_REPS];
    int nt[2] = {0, 0};
    for (int r = -2; r < 2 * reps; r++)   /* two rounds to warm up */
        for (int k = 0; k < 2; k++) {
            /* split v (0 flat, 1 by units) on copy v ^ (r / 2 & 1), the order swapped every round */
            const int v = (r & 1) ? 1 - k : k;
            Model *M = &m[v ^ ((r >= 0 ? r : -r) / 2 & 1)];
            if (v == 0)
                M->o.n_blocks = 0;   /* the flat split, for this call */
            for (int l = 0; l < L; l++)
                dpt_kern_forward_act(Z, NULL, X, M->w + arch.w_off[l], NULL, M->w + arch.b_off[l], DPT_ACT_LINEAR,
                                     n, (size_t)sizes[l], (size_t)sizes[l + 1]);
            for (int l = 0; l < L; l++)
                dpt_kern_weight_grad(M->g + arch.w_off[l], 0, D, X, n, (size_t)sizes[l], (size_t)sizes[l + 1]);
            const double t0 = bench_now();
            const int ok = dpt_optim_step_range(&M->o, M->w, M->g, 1e-6, (float)n, 0, np);
            const double dt = bench_now() - t0;
            M->o.n_blocks = n_blocks;   /* the same blocks for both copies */
            if (!ok) {
                fprintf(stderr, "bench_update: a gradient is not finite\n");
                return 1;
            }
            if (r >= 0)
                t[v][nt[v]++] = dt;
        }
    const double flat = bench_median(t[0], nt[0]), units = bench_median(t[1], nt[1]);
    printf("threads %d, %s, layers %s, batch %zu, %zu parameters, median of %d: update split flat %.1f us, "
           "by units %.1f us, flat / units %.2f\n",
           omp_get_max_threads(), dpt_optim_name((DptOptKind)kind), argc > 4 ? argv[4] : "784,1024,1024,10", n, np,
           2 * reps, 1e6 * flat, 1e6 * units, flat / units);
    for (int v = 0; v < 2; v++) {
        free(m[v].w);
        free(m[v].g);
        dpt_optim_free(&m[v].o);
    }
    free(X);
    free(D);
    free(Z);
    return 0;
}
