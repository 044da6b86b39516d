/* Optimised kernels against their naive twins, for every micro-kernel this CPU
 * runs; thread-count and row-subset invariance (bitwise); the fixed-point
 * weight gradient's block invariance. */
#include <math.h>
#include <omp.h>

#include "testutil.h"
#include "dptrain/kernels.h"
#include "../src/ukernels.h"   /* the in-place kernel's self-check */

static const char *const kernels[] = {"generic", "avx2", "avx512"};

typedef struct {
    size_t n, in, out;
} Shape;

static const Shape shapes[] = {{1, 1, 1},    {3, 5, 7},     {10, 784, 30}, {17, 33, 65},
                               {130, 300, 40}, {9, 600, 1030}, {64, 257, 33}, {2, 2100, 3},
                               {8, 1100, 32}};   /* one forward tile, enough work for the team */
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

/* |got - want| <= 2 K eps sum|terms| (+ tiny), the classical bound for a
 * float dot product of length K (Higham, gamma_K). */
static void assert_close(const float *got, const float *want, const float *bound, size_t n, size_t K, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double tol = 2.0 * (double)K * 0x1p-24 * bound[i] + 1e-30;
        if (fabs((double)got[i] - want[i]) > tol) {
            print_error("%s: element %zu is %.9g, expected %.9g (tol %.3g)\n", what, i, got[i], want[i], tol);
            fail();
        }
    }
}

static void test_products_against_ref(void **state)
{
    (void)state;
    for (size_t kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t s = 0; s < N_SHAPES; s++) {
            size_t n = shapes[s].n, in = shapes[s].in, out = shapes[s].out;
            float *X = malloc(n * in * 4), *W = malloc(out * in * 4), *b = malloc(out * 4), *D = malloc(n * out * 4);
            float *Z = malloc(n * out * 4), *Zr = malloc(n * out * 4), *bz = malloc(n * out * 4);
            float *dW = malloc(out * in * 4), *dWr = malloc(out * in * 4), *bw = malloc(out * in * 4);
            float *dA = malloc(n * in * 4), *dAr = malloc(n * in * 4), *ba = malloc(n * in * 4);
            tu_fill(X, n * in, 1 + s, -1, 1);
            tu_fill(W, out * in, 2 + s, -1, 1);
            tu_fill(b, out, 3 + s, -1, 1);
            tu_fill(D, n * out, 4 + s, -1, 1);
            /* Bounds: the same products on absolute values. */
            float *aX = malloc(n * in * 4), *aW = malloc(out * in * 4), *aD = malloc(n * out * 4), *ab = malloc(out * 4);
            for (size_t i = 0; i < n * in; i++) aX[i] = fabsf(X[i]);
            for (size_t i = 0; i < out * in; i++) aW[i] = fabsf(W[i]);
            for (size_t i = 0; i < n * out; i++) aD[i] = fabsf(D[i]);
            for (size_t i = 0; i < out; i++) ab[i] = fabsf(b[i]);
            dpt_kern_forward_ref(bz, aX, aW, ab, n, in, out);
            dpt_kern_weight_grad_ref(bw, 0, aD, aX, n, in, out);
            dpt_kern_input_grad_ref(ba, aD, aW, n, in, out);

            dpt_kern_forward(Z, X, W, b, n, in, out);
            dpt_kern_forward_ref(Zr, X, W, b, n, in, out);
            assert_close(Z, Zr, bz, n * out, in + 1, "forward");
            dpt_kern_weight_grad(dW, 0, D, X, n, in, out);
            dpt_kern_weight_grad_ref(dWr, 0, D, X, n, in, out);
            assert_close(dW, dWr, bw, out * in, n, "weight_grad");
            /* accumulate: dW += D^T X once more = 2 dWr */
            dpt_kern_weight_grad(dW, 1, D, X, n, in, out);
            dpt_kern_weight_grad_ref(dWr, 1, D, X, n, in, out);
            for (size_t i = 0; i < out * in; i++) bw[i] *= 2;
            assert_close(dW, dWr, bw, out * in, 2 * n, "weight_grad accumulate");
            dpt_kern_input_grad(dA, D, W, NULL, n, in, out);
            dpt_kern_input_grad_ref(dAr, D, W, n, in, out);
            assert_close(dA, dAr, ba, n * in, out, "input_grad");
            free(X); free(W); free(b); free(D); free(Z); free(Zr); free(bz); free(dW); free(dWr); free(bw);
            free(dA); free(dAr); free(ba); free(aX); free(aW); free(aD); free(ab);
        }
    }
    dpt_kern_select("avx512");
}

/* Same bits whatever the thread count, and a row's result does not depend on
 * the other rows computed with it. */
static void test_thread_and_row_invariance(void **state)
{
    (void)state;
    size_t n = 45, in = 300, out = 70;
    float *X = malloc(n * in * 4), *W = malloc(out * in * 4), *b = malloc(out * 4), *D = malloc(n * out * 4);
    float *Z1 = malloc(n * out * 4), *Z2 = malloc(n * out * 4), *Zs = malloc(n * out * 4);
    float *G1 = malloc(out * in * 4), *G2 = malloc(out * in * 4), *A1 = malloc(n * in * 4), *A2 = malloc(n * in * 4);
    tu_fill(X, n * in, 11, -1, 1);
    tu_fill(W, out * in, 12, -1, 1);
    tu_fill(b, out, 13, -1, 1);
    tu_fill(D, n * out, 14, -1, 1);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    dpt_kern_forward(Z1, X, W, b, n, in, out);
    dpt_kern_weight_grad(G1, 0, D, X, n, in, out);
    dpt_kern_input_grad(A1, D, W, NULL, n, in, out);
    omp_set_num_threads(2);
    dpt_kern_forward(Z2, X, W, b, n, in, out);
    dpt_kern_weight_grad(G2, 0, D, X, n, in, out);
    dpt_kern_input_grad(A2, D, W, NULL, n, in, out);
    omp_set_num_threads(3);
    dpt_kern_forward(Zs, X + 7 * in, W, b, n - 7, in, out);
    omp_set_num_threads(saved);
    assert_memory_equal(Z1, Z2, n * out * 4);
    assert_memory_equal(G1, G2, out * in * 4);
    assert_memory_equal(A1, A2, n * in * 4);
    assert_memory_equal(Z1 + 7 * out, Zs, (n - 7) * out * 4);
    free(X); free(W); free(b); free(D); free(Z1); free(Z2); free(Zs); free(G1); free(G2); free(A1); free(A2);
}

static size_t machine_mc;
static int machine_threads;

/* The four products of one layer (forward, weight gradient, input gradient,
 * fixed-point weight gradient) from the same operands, twice over: each
 * variant of a bitwise test computes into set k and compares set 1 with
 * set 0. */
typedef struct {
    size_t n, in, out;
    float *X, *W, *b, *D, *Z[2], *G[2], *A[2];
    int64_t *Q[2];
} Products;

static void products_init(Products *p, Shape sh, uint64_t seed)
{
    const size_t n = sh.n, in = sh.in, out = sh.out;
    *p = (Products){.n = n, .in = in, .out = out, .X = malloc(n * in * 4), .W = malloc(out * in * 4),
                    .b = malloc(out * 4), .D = malloc(n * out * 4)};
    for (int k = 0; k < 2; k++) {
        p->Z[k] = malloc(n * out * 4);
        p->G[k] = malloc(out * in * 4);
        p->A[k] = malloc(n * in * 4);
        p->Q[k] = malloc(out * in * 8);
    }
    tu_fill(p->X, n * in, seed, -1, 1);
    tu_fill(p->W, out * in, seed + 1, -1, 1);
    tu_fill(p->b, out, seed + 2, -1, 1);
    tu_fill(p->D, n * out, seed + 3, -1, 1);
}

