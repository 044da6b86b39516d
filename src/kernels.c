/*
 * Packed, cache-blocked GEMM in the manner of BLIS/GotoBLAS: B is packed into
 * KC x NR column panels, A into MR x KC row panels, and an MR x NR register
 * tile is computed by a micro-kernel chosen at run time (AVX-512, AVX2+FMA or
 * portable C). Each C element is reduced over k ascending within a KC block,
 * and the KC blocks are added to C in ascending order, whatever the thread
 * count or tile position: the determinism contract of kernels.h.
 */
#include "dptrain/kernels.h"

#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

#ifdef DPT_USE_CBLAS
#include <cblas.h>
#endif

#include "ukernels.h"

/* Blocking. KC, the slab of k whose chain each C element sums before the
 * slabs are added, is part of the arithmetic (the bits depend on it), so it
 * is the same on every machine; NC fixes the layout of packed copies of W
 * that the ranks of a node share. MC, the rows of A packed per block, does
 * not change a bit: it is chosen at start so that the A block (MC x KC
 * floats) takes an eighth of the core's L2 (glibc's sysconf; 128 rows where
 * unknown), between 64 and MC_MAX rows, or taken from DPT_MC (MC_MIN to
 * MC_MAX). The L2 also holds the B panels streaming through: on the 2-core
 * Intel Xeon (2 MiB L2), the 1024^3 product on one thread
 * (tools/bench/gemm_vs_blas, three rounds) ran 197-198 GFLOP/s with MC 64,
 * 191-193 with 128 or 256 (an eighth), 183-184 with 512, 175-178 with 1024
 * (half the L2), OpenBLAS 198-201; in training ([784,1024,1024,10], 1-2
 * threads, batch 128-1024) 64, 128, 256 and 1024 were within 1.5 % of each
 * other. On 2 threads the 1024^3 product ran 305 / 175 GFLOP/s at MC 64,
 * 306-332 at 128, 317-337 at 256, 320-328 at 512 and 1024: each block of
 * rows costs the team two barriers. Tiles are the kernel's (ukernels.h). */
enum { KC = 256, MC_MIN = 16, MC_MAX = 1024, MC_DEFAULT = 128, NC = 2048 };   /* MC_MIN: input_grad_small's rows */
_Static_assert(MC_MIN == 16 && MC_MAX == 1024, "DPT_MC_EXPECTED (kernels.h) names these bounds");
static size_t mc_rows = MC_DEFAULT;
static DptBlockRowsFrom mc_from = DPT_MC_DEFAULT;
/* Which micro-panel a thread keeps in L1 across the tiles it computes
 * (gemm_run; no bit depends on it): DPT_LOOP_A, an A panel (MR x KC floats)
 * across the thread's own B panels, where a B panel (KC x NR floats) would
 * take more than half of the L1d (AVX-512's 32 KiB of a 48 KiB L1d);
 * otherwise DPT_LOOP_B, a B panel across the A panels. loop_forced: the
 * loop DPT_LOOP or the setter asked for (where loop_from says so). */
enum { L1D_DEFAULT = 32768 };
static size_t l1d_bytes = L1D_DEFAULT;
static int l1d_known;
static DptLoop loop_forced;
static int wgrad_units_env = -1;   /* DPT_WGRAD_UNITS: unset -1 (by_rows's rule), 0 off, else on */
static enum { LOOP_RULE, LOOP_ENV, LOOP_ENV_BAD, LOOP_SET } loop_from;
/* A product of fewer multiply-adds (M N K) than this runs on the calling
 * thread alone: waking the team would cost more than it saves (2-core Intel
 * Xeon, 2 threads, [784,30,10] at batch 10: 180-184k samples/s with a
 * threshold of 2^15, 234-241k with 2^18, as on one thread; [784,100,10] at
 * batch 10, whose first layer is 2^19.6, 102-107k with 2^20 against
 * 108-113k). */
enum { PAR_MIN_WORK = 262144 };

/* The packing buffers, static (zero-cost until touched): no kernel
 * allocates, and no init call is needed before the first product. */
enum { PACK_A_MAX = (MC_MAX + DPT_MR) * KC, PACK_B_FLOATS = KC * NC };
static float pack_a_team[PACK_A_MAX] __attribute__((aligned(64)));   /* [MC/MR panels][KC][MR] */
static float pack_b_team[PACK_B_FLOATS] __attribute__((aligned(64)));   /* [NC/NR panels][KC][NR] */

/* A thread that computes products alone inside a parallel region of its
 * caller (dpt_kern_solo_begin) packs into buffers of its own, and runs
 * them without a team of its own; elsewhere the products share the static
 * buffers and run on the team. Each product reads these on the calling
 * thread, before its parallel region. */
static _Thread_local float *solo_buf;

/* The A buffer's floats at the MC in force: whole MR-tall panels. */
static size_t pack_a_floats(void) { return (mc_rows + DPT_MR) * KC; }

size_t dpt_kern_solo_floats(void)
{
    dpt_kern_init();   /* settled before any thread runs a product alone */
    return pack_a_floats() + PACK_B_FLOATS;
}

void dpt_kern_solo_begin(float *buf) { solo_buf = buf; }

void dpt_kern_solo_end(void) { solo_buf = NULL; }

static float *buf_a(void) { return solo_buf ? solo_buf : pack_a_team; }

static float *buf_b(void) { return solo_buf ? solo_buf + pack_a_floats() : pack_b_team; }

static int kern_timing;
static double kern_time[DPT_KT_COUNT];

void dpt_kern_timing(int on) { kern_timing = on; }

void dpt_kern_times(double t[DPT_KT_COUNT]) { memcpy(t, kern_time, sizeof kern_time); }

/* stmt, its wall time added to kern_time[which] when timing is on */
#define TIMED(which, stmt)                                   \
    do {                                                     \
        const double t0_ = kern_timing ? omp_get_wtime() : 0; \
        stmt;                                                \
        if (kern_timing && (!solo_buf || omp_get_thread_num() == 0)) \
            kern_time[which] += omp_get_wtime() - t0_;       \
    } while (0)

int dpt_kern_select(const char *name)
{
    dpt_ukernel_choose(name);
    return strcmp(dpt_ukernel_name, name) == 0;
}

/* MC (see KC above): from the L2's size, then DPT_MC if it is a whole
 * number in [MC_MIN, MC_MAX] (one that is not stays the L2's, marked for
 * the run's header to report). */
static void choose_block_rows(void)
{
#ifdef _SC_LEVEL2_CACHE_SIZE
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE), l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
#else
    const long l2 = 0, l1 = 0;
#endif
    if (l1 > 0) {
        l1d_bytes = (size_t)l1;
        l1d_known = 1;
    }
    wgrad_units_env = dpt_env_switch("DPT_WGRAD_UNITS");
    const char *loop = getenv("DPT_LOOP");
    if (loop && *loop) {
        const int ok = !strcmp(loop, "a") || !strcmp(loop, "b");
        loop_forced = loop[0] == 'a' ? DPT_LOOP_A : DPT_LOOP_B;
        loop_from = ok ? LOOP_ENV : LOOP_ENV_BAD;
    }
    if (l2 > 0) {
        size_t rows = (size_t)l2 / 8 / (KC * sizeof(float));
        rows = rows < 64 ? 64 : rows > MC_MAX ? MC_MAX : rows;
        mc_rows = rows / 64 * 64;
        mc_from = DPT_MC_L2;
    }
    const char *env = getenv("DPT_MC");
    if (!env || !*env)
        return;
    char *end;
    const long v = strtol(env, &end, 10);
    if (*end == '\0' && v >= MC_MIN && v <= MC_MAX) {
        mc_rows = (size_t)v;
        mc_from = DPT_MC_ENV;
    } else {
        mc_from = DPT_MC_ENV_BAD;
    }
}

/* Chooses the micro-kernel (DPT_KERNEL, else the best this CPU runs) unless one
 * is chosen; every product calls it, so a library caller need not. */
DptStatus dpt_kern_init(void)
{
    if (!dpt_ukernel) {
        choose_block_rows();   /* before the kernel, whose choice says init is done */
        dpt_ukernel_choose(getenv("DPT_KERNEL"));
    }
    return DPT_OK;
}

