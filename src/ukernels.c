/*
 * The micro-kernels of the GEMM (an MR x NR register tile from packed
 * panels; portable C, AVX2+FMA, AVX-512) and the conversions of block sums
 * to fixed point (deterministic mode), chosen at run time. Part of the
 * kernels module (private header ukernels.h).
 */
#include "ukernels.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MR = DPT_MR, NR = DPT_NR };
/* The rounding constant of the AVX2 conversions, 1.5 * 2^52, and its bits:
 * for |x| < 2^51, x + MAGIC rounds x to an integer, whose bits are those of
 * MAGIC plus it. */
#define MAGIC 6755399441055744.0
#define MAGIC_BITS UINT64_C(0x4338000000000000)

/* ---------------------------------------------------------------- micro-kernels
 * c[MR][NR] := sum_k a[k][0..MR) (outer) b[k][0..NR), k ascending. */

static void ukernel_generic(size_t kc, const float *restrict a, const float *restrict b, float *restrict c, size_t ldc,
                            int accumulate)
{
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (size_t k = 0; k < kc; k++) {
        for (int r = 0; r < MR; r++) {
            float ar = a[r];
            for (int j = 0; j < NR; j++)
                acc[r][j] += ar * b[j];
        }
        a += MR;
        b += NR;
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++)
            c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

#ifdef DPT_X86
/* AVX2 + FMA: a 6 x 16 tile, 12 ymm accumulators (enough independent FMAs
 * to cover their latency on two FMA ports), 2 B vectors, 1 broadcast. */
#define DPT_AVX2_BODY                                                                   \
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();                        \
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();                        \
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();                        \
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();                        \
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();                        \
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();                        \
    for (size_t k = 0; k < kc; k++) {                                                   \
        __m256 bv0 = _mm256_loadu_ps(b), bv1 = _mm256_loadu_ps(b + 8), av;              \
        DPT_AVX2_ROW(0) DPT_AVX2_ROW(1) DPT_AVX2_ROW(2)                                 \
        DPT_AVX2_ROW(3) DPT_AVX2_ROW(4) DPT_AVX2_ROW(5)                                 \
        DPT_AVX2_NEXT                                                                   \
    }
/* Where row r of A is read, and the step to the next k: packed panels here;
 * ukernel_avx2_s redefines both for operands read in place. */
#define DPT_A_AT(r) (a + r)
#define DPT_AVX2_NEXT                                                                   \
    a += DPT_MR_AVX2;                                                                   \
    b += DPT_NR_AVX2;
#define DPT_AVX2_ROW(r)                                                                 \
    av = _mm256_broadcast_ss(DPT_A_AT(r));                                              \
    c##r##0 = _mm256_fmadd_ps(av, bv0, c##r##0);                                        \
    c##r##1 = _mm256_fmadd_ps(av, bv1, c##r##1);
/* c (+)= the accumulators */
#define DPT_AVX2_STORE(r)                                                               \
    if (accumulate) {                                                                   \
        c##r##0 = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc), c##r##0);                 \
        c##r##1 = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc + 8), c##r##1);             \
    }                                                                                   \
    _mm256_storeu_ps(c + r * ldc, c##r##0);                                             \
    _mm256_storeu_ps(c + r * ldc + 8, c##r##1);
#define DPT_AVX2_STORE_ALL                                                              \
    DPT_AVX2_STORE(0) DPT_AVX2_STORE(1) DPT_AVX2_STORE(2)                               \
    DPT_AVX2_STORE(3) DPT_AVX2_STORE(4) DPT_AVX2_STORE(5)

__attribute__((target("avx2,fma")))
static void ukernel_avx2(size_t kc, const float *restrict a, const float *restrict b, float *restrict c, size_t ldc,
                         int accumulate)
{
    DPT_AVX2_BODY
    DPT_AVX2_STORE_ALL
}

/* A's rows contiguous in k (W's rows where they are), row r at a + r * a_rs:
 * one index for the six rows, so the loop adds one register, not six. */
__attribute__((target("avx2,fma")))
static void ukernel_avx2_rows(size_t kc, const float *restrict a, size_t a_rs, const float *restrict b, size_t ldb,
                              float *restrict c, size_t ldc, int accumulate)
{
    const float *a0 = a, *a1 = a + a_rs, *a2 = a + 2 * a_rs, *a3 = a + 3 * a_rs, *a4 = a + 4 * a_rs, *a5 = a + 5 * a_rs;
#undef DPT_A_AT
#undef DPT_AVX2_NEXT
#define DPT_A_AT(r) (a##r + k)
#define DPT_AVX2_NEXT b += ldb;
    DPT_AVX2_BODY
    DPT_AVX2_STORE_ALL
}

/* The same tile and FMAs, from operands in place: row r of the A panel at
 * a + r * a_rs, advancing a_ks per k (a packed panel: 1 and 6; the rows of W
 * read where they are: lda and 1, ukernel_avx2_rows), and B's rows at a
 * stride of ldb. */
__attribute__((target("avx2,fma")))
static void ukernel_avx2_s(size_t kc, const float *restrict a, size_t a_rs, size_t a_ks, const float *restrict b,
                           size_t ldb, float *restrict c, size_t ldc, int accumulate)
{
    if (a_ks == 1) {
        ukernel_avx2_rows(kc, a, a_rs, b, ldb, c, ldc, accumulate);
        return;
    }
#undef DPT_A_AT
#undef DPT_AVX2_NEXT
#define DPT_A_AT(r) (a + r * a_rs)
#define DPT_AVX2_NEXT a += a_ks; b += ldb;
    DPT_AVX2_BODY
    DPT_AVX2_STORE_ALL
#undef DPT_A_AT
#undef DPT_AVX2_NEXT
#define DPT_A_AT(r) (a + r)
#define DPT_AVX2_NEXT                                                                   \
    a += DPT_MR_AVX2;                                                                   \
    b += DPT_NR_AVX2;
}

/* The AVX2 micro-kernel with the conversion to fixed point fused into its
 * store: the same FMAs as ukernel_avx2 (the same float sums), rounded from
 * the registers (the magic-number rounding of fixed_avx2 below, in one fma:
 * c * scale is exact) and added to the int64 rows, with no float tile in
 * between and one range check per tile. */
__attribute__((target("avx2,fma")))
static void ufixed_avx2(size_t kc, const float *restrict a, const float *restrict b, int64_t *restrict q, size_t ldq,
                        int add, uint64_t sub, double scale, float lim, float *restrict tile)
{
    DPT_AVX2_BODY
    const __m256d s = _mm256_set1_pd(scale), magic = _mm256_set1_pd(MAGIC);
    __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    /* |c| >= lim, or NaN: the tile goes the scalar way. Without the sign,
     * the bit patterns of floats are ordered as the values (NaN's above
     * infinity's), so one unsigned max of them is compared, once. */
    uint32_t lim_bits;
    memcpy(&lim_bits, &lim, sizeof lim_bits);
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
    __m256i m = _mm256_and_si256(_mm256_castps_si256(acc[0]), absmask);
    for (int i = 1; i < 12; i++)
        m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(acc[i]), absmask));
    /* signed compare: both sides are below 2^31 (lim_bits - 1 may be -1: lim 0, all far) */
    if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(m, _mm256_set1_epi32((int32_t)lim_bits - 1)))) {
        for (int i = 0; i < 12; i++)
            _mm256_storeu_ps(tile + i * 8, acc[i]);
        for (int r = 0; r < DPT_MR_AVX2; r++) {
            int64_t *qr = q + (size_t)r * ldq;
            for (int j = 0; j < DPT_NR_AVX2; j++)
                qr[j] = (int64_t)((add ? (uint64_t)qr[j] : 0) + (uint64_t)dpt_to_fixed(tile[r * DPT_NR_AVX2 + j], scale) +
                                  MAGIC_BITS - sub);
        }
        return;
    }
    /* The values with the bits of the constant on them (MAGIC_BITS + v):
     * the caller's sub takes them off, once for all the blocks. */
    const __m256i subv = _mm256_set1_epi64x((long long)sub);
    for (int i = 0; i < 12; i++) {
        int64_t *qr = q + (size_t)(i / 2) * ldq + (size_t)(i % 2) * 8;
        __m256d lo = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(acc[i])), s, magic);
        __m256d hi = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(acc[i], 1)), s, magic);
        __m256i qlo = _mm256_castpd_si256(lo), qhi = _mm256_castpd_si256(hi);
        if (sub) {
            qlo = _mm256_sub_epi64(qlo, subv);
            qhi = _mm256_sub_epi64(qhi, subv);
        }
        if (add) {
            qlo = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)qr), qlo);
            qhi = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(qr + 4)), qhi);
        }
        _mm256_storeu_si256((__m256i *)qr, qlo);
        _mm256_storeu_si256((__m256i *)(qr + 4), qhi);
    }
}
#undef DPT_AVX2_ROW
#undef DPT_AVX2_BODY
#undef DPT_AVX2_NEXT
#undef DPT_A_AT
#undef DPT_AVX2_STORE
#undef DPT_AVX2_STORE_ALL