/* Set k's outputs, starting from the byte fill (so that a tile left out shows). */
static void products_run(Products *p, int k, int fill)
{
    const size_t n = p->n, in = p->in, out = p->out;
    memset(p->Z[k], fill, n * out * 4);
    memset(p->G[k], fill, out * in * 4);
    memset(p->A[k], fill, n * in * 4);
    memset(p->Q[k], fill, out * in * 8);
    dpt_kern_forward(p->Z[k], p->X, p->W, p->b, n, in, out);
    dpt_kern_weight_grad(p->G[k], 0, p->D, p->X, n, in, out);
    dpt_kern_input_grad(p->A[k], p->D, p->W, NULL, n, in, out);
    dpt_kern_weight_grad_fixed(p->Q[k], 0, 0x1p40, p->D, p->X, n, in, out, 8);
}

static int products_same(const Products *p)
{
    const size_t n = p->n, in = p->in, out = p->out;
    return !memcmp(p->Z[0], p->Z[1], n * out * 4) && !memcmp(p->G[0], p->G[1], out * in * 4) &&
           !memcmp(p->A[0], p->A[1], n * in * 4) && !memcmp(p->Q[0], p->Q[1], out * in * 8);
}

static void products_free(Products *p)
{
    free(p->X); free(p->W); free(p->b); free(p->D);
    for (int k = 0; k < 2; k++) {
        free(p->Z[k]); free(p->G[k]); free(p->A[k]); free(p->Q[k]);
    }
}

static int block_rows_setup(void **state)
{
    (void)state;
    machine_mc = dpt_kern_block_rows(NULL);
    machine_threads = omp_get_max_threads();
    return 0;
}

/* Even after a failed assertion: the tests after it run at the machine's MC. */
static int block_rows_teardown(void **state)
{
    (void)state;
    dpt_kern_set_block_rows(machine_mc);
    omp_set_num_threads(machine_threads);
    dpt_kern_select("avx512");
    return 0;
}

/* The rows packed per block (MC, chosen from the L2) change no bit: every
 * kernel's products, float and fixed point, at 16 and 64 rows a block (many
 * blocks of rows, MR-tall panels cut mid-block where MR is 6) against the
 * machine's choice, on 2 threads and on 1. */
static void test_block_rows_bitwise(void **state)
{
    (void)state;
    const size_t mc0 = machine_mc, mcs[] = {16, 64};
    for (size_t kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t si = 0; si < N_SHAPES; si++) {
            Products p;
            products_init(&p, shapes[si], 61);
            for (int v = 0; v < 1 + 2 * 2; v++) {
                /* v 0: the machine's MC; then each of mcs on 2 and 1 threads */
                dpt_kern_set_block_rows(v == 0 ? mc0 : mcs[(v - 1) / 2]);
                omp_set_num_threads(v == 0 ? 2 : 2 - (v - 1) % 2);
                products_run(&p, v == 0 ? 0 : 1, v);
                if (v > 0 && !products_same(&p)) {
                    print_error("%s, %zux%zux%zu, variant %d: not the machine's MC's bits\n", kernels[kk], p.n, p.in,
                                p.out, v);
                    fail();
                }
            }
            products_free(&p);
        }
    }
}

/* The loop that keeps an A panel in L1 across each thread's own B panels
 * (DPT_LOOP_A) and the one that keeps a B panel there (DPT_LOOP_B) give the
 * same bits: every kernel's products, float and fixed point, on 1-3
 * threads, with the machine's MC and with 16 rows a block (the team's
 * barrier between blocks); shapes with many B panels a thread (their groups
 * of 16), ragged last panels, several 256-slabs, and a thread count that
 * does not divide the panels (33 of them on 2 threads). */
static void test_loop_bitwise(void **state)
{
    (void)state;
    const Shape sh[] = {{9, 600, 1030}, {2, 2100, 3}, {130, 300, 40}, {64, 257, 33}, {40, 1100, 200}};
    const int threads = omp_get_max_threads();
    for (size_t kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++) {
            Products p;
            products_init(&p, sh[si], 71);
            /* v 0: loop B on one thread; then A on 1-3 threads, B on 2-3,
             * A on 2 threads with 16-row blocks */
            for (int v = 0; v < 7; v++) {
                const int nt = v == 0 ? 1 : v <= 3 ? v : v <= 5 ? v - 2 : 2;
                dpt_kern_set_loop(v == 0 || v == 4 || v == 5 ? DPT_LOOP_B : DPT_LOOP_A);
                dpt_kern_set_block_rows(v == 6 ? 16 : machine_mc);
                omp_set_num_threads(nt);
                products_run(&p, v == 0 ? 0 : 1, v);
                if (v > 0 && !products_same(&p)) {
                    print_error("%s, %zux%zux%zu, variant %d (%d threads): not loop B's bits\n", kernels[kk], p.n,
                                p.in, p.out, v, nt);
                    fail();
                }
            }
            products_free(&p);
        }
    }
    dpt_kern_set_loop(-1);
    dpt_kern_set_block_rows(machine_mc);
    omp_set_num_threads(threads);
    dpt_kern_select("avx512");
}

/* Fixed point: close to the float product; identical sums however the blocks
 * are split into calls or threads. */
static void test_fixed_point_weight_grad(void **state)
{
    (void)state;
    size_t n = 37, in = 90, out = 83, blk = 8;   /* above PAR_MIN_WORK: 2 threads share it */
    double scale = 0x1p40;
    float *D = malloc(n * out * 4), *A = malloc(n * in * 4), *ref = malloc(out * in * 4), *db = malloc(out * 4);
    int64_t *q1 = calloc(out * in, 8), *q2 = calloc(out * in, 8), *b1 = calloc(out, 8), *b2 = calloc(out, 8);
    tu_fill(D, n * out, 21, -1, 1);
    tu_fill(A, n * in, 22, -1, 1);
    dpt_kern_weight_grad_ref(ref, 0, D, A, n, in, out);
    omp_set_num_threads(2);
    dpt_kern_weight_grad_fixed(q1, 0, scale, D, A, n, in, out, blk);
    dpt_kern_bias_grad_fixed(b1, 0, scale, D, n, out, blk);
    /* The same blocks in three calls (split at block boundaries), one thread. */
    omp_set_num_threads(1);
    size_t cuts[] = {0, 16, 24, n};
    for (int c = 0; c < 3; c++) {
        size_t r0 = cuts[c], r1 = cuts[c + 1];
        dpt_kern_weight_grad_fixed(q2, c > 0, scale, D + r0 * out, A + r0 * in, r1 - r0, in, out, blk);
        dpt_kern_bias_grad_fixed(b2, c > 0, scale, D + r0 * out, r1 - r0, out, blk);
    }
    omp_set_num_threads(2);
    assert_memory_equal(q1, q2, out * in * 8);
    assert_memory_equal(b1, b2, out * 8);
    for (size_t i = 0; i < out * in; i++)
        assert_true(fabs((double)q1[i] / scale - ref[i]) <= 1e-5 * (1 + fabs(ref[i])));
    dpt_kern_bias_grad(db, 0, D, n, out);
    for (size_t o = 0; o < out; o++)
        assert_true(fabs((double)b1[o] / scale - db[o]) <= 1e-5);
    free(D); free(A); free(ref); free(db); free(q1); free(q2); free(b1); free(b2);
}