size_t dpt_kern_block_rows(DptBlockRowsFrom *from)
{
    dpt_kern_init();
    if (from)
        *from = mc_from;
    return mc_rows;
}

void dpt_kern_set_block_rows(size_t rows)
{
    dpt_kern_init();
    mc_rows = rows < MC_MIN ? MC_MIN : rows > MC_MAX ? MC_MAX : rows;
    mc_from = DPT_MC_SET;
}

/* The loop for a kernel whose B panels are nr wide. */
static DptLoop loop_for(size_t nr)
{
    if (loop_from == LOOP_ENV || loop_from == LOOP_SET)
        return loop_forced;
    return KC * nr * sizeof(float) * 2 > l1d_bytes ? DPT_LOOP_A : DPT_LOOP_B;
}

DptLoop dpt_kern_loop(const char **why, int *env_bad)
{
    dpt_kern_init();
    const DptLoop loop = loop_for((size_t)dpt_unr);
    if (why) {
        static char text[128];
        if (loop_from == LOOP_ENV || loop_from == LOOP_SET)
            snprintf(text, sizeof text, "%s", loop_from == LOOP_ENV ? "DPT_LOOP" : "set");
        else
            snprintf(text, sizeof text, "B panels of %zu KiB, L1d %zu KiB%s%s",
                     KC * (size_t)dpt_unr * sizeof(float) / 1024, l1d_bytes / 1024, l1d_known ? "" : " assumed",
                     loop_from == LOOP_ENV_BAD ? "; DPT_LOOP not a or b: ignored" : "");
        *why = text;
    }
    if (env_bad)
        *env_bad = loop_from == LOOP_ENV_BAD;
    return loop;
}

void dpt_kern_set_loop(int loop)
{
    dpt_kern_init();
    const int ok = loop == DPT_LOOP_A || loop == DPT_LOOP_B;
    loop_forced = ok ? (DptLoop)loop : DPT_LOOP_B;
    loop_from = ok ? LOOP_SET : LOOP_RULE;
}

void dpt_kern_free(void) {}

int dpt_kern_w_in_place(void)
{
    dpt_kern_init();
    return dpt_ukernel_s == NULL ? 0 : dpt_ukernel_s_any ? 2 : 1;
}

static const char *const kern_levels[] = {"generic", "avx2", "avx512"};

int dpt_kern_level(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, kern_levels[i]) == 0)
            return i;
    return -1;
}

const char *dpt_kern_level_name(int level)
{
    return level >= 0 && level < 3 ? kern_levels[level] : "generic";
}

const char *dpt_kern_name(void)
{
#ifdef DPT_USE_CBLAS
    return "cblas";
#else
    dpt_kern_init();
    return dpt_ukernel_name;
#endif
}

/* ---------------------------------------------------------------- packing
 * Loops run along whichever stride is 1, so that the source is read
 * contiguously (a transposed operand is common here: W^T in the forward
 * product, delta^T in the weight gradient). */

/* d[(k - k0) * nr + j] = w[j * in + k] for the rows j < rows (4 or 8)
 * and columns [k0, k1): blocks of 4 x 4 transposed in SSE registers
 * (x86-64's baseline). */
static void transpose_rows(float *restrict d, size_t nr, const float *restrict w, size_t in, size_t k0, size_t k1,
                           size_t rows)
{
    size_t k = k0;
#ifdef __SSE__
    for (; k + 4 <= k1; k += 4)
        for (size_t h = 0; h < rows; h += 4) {
            __m128 a = _mm_loadu_ps(w + h * in + k), b = _mm_loadu_ps(w + (h + 1) * in + k);
            __m128 c = _mm_loadu_ps(w + (h + 2) * in + k), e = _mm_loadu_ps(w + (h + 3) * in + k);
            _MM_TRANSPOSE4_PS(a, b, c, e);
            float *o = d + (k - k0) * nr + h;
            _mm_storeu_ps(o, a);
            _mm_storeu_ps(o + nr, b);
            _mm_storeu_ps(o + 2 * nr, c);
            _mm_storeu_ps(o + 3 * nr, e);
        }
#endif
    for (; k < k1; k++)
        for (size_t j = 0; j < rows; j++) d[(k - k0) * nr + j] = w[j * in + k];
}

/* The n rows of w (in apart) side by side into d (nr floats a k), columns
 * [k0, k1): 8 and then 4 at a time through transpose_rows, the last ones
 * one by one. */
static void transpose_n(float *restrict d, size_t nr, const float *restrict w, size_t in, size_t k0, size_t k1,
                        size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        transpose_rows(d + j, nr, w + j * in, in, k0, k1, 8);
    for (; j + 4 <= n; j += 4)
        transpose_rows(d + j, nr, w + j * in, in, k0, k1, 4);
    for (; j < n; j++) {
        const float *src = w + j * in;
        for (size_t k = k0; k < k1; k++)
            d[(k - k0) * nr + j] = src[k];
    }
}

/* dst[k][0..NR) = B[k0+k, j0..j0+nj), zero-padded to NR, for k < kc. */
static void pack_b_panel(float *restrict dst, const float *restrict B, size_t rsb, size_t csb, size_t k0, size_t kc,
                         size_t j0, size_t nj, const size_t nr)
{
    if (csb == 1 && nj == nr && (nr == 16 || nr == 32)) {
        /* whole rows of a panel: copies of a constant size, which the
         * compiler turns into vector moves (not a memmove call per row) */
        const float *src = B + k0 * rsb + j0;
        if (nr == 16)
            for (size_t k = 0; k < kc; k++) memcpy(dst + k * 16, src + k * rsb, 16 * sizeof *dst);
        else
            for (size_t k = 0; k < kc; k++) memcpy(dst + k * 32, src + k * rsb, 32 * sizeof *dst);
    } else if (csb == 1 || rsb != 1) {
        for (size_t k = 0; k < kc; k++) {
            const float *src = B + (k0 + k) * rsb + j0 * csb;
            size_t j = 0;
            if (csb == 1)
                for (; j < nj; j++) dst[k * nr + j] = src[j];
            else
                for (; j < nj; j++) dst[k * nr + j] = src[j * csb];
            for (; j < nr; j++) dst[k * nr + j] = 0.0f;
        }
    } else {
        /* A transpose, in blocks of 16 k so that the 16 x NR block written
         * stays in L1 while the nj source rows are read 64 bytes at a time;
         * an edge panel's block zeroed first, in one run (its padding
         * column by column cost more than the copy: the forward product of
         * a few samples packs X^T 16 wide every step). */
        for (size_t kb = 0; kb < kc; kb += 16) {
            size_t ke = kb + 16 < kc ? kb + 16 : kc;
            if (nj < nr)
                memset(dst + kb * nr, 0, (ke - kb) * nr * sizeof *dst);
            transpose_n(dst + kb * nr, nr, B + k0 + j0 * csb, csb, kb, ke, nj);
        }
    }
}

/* dst[k][0..MR) = A[i0..i0+ni, k0+k], zero-padded to MR, for k < kc. */
static void pack_a_panel(float *restrict dst, const float *restrict A, size_t rsa, size_t csa, size_t k0, size_t kc,
                         size_t i0, size_t ni, const size_t mr)
{
    if (rsa == 1 && csa != 1) {
        for (size_t k = 0; k < kc; k++) {
            const float *src = A + (k0 + k) * csa + i0;
            size_t r = 0;
            for (; r < ni; r++) dst[k * mr + r] = src[r];
            for (; r < mr; r++) dst[k * mr + r] = 0.0f;
        }
    } else {
        /* rows side by side (an edge panel zeroed first, in one run) */
        if (ni < mr)
            memset(dst, 0, kc * mr * sizeof *dst);
        if (csa == 1) {
            transpose_n(dst, mr, A + i0 * rsa + k0, rsa, 0, kc, ni);
            return;
        }
        for (size_t r = 0; r < ni; r++) {
            const float *src = A + (i0 + r) * rsa + k0 * csa;
            for (size_t k = 0; k < kc; k++)
                dst[k * mr + r] = src[k * csa];
        }
    }
}

/* ---------------------------------------------------------------- GEMM driver
 * One blocking scheme for two kinds of output:
 *   float C:  C (+)= A * B, each KC slab's partial sums added in slab order;
 *   fixed Cq: Cq (+)= sum over k-blocks of llrint(scale * (A * B over the block)),
 *             the KC slab being a whole number of blocks (deterministic mode). */