/* AVX-512: an 8 x 32 tile, 16 zmm accumulators, 2 B vectors, 1 broadcast.
 * The body takes where row r of A is read (AT) and the step to the next k
 * (NEXT): packed panels, or operands in place (the _rows and _s variants
 * below). */
#define DPT_A512_ZERO                                                                   \
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();                        \
    __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();                        \
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();                        \
    __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();                        \
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();                        \
    __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();                        \
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps();                        \
    __m512 c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
#define DPT_A512_BODY(AT, NEXT)                                                         \
    DPT_A512_ZERO                                                                       \
    for (size_t k = 0; k < kc; k++) {                                                   \
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), av;               \
        DPT_A512_ROW(0, AT) DPT_A512_ROW(1, AT) DPT_A512_ROW(2, AT) DPT_A512_ROW(3, AT) \
        DPT_A512_ROW(4, AT) DPT_A512_ROW(5, AT) DPT_A512_ROW(6, AT) DPT_A512_ROW(7, AT) \
        NEXT                                                                            \
    }
#define DPT_A512_ROW(r, AT)                                                             \
    av = _mm512_set1_ps(*AT(r));                                                        \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                         \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);
#define DPT_A512_STORE(r)                                                               \
    if (accumulate) {                                                                   \
        c##r##0 = _mm512_add_ps(_mm512_loadu_ps(c + r * ldc), c##r##0);                 \
        c##r##1 = _mm512_add_ps(_mm512_loadu_ps(c + r * ldc + 16), c##r##1);            \
    }                                                                                   \
    _mm512_storeu_ps(c + r * ldc, c##r##0);                                             \
    _mm512_storeu_ps(c + r * ldc + 16, c##r##1);
#define DPT_A512_STORE_ALL                                                              \
    DPT_A512_STORE(0) DPT_A512_STORE(1) DPT_A512_STORE(2) DPT_A512_STORE(3)             \
    DPT_A512_STORE(4) DPT_A512_STORE(5) DPT_A512_STORE(6) DPT_A512_STORE(7)

/* The tile's left half, 8 x 16: the same chains (one fma a k for each
 * element, k ascending, the store and the accumulation alike) for products
 * of at most 16 columns, where the 32-wide tile would leave half of each
 * vector idle (the forward product of a batch of up to 16 samples, Z^T =
 * W X^T). Columns 16-31 of c are not touched. */
#define DPT_A512H_BODY(AT, NEXT)                                                        \
    __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps();                          \
    __m512 c2 = _mm512_setzero_ps(), c3 = _mm512_setzero_ps();                          \
    __m512 c4 = _mm512_setzero_ps(), c5 = _mm512_setzero_ps();                          \
    __m512 c6 = _mm512_setzero_ps(), c7 = _mm512_setzero_ps();                          \
    for (size_t k = 0; k < kc; k++) {                                                   \
        const __m512 b0 = _mm512_loadu_ps(b);                                           \
        DPT_A512H_ROW(0, AT) DPT_A512H_ROW(1, AT) DPT_A512H_ROW(2, AT)                  \
        DPT_A512H_ROW(3, AT) DPT_A512H_ROW(4, AT) DPT_A512H_ROW(5, AT)                  \
        DPT_A512H_ROW(6, AT) DPT_A512H_ROW(7, AT)                                       \
        NEXT                                                                            \
    }
#define DPT_A512H_ROW(r, AT) c##r = _mm512_fmadd_ps(_mm512_set1_ps(*AT(r)), b0, c##r);
#define DPT_A512H_STORE(r)                                                              \
    if (accumulate)                                                                     \
        c##r = _mm512_add_ps(_mm512_loadu_ps(c + r * ldc), c##r);                       \
    _mm512_storeu_ps(c + r * ldc, c##r);
#define DPT_A512H_STORE_ALL                                                             \
    DPT_A512H_STORE(0) DPT_A512H_STORE(1) DPT_A512H_STORE(2) DPT_A512H_STORE(3)         \
    DPT_A512H_STORE(4) DPT_A512H_STORE(5) DPT_A512H_STORE(6) DPT_A512H_STORE(7)

/* The operand walks: packed panels; A's rows in place, contiguous in k
 * (W's rows where they are), one index for the eight rows; A's row r at
 * a + r * a_rs advancing a_ks per k. B's rows NR or ldb apart. */
#define DPT_A512_AT_PACKED(r) (a + r)
#define DPT_A512_NEXT_PACKED a += MR; b += NR;
#define DPT_A512_AT_ROWS(r) (a##r + k)
#define DPT_A512_NEXT_ROWS b += ldb;
#define DPT_A512_AT_S(r) (a + r * a_rs)
#define DPT_A512_NEXT_S a += a_ks; b += ldb;

__attribute__((target("avx512f")))
static void ukernel_avx512(size_t kc, const float *restrict a, const float *restrict b, float *restrict c, size_t ldc,
                           int accumulate)
{
    DPT_A512_BODY(DPT_A512_AT_PACKED, DPT_A512_NEXT_PACKED)
    DPT_A512_STORE_ALL
}

/* The packed kernel with its k loop unrolled by four (kc a multiple of
 * four; otherwise ukernel_avx512): the same FMAs in the same order, a
 * quarter of the loop's own instructions, which would otherwise take issue
 * slots of the FMA ports. 2-core Intel Xeon, one thread, the A panel held
 * in L1 (kernels.c's DPT_LOOP_A), against ukernel_avx512 in six alternating
 * rounds: the 1024^3 product 1.02x (1.00-1.04), 128 x 1024 x 1024 1.03x
 * (1.02-1.05); training [784,1024,1024,10] at batch 1024 0.99-1.03x. */
#define DPT_A512_UROW(r, o)                                                             \
    av = _mm512_set1_ps(a[(o) * MR + r]);                                               \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                         \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);
#define DPT_A512_K(o)                                                                   \
    {                                                                                   \
        __m512 b0 = _mm512_loadu_ps(b + (o) * NR), b1 = _mm512_loadu_ps(b + (o) * NR + 16), av; \
        DPT_A512_UROW(0, o) DPT_A512_UROW(1, o) DPT_A512_UROW(2, o) DPT_A512_UROW(3, o) \
        DPT_A512_UROW(4, o) DPT_A512_UROW(5, o) DPT_A512_UROW(6, o) DPT_A512_UROW(7, o) \
    }
/* The 16 accumulators over kc (a multiple of four) from packed panels a, b. */
#define DPT_A512_U4_BODY                                                                \
    DPT_A512_ZERO                                                                       \
    for (size_t k = 0; k < kc; k += 4) {                                                \
        DPT_A512_K(0) DPT_A512_K(1) DPT_A512_K(2) DPT_A512_K(3)                         \
        a += 4 * MR;                                                                    \
        b += 4 * NR;                                                                    \
    }
__attribute__((target("avx512f")))
static void ukernel_avx512_u4(size_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                              size_t ldc, int accumulate)
{
    if (kc % 4) {
        ukernel_avx512(kc, a, b, c, ldc, accumulate);
        return;
    }
    DPT_A512_U4_BODY
    DPT_A512_STORE_ALL
}

/* A tile (BODY, STORE_ALL) from operands in place, as ukernel_avx2_s:
 * rows_fn for A's rows contiguous in k, s_fn (DptUKernelS) for any walk. */
#define DPT_A512_IN_PLACE(rows_fn, s_fn, BODY, STORE_ALL)                                           \
    __attribute__((target("avx512f"))) static void rows_fn(size_t kc, const float *restrict a,      \
                                                           size_t a_rs, const float *restrict b,    \
                                                           size_t ldb, float *restrict c,           \
                                                           size_t ldc, int accumulate)              \
    {                                                                                               \
        const float *a0 = a, *a1 = a + a_rs, *a2 = a + 2 * a_rs, *a3 = a + 3 * a_rs;                \
        const float *a4 = a + 4 * a_rs, *a5 = a + 5 * a_rs, *a6 = a + 6 * a_rs, *a7 = a + 7 * a_rs; \
        BODY(DPT_A512_AT_ROWS, DPT_A512_NEXT_ROWS)                                                  \
        STORE_ALL                                                                                   \
    }                                                                                               \
    __attribute__((target("avx512f"))) static void s_fn(size_t kc, const float *restrict a,         \
                                                        size_t a_rs, size_t a_ks,                   \
                                                        const float *restrict b, size_t ldb,        \
                                                        float *restrict c, size_t ldc,              \
                                                        int accumulate)                             \
    {                                                                                               \
        if (a_ks == 1) {                                                                            \
            rows_fn(kc, a, a_rs, b, ldb, c, ldc, accumulate);                                       \
            return;                                                                                 \
        }                                                                                           \
        BODY(DPT_A512_AT_S, DPT_A512_NEXT_S)                                                        \
        STORE_ALL                                                                                   \
    }

DPT_A512_IN_PLACE(ukernel_avx512_rows, ukernel_avx512_s, DPT_A512_BODY, DPT_A512_STORE_ALL)
DPT_A512_IN_PLACE(ukernel_avx512_rows_half, ukernel_avx512_s_half, DPT_A512H_BODY, DPT_A512H_STORE_ALL)

#undef DPT_A512_IN_PLACE
#undef DPT_A512_AT_PACKED
#undef DPT_A512_NEXT_PACKED
#undef DPT_A512_AT_ROWS
#undef DPT_A512_NEXT_ROWS
#undef DPT_A512_AT_S
#undef DPT_A512_NEXT_S
#undef DPT_A512_BODY
#undef DPT_A512_ROW
#undef DPT_A512_STORE
#undef DPT_A512_STORE_ALL
#undef DPT_A512H_BODY
#undef DPT_A512H_ROW
#undef DPT_A512H_STORE
#undef DPT_A512H_STORE_ALL
#endif


static void fixed_add_generic(int64_t *restrict c, const float *restrict t, size_t n, double scale)
{
    for (size_t j = 0; j < n; j++)
        c[j] = dpt_fixed_sum(c[j], dpt_to_fixed(t[j], scale));
}

static void fixed_store(int64_t *restrict c, const float *restrict t, size_t n, double scale)
{
    for (size_t j = 0; j < n; j++)
        c[j] = dpt_to_fixed(t[j], scale);
}

#ifdef DPT_X86
__attribute__((target("avx512f,avx512dq")))
static void fixed_add_avx512(int64_t *restrict c, const float *restrict t, size_t n, double scale)
{
    /* float -> double is exact and the scale a power of two, so the product is
     * exact and vcvtpd2qq rounds it as llrint does (MXCSR: nearest even). */
    const __m512d s = _mm512_set1_pd(scale);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m512d v = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(t + j)), s);
        __m512i q = _mm512_add_epi64(_mm512_loadu_si512((const void *)(c + j)), _mm512_cvtpd_epi64(v));
        _mm512_storeu_si512((void *)(c + j), q);
    }
    for (; j < n; j++)
        c[j] = dpt_fixed_sum(c[j], dpt_to_fixed(t[j], scale));
}