/* The bias gradient is each column's sum, rows in order from zero (or from
 * db when accumulating), whatever the thread count and however the columns
 * are cut among threads: bitwise the scalar chain, on 1-3 threads, for
 * widths that do and do not fill whole cache lines; in fixed point, each
 * block's chain rounded and the blocks added, likewise. */
static void test_bias_grad_chain(void **state)
{
    (void)state;
    const size_t n = 160, outs[] = {10, 1030, 4099};
    int saved = omp_get_max_threads();
    for (size_t s = 0; s < 3; s++) {
        size_t out = outs[s];
        float *D = malloc(n * out * 4), *db = malloc(out * 4), *want = malloc(out * 4), *init = malloc(out * 4);
        tu_fill(D, n * out, 101 + s, -1, 1);
        tu_fill(init, out, 111 + s, -1, 1);
        for (int acc = 0; acc < 2; acc++) {
            for (size_t o = 0; o < out; o++) {
                float c = acc ? init[o] : 0.0f;
                for (size_t r = 0; r < n; r++)
                    c += D[r * out + o];
                want[o] = c;
            }
            for (int t = 1; t <= 3; t++) {
                omp_set_num_threads(t);
                memcpy(db, init, out * 4);
                dpt_kern_bias_grad(db, acc, D, n, out);
                assert_memory_equal(db, want, out * 4);
            }
        }
        /* fixed point: per block of 24 rows (the last one short) the float
         * chain, rounded as llrint(scale * sum), the blocks' integers added */
        int64_t *q = malloc(out * 8), *qwant = malloc(out * 8);
        const double scale = 0x1p30;
        for (size_t o = 0; o < out; o++) {
            int64_t a = 7;   /* accumulated onto */
            for (size_t r0 = 0; r0 < n; r0 += 24) {
                float c = 0.0f;
                for (size_t r = r0; r < n && r < r0 + 24; r++)
                    c += D[r * out + o];
                a += (int64_t)llrint((double)c * scale);
            }
            qwant[o] = a;
        }
        for (int t = 1; t <= 3; t++) {
            omp_set_num_threads(t);
            for (size_t o = 0; o < out; o++) q[o] = 7;
            dpt_kern_bias_grad_fixed(q, 1, scale, D, n, out, 24);
            assert_memory_equal(q, qwant, out * 8);
        }
        free(q); free(qwant);
        free(D); free(db); free(want); free(init);
    }
    omp_set_num_threads(saved);
}

/* The conversion to fixed point is llrint(scale * block sum) on every
 * micro-kernel, vector or not: one block of all n rows (one micro-kernel
 * call per tile, as in the float product) against llrint of the float
 * product, at scales that leave fractions and halves to round (2^10, 2^20)
 * and that push some values past 2^51, where the AVX2 path falls back to
 * scalar (2^56). */
static void test_fixed_point_rounding(void **state)
{
    (void)state;
    size_t n = 40, in = 70, out = 33;
    float *D = malloc(n * out * 4), *A = malloc(n * in * 4), *G = malloc(out * in * 4);
    int64_t *q = calloc(out * in, 8);
    tu_fill(D, n * out, 31, -1, 1);
    tu_fill(A, n * in, 32, -1, 1);
    const double scales[] = {0x1p10, 0x1p20, 0x1p56};
    for (int kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        dpt_kern_weight_grad(G, 0, D, A, n, in, out);
        for (int si = 0; si < 3; si++) {
            dpt_kern_weight_grad_fixed(q, 0, scales[si], D, A, n, in, out, n);
            int big = 0;
            for (size_t i = 0; i < out * in; i++) {
                double v = (double)G[i] * scales[si];
                big |= fabs(v) >= 0x1p51;
                assert_true(q[i] == (int64_t)llrint(v));
            }
            if (si == 2)
                assert_true(big);
        }
    }
    dpt_kern_select("avx512");
    free(D); free(A); free(G); free(q);
}

/* The fixed-point weight gradient by its definition, exactly: each block's
 * float product (the same chain as the float kernel's over those rows alone)
 * rounded as llrint(scale * sum), the blocks' integers added in any order,
 * onto what was there when accumulating. Over more rows than one KC slab
 * (300 rows, blocks of 20: two slabs), edge tiles, 1 and 2 threads, and a
 * block scaled up so far that its values pass 2^51 (the AVX2 kernel's
 * scalar path) between blocks that stay below it, in the same tiles. */
static void test_fixed_point_blocks_definition(void **state)
{
    (void)state;
    const size_t n = 300, in = 45, out = 29, blk = 20, nb = (n + blk - 1) / blk;
    float *D = malloc(n * out * 4), *A = malloc(n * in * 4), *G = malloc(out * in * 4);
    int64_t *q = malloc(out * in * 8), *want = malloc(out * in * 8);
    tu_fill(D, n * out, 41, -1, 1);
    tu_fill(A, n * in, 42, -1, 1);
    for (size_t r = 5 * blk; r < 6 * blk; r++)   /* block 5: about 2^12 times the others */
        for (size_t o = 0; o < out; o++)
            D[r * out + o] *= 4096.0f;
    const double scale = 0x1p46;   /* block 5's sums pass 2^51 / scale; the others stay below */
    int saved = omp_get_max_threads();
    for (int kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (int acc = 0; acc < 2; acc++) {
            int big = 0;
            for (size_t i = 0; i < out * in; i++)
                want[i] = acc ? (int64_t)i * 1000 - 12345 : 0;
            for (size_t b = 0; b < nb; b++) {
                size_t r0 = b * blk, rows = n - r0 < blk ? n - r0 : blk;
                dpt_kern_weight_grad(G, 0, D + r0 * out, A + r0 * in, rows, in, out);
                for (size_t i = 0; i < out * in; i++) {
                    double v = (double)G[i] * scale;
                    big |= fabs(v) >= 0x1p51;
                    want[i] += (int64_t)llrint(v);
                }
            }
            assert_true(big);
            for (int t = 1; t <= 2; t++) {
                omp_set_num_threads(t);
                for (size_t i = 0; i < out * in; i++)
                    q[i] = acc ? (int64_t)i * 1000 - 12345 : -1;
                dpt_kern_weight_grad_fixed(q, acc, scale, D, A, n, in, out, blk);
                assert_memory_equal(q, want, out * in * 8);
            }
        }
    }
    omp_set_num_threads(saved);
    dpt_kern_select("avx512");
    free(D); free(A); free(G); free(q); free(want);
}

/* The fixed-point sums back to float: every kernel gives, bit for bit, the
 * scalar (float)((double)q * inv), over the whole int64 range (values near
 * powers of two, where the rounding to double and then to float decides,
 * negative ones, the extremes) and for scales from 1 to 2^-62; lengths that
 * are not multiples of the vector width. */
static void test_fixed_to_float_bitwise(void **state)
{
    (void)state;
    enum { N = 1027 };
    int64_t *q = malloc(N * sizeof *q);
    float *got = malloc(N * sizeof *got);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int e = (int)(i % 63);
        int64_t v = (int64_t)(x >> (63 - e));                    /* about 2^e */
        if (i % 5 == 1)
            v = ((int64_t)1 << e) + (int64_t)(x % 7) - 3;        /* near a power of two */
        q[i] = i % 2 ? -v : v;
    }
    q[0] = INT64_MAX;
    q[1] = INT64_MIN + 1;
    q[2] = 0;
    q[3] = ((int64_t)1 << 53) + 1;                               /* not exact in double */
    q[4] = -(((int64_t)1 << 62) + ((int64_t)1 << 38) + 1);
    const double inv[] = {1.0, 0x1p-20, 0x1p-51, 0x1p-62};
    for (int kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (int si = 0; si < 4; si++)
            for (size_t n = N - 4; n <= N; n++) {
                dpt_kern_fixed_to_float(got, q, n, inv[si]);
                for (size_t i = 0; i < n; i++) {
                    float want = (float)((double)q[i] * inv[si]);
                    assert_memory_equal(&got[i], &want, sizeof want);
                }
            }
    }
    dpt_kern_select("avx512");
    free(q);
    free(got);
}