typedef struct {
    float *C;          /* float output, or NULL */
    int64_t *Cq;       /* fixed-point output, or NULL */
    float *Cf;         /* or: the fixed-point sums of one slab, back to float */
    double inv;        /* Cf only: 1 / scale */
    size_t ldc;
    int accumulate;
    double scale;      /* fixed point only */
    size_t block;      /* fixed point only: rows of a block (<= KC) */
    float lim;         /* fixed point only: dpt_fixed_limit(scale) */
    uint64_t qsub;     /* fixed point only: the blocks of all K times dpt_ufixed_bias */
    int units;         /* a weight gradient: a team may split C by rows (gemm_rows) */
} GemmOut;

/* An edge tile's ni x nj corner into C (row stride ldc): stored on the first
 * slab, added to what the earlier slabs left there after it. */
static void tile_to_c(float *restrict c, size_t ldc, const float *restrict tile, size_t ni, size_t nj, int first)
{
    for (size_t r = 0; r < ni; r++) {
        float *crow = c + r * ldc;
        const float *trow = tile + r * DPT_NR;
        if (first)
            for (size_t j = 0; j < nj; j++) crow[j] = trow[j];
        else
            for (size_t j = 0; j < nj; j++) crow[j] += trow[j];
    }
}

/* One MR x NR tile of C at (i0, j0), ni x nj of it inside C, from packed
 * panels of kc. */
static void gemm_tile(const GemmOut *o, const float *pa, const float *pb, size_t kc, size_t pc, size_t i0,
                      size_t j0, size_t ni, size_t nj, float *tile, int64_t *qtile, const size_t mr, const size_t nr)
{
    const int first_slab = pc == 0 && !o->accumulate;
    if (o->Cq || o->Cf) {
        /* A whole tile is rounded straight into C's rows; an edge tile into
         * qtile, then copied. Each block's rounded sum is added in block order;
         * the kernel's bias comes off once: for a whole tile, that of all
         * the call's blocks in its first; for an edge tile, that of the
         * slab's blocks in the slab's first. Cf (one slab): every tile into
         * qtile, whose sums are then final, turned into floats in C's rows. */
        const int whole = o->Cq && ni == mr && nj == nr;
        int64_t *q = whole ? o->Cq + i0 * o->ldc + j0 : qtile;
        const size_t ldq = whole ? o->ldc : DPT_NR;
        for (size_t kb = 0; kb < kc; kb += o->block) {
            size_t kn = kc - kb < o->block ? kc - kb : o->block;
            int add = whole ? !(first_slab && kb == 0) : kb > 0;
            uint64_t sub = kb > 0 ? 0
                           : whole ? (pc == 0 ? o->qsub : 0)
                                   : (uint64_t)((kc + o->block - 1) / o->block) * dpt_ufixed_bias;
            dpt_ufixed(kn, pa + kb * mr, pb + kb * nr, q, ldq, add, sub, o->scale, o->lim, tile);
        }
        if (o->Cf)
            for (size_t r = 0; r < ni; r++)
                dpt_fixed_to_float(o->Cf + (i0 + r) * o->ldc + j0, qtile + r * DPT_NR, nj, o->inv);
        else if (!whole)
            for (size_t r = 0; r < ni; r++) {
                int64_t *crow = o->Cq + (i0 + r) * o->ldc + j0;
                const int64_t *qrow = qtile + r * DPT_NR;
                for (size_t j = 0; j < nj; j++)
                    crow[j] = first_slab ? qrow[j] : crow[j] + qrow[j];
            }
        return;
    }
    if (ni == mr && nj == nr) {
        /* a whole tile: the micro-kernel updates C itself */
        dpt_ukernel(kc, pa, pb, o->C + i0 * o->ldc + j0, o->ldc, !first_slab);
        return;
    }
    dpt_ukernel(kc, pa, pb, tile, DPT_NR, 0);
    tile_to_c(o->C + i0 * o->ldc + j0, o->ldc, tile, ni, nj, first_slab);
}

/* The B panels [lo, hi) of the calling thread out of n: contiguous, as
 * even as they divide. */
static void panel_range(size_t n, size_t *lo, size_t *hi)
{
    const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
    *lo = n * t / nt;
    *hi = n * (t + 1) / nt;
}

/* Whether the threads of a product take whole B panels each (DPT_LOOP_A):
 * at least two each, and as many each or enough that one more is at most
 * an eighth more work; else the tiles are shared out one by one.
 * With AVX-512 a B panel is 32 KiB: held in a 48 KiB L1d across the A
 * panels (the loop before, DPT_LOOP_B) it lost lines to the A panels and C
 * rows streaming past; an A panel (8 KiB) stays. On the 2-core Intel Xeon
 * (docs/measurements/intel2-2026-11-28h, with the unrolled kernel, eight
 * interleaved rounds against the build before) training [784,1024,1024,10]
 * ran 1.06-1.20x at batch 1024 on one thread, 1.03-1.16x on two, 2 ranks x
 * 1 thread at batch 256 1.00-1.11x, one thread at batch 128 0.98-1.08x,
 * two threads at 256 0.95-1.12x; with the AVX2 kernel (16 KiB panels) this
 * loop measured 0.95-0.98x of the other, which it keeps. */
static int own_panels(DptLoop loop, size_t n_panels, size_t nt)
{
    return loop == DPT_LOOP_A && n_panels >= 2 * nt && (n_panels % nt == 0 || n_panels >= 8 * nt);
}

/* B panels a thread runs an A panel across, QC at a time: QC x KC x NR
 * floats (512 KiB with AVX-512) stay in L2 beside the A block. */
enum { QC = 16 };

/* The weight gradient on a team: each thread takes whole A panels (rows of
 * C, a contiguous range of the layer's units, those the update gives it:
 * dpt_optim_set_blocks) and runs
 * each, packed on its own stack, across every B panel of the slab, packed
 * once for the team (or kept packed: Bp). Split by B panels instead (the
 * other products' way), each thread wrote half of every row of C from an
 * A block packed by both, two barriers a block. On
 * 2 threads of a 2-core AMD EPYC Zen 4 VM, the cores sharing a cache
 * (docs/measurements/amd2-2026-11-29): [784,1024,1024,10]'s two weight
 * gradients alone (build/bench_threads) 0.092-0.121 ms against
 * 0.244-0.250 at 10 rows, 0.254-0.327 against 0.346-0.482 at 32,
 * 0.972-1.241 against 1.088-1.366 at 128, 8.31-10.55 against 9.32-11.30 at
 * 1024; training 1.30-1.54x at batch 10, 1.01-1.11x at 32, 1.01-1.05x at
 * 128 and 1024, 0.99-1.02x at 256, [784,100,10] at batch 10 1.13-1.21x
 * (ab-rows*.log; with the cores apart 1.12x at 128, [784,100,10] at 10
 * 1.44-1.49x).
 * Where a thread gets fewer than ROWS_MIN_PANELS panels the split's
 * imbalance (13 panels of [784,100,10]'s first layer: 7 and 6) cost more
 * than it saved from 32 rows up (0.95-1.0x), so there only products of a
 * few rows, bound by C's stores, take it. The forward and input-gradient
 * products measured slower so split (0.251 -> 0.302 ms, 0.387 -> 0.527 at
 * 32 rows) and keep theirs. Where B's slab (KC x N floats) fits 1 MiB and
 * every thread gets two A panels or more; DPT_WGRAD_UNITS=0/1 overrides
 * the rule (1: wherever it can). */
enum { ROWS_MAX_N = 1024, ROWS_MIN_PANELS = 8, ROWS_FEW_K = 16 };

static int by_rows(const GemmOut *o, size_t M, size_t N, size_t K, size_t mr)
{
    const size_t nt = (size_t)omp_get_num_threads(), panels = (M + mr - 1) / mr;
    if (!o->units || nt < 2 || N > ROWS_MAX_N || panels < 2 * nt || wgrad_units_env == 0)
        return 0;
    return wgrad_units_env == 1 || panels >= ROWS_MIN_PANELS * nt || K <= ROWS_FEW_K;
}