/* AVX2 has no double -> int64 conversion. For |x| < 2^51, x + 1.5 * 2^52
 * (in double, round to nearest even) lands where the ulp is 1, so it rounds
 * x as llrint does and leaves the integer in the low mantissa bits: the
 * bits of the sum minus those of 1.5 * 2^52 are llrint(x). Lanes at or above
 * 2^51 (rare: the scale allows up to 2^60 / blocks) take the scalar path. */
static inline __attribute__((target("avx2"), always_inline)) void fixed_avx2(int64_t *restrict c,
                                                                               const float *restrict t, size_t n,
                                                                               double scale, const int add)
{
    const __m256d s = _mm256_set1_pd(scale), magic = _mm256_set1_pd(MAGIC), limit = _mm256_set1_pd(0x1p51);
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    const __m256i magic_bits = _mm256_castpd_si256(magic);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256d v = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(t + j)), s);
        if (_mm256_movemask_pd(_mm256_cmp_pd(_mm256_and_pd(v, absmask), limit, _CMP_GE_OQ))) {
            for (size_t k = j; k < j + 4; k++)
                c[k] = dpt_fixed_sum(add ? c[k] : 0, dpt_to_fixed(t[k], scale));
            continue;
        }
        __m256i q = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(v, magic)), magic_bits);
        if (add)
            q = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(c + j)), q);
        _mm256_storeu_si256((__m256i *)(c + j), q);
    }
    for (; j < n; j++)
        c[j] = dpt_fixed_sum(add ? c[j] : 0, dpt_to_fixed(t[j], scale));
}