/* The fixed-point weight gradient stored as floats (one slab, the sums
 * converted in the tile) is bitwise the int64 sums turned into floats
 * afterwards: every kernel, 1 and 2 threads, edge tiles, blocks 8, 24 and
 * 32 (a last block that is short), up to the slab's whole rows; and so is
 * the sliced form (rows kept packed, units in two slices). */
static void test_fixed_float_bitwise(void **state)
{
    (void)state;
    const Shape sh[] = {{1, 1, 1}, {37, 90, 41}, {130, 300, 40}, {64, 257, 33}, {240, 70, 1030}};
    const size_t blocks[] = {8, 24, 32};
    const double scale = 0x1p40;
    for (int kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++)
            for (size_t bi = 0; bi < 3; bi++) {
                const size_t blk = blocks[bi], in = sh[si].in, out = sh[si].out;
                const size_t n = sh[si].n < dpt_kern_fixed_float_rows(blk) ? sh[si].n : dpt_kern_fixed_float_rows(blk);
                float *D = malloc(n * out * 4), *A = malloc(n * in * 4);
                float *want = malloc(out * in * 4), *got = malloc(out * in * 4);
                float *bp = malloc(dpt_kern_rowpack_floats(n, in) * 4);
                int64_t *q = malloc(out * in * 8);
                tu_fill(D, n * out, 31 + si, -1, 1);
                tu_fill(A, n * in, 41 + bi, -1, 1);
                dpt_kern_rowpack(bp, A, n, in, 0, n, blk);
                const size_t u = out / 3;
                for (int t = 1; t <= 2; t++) {
                    omp_set_num_threads(t);
                    dpt_kern_weight_grad_fixed(q, 0, scale, D, A, n, in, out, blk);
                    dpt_kern_fixed_to_float(want, q, out * in, 1.0 / scale);
                    for (size_t i = 0; i < out * in; i++)
                        got[i] = NAN;
                    dpt_kern_weight_grad_fixed_float(got, scale, D, A, n, in, out, blk);
                    assert_memory_equal(got, want, out * in * 4);
                    for (size_t i = 0; i < out * in; i++)
                        got[i] = NAN;
                    dpt_kern_weight_grad_rows_fixed_float(got + u * in, scale, D + u, out, bp, n, in, out - u, blk);
                    dpt_kern_weight_grad_rows_fixed_float(got, scale, D, out, bp, n, in, u, blk);
                    assert_memory_equal(got, want, out * in * 4);
                }
                free(D); free(A); free(want); free(got); free(q); free(bp);
            }
    }
    dpt_kern_select("avx512");
    omp_set_num_threads(2);
}

/* The vector micro-kernels (AVX2's 6 x 16 tile, AVX-512's 8 x 32) compute
 * every element as the same chain of fused multiply-adds, k ascending from
 * zero within each slab of 256, the slabs' sums added in order: bitwise
 * equal to that chain written out with fmaf, whatever the tile, edge or
 * shape (so tiles may differ between kernels and machines). */
static void test_fma_chain_bitwise(void **state)
{
    (void)state;
    const Shape sh[] = {{13, 600, 70}, {6, 16, 16}, {7, 300, 17}, {1, 1030, 33}};
    for (size_t kk = 1; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
            size_t n = sh[s].n, in = sh[s].in, out = sh[s].out;
            float *X = malloc(n * in * 4), *W = malloc(out * in * 4), *Z = malloc(n * out * 4);
            tu_fill(X, n * in, 41 + s, -1, 1);
            tu_fill(W, out * in, 51 + s, -1, 1);
            dpt_gemm(Z, out, 0, X, in, 1, W, 1, in, n, out, in);   /* X * W^T */
            for (size_t r = 0; r < n; r++)
                for (size_t o = 0; o < out; o++) {
                    float total = 0.0f;
                    for (size_t k0 = 0; k0 < in; k0 += 256) {
                        float c = 0.0f;
                        for (size_t k = k0; k < in && k < k0 + 256; k++)
                            c = fmaf(X[r * in + k], W[o * in + k], c);
                        total = k0 == 0 ? c : total + c;
                    }
                    if (memcmp(&total, &Z[r * out + o], 4) != 0) {
                        print_error("%s, %zux%zux%zu: element (%zu, %zu) is %a, the fma chain gives %a\n",
                                    kernels[kk], n, in, out, r, o, (double)Z[r * out + o], (double)total);
                        fail();
                    }
                }
            free(X); free(W); free(Z);
        }
    }
    dpt_kern_select("avx512");
}

/* W read in place (where the kernel can): the forward product of any batch
 * and the input gradient of n <= 16 rows equal, bit for bit, the packed
 * path's (dpt_gemm, itself checked against the fma chain), on 1 and 2
 * threads, across slabs (in, out > 256), column blocks (n > 256) and ragged
 * edges; a narrow layer on 2 threads takes the packed path, with the same bits. */
static void test_small_batch_bitwise(void **state)
{
    (void)state;
    const size_t ns[] = {1, 5, 6, 7, 12, 16, 17, 32, 33, 40, 300}, big = 300;
    const Shape sh[] = {{0, 300, 70}, {0, 784, 1030}, {0, 17, 5}, {0, 520, 33}};
    int saved = omp_get_max_threads();
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        size_t in = sh[s].in, out = sh[s].out;
        float *X = malloc(big * in * 4), *W = malloc(out * in * 4), *b = malloc(out * 4), *D = malloc(big * out * 4);
        float *Zb = malloc(big * out * 4), *Ab = malloc(big * in * 4), *Z = malloc(big * out * 4), *A = malloc(big * in * 4);
        tu_fill(X, big * in, 61 + s, -1, 1);
        tu_fill(W, out * in, 71 + s, -1, 1);
        tu_fill(b, out, 81 + s, -1, 1);
        tu_fill(D, big * out, 91 + s, -1, 1);
        dpt_gemm(Zb, out, 0, X, in, 1, W, 1, in, big, out, in);   /* packed X * W^T */
        for (size_t r = 0; r < big; r++)
            for (size_t o = 0; o < out; o++)
                Zb[r * out + o] += b[o];
        dpt_gemm(Ab, in, 0, D, out, 1, W, in, 1, big, in, out);   /* packed D * W */
        for (int t = 1; t <= 2; t++) {
            omp_set_num_threads(t);
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                size_t n = ns[k];
                dpt_kern_forward(Z, X, W, b, n, in, out);
                dpt_kern_input_grad(A, D, W, NULL, n, in, out);
                assert_memory_equal(Z, Zb, n * out * 4);
                assert_memory_equal(A, Ab, n * in * 4);
            }
        }
        free(X); free(W); free(b); free(D); free(Zb); free(Ab); free(Z); free(A);
    }
    omp_set_num_threads(saved);
}

/* W kept packed (dpt_kern_wpack), in pieces packed in any order as ranks
 * sharing a copy do: the forward product and the input gradient that read
 * the copy give the bits of those that pack W themselves, for every kernel,
 * on 1 and 2 threads, across slabs (in, out > 256), column blocks (N > 2048
 * columns: out for the forward copy, in for the input gradient's) and
 * ragged panels. The generic kernel (no in-place forward) uses both copies. */