static void gemm_rows(const GemmOut *o, const float *A, size_t rsa, size_t csa, const float *B, size_t rsb,
                      size_t csb, size_t M, size_t N, size_t K, size_t kcmax, const float *Bp, float *pack_b,
                      float *tile, int64_t *qtile)
{
    const size_t mr = (size_t)dpt_umr, nr = (size_t)dpt_unr, n_panels_b = (N + nr - 1) / nr;
    float pa[DPT_MR * KC] __attribute__((aligned(64)));
    size_t q0, q1, p0, p1;
    panel_range(n_panels_b, &q0, &q1);
    panel_range((M + mr - 1) / mr, &p0, &p1);
    for (size_t pc = 0; pc < K; pc += kcmax) {
        const size_t kc = K - pc < kcmax ? K - pc : kcmax;
        const float *pb = Bp ? Bp + pc * n_panels_b * nr : pack_b;
        if (!Bp) {
            /* the slab before is read by every thread until each is done with it */
            if (pc > 0) {
#pragma omp barrier
            }
            for (size_t q = q0; q < q1; q++)
                pack_b_panel(pack_b + q * nr * kc, B, rsb, csb, pc, kc, q * nr, N - q * nr < nr ? N - q * nr : nr,
                             nr);
#pragma omp barrier
        }
        for (size_t p = p0; p < p1; p++) {
            const size_t i0 = p * mr, ni = M - i0 < mr ? M - i0 : mr;
            pack_a_panel(pa, A, rsa, csa, pc, kc, i0, ni, mr);
            for (size_t q = 0; q < n_panels_b; q++)
                gemm_tile(o, pa, pb + q * nr * kc, kc, pc, i0, q * nr, ni, N - q * nr < nr ? N - q * nr : nr, tile,
                          qtile, mr, nr);
        }
    }
}

/* gemm_run's blocked loops on the calling thread's share of the team (or
 * on it alone): B panels packed per slab and column block, A per block of
 * rows, tiles shared out (DPT_LOOP_A: each thread's own B panels). */
static void gemm_blocks(const GemmOut *o, const float *A, size_t rsa, size_t csa, const float *B, size_t rsb,
                        size_t csb, size_t M, size_t N, size_t K, size_t kcmax, const float *Bp, float *pack_a,
                        float *pack_b, float *tile, int64_t *qtile)
{
    const size_t mr = (size_t)dpt_umr, nr = (size_t)dpt_unr, mcmax = (mc_rows + mr - 1) / mr * mr, ncmax = NC / nr * nr;
    const DptLoop loop = loop_for(nr);
    for (size_t jc = 0; jc < N; jc += ncmax) {
        size_t nc = N - jc < ncmax ? N - jc : ncmax;
        size_t n_panels_b = (nc + nr - 1) / nr;
        for (size_t pc = 0; pc < K; pc += kcmax) {
            size_t kc = K - pc < kcmax ? K - pc : kcmax;
            /* Pack B[pc:pc+kc, jc:jc+nc] in NR-wide panels, zero-padded
             * (unless the caller keeps them packed). Race-free: each
             * thread writes its whole panels [q0, q1). With panels of its
             * own it also computes their tiles, so they stay in its
             * caches; otherwise the barrier of A's packing below has
             * every panel packed before any tile is computed. */
            const float *pb = Bp ? Bp + jc * K + pc * n_panels_b * nr : pack_b;
            const int own = own_panels(loop, n_panels_b, (size_t)omp_get_num_threads());
            size_t q0, q1;
            panel_range(n_panels_b, &q0, &q1);
            for (size_t q = q0; q < q1 && !Bp; q++) {
                size_t j0 = jc + q * nr;
                pack_b_panel(pack_b + q * nr * kc, B, rsb, csb, pc, kc, j0, N - j0 < nr ? N - j0 : nr, nr);
            }
            for (size_t ic = 0; ic < M; ic += mcmax) {
                size_t mc = M - ic < mcmax ? M - ic : mcmax;
                size_t n_panels_a = (mc + mr - 1) / mr;
                /* Pack A[ic:ic+mc, pc:pc+kc] in MR-tall panels, zero-padded. */
#pragma omp for schedule(static)
                for (size_t p = 0; p < n_panels_a; p++) {
                    size_t i0 = ic + p * mr;
                    pack_a_panel(pack_a + p * mr * kc, A, rsa, csa, pc, kc, i0, M - i0 < mr ? M - i0 : mr, mr);
                }
                /* Tiles of C: each thread owns whole tiles, so writes never overlap. */
                if (own) {
                    /* its B panels QC at a time, each A panel across them */
                    for (size_t qc = q0; qc < q1; qc += QC) {
                        const size_t qe = q1 - qc < QC ? q1 : qc + QC;
                        for (size_t p = 0; p < n_panels_a; p++)
                            for (size_t q = qc; q < qe; q++) {
                                size_t i0 = ic + p * mr, j0 = jc + q * nr;
                                gemm_tile(o, pack_a + p * mr * kc, pb + q * nr * kc, kc, pc, i0, j0,
                                          M - i0 < mr ? M - i0 : mr, N - j0 < nr ? N - j0 : nr, tile, qtile,
                                          mr, nr);
                            }
                    }
                    /* every thread reads all of the A block: it is packed again only after all are done */
#pragma omp barrier
                    continue;
                }
#pragma omp for collapse(2) schedule(static)
                for (size_t q = 0; q < n_panels_b; q++) {
                    for (size_t p = 0; p < n_panels_a; p++) {
                        size_t i0 = ic + p * mr, j0 = jc + q * nr;
                        gemm_tile(o, pack_a + p * mr * kc, pb + q * nr * kc, kc, pc, i0, j0,
                                  M - i0 < mr ? M - i0 : mr, N - j0 < nr ? N - j0 : nr, tile, qtile, mr, nr);
                    }
                }
            }
        }
    }
}

/* C = A B from packed panels. Bp: B already packed as gemm_run packs it
 * (dpt_kern_wpack's layout), or NULL to pack it here. */
static void gemm_run(const GemmOut *o, const float *A, size_t rsa, size_t csa, const float *B, size_t rsb,
                     size_t csb, size_t M, size_t N, size_t K, const float *Bp)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        if (!o->accumulate)
            for (size_t i = 0; i < M; i++) {
                if (o->Cq)
                    memset(o->Cq + i * o->ldc, 0, N * sizeof *o->Cq);
                else if (o->Cf)
                    memset(o->Cf + i * o->ldc, 0, N * sizeof *o->Cf);
                else
                    memset(o->C + i * o->ldc, 0, N * sizeof *o->C);
            }
        return;
    }
    dpt_kern_init();
    const size_t kcmax = o->Cq || o->Cf ? KC / o->block * o->block : KC;
    const int small = M * N * K < PAR_MIN_WORK;
    const int solo = solo_buf != NULL;
    float *const pack_a = buf_a(), *const pack_b = buf_b();
#pragma omp parallel if (!small && !solo)
    {
        float tile[DPT_MR * DPT_NR] __attribute__((aligned(64)));
        int64_t qtile[DPT_MR * DPT_NR] __attribute__((aligned(64)));
        if (by_rows(o, M, N, K, (size_t)dpt_umr))
            gemm_rows(o, A, rsa, csa, B, rsb, csb, M, N, K, kcmax, Bp, pack_b, tile, qtile);
        else
            gemm_blocks(o, A, rsa, csa, B, rsb, csb, M, N, K, kcmax, Bp, pack_a, pack_b, tile, qtile);
    }
}

void dpt_gemm(float *C, size_t ldc, int accumulate,
              const float *A, size_t rsa, size_t csa,
              const float *B, size_t rsb, size_t csb,
              size_t M, size_t N, size_t K)
{
    GemmOut o = {.C = C, .ldc = ldc, .accumulate = accumulate};
    gemm_run(&o, A, rsa, csa, B, rsb, csb, M, N, K, NULL);
}

/* The output of a fixed-point weight gradient over n rows into dWq (rows in apart). */
static GemmOut fixed_wgrad_out(int64_t *dWq, int accumulate, double scale, size_t n, size_t in, size_t block)
{
    dpt_kern_init();
    return (GemmOut){.Cq = dWq, .ldc = in, .accumulate = accumulate, .scale = scale, .block = block,
                     .lim = dpt_fixed_limit(scale), .qsub = (uint64_t)((n + block - 1) / block) * dpt_ufixed_bias,
                     .units = 1};
}