__attribute__((target("avx2")))
static void fixed_add_avx2(int64_t *restrict c, const float *restrict t, size_t n, double scale)
{
    fixed_avx2(c, t, n, scale, 1);
}

__attribute__((target("avx2")))
static void fixed_store_avx2(int64_t *restrict c, const float *restrict t, size_t n, double scale)
{
    fixed_avx2(c, t, n, scale, 0);
}
#endif

DptFixedFn dpt_fixed_add = fixed_add_generic, dpt_fixed_set = fixed_store;

static void to_float_generic(float *restrict dst, const int64_t *restrict q, size_t n, double inv)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)((double)q[i] * inv);
}

#ifdef DPT_X86
/* AVX2 has no int64 -> double conversion: each value is split into its high
 * (signed) and low (unsigned) 32 bits, each placed exactly in a double's
 * mantissa with a magic exponent, and the two recombined by one addition,
 * which rounds once: the correctly rounded (double)q, as cvtsi2sd gives it. */
__attribute__((target("avx2")))
static void to_float_avx2(float *restrict dst, const int64_t *restrict q, size_t n, double inv)
{
    const __m256i lo_magic = _mm256_set1_epi64x(0x4330000000000000LL);              /* 2^52 */
    const __m256i hi_magic = _mm256_set1_epi64x(0x4530000080000000LL);              /* 2^84 + 2^63 */
    const __m256d all_magic = _mm256_castsi256_pd(_mm256_set1_epi64x(0x4530000080100000LL)); /* + 2^52 */
    const __m256d vinv = _mm256_set1_pd(inv);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(q + i));
        __m256d lo = _mm256_castsi256_pd(_mm256_blend_epi32(lo_magic, v, 0x55));      /* 2^52 + low */
        __m256d hi = _mm256_castsi256_pd(_mm256_xor_si256(_mm256_srli_epi64(v, 32), hi_magic));
        __m256d d = _mm256_add_pd(_mm256_sub_pd(hi, all_magic), lo);
        _mm_storeu_ps(dst + i, _mm256_cvtpd_ps(_mm256_mul_pd(d, vinv)));
    }
    to_float_generic(dst + i, q + i, n - i, inv);
}
#endif