static void test_wpack_bitwise(void **state)
{
    (void)state;
    const Shape sh[] = {{64, 300, 70}, {64, 784, 1030}, {40, 17, 5}, {64, 40, 2100}, {300, 2100, 40}, {64, 257, 513}};
    int saved = omp_get_max_threads(), fwd_used = 0, bwd_used = 0;
    for (size_t kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
            const size_t n = sh[s].n, in = sh[s].in, out = sh[s].out, m = in * out;
            float *X = malloc(n * in * 4), *W = malloc(m * 4), *b = malloc(out * 4), *D = malloc(n * out * 4);
            float *Z0 = malloc(n * out * 4), *Z1 = malloc(n * out * 4), *A0 = malloc(n * in * 4), *A1 = malloc(n * in * 4);
            tu_fill(X, n * in, 101 + s, -1, 1);
            tu_fill(W, m, 111 + s, -1, 1);
            tu_fill(b, out, 121 + s, -1, 1);
            tu_fill(D, n * out, 131 + s, -1, 1);
            for (int t = 1; t <= 2; t++) {
                omp_set_num_threads(t);
                const size_t ff = dpt_kern_wpack_floats(in, out, 1, n), fb = dpt_kern_wpack_floats(in, out, 0, n);
                float *pf = ff ? calloc(ff, 4) : NULL, *pb = fb ? calloc(fb, 4) : NULL;
                /* five pieces, cut mid-row, packed last first */
                const size_t cut[6] = {0, m / 7 + 3, m / 3, m / 2 + 1, m - m / 5, m};
                for (int i = 4; i >= 0; i--) {
                    if (pf)
                        dpt_kern_wpack(pf, 1, W, in, out, cut[i], cut[i + 1]);
                    if (pb)
                        dpt_kern_wpack(pb, 0, W, in, out, cut[i], cut[i + 1]);
                }
                dpt_kern_forward_act(Z0, NULL, X, W, NULL, b, DPT_ACT_LINEAR, n, in, out);
                dpt_kern_forward_act(Z1, NULL, X, W, pf, b, DPT_ACT_LINEAR, n, in, out);
                dpt_kern_input_grad(A0, D, W, NULL, n, in, out);
                dpt_kern_input_grad(A1, D, W, pb, n, in, out);
                assert_memory_equal(Z0, Z1, n * out * 4);
                assert_memory_equal(A0, A1, n * in * 4);
                fwd_used |= pf != NULL;
                bwd_used |= pb != NULL;
                free(pf);
                free(pb);
            }
            free(X); free(W); free(b); free(D); free(Z0); free(Z1); free(A0); free(A1);
        }
    }
    assert_true(fwd_used && bwd_used);
    omp_set_num_threads(saved);
    dpt_kern_select("avx512");
}

/* A team of 2 or 3 threads sharing a product's tiles gives one thread's
 * bits, for every product and kernel, across slabs, column blocks
 * (N > 2048), ragged panels, with B packed per call and kept packed (W, the
 * node's rows), in float and fixed point (int64 sums, accumulated, and one
 * slab stored as floats); the weight gradients, whose threads take whole
 * rows of units (gemm_rows), of 10, 32 and 300 rows (two slabs), ragged
 * both ways. */
static void test_team_sizes_bitwise(void **state)
{
    (void)state;
    const Shape sh[] = {{45, 300, 70}, {64, 40, 2100}, {300, 2100, 40}, {130, 257, 513}, {24, 9, 24},
                        {10, 300, 130}, {32, 257, 197}, {300, 500, 197}};
    const double scale = 0x1p40;
    const size_t blk = 8;
    int saved = omp_get_max_threads();
    for (size_t kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
            const size_t n = sh[s].n, in = sh[s].in, out = sh[s].out, m = in * out, nf = n < 256 ? n : 256;
            float *X = malloc(n * in * 4), *W = malloc(m * 4), *b = malloc(out * 4), *D = malloc(n * out * 4);
            tu_fill(X, n * in, 141 + s, -1, 1);
            tu_fill(W, m, 151 + s, -1, 1);
            tu_fill(b, out, 161 + s, -1, 1);
            tu_fill(D, n * out, 171 + s, -1, 1);
            /* every result of one configuration, end to end: Z, Z from W
             * packed, dW, dW accumulated, dW from the rows packed, dA, dA
             * from W packed, float-stored fixed dW; and the int64 dW
             * (accumulated) */
            const size_t len = 2 * n * out + 3 * m + 2 * n * in + m;
            float *res[4];
            int64_t *resq[4];
            for (int t = 1; t <= 3; t++) {
                omp_set_num_threads(t);
                float *r = res[t] = malloc(len * 4), *at = r;
                int64_t *q = resq[t] = malloc(m * 8);
                const size_t ff = dpt_kern_wpack_floats(in, out, 1, n), fb = dpt_kern_wpack_floats(in, out, 0, n);
                float *pf = ff ? calloc(ff, 4) : NULL, *pw = fb ? calloc(fb, 4) : NULL;
                float *bp = malloc(dpt_kern_rowpack_floats(n, in) * 4);
                if (pf)
                    dpt_kern_wpack(pf, 1, W, in, out, 0, m);
                if (pw)
                    dpt_kern_wpack(pw, 0, W, in, out, 0, m);
                dpt_kern_rowpack(bp, X, n, in, 0, n, 0);
                dpt_kern_forward_act(at, NULL, X, W, NULL, b, DPT_ACT_LINEAR, n, in, out), at += n * out;
                dpt_kern_forward_act(at, NULL, X, W, pf, b, DPT_ACT_LINEAR, n, in, out), at += n * out;
                dpt_kern_weight_grad(at, 0, D, X, n, in, out), at += m;
                memcpy(at, at - m, m * 4);
                dpt_kern_weight_grad(at, 1, D, X, n, in, out), at += m;
                dpt_kern_weight_grad_rows(at, 0, D, out, bp, n, in, out), at += m;
                dpt_kern_input_grad(at, D, W, NULL, n, in, out), at += n * in;
                dpt_kern_input_grad(at, D, W, pw, n, in, out), at += n * in;
                dpt_kern_weight_grad_fixed(q, 0, scale, D, X, n, in, out, blk);
                dpt_kern_weight_grad_fixed(q, 1, scale, D, X, n, in, out, blk);
                dpt_kern_weight_grad_fixed_float(at, scale, D, X, nf, in, out, blk), at += m;
                assert_true(at == r + len);
                free(pf);
                free(pw);
                free(bp);
            }
            for (int t = 2; t <= 3; t++) {
                assert_memory_equal(res[t], res[1], len * 4);
                assert_memory_equal(resq[t], resq[1], m * 8);
                free(res[t]);
                free(resq[t]);
            }
            free(res[1]);
            free(resq[1]);
            free(X); free(W); free(b); free(D);
        }
    }
    omp_set_num_threads(saved);
    dpt_kern_select("avx512");
}

/* Threads of a caller's region that each compute their own rows (forward,
 * input gradient) and their own units of the weight gradient (from the rows
 * packed together), every product alone with its own buffers
 * (dpt_kern_solo_begin), give the bits of the products run on a team: every
 * kernel, 2-4 threads (so some threads have no rows or units), with and
 * without W kept packed, across slabs and ragged panels. */