void dpt_kern_weight_grad_fixed(int64_t *restrict dWq, int accumulate, double scale, const float *restrict D,
                                const float *restrict A, size_t n, size_t in, size_t out, size_t block)
{
    GemmOut o = fixed_wgrad_out(dWq, accumulate, scale, n, in, block);
    TIMED(DPT_KT_WGRAD, gemm_run(&o, D, 1, out, A, in, 1, out, in, n, NULL));
}

size_t dpt_kern_fixed_float_rows(size_t block)
{
    return KC / block * block;
}

/* The output of a fixed-point weight gradient over n rows (one slab) into
 * dW as floats. */
static GemmOut fixed_float_out(float *dW, double scale, size_t n, size_t in, size_t block)
{
    assert(n <= dpt_kern_fixed_float_rows(block));   /* several slabs need int64 storage between them */
    GemmOut o = fixed_wgrad_out(NULL, 0, scale, n, in, block);
    o.Cf = dW;
    o.inv = 1.0 / scale;
    return o;
}

void dpt_kern_weight_grad_fixed_float(float *restrict dW, double scale, const float *restrict D,
                                      const float *restrict A, size_t n, size_t in, size_t out, size_t block)
{
    GemmOut o = fixed_float_out(dW, scale, n, in, block);
    TIMED(DPT_KT_WGRAD, gemm_run(&o, D, 1, out, A, in, 1, out, in, n, NULL));
}

void dpt_kern_fixed_to_float(float *restrict dst, const int64_t *restrict q, size_t n, double inv_scale)
{
    dpt_kern_init();
    enum { PIECE = 16384 };
    const size_t pieces = (n + PIECE - 1) / PIECE;
    /* Race-free: each piece of dst is written by one thread. */
#pragma omp parallel for schedule(static) if (pieces > 4)
    for (size_t p = 0; p < pieces; p++) {
        size_t a = p * PIECE, z = a + PIECE < n ? a + PIECE : n;
        dpt_fixed_to_float(dst + a, q + a, z - a, inv_scale);
    }
}

/* Columns [lo, hi) of each thread: whole cache lines of floats, the last
 * thread to the end (so a narrow layer may leave threads without columns). */
static void column_range(size_t out, size_t *lo, size_t *hi)
{
    const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num(), line = 16;
    const size_t h = (out * (t + 1) / nt + line - 1) / line * line;
    *lo = (out * t / nt + line - 1) / line * line;
    *hi = t + 1 == nt || h > out ? out : h;
}

void dpt_kern_bias_grad_fixed(int64_t *restrict dbq, int accumulate, double scale, const float *restrict D,
                              size_t n, size_t out, size_t block)
{
    dpt_kern_bias_grad_cols_fixed(dbq, accumulate, scale, D, out, n, out, block);
}

void dpt_kern_bias_grad_cols_fixed(int64_t *restrict dbq, int accumulate, double scale, const float *restrict D,
                                   size_t ldd, size_t n, size_t out, size_t block)
{
    /* Each thread owns a range of units (race-free: it writes only those),
     * taken in chunks of CH: for each block of rows, the chunk's float sums
     * run along D's rows (rows in order, the chain of a column sum), then
     * are rounded and added. */
    enum { CH = 256 };
#pragma omp parallel if (n * out > 65536)
    {
        size_t lo, hi;
        column_range(out, &lo, &hi);
        for (size_t c0 = lo; c0 < hi; c0 += CH) {
            const size_t m = hi - c0 < CH ? hi - c0 : CH;
            int64_t acc[CH];
            float s[CH];
            for (size_t j = 0; j < m; j++) acc[j] = 0;
            for (size_t r0 = 0; r0 < n; r0 += block) {
                const size_t r1 = r0 + block < n ? r0 + block : n;
                for (size_t j = 0; j < m; j++) s[j] = 0.0f;
                for (size_t r = r0; r < r1; r++) {
                    const float *d = D + r * ldd + c0;
                    for (size_t j = 0; j < m; j++) s[j] += d[j];
                }
                for (size_t j = 0; j < m; j++) acc[j] += dpt_to_fixed(s[j], scale);
            }
            for (size_t j = 0; j < m; j++)
                dbq[c0 + j] = accumulate ? dbq[c0 + j] + acc[j] : acc[j];
        }
    }
}

/* ---------------------------------------------------------------- W in place
 * Packing W every step (a transpose for the forward product, a copy for the
 * input gradient) costs a pass over W's bytes each way. Where the chosen
 * kernel can read operands in place (dpt_ukernel_s), the forward product is
 * computed as Z^T = W X^T with W's rows as the A panels, for any batch
 * (forward_w_in_place; with AVX-512 by default up to 32 rows; the node's
 * team's column ranges too, dpt_kern_forward_act_cols); with a few
 * rows (n <= SMALL_N), where the products are bound by reading W, the
 * input gradient too reads W's rows as B's (for larger batches a B panel
 * of W in place, rows in*4 bytes apart, conflicts in L1 when in is a
 * multiple of 1024, and the copy measured faster). Every
 * element is still the same fma chain over the same 256-slabs (fma(x, w, c)
 * = fma(w, x, c)), so the results are those of the packed path, bit for bit. */
#ifndef DPT_USE_CBLAS   /* a BLAS build computes every product through the BLAS */
enum { SMALL_N = 16 };

static int small_batch(size_t n)
{
    dpt_kern_init();
    return dpt_ukernel_s && n <= SMALL_N && n <= (size_t)dpt_unr && n > 0;
}

/* Z[n,out] = X[n,in] W[out,in]^T, W read in place: Z^T = W X^T, W's rows
 * the A panels, X^T packed whole (all of k) for a block of columns. Each
 * register tile runs through every 256-slab in turn, adding each slab's
 * chain to the tile (the arithmetic of the packed path's C += slab), and
 * is stored transposed into Z once: one MR-row panel of W is read from
 * memory once per block and serves every column panel from cache. */
enum { FWD_NB = 256 };   /* columns of X^T a block at most */

static size_t forward_block(size_t in)
{
    const size_t nr = (size_t)dpt_unr, nb = (size_t)KC * NC / (in ? in : 1) / nr * nr;
    return nb < FWD_NB ? nb : FWD_NB;
}

/* Whether the forward product reads W in place (forward_inplace): where
 * the kernel can, X^T fits the packing buffer whole for at least one
 * column panel, and either the product has few rows or W's row panels give
 * every thread two or more (the packed path splits tiles both ways, so it
 * keeps more threads busy on a narrow layer). Measured faster on every
 * shape tried with AVX2 (2-core AMD EPYC: batch 128, [784,1024] 60 -> 74
 * GFLOP/s, [784,100] 58 -> 72, [100,10] 20 -> 23). With AVX-512 (unless
 * DPT_W_IN_PLACE=1) only products of up to FWD_SMALL_N rows: 2-core Intel
 * Xeon, [784,1024,1024,10], 1 thread, in place against the packed path
 * 1.12-1.17x at 10 and 16 rows, 1.19-1.20x at 32, 1.10-1.11x at 64,
 * 1.03-1.05x at 128, 0.99-1.02x at 256, 0.91-0.95x at 1024; the 16-core
 * Xeon 0.89-1.02x at 64 rows a thread (16 of them busy), 0.99-1.04x at
 * 128, 0.62-0.90x at 1024. */
enum { FWD_SMALL_N = 32 };

static int forward_w_in_place(size_t n, size_t in, size_t out)
{
    dpt_kern_init();
    if (!dpt_ukernel_s || n == 0 || forward_block(in) < (size_t)dpt_unr)
        return 0;
    if (!dpt_ukernel_s_any)
        return n <= FWD_SMALL_N;
    return small_batch(n) || (out + (size_t)dpt_umr - 1) / (size_t)dpt_umr >= 2 * (size_t)omp_get_max_threads();
}