DptToFloatFn dpt_fixed_to_float = to_float_generic;

/* Any micro-kernel, then the conversion row by row. */
static void ufixed_generic(size_t kc, const float *restrict a, const float *restrict b, int64_t *restrict q,
                           size_t ldq, int add, uint64_t sub, double scale, float lim, float *restrict tile)
{
    (void)lim;
    (void)sub;   /* a multiple of dpt_ufixed_bias, which is 0 with this kernel */
    dpt_ukernel(kc, a, b, tile, NR, 0);
    for (size_t r = 0; r < (size_t)dpt_umr; r++)
        (add ? dpt_fixed_add : dpt_fixed_set)(q + r * ldq, tile + r * NR, (size_t)dpt_unr, scale);
}

#ifdef DPT_X86
/* The AVX-512 tile straight into fixed point: the accumulators of
 * ukernel_avx512_u4 (the same FMAs, hence the same floats), each row's 32
 * values widened to double, scaled and rounded by vcvtpd2qq (nearest even,
 * as llrint and fixed_add_avx512), and added to (or stored into) q's row,
 * without the float tile's store and reload in between. kc not a multiple
 * of four: ufixed_generic. 2-core Intel Xeon, deterministic mode, one
 * thread, [784,1024,1024,10] at batch 128 (blocks of 32): the weight
 * gradients 0.69 -> 0.60 s over 150 steps against ufixed_generic, the
 * run 1.03-1.08x, the model bitwise the same. */