static void test_solo_threads_bitwise(void **state)
{
    (void)state;
    const Shape sh[] = {{45, 300, 70}, {130, 257, 513}, {3, 40, 5}, {64, 784, 100}};
    int saved = omp_get_max_threads();
    for (size_t kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        const size_t per = dpt_kern_solo_floats();
        float *bufs = aligned_alloc(64, 4 * per * sizeof(float));
        for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++) {
            const size_t n = sh[si].n, in = sh[si].in, out = sh[si].out, m = in * out;
            float *X = malloc(n * in * 4), *W = malloc(m * 4), *b = malloc(out * 4), *D = malloc(n * out * 4);
            float *Z0 = malloc(n * out * 4), *Z1 = malloc(n * out * 4), *A0 = malloc(n * in * 4), *A1 = malloc(n * in * 4);
            float *G0 = malloc(m * 4), *G1 = malloc(m * 4), *bp = malloc(dpt_kern_rowpack_floats(n, in) * 4);
            tu_fill(X, n * in, 181 + si, -1, 1);
            tu_fill(W, m, 191 + si, -1, 1);
            tu_fill(b, out, 201 + si, -1, 1);
            tu_fill(D, n * out, 211 + si, -1, 1);
            const size_t ff = dpt_kern_wpack_floats(in, out, 1, n), fb = dpt_kern_wpack_floats(in, out, 0, n);
            float *pf = ff ? calloc(ff, 4) : NULL, *pw = fb ? calloc(fb, 4) : NULL;
            if (pf)
                dpt_kern_wpack(pf, 1, W, in, out, 0, m);
            if (pw)
                dpt_kern_wpack(pw, 0, W, in, out, 0, m);
            for (int packed = 0; packed < 2; packed++) {
                const float *wf = packed ? pf : NULL, *wb = packed ? pw : NULL;
                omp_set_num_threads(2);
                dpt_kern_forward_act(Z0, NULL, X, W, wf, b, DPT_ACT_LINEAR, n, in, out);
                dpt_kern_input_grad(A0, D, W, wb, n, in, out);
                dpt_kern_weight_grad(G0, 0, D, X, n, in, out);
                for (int T = 2; T <= 4; T++) {
                    memset(Z1, 0xff, n * out * 4);
                    memset(A1, 0xff, n * in * 4);
                    memset(G1, 0xff, m * 4);
#pragma omp parallel num_threads(T)
                    {
                        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
                        const size_t r0 = n * t / nt, r1 = n * (t + 1) / nt, u0 = out * t / nt, u1 = out * (t + 1) / nt;
                        dpt_kern_solo_begin(bufs + t * per);
                        dpt_kern_forward_act(Z1 + r0 * out, NULL, X + r0 * in, W, wf, b, DPT_ACT_LINEAR, r1 - r0, in, out);
                        dpt_kern_input_grad(A1 + r0 * in, D + r0 * out, W, wb, r1 - r0, in, out);
                        dpt_kern_rowpack(bp, X + r0 * in, n, in, r0, r1, 0);
#pragma omp barrier
                        dpt_kern_weight_grad_rows(G1 + u0 * in, 0, D + u0, out, bp, n, in, u1 - u0);
                        dpt_kern_solo_end();
                    }
                    assert_memory_equal(Z0, Z1, n * out * 4);
                    assert_memory_equal(A0, A1, n * in * 4);
                    assert_memory_equal(G0, G1, m * 4);
                }
            }
            free(X); free(W); free(b); free(D); free(Z0); free(Z1); free(A0); free(A1); free(G0); free(G1);
            free(bp); free(pf); free(pw);
        }
        free(bufs);
    }
    omp_set_num_threads(saved);
    dpt_kern_select("avx512");
}

/* The node-sliced weight gradient: rows packed in pieces by several callers
 * (any order), each caller's output rows computed over all the rows, are
 * bitwise the whole product over the same rows, in float and fixed point
 * (blocks that divide the 256-slab and one that does not), with a second
 * pass accumulated; the bias columns likewise. Every kernel this CPU runs,
 * 1 and 2 threads; K over two slabs, in over two column blocks, ragged panels. */
static void test_rowpack_sliced(void **state)
{
    (void)state;
    const Shape sh[] = {{64, 300, 70}, {600, 784, 103}, {37, 17, 5}, {300, 2100, 40}};
    int saved = omp_get_max_threads();
    for (size_t kk = 0; kk < 3; kk++) {
        if (!dpt_kern_select(kernels[kk]))
            continue;
        for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
            const size_t n = sh[s].n, in = sh[s].in, out = sh[s].out, m = in * out;
            float *A = malloc(n * in * 4), *D = malloc(n * out * 4), *bp = malloc(dpt_kern_rowpack_floats(n, in) * 4);
            float *W0 = malloc(m * 4), *W1 = malloc(m * 4), *b0 = malloc(out * 4), *b1 = malloc(out * 4);
            int64_t *Q0 = malloc(m * 8), *Q1 = malloc(m * 8), *c0 = malloc(out * 8), *c1 = malloc(out * 8);
            tu_fill(A, n * in, 151 + s, -1, 1);
            tu_fill(D, n * out, 161 + s, -1, 1);
            /* The copy need not start zeroed: its padding holds huge values
             * here (3.4e38), which the edge tiles' columns past the layer
             * read and throw away (in fixed point without undefined
             * behaviour, which the sanitizer build checks). */
            memset(bp, 0x7f, dpt_kern_rowpack_floats(n, in) * 4);
            /* rows cut in four pieces (the callers), units in three slices */
            const size_t rc[5] = {0, n / 5, n / 2 + 1, n - n / 7, n}, uc[4] = {0, out / 3 + 1, out / 2, out};
            const size_t blocks[3] = {0, 8, 24};
            for (int t = 1; t <= 2; t++) {
                omp_set_num_threads(t);
                for (int bi = 0; bi < 3; bi++) {
                    const size_t blk = blocks[bi];
                    /* two passes: rows [0, h) then [h, n), accumulated */
                    const size_t h = n / 3 + 1, pass[3] = {0, h, n};
                    for (int p = 0; p < 2; p++) {
                        const size_t k0 = pass[p], K = pass[p + 1] - k0;
                        for (int i = 3; i >= 0; i--) {
                            size_t r0 = rc[i] > k0 ? rc[i] : k0, r1 = rc[i + 1] < k0 + K ? rc[i + 1] : k0 + K;
                            if (r0 < r1)
                                dpt_kern_rowpack(bp, A + r0 * in, K, in, r0 - k0, r1 - k0, blk);
                        }
                        for (int u = 0; u < 3; u++) {
                            const size_t o0 = uc[u], mu = uc[u + 1] - uc[u];
                            if (blk) {
                                dpt_kern_weight_grad_rows_fixed(Q1 + o0 * in, p, 0x1p20, D + k0 * out + o0, out, bp, K,
                                                                in, mu, blk);
                                dpt_kern_bias_grad_cols_fixed(c1 + o0, p, 0x1p20, D + k0 * out + o0, out, K, mu, blk);
                            } else {
                                dpt_kern_weight_grad_rows(W1 + o0 * in, p, D + k0 * out + o0, out, bp, K, in, mu);
                                dpt_kern_bias_grad_cols(b1 + o0, p, D + k0 * out + o0, out, K, mu);
                            }
                        }
                        if (blk) {
                            dpt_kern_weight_grad_fixed(Q0, p, 0x1p20, D + k0 * out, A + k0 * in, K, in, out, blk);
                            dpt_kern_bias_grad_fixed(c0, p, 0x1p20, D + k0 * out, K, out, blk);
                        } else {
                            dpt_kern_weight_grad(W0, p, D + k0 * out, A + k0 * in, K, in, out);
                            dpt_kern_bias_grad(b0, p, D + k0 * out, K, out);
                        }
                    }
                    if (blk) {
                        assert_memory_equal(Q0, Q1, m * 8);
                        assert_memory_equal(c0, c1, out * 8);
                    } else {
                        assert_memory_equal(W0, W1, m * 4);
                        assert_memory_equal(b0, b1, out * 4);
                    }
                }
            }
            free(A); free(D); free(bp); free(W0); free(W1); free(b0); free(b1);
            free(Q0); free(Q1); free(c0); free(c1);
        }
    }
    omp_set_num_threads(saved);
    dpt_kern_select("avx512");
}