static void forward_inplace(float *restrict Z, size_t ldz, const float *restrict X, const float *restrict W,
                            size_t n, size_t in, size_t out)
{
    const size_t mr = (size_t)dpt_umr, nr_tile = (size_t)dpt_unr, nbmax = forward_block(in);
    if (in == 0) {
        for (size_t r = 0; r < n; r++)
            memset(Z + r * ldz, 0, out * sizeof *Z);
        return;
    }
    const int solo = solo_buf != NULL;
    float *const pack_b = buf_b();
#pragma omp parallel if (n * in * out >= PAR_MIN_WORK && !solo)
    {
        float tiles[FWD_NB / DPT_NR_AVX2 * DPT_MR * DPT_NR] __attribute__((aligned(64)));
        float pa[DPT_MR * KC] __attribute__((aligned(64)));
        for (size_t jb = 0; jb < n; jb += nbmax) {
            const size_t nb = n - jb < nbmax ? n - jb : nbmax;
            /* Up to 16 columns: the tile's left half (the same chains), not a
             * whole tile with 16 or more idle lanes, from X^T packed 16 wide
             * (2-core Intel Xeon, 1 thread, batch 10, the training step:
             * [784,100,10] 1.31-1.39x, [784,1024,1024,10] 1.09-1.15x). */
            const int half = nb <= DPT_NR_HALF && dpt_ukernel_s_half;
            const DptUKernelS ks = half ? dpt_ukernel_s_half : dpt_ukernel_s;
            const size_t nr = half ? DPT_NR_HALF : nr_tile;
            const size_t n_pb = (nb + nr - 1) / nr;
            /* X^T's columns jb.. in NR-wide panels of all k (race-free: each
             * panel is one thread's); the loop's barrier keeps them until
             * every thread is done with them. */
#pragma omp for schedule(static)
            for (size_t q = 0; q < n_pb; q++) {
                const size_t j0 = jb + q * nr;
                pack_b_panel(pack_b + q * nr * in, X, 1, in, 0, in, j0, n - j0 < nr ? n - j0 : nr, nr);
            }
            /* Race-free: a row panel of W is one thread's, and with it
             * Z's columns i0..i0+ni and its own tiles; the panels a thread
             * takes are those of its weight gradient and its update
             * (panel_range), so W's rows stay with one core. */
            size_t p0, p1;
            panel_range((out + mr - 1) / mr, &p0, &p1);
            for (size_t i0 = p0 * mr; i0 < p1 * mr && i0 < out; i0 += mr) {
                const size_t ni = out - i0 < mr ? out - i0 : mr;
                for (size_t pc = 0; pc < in; pc += KC) {
                    const size_t kc = in - pc < KC ? in - pc : KC;
                    if (ni < mr)   /* the last rows: a panel of their own, so nothing past W is read */
                        pack_a_panel(pa, W, in, 1, pc, kc, i0, ni, mr);
                    for (size_t q = 0; q < n_pb; q++) {
                        const float *b = pack_b + q * nr * in + pc * nr;
                        float *t = tiles + q * DPT_MR * DPT_NR;
                        if (ni == mr)
                            ks(kc, W + i0 * in + pc, in, 1, b, nr, t, DPT_NR, pc > 0);
                        else   /* the packed panel: the same kernel walks it (its check covers that walk) */
                            ks(kc, pa, 1, mr, b, nr, t, DPT_NR, pc > 0);
                    }
                }
                for (size_t q = 0; q < n_pb; q++) {
                    const size_t j0 = jb + q * nr, nj = n - j0 < nr ? n - j0 : nr;
                    const float *t = tiles + q * DPT_MR * DPT_NR;
                    for (size_t j = 0; j < nj; j++)
                        for (size_t r = 0; r < ni; r++)
                            Z[(j0 + j) * ldz + i0 + r] = t[r * DPT_NR + j];
                }
            }
            /* every thread is done with this block's X^T before the next is packed */
#pragma omp barrier
        }
    }
}

/* dA[n,in] = D[n,out] W[out,in], W's rows read in place. */
static void input_grad_small(float *restrict dA, const float *restrict D, const float *restrict W, size_t n,
                             size_t in, size_t out)
{
    const size_t mr = (size_t)dpt_umr, nr = (size_t)dpt_unr, n_pa = (n + mr - 1) / mr, n_pb = (in + nr - 1) / nr;
    if (out == 0) {
        memset(dA, 0, n * in * sizeof *dA);
        return;
    }
    const int solo = solo_buf != NULL;
    float *const pack_a = buf_a();
#pragma omp parallel if (n * in * out >= PAR_MIN_WORK && !solo)
    {
        float tile[DPT_MR * DPT_NR] __attribute__((aligned(64)));
        float pb[KC * DPT_NR] __attribute__((aligned(64)));
        for (size_t pc = 0; pc < out; pc += KC) {
            const size_t kc = out - pc < KC ? out - pc : KC;
            const int first = pc == 0;
#pragma omp single
            for (size_t p = 0; p < n_pa; p++)
                pack_a_panel(pack_a + p * mr * kc, D, out, 1, pc, kc, p * mr, n - p * mr < mr ? n - p * mr : mr, mr);
#pragma omp for schedule(static)
            for (size_t q = 0; q < n_pb; q++) {
                const size_t j0 = q * nr, nj = in - j0 < nr ? in - j0 : nr;
                const float *b = W + pc * in + j0;
                size_t ldb = in;
                if (nj < nr) {   /* the last columns: packed, so nothing past W is read */
                    pack_b_panel(pb, W, in, 1, pc, kc, j0, nj, nr);
                    b = pb;
                    ldb = nr;
                }
                for (size_t p = 0; p < n_pa; p++) {
                    const size_t i0 = p * mr, ni = n - i0 < mr ? n - i0 : mr;
                    const float *a = pack_a + p * mr * kc;
                    if (ni == mr && nj == nr) {
                        dpt_ukernel_s(kc, a, 1, mr, b, ldb, dA + i0 * in + j0, in, !first);
                        continue;
                    }
                    dpt_ukernel_s(kc, a, 1, mr, b, ldb, tile, DPT_NR, 0);
                    tile_to_c(dA + i0 * in + j0, in, tile, ni, nj, first);
                }
            }
        }
    }
}
#endif /* !DPT_USE_CBLAS */

/* ---------------------------------------------------------------- W kept packed
 * The packed products read W as their B operand (the forward product as
 * W^T, the input gradient as W), packed into NR-wide panels of 256-slabs at
 * every call. A caller that keeps W can keep it packed too (dpt_kern_wpack
 * after each change of W) and pass the copy: with several ranks on a node
 * sharing one model, each rank packs the slice of W it updated, once for the
 * node, instead of every rank packing all of W in every product. Block (jc,
 * pc) of gemm_run's loops lies at jc*K + pc*ncpad (ncpad: the block's panels'
 * width), each panel as pack_b_panel writes it: the floats gemm_run would
 * pack, so the products are bitwise those that pack per call. */

/* Where B[k][j] of a K x N operand lies in the packed copy whose slabs are
 * kcm rows (KC, or deterministic mode's whole blocks). */
static size_t pack_at(size_t K, size_t N, size_t k, size_t j, size_t nr, size_t kcm)
{
    const size_t ncmax = NC / nr * nr, jc = j / ncmax * ncmax, pc = k / kcm * kcm;
    const size_t nc = N - jc < ncmax ? N - jc : ncmax, ncpad = (nc + nr - 1) / nr * nr;
    const size_t kc = K - pc < kcm ? K - pc : kcm;
    return jc * K + pc * ncpad + (j - jc) / nr * nr * kc + (k - pc) * nr + (j - jc) % nr;
}

/* Row k's columns [c0, c1) of a K x N operand (src[c] is B[k][c]) into the
 * packed copy: runs of a panel's width. */
static void pack_row(float *restrict bp, const float *restrict src, size_t K, size_t N, size_t k, size_t c0,
                     size_t c1, size_t nr, size_t kcm)
{
    for (size_t c = c0; c < c1;) {
        const size_t ce = (c / nr + 1) * nr < c1 ? (c / nr + 1) * nr : c1;
        memcpy(bp + pack_at(K, N, k, c, nr, kcm), src + c, (ce - c) * sizeof *src);
        c = ce;
    }
}

int dpt_kern_panel_width(void)
{
    dpt_kern_init();
    return dpt_unr;
}

int dpt_kern_panel_rows(void)
{
    dpt_kern_init();
    return dpt_umr;
}