#define DPT_A512_Q8(v, at)                                                              \
    {                                                                                   \
        __m512i x_ = _mm512_cvtpd_epi64(_mm512_mul_pd(v, s));                           \
        if (add)                                                                        \
            x_ = _mm512_add_epi64(_mm512_loadu_si512((const void *)(at)), x_);          \
        _mm512_storeu_si512((void *)(at), x_);                                          \
    }
#define DPT_A512_QROW(r)                                                                \
    {                                                                                   \
        int64_t *qr_ = q + (size_t)(r) * ldq;                                           \
        DPT_A512_Q8(_mm512_cvtps_pd(_mm512_castps512_ps256(c##r##0)), qr_)              \
        DPT_A512_Q8(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c##r##0), 1))), qr_ + 8) \
        DPT_A512_Q8(_mm512_cvtps_pd(_mm512_castps512_ps256(c##r##1)), qr_ + 16)         \
        DPT_A512_Q8(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c##r##1), 1))), qr_ + 24) \
    }
__attribute__((target("avx512f,avx512dq")))
static void ufixed_avx512(size_t kc, const float *restrict a, const float *restrict b, int64_t *restrict q,
                          size_t ldq, int add, uint64_t sub, double scale, float lim, float *restrict tile)
{
    if (kc % 4) {
        ufixed_generic(kc, a, b, q, ldq, add, sub, scale, lim, tile);
        return;
    }
    DPT_A512_U4_BODY
    const __m512d s = _mm512_set1_pd(scale);
    DPT_A512_QROW(0) DPT_A512_QROW(1) DPT_A512_QROW(2) DPT_A512_QROW(3)
    DPT_A512_QROW(4) DPT_A512_QROW(5) DPT_A512_QROW(6) DPT_A512_QROW(7)
}
#undef DPT_A512_QROW
#undef DPT_A512_Q8
#undef DPT_A512_U4_BODY
#undef DPT_A512_ZERO
#undef DPT_A512_K
#undef DPT_A512_UROW
#endif

float dpt_fixed_limit(double scale)
{
    double l = 0x1p51 / scale;
    if (!(l <= (double)FLT_MAX))
        return INFINITY;
    float f = (float)l;
    if ((double)f > l)
        f = nextafterf(f, 0.0f);
    return f;
}

DptUKernel dpt_ukernel;
DptUKernelS dpt_ukernel_s;
int dpt_ukernel_s_any;
DptUFixed dpt_ufixed = ufixed_generic;
uint64_t dpt_ufixed_bias;
DptUKernelS dpt_ukernel_s_half;
int dpt_umr = MR, dpt_unr = NR;
const char *dpt_ukernel_name = "none";



/* Whether the chosen in-place kernel gives the packed kernel's bits on a
 * small product (A's rows in place and as a packed panel, B's rows at a
 * stride, storing and accumulating): checked once, where it is chosen, so
 * that a kernel this project's CI cannot run (AVX-512) is never used
 * unless it agrees with the packed one on the machine itself. ks's columns
 * [0, width) are compared with dpt_ukernel's; the rest of its tile must be
 * left as it was. */
static int agrees_on(DptUKernelS ks, int width)
{
    enum { KC_T = 37, LDA = 41, LDB = 40, LDC = NR };
    float a[MR * LDA], ap[KC_T * MR], b[KC_T * LDB], bp[KC_T * NR], want[MR * LDC], got[MR * LDC];
    const int mr = dpt_umr, nr = dpt_unr;
    for (int i = 0; i < MR * LDA; i++)
        a[i] = (float)((i * 37) % 101 - 50) / 64.0f + 1e-3f * (float)(i % 7);
    for (int i = 0; i < KC_T * LDB; i++)
        b[i] = (float)((i * 53) % 97 - 48) / 32.0f - 1e-3f * (float)(i % 5);
    for (int k = 0; k < KC_T; k++) {
        for (int r = 0; r < mr; r++) ap[k * mr + r] = a[r * LDA + k];
        for (int j = 0; j < nr; j++) bp[k * nr + j] = b[k * LDB + j];
    }
    for (int acc = 0; acc < 2; acc++) {
        for (int i = 0; i < MR * LDC; i++) want[i] = got[i] = (float)(i % 11) - 5.0f;
        dpt_ukernel(KC_T, ap, bp, want, LDC, acc);
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < MR * LDC; i++) got[i] = (float)(i % 11) - 5.0f;
            if (pass == 0)
                ks(KC_T, a, LDA, 1, b, LDB, got, LDC, acc);
            else
                ks(KC_T, ap, 1, (size_t)mr, bp, (size_t)nr, got, LDC, acc);
            for (int i = 0; i < MR * LDC; i++) {
                const float fresh = (float)(i % 11) - 5.0f;
                if (i % LDC < width ? memcmp(&want[i], &got[i], sizeof got[i]) != 0 : got[i] != fresh)
                    return 0;
            }
        }
    }
    return 1;
}

int dpt_ukernel_s_agrees(DptUKernelS ks) { return agrees_on(ks, dpt_unr); }

int dpt_ukernel_s_half_agrees(DptUKernelS ks) { return agrees_on(ks, DPT_NR_HALF); }

void dpt_ukernel_choose(const char *force)
{
    dpt_ukernel = ukernel_generic;
    dpt_ukernel_name = "generic";
#ifdef DPT_X86
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    dpt_fixed_add = fixed_add_generic;
    dpt_fixed_set = fixed_store;
    dpt_fixed_to_float = to_float_generic;
    dpt_ufixed = ufixed_generic;
    dpt_ufixed_bias = 0;
    dpt_ukernel_s = NULL;
    dpt_ukernel_s_half = NULL;
    dpt_ukernel_s_any = 0;
    dpt_umr = MR;
    dpt_unr = NR;
    if (force && strcmp(force, "generic") == 0)
        return;
    if (has2) {
        dpt_fixed_add = fixed_add_avx2;
        dpt_fixed_set = fixed_store_avx2;
        dpt_fixed_to_float = to_float_avx2;
    }
    /* W read in place (DPT_W_IN_PLACE=0 turns it off, =1 on at every
     * batch): with AVX2 at every batch, where it measured faster; with
     * AVX-512 in small products only (the forward product up to 32 rows,
     * the input gradient up to 16: forward_w_in_place has the figures),
     * which are bound by reading W, while at 1024 rows it measured slower
     * (16-core Xeon: 0.62-0.90x of the packed path,
     * docs/measurements/host16-2026-11-27c). Either way a kernel that
     * disagrees with the packed one on dpt_ukernel_s_agrees' product is
     * not used. */
    const char *wip = getenv("DPT_W_IN_PLACE");
    const int wip_off = wip && strcmp(wip, "0") == 0, wip_on = wip && strcmp(wip, "1") == 0;
    DptUKernelS ks = NULL;
    if (has512 && !(force && strcmp(force, "avx2") == 0)) {
        dpt_ukernel = ukernel_avx512_u4;
        dpt_ukernel_name = "avx512";
        if (__builtin_cpu_supports("avx512dq")) {
            dpt_fixed_add = fixed_add_avx512;
            dpt_ufixed = ufixed_avx512;
        }
        ks = wip_off ? NULL : ukernel_avx512_s;
        dpt_ukernel_s_any = wip_on;
    } else if (has2) {
        dpt_ukernel = ukernel_avx2;
        dpt_ukernel_name = "avx2";
        dpt_ufixed = ufixed_avx2;
        dpt_ufixed_bias = MAGIC_BITS;
        dpt_umr = DPT_MR_AVX2;
        dpt_unr = DPT_NR_AVX2;
        ks = wip_off ? NULL : ukernel_avx2_s;
        dpt_ukernel_s_any = 1;
    }
    if (ks && dpt_ukernel_s_agrees(ks)) {
        dpt_ukernel_s = ks;
        if (ks == ukernel_avx512_s && dpt_ukernel_s_half_agrees(ukernel_avx512_s_half))
            dpt_ukernel_s_half = ukernel_avx512_s_half;
    }
#else
    (void)force;
#endif
}