/* The products' clock: each product adds its time to its own counter while
 * timing is on, and nothing while it is off. */
static void test_product_timing(void **state)
{
    (void)state;
    const size_t n = 64, in = 300, out = 200;
    float *X = malloc(n * in * 4), *W = malloc(out * in * 4), *b = calloc(out, 4), *D = malloc(n * out * 4);
    float *Z = malloc(n * out * 4), *dW = malloc(out * in * 4), *dA = malloc(n * in * 4);
    tu_fill(X, n * in, 141, -1, 1);
    tu_fill(W, out * in, 142, -1, 1);
    tu_fill(D, n * out, 143, -1, 1);
    double t0[DPT_KT_COUNT], t1[DPT_KT_COUNT], t2[DPT_KT_COUNT];
    dpt_kern_times(t0);
    dpt_kern_forward_act(Z, NULL, X, W, NULL, b, DPT_ACT_SIGMOID, n, in, out);   /* off: not counted */
    dpt_kern_times(t1);
    assert_memory_equal(t0, t1, sizeof t0);
    dpt_kern_timing(1);
    dpt_kern_forward_act(Z, NULL, X, W, NULL, b, DPT_ACT_SIGMOID, n, in, out);
    dpt_kern_times(t2);
    assert_true(t2[DPT_KT_FORWARD] > t1[DPT_KT_FORWARD]);
    assert_true(t2[DPT_KT_WGRAD] == t1[DPT_KT_WGRAD] && t2[DPT_KT_IGRAD] == t1[DPT_KT_IGRAD]);
    dpt_kern_weight_grad(dW, 0, D, X, n, in, out);
    dpt_kern_times(t1);
    assert_true(t1[DPT_KT_WGRAD] > t2[DPT_KT_WGRAD] && t1[DPT_KT_FORWARD] == t2[DPT_KT_FORWARD]);
    dpt_kern_input_grad(dA, D, W, NULL, n, in, out);
    dpt_kern_times(t2);
    assert_true(t2[DPT_KT_IGRAD] > t1[DPT_KT_IGRAD] && t2[DPT_KT_WGRAD] == t1[DPT_KT_WGRAD]);
    dpt_kern_timing(0);
    free(X); free(W); free(b); free(D); free(Z); free(dW); free(dA);
}

/* The in-place micro-kernel is used only where it gives the packed
 * kernel's bits on the machine itself (the check dpt_ukernel_choose runs):
 * the AVX2 one passes it and is chosen (this project's CI runs AVX2), a
 * kernel off by one ulp in one element fails it, and DPT_W_IN_PLACE=0
 * turns the in-place path off. */
static DptUKernelS real_s;

static void off_by_one_ulp(size_t kc, const float *restrict a, size_t a_rs, size_t a_ks, const float *restrict b,
                           size_t ldb, float *restrict c, size_t ldc, int accumulate)
{
    real_s(kc, a, a_rs, a_ks, b, ldb, c, ldc, accumulate);
    c[ldc + 3] = nextafterf(c[ldc + 3], INFINITY);
}

/* A half-tile kernel that writes past its 16 columns (into what the caller
 * may hold there). */
static void writes_right_half(size_t kc, const float *restrict a, size_t a_rs, size_t a_ks, const float *restrict b,
                              size_t ldb, float *restrict c, size_t ldc, int accumulate)
{
    real_s(kc, a, a_rs, a_ks, b, ldb, c, ldc, accumulate);
    c[2 * ldc + DPT_NR_HALF] += 1.0f;
}

static void test_inplace_selfcheck(void **state)
{
    (void)state;
    const char *env = getenv("DPT_W_IN_PLACE");
    char saved[8] = "";
    if (env)
        snprintf(saved, sizeof saved, "%s", env);
    unsetenv("DPT_W_IN_PLACE");
    if (!dpt_kern_select("avx2"))
        skip();
    assert_true(dpt_kern_w_in_place());
    real_s = dpt_ukernel_s;
    assert_true(dpt_ukernel_s_agrees(real_s));
    assert_false(dpt_ukernel_s_agrees(off_by_one_ulp));
    setenv("DPT_W_IN_PLACE", "0", 1);
    dpt_kern_select("avx2");
    assert_false(dpt_kern_w_in_place());
    unsetenv("DPT_W_IN_PLACE");
    dpt_kern_select("avx2");
    assert_int_equal(dpt_kern_w_in_place(), 2);   /* AVX2: every batch */
    assert_null(dpt_ukernel_s_half);   /* AVX2's tile is 16 wide already */
    if (dpt_kern_select("avx512")) {
        assert_int_equal(dpt_kern_w_in_place(), 1);   /* AVX-512: small products only */
        /* the half tile (products of up to 16 columns) is in use, and its
         * check refuses a kernel one ulp off or one that writes past it */
        assert_non_null(dpt_ukernel_s_half);
        real_s = dpt_ukernel_s_half;
        assert_true(dpt_ukernel_s_half_agrees(real_s));
        assert_false(dpt_ukernel_s_half_agrees(off_by_one_ulp));
        assert_false(dpt_ukernel_s_half_agrees(writes_right_half));
        assert_false(dpt_ukernel_s_agrees(real_s));   /* not a whole tile */
        setenv("DPT_W_IN_PLACE", "1", 1);
        dpt_kern_select("avx512");
        assert_int_equal(dpt_kern_w_in_place(), 2);
        setenv("DPT_W_IN_PLACE", "0", 1);
        dpt_kern_select("avx512");
        assert_int_equal(dpt_kern_w_in_place(), 0);
        assert_null(dpt_ukernel_s_half);
        unsetenv("DPT_W_IN_PLACE");
    }
    if (env)
        setenv("DPT_W_IN_PLACE", saved, 1);
    dpt_kern_select("avx512");
}

static void test_activations(void **state)
{
    (void)state;
    float z[6] = {-100.0f, -2.0f, 0.0f, 0.5f, 3.0f, 100.0f};
    float a[6];
    memcpy(a, z, sizeof z);
    dpt_kern_activate(a, DPT_ACT_SIGMOID, 1, 6);
    for (int i = 0; i < 6; i++)
        assert_float_equal(a[i], 1.0 / (1.0 + exp(-(double)z[i])), 1e-7);
    memcpy(a, z, sizeof z);
    dpt_kern_activate(a, DPT_ACT_TANH, 2, 3);
    for (int i = 0; i < 6; i++)
        assert_float_equal(a[i], tanh((double)z[i]), 1e-7);
    memcpy(a, z, sizeof z);
    dpt_kern_activate(a, DPT_ACT_RELU, 3, 2);
    for (int i = 0; i < 6; i++)
        assert_true(a[i] == (z[i] > 0 ? z[i] : 0.0f));
    /* softmax over rows of 3, with a huge logit: no overflow, rows sum to 1 */
    memcpy(a, z, sizeof z);
    dpt_kern_activate(a, DPT_ACT_SOFTMAX, 2, 3);
    double e0 = exp(-100.0 - 0.0), e1 = exp(-2.0), e2 = exp(0.0), s = e0 + e1 + e2;
    assert_float_equal(a[1], e1 / s, 1e-7);
    assert_float_equal(a[2], e2 / s, 1e-7);
    assert_float_equal(a[5], 1.0, 1e-7);
    assert_float_equal(a[3] + a[4] + a[5], 1.0, 1e-6);
    /* derivatives through the activation value */
    float d[3] = {1, 1, 1}, av[3] = {0.25f, 0.5f, 0.9f};
    dpt_kern_act_backward(d, av, DPT_ACT_SIGMOID, 1, 3);
    assert_float_equal(d[0], 0.25 * 0.75, 1e-7);
    assert_float_equal(d[2], 0.9 * 0.1, 1e-6);
    float d2[3] = {2, 2, 2}, at[3] = {-0.5f, 0.0f, 0.8f};
    dpt_kern_act_backward(d2, at, DPT_ACT_TANH, 1, 3);
    assert_float_equal(d2[0], 2 * 0.75, 1e-6);
    assert_float_equal(d2[2], 2 * (1 - 0.64), 1e-6);
    float d3[3] = {2, 2, 2}, ar[3] = {0.0f, 1.0f, 3.0f};
    dpt_kern_act_backward(d3, ar, DPT_ACT_RELU, 1, 3);
    assert_true(d3[0] == 0 && d3[1] == 2 && d3[2] == 2);
}