size_t dpt_kern_wpack_floats(size_t in, size_t out, int fwd, size_t rows)
{
#ifdef DPT_USE_CBLAS
    (void)in, (void)out, (void)fwd, (void)rows;
    return 0;
#else
    dpt_kern_init();
    if (fwd ? forward_w_in_place(rows, in, out) : small_batch(rows))
        return 0;   /* the product reads W in place */
    const size_t nr = (size_t)dpt_unr, K = fwd ? in : out, N = fwd ? out : in;
    return K * ((N + nr - 1) / nr * nr);
#endif
}

/* Rows [32 g, 32 g + 32) of W, clipped to elements [lo, hi), into the copy.
 * The forward copy is a transpose: done a tile of the group's rows x TK
 * columns at a time, so that the tile's source and destination lines stay
 * in L1 (row by row, each float of a row lands on a line of its own: 3.6x
 * slower for a 1024 x 1024 layer on one thread of a 2-core Xeon). */
static void wpack_group(float *restrict wp, int fwd, const float *restrict W, size_t in, size_t out, size_t lo,
                        size_t hi, size_t g)
{
    enum { TK = 64 };
    const size_t nr = (size_t)dpt_unr, K = fwd ? in : out, N = fwd ? out : in;
    const size_t r0 = lo / in, r1 = (hi - 1) / in + 1;
    const size_t ra = g * 32 > r0 ? g * 32 : r0, rb = g * 32 + 32 < r1 ? g * 32 + 32 : r1;
    if (!fwd) {
        for (size_t r = ra; r < rb; r++) {
            const size_t c0 = r * in < lo ? lo - r * in : 0, c1 = (r + 1) * in > hi ? hi - r * in : in;
            pack_row(wp, W + r * in, K, N, r, c0, c1, nr, KC);   /* W[r][c] = B[r][c] */
        }
        return;
    }
    /* W[r][c] = B[c][r]: along a slab, nr floats apart; TK divides KC, so a
     * tile's columns never cross a slab */
    for (size_t t0 = 0; t0 < in; t0 += TK) {
        const size_t t1 = t0 + TK < in ? t0 + TK : in;
        size_t r = ra;
        /* whole tiles of 8 rows: 8 floats side by side in the copy */
        for (; nr % 8 == 0 && r + 8 <= rb && r * in + t0 >= lo && (r + 8) * in <= hi && r % 8 == 0; r += 8)
            transpose_rows(wp + pack_at(K, N, t0, r, nr, KC), nr, W + r * in, in, t0, t1, 8);
        for (; r < rb; r++) {
            const size_t c0 = r * in + t0 < lo ? lo - r * in : t0;
            const size_t c1 = r * in + t1 > hi ? (hi > r * in ? hi - r * in : 0) : t1;
            if (c0 >= c1)
                continue;
            const float *w = W + r * in;
            float *d = wp + pack_at(K, N, c0, r, nr, KC);
            for (size_t k = c0; k < c1; k++) d[(k - c0) * nr] = w[k];
        }
    }
}

void dpt_kern_wpack(float *restrict wp, int fwd, const float *restrict W, size_t in, size_t out, size_t lo,
                    size_t hi)
{
    if (lo >= hi || in == 0)
        return;
    dpt_kern_init();
    const size_t g0 = lo / in / 32, g1 = ((hi - 1) / in + 1 + 31) / 32;
    /* Race-free: each element has its own place, and a thread takes groups
     * of 32 rows (the forward copy's panels hold 16 or 32 rows of W side by
     * side, so threads do not share its cache lines). A thread of the
     * update's (dpt_optim_set_rows_done) packs its rows alone. */
#pragma omp parallel for schedule(static) if (hi - lo > 65536 && !omp_in_parallel())
    for (size_t g = g0; g < g1; g++)
        wpack_group(wp, fwd, W, in, out, lo, hi, g);
}

/* ---------------------------------------------------------------- rows kept packed
 * The node-sliced weight gradient (step.h): the ranks of a node pack their
 * rows of a layer's input activations into one copy, laid out as gemm_run
 * packs B for a K-row operand (K: the node's rows), and each rank computes
 * its output rows of dW over all K rows from it. */

size_t dpt_kern_rowpack_floats(size_t K, size_t N)
{
#ifdef DPT_USE_CBLAS
    (void)K, (void)N;
    return 0;
#else
    return K * ((N + DPT_NR - 1) / DPT_NR * DPT_NR);   /* for any kernel's panel width */
#endif
}

void dpt_kern_rowpack(float *restrict bp, const float *restrict rows, size_t K, size_t N, size_t r0, size_t r1,
                      size_t block)
{
    if (r0 >= r1 || N == 0)
        return;
    dpt_kern_init();
    const size_t nr = (size_t)dpt_unr, kcm = block ? KC / block * block : KC;
    /* Race-free: each element has its own place; a row's runs are whole
     * panel rows (64 or 128 bytes), so threads taking rows share no line. */
#pragma omp parallel for schedule(static) if ((r1 - r0) * N > 65536)
    for (size_t r = r0; r < r1; r++)
        pack_row(bp, rows + (r - r0) * N, K, N, r, 0, N, nr, kcm);
}

void dpt_kern_weight_grad_rows(float *restrict dW, int accumulate, const float *restrict D, size_t ldd,
                               const float *restrict Bp, size_t n, size_t in, size_t m)
{
    GemmOut o = {.C = dW, .ldc = in, .accumulate = accumulate, .units = 1};
    TIMED(DPT_KT_WGRAD, gemm_run(&o, D, 1, ldd, NULL, 0, 0, m, in, n, Bp));
}

void dpt_kern_weight_grad_rows_fixed(int64_t *restrict dWq, int accumulate, double scale, const float *restrict D,
                                     size_t ldd, const float *restrict Bp, size_t n, size_t in, size_t m,
                                     size_t block)
{
    GemmOut o = fixed_wgrad_out(dWq, accumulate, scale, n, in, block);
    TIMED(DPT_KT_WGRAD, gemm_run(&o, D, 1, ldd, NULL, 0, 0, m, in, n, Bp));
}

void dpt_kern_weight_grad_rows_fixed_float(float *restrict dW, double scale, const float *restrict D, size_t ldd,
                                           const float *restrict Bp, size_t n, size_t in, size_t m, size_t block)
{
    GemmOut o = fixed_float_out(dW, scale, n, in, block);
    TIMED(DPT_KT_WGRAD, gemm_run(&o, D, 1, ldd, NULL, 0, 0, m, in, n, Bp));
}

/* ---------------------------------------------------------------- the three products */

/* C[n, m] (rows ldc apart) = A[n, k] (rows lda apart) times W^T (fwd: a
 * row of W, k floats, a column of C) or W (its rows ldw apart, k of them,
 * along C's rows), by the library's sgemm or gemm_run (Wp: W kept packed,
 * or NULL), timed as kt: the forward products and input gradients where W
 * is not read in place, and their column ranges. */
static void w_product(int kt, int fwd, float *C, size_t ldc, const float *A, size_t lda, const float *W, size_t ldw,
                      const float *Wp, size_t n, size_t m, size_t k)
{
#ifdef DPT_USE_CBLAS
    (void)Wp;
    TIMED(kt, cblas_sgemm(CblasRowMajor, CblasNoTrans, fwd ? CblasTrans : CblasNoTrans, (int)n, (int)m, (int)k, 1.0f,
                          A, (int)lda, W, (int)ldw, 0.0f, C, (int)ldc));
#else
    GemmOut o = {.C = C, .ldc = ldc};
    TIMED(kt, gemm_run(&o, A, lda, 1, W, fwd ? 1 : ldw, fwd ? ldw : 1, n, m, k, Wp));
#endif
}

/* Z[n, out] (rows ldz apart) = X[n, in] W[out, in]^T: W read in place where
 * forward_w_in_place says so, else through the packed path (Wp: W^T kept
 * packed, or NULL). */
static void forward_product(float *Z, size_t ldz, const float *X, const float *W, const float *Wp, size_t n,
                            size_t in, size_t out)
{
#ifndef DPT_USE_CBLAS
    if (forward_w_in_place(n, in, out)) {
        TIMED(DPT_KT_FORWARD, forward_inplace(Z, ldz, X, W, n, in, out));
        return;
    }
#endif
    w_product(DPT_KT_FORWARD, 1, Z, ldz, X, in, W, in, Wp, n, out, in);
}