/* The fused pass gives the same bits as the product, then the activation. */
static void test_forward_act_fused(void **state)
{
    (void)state;
    size_t n = 13, in = 70, out = 21;
    float *X = malloc(n * in * 4), *W = malloc(out * in * 4), *b = malloc(out * 4);
    float *A1 = malloc(n * out * 4), *A2 = malloc(n * out * 4), *Z = malloc(n * out * 4);
    tu_fill(X, n * in, 31, -2, 2);
    tu_fill(W, out * in, 32, -1, 1);
    tu_fill(b, out, 33, -1, 1);
    const DptAct acts[] = {DPT_ACT_SIGMOID, DPT_ACT_RELU, DPT_ACT_TANH, DPT_ACT_LINEAR, DPT_ACT_SOFTMAX};
    for (int a = 0; a < 5; a++) {
        dpt_kern_forward(A1, X, W, b, n, in, out);
        dpt_kern_activate(A1, acts[a], n, out);
        dpt_kern_forward_act(A2, Z, X, W, NULL, b, acts[a], n, in, out);
        assert_memory_equal(A1, A2, n * out * 4);
    }
    dpt_kern_forward(A1, X, W, b, n, in, out);
    assert_memory_equal(A1, Z, n * out * 4);
    free(X); free(W); free(b); free(A1); free(A2); free(Z);
}

/* The node team's column products, every micro-kernel: units [c0, c1) of
 * the forward product with its activation, and of the hidden errors (D W
 * times f'(A)), cut anywhere, into rows wider than the product (lda), give
 * the whole products' elements bit for bit, at row counts that take the
 * whole products' in-place and packed paths; nothing outside the columns
 * is written. */
static void test_column_products_bitwise(void **state)
{
    (void)state;
    const size_t ns[] = {1, 5, 16, 17, 33, 100, 300}, in = 70, out = 45, pad = 3, lda = in + pad;
    const DptAct acts[] = {DPT_ACT_SIGMOID, DPT_ACT_RELU, DPT_ACT_TANH, DPT_ACT_LINEAR};
    float *X = malloc(300 * in * 4), *W = malloc(out * in * 4), *b = malloc(out * 4), *D = malloc(300 * out * 4);
    float *Aw = malloc(300 * out * 4), *Ac = malloc(300 * (out + pad) * 4);
    float *Gw = malloc(300 * in * 4), *Gc = malloc(300 * lda * 4), *H = malloc(300 * lda * 4);
    tu_fill(X, 300 * in, 41, -2, 2);
    tu_fill(W, out * in, 42, -1, 1);
    tu_fill(b, out, 43, -1, 1);
    tu_fill(D, 300 * out, 44, -1, 1);
    for (int k = 0; k < 3; k++) {
        if (!dpt_kern_select(kernels[k]))
            continue;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (int ai = 0; ai < 4; ai++) {
                const size_t n = ns[ni];
                /* forward: units cut at 0, 7, 16, 31, 45 into rows of out + pad */
                const size_t cuts[] = {0, 7, 16, 31, out};
                dpt_kern_forward_act(Aw, NULL, X, W, NULL, b, acts[ai], n, in, out);
                for (size_t i = 0; i < n * (out + pad); i++)
                    Ac[i] = -7.0f;
                for (int c = 0; c + 1 < 5; c++)
                    dpt_kern_forward_act_cols(Ac, out + pad, X, W, b, acts[ai], n, in, cuts[c], cuts[c + 1]);
                for (size_t r = 0; r < n; r++) {
                    assert_memory_equal(Ac + r * (out + pad), Aw + r * out, out * 4);
                    for (size_t j = out; j < out + pad; j++)
                        assert_true(Ac[r * (out + pad) + j] == -7.0f);
                }
                /* errors: H (activations in [0, 1), some zero for relu) in rows of lda */
                tu_fill(H, n * lda, 45 + (uint64_t)ai, -0.5f, 1.0f);
                dpt_kern_input_grad(Gw, D, W, NULL, n, in, out);
                for (size_t r = 0; r < n; r++)
                    dpt_kern_act_backward(Gw + r * in, H + r * lda, acts[ai], 1, in);
                for (size_t i = 0; i < n * lda; i++)
                    Gc[i] = -7.0f;
                const size_t icuts[] = {0, 16, 19, 64, in};
                for (int c = 0; c + 1 < 5; c++)
                    dpt_kern_input_grad_act_cols(Gc, lda, D, out, W, H, acts[ai], n, in, out, icuts[c], icuts[c + 1]);
                for (size_t r = 0; r < n; r++) {
                    assert_memory_equal(Gc + r * lda, Gw + r * in, in * 4);
                    for (size_t j = in; j < lda; j++)
                        assert_true(Gc[r * lda + j] == -7.0f);
                }
            }
    }
    dpt_kern_select("avx512");
    free(X); free(W); free(b); free(D); free(Aw); free(Ac); free(Gw); free(Gc); free(H);
}

int main(void)
{
    assert_int_equal(dpt_kern_init(), DPT_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_products_against_ref),
        cmocka_unit_test(test_thread_and_row_invariance),
        cmocka_unit_test_setup_teardown(test_block_rows_bitwise, block_rows_setup, block_rows_teardown),
        cmocka_unit_test_setup_teardown(test_loop_bitwise, block_rows_setup, block_rows_teardown),
        cmocka_unit_test(test_fixed_point_weight_grad),
        cmocka_unit_test(test_fixed_point_rounding),
        cmocka_unit_test(test_fixed_point_blocks_definition),
        cmocka_unit_test(test_fixed_to_float_bitwise),
        cmocka_unit_test(test_fixed_float_bitwise),
        cmocka_unit_test(test_fma_chain_bitwise),
        cmocka_unit_test(test_small_batch_bitwise),
        cmocka_unit_test(test_wpack_bitwise),
        cmocka_unit_test(test_rowpack_sliced),
        cmocka_unit_test(test_team_sizes_bitwise),
        cmocka_unit_test(test_solo_threads_bitwise),
        cmocka_unit_test(test_product_timing),
        cmocka_unit_test(test_bias_grad_chain),
        cmocka_unit_test(test_inplace_selfcheck),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_forward_act_fused),
        cmocka_unit_test(test_column_products_bitwise),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dpt_kern_free();
    return rc;
}