void dpt_kern_forward(float *restrict Z, const float *restrict X, const float *restrict W,
                      const float *restrict b, size_t n, size_t in, size_t out)
{
    forward_product(Z, out, X, W, NULL, n, in, out);
    /* Rows are independent: each thread adds the bias to its own rows. */
#pragma omp parallel for schedule(static) if (n * out > 65536)
    for (size_t r = 0; r < n; r++)
        for (size_t o = 0; o < out; o++)
            Z[r * out + o] += b[o];
}

/* row[0..m) := softmax(row), shifted by the row maximum so that exp never overflows. */
static inline void softmax_row(float *row, size_t m)
{
    float mx = row[0];
    for (size_t j = 1; j < m; j++)
        mx = row[j] > mx ? row[j] : mx;
    float s = 0.0f;
    for (size_t j = 0; j < m; j++) {
        row[j] = expf(row[j] - mx);
        s += row[j];
    }
    float inv = 1.0f / s;
    for (size_t j = 0; j < m; j++)
        row[j] *= inv;
}

/* row[0..m) := f(row + b), the pre-activation row + b also into zr unless
 * NULL; the activation chosen once per row, so that each loop vectorises. */
static inline void bias_act_row(float *restrict row, float *restrict zr, const float *restrict b, DptAct f, size_t m)
{
    switch (f) {
    case DPT_ACT_RELU:
        if (zr)
            for (size_t o = 0; o < m; o++) {
                float z = row[o] + b[o];
                zr[o] = z;
                row[o] = z > 0.0f ? z : 0.0f;
            }
        else
            for (size_t o = 0; o < m; o++) {
                float z = row[o] + b[o];
                row[o] = z > 0.0f ? z : 0.0f;
            }
        break;
    default:
        for (size_t o = 0; o < m; o++)
            row[o] += b[o];
        if (zr)
            memcpy(zr, row, m * sizeof(float));
        if (f == DPT_ACT_SOFTMAX)
            softmax_row(row, m);
        else if (f == DPT_ACT_SIGMOID)
            for (size_t o = 0; o < m; o++)
                row[o] = 1.0f / (1.0f + expf(-row[o]));
        else if (f == DPT_ACT_TANH)
            for (size_t o = 0; o < m; o++)
                row[o] = tanhf(row[o]);
        break;
    }
}

void dpt_kern_forward_act(float *restrict A, float *restrict zsave, const float *restrict X, const float *restrict W,
                          const float *restrict Wp, const float *restrict b, DptAct f, size_t n, size_t in,
                          size_t out)
{
    forward_product(A, out, X, W, Wp, n, in, out);
    /* One pass per row: bias, saved pre-activation, activation. Rows are
     * independent, so each thread owns its rows. */
#pragma omp parallel for schedule(static) if (n * out > 65536)
    for (size_t r = 0; r < n; r++)
        bias_act_row(A + r * out, zsave ? zsave + r * out : NULL, b, f, out);
}

void dpt_kern_forward_act_cols(float *restrict A, size_t lda, const float *restrict X, const float *restrict W,
                               const float *restrict b, DptAct f, size_t n, size_t in, size_t c0, size_t c1)
{
    assert(f != DPT_ACT_SOFTMAX);
    if (c0 >= c1)
        return;
    forward_product(A + c0, lda, X, W + c0 * in, NULL, n, in, c1 - c0);
#pragma omp parallel for schedule(static) if (n * (c1 - c0) > 65536)
    for (size_t r = 0; r < n; r++)
        bias_act_row(A + r * lda + c0, NULL, b + c0, f, c1 - c0);
}

void dpt_kern_weight_grad(float *restrict dW, int accumulate, const float *restrict D,
                          const float *restrict A, size_t n, size_t in, size_t out)
{
#ifdef DPT_USE_CBLAS
    TIMED(DPT_KT_WGRAD, cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n,
                    1.0f, D, (int)out, A, (int)in, accumulate ? 1.0f : 0.0f, dW, (int)in));
#else
    GemmOut o = {.C = dW, .ldc = in, .accumulate = accumulate, .units = 1};
    TIMED(DPT_KT_WGRAD, gemm_run(&o, D, 1, out, A, in, 1, out, in, n, NULL));
#endif
}

void dpt_kern_bias_grad(float *restrict db, int accumulate, const float *restrict D,
                        size_t n, size_t out)
{
    dpt_kern_bias_grad_cols(db, accumulate, D, out, n, out);
}

void dpt_kern_bias_grad_cols(float *restrict db, int accumulate, const float *restrict D, size_t ldd, size_t n,
                             size_t out)
{
    /* Each thread owns a range of output units (whole cache lines; race-free:
     * it writes only those) and adds rows 0..n-1 to it in order, a row at a
     * time, so the loop runs along D's rows (vectorised) and every sum is the
     * same chain as column by column. */
#pragma omp parallel if (n * out > 65536)
    {
        size_t lo, hi;
        column_range(out, &lo, &hi);
        if (!accumulate)
            for (size_t o = lo; o < hi; o++) db[o] = 0.0f;
        for (size_t r = 0; r < n; r++) {
            const float *d = D + r * ldd;
            for (size_t o = lo; o < hi; o++) db[o] += d[o];
        }
    }
}

void dpt_kern_input_grad(float *restrict dA, const float *restrict D, const float *restrict W,
                         const float *restrict Wp, size_t n, size_t in, size_t out)
{
#ifndef DPT_USE_CBLAS
    if (small_batch(n))
        TIMED(DPT_KT_IGRAD, input_grad_small(dA, D, W, n, in, out));
    else
#endif
        w_product(DPT_KT_IGRAD, 0, dA, in, D, out, W, in, Wp, n, in, out);
}

/* D[0..m) *= f'(z) given A[0..m) = f(z), one span on the calling thread. */
static inline void act_backward_span(float *restrict D, const float *restrict A, DptAct f, size_t m)
{
    switch (f) {
    case DPT_ACT_SIGMOID:
        for (size_t i = 0; i < m; i++)
            D[i] *= A[i] * (1.0f - A[i]);
        break;
    case DPT_ACT_RELU:
        for (size_t i = 0; i < m; i++)
            D[i] = A[i] > 0.0f ? D[i] : 0.0f;
        break;
    case DPT_ACT_TANH:
        for (size_t i = 0; i < m; i++)
            D[i] *= 1.0f - A[i] * A[i];
        break;
    case DPT_ACT_LINEAR:
    case DPT_ACT_SOFTMAX:
        break;
    }
}

void dpt_kern_input_grad_act_cols(float *restrict dA, size_t lda, const float *restrict D, size_t ldd,
                                  const float *restrict W, const float *restrict A, DptAct f, size_t n, size_t in,
                                  size_t out, size_t c0, size_t c1)
{
    if (c0 >= c1)
        return;
    w_product(DPT_KT_IGRAD, 0, dA + c0, lda, D, ldd, W + c0, in, NULL, n, c1 - c0, out);
#pragma omp parallel for schedule(static) if (n * (c1 - c0) > 65536)
    for (size_t r = 0; r < n; r++)
        act_backward_span(dA + r * lda + c0, A + r * lda + c0, f, c1 - c0);
}

/* ---------------------------------------------------------------- activations */

void dpt_kern_activate(float *restrict A, DptAct f, size_t n, size_t m)
{
    size_t total = n * m;
    switch (f) {
    case DPT_ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            A[i] = 1.0f / (1.0f + expf(-A[i]));
        break;
    case DPT_ACT_RELU:
#pragma omp parallel for schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            A[i] = A[i] > 0.0f ? A[i] : 0.0f;
        break;
    case DPT_ACT_TANH:
#pragma omp parallel for schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            A[i] = tanhf(A[i]);
        break;
    case DPT_ACT_LINEAR:
        break;
    case DPT_ACT_SOFTMAX:
        /* Row-wise, shifted by the row maximum so that exp never overflows. */
#pragma omp parallel for schedule(static) if (total > 65536)
        for (size_t r = 0; r < n; r++) {
            softmax_row(A + r * m, m);
        }
        break;
    }
}

void dpt_kern_act_backward(float *restrict D, const float *restrict A, DptAct f, size_t n, size_t m)
{
    enum { SPAN = 4096 };   /* element-wise: the spans change no bit */
    const size_t total = n * m;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (size_t i = 0; i < total; i += SPAN)
        act_backward_span(D + i, A + i, f, total - i < SPAN ? total - i : SPAN);
}
