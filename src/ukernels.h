/*
 * The kernels module's micro-kernels and fixed-point conversions, chosen at
 * run time (ukernels.c); a private header of kernels.c and ukernels.c.
 */
#ifndef DPT_UKERNELS_H
#define DPT_UKERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DPT_X86 1
#endif

/* The register tile: at most DPT_MR x DPT_NR (generic and AVX-512: 8 x 32;
 * AVX2: 6 x 16); the chosen kernel's is dpt_umr x dpt_unr. The tile's shape
 * does not change a result: every kernel reduces each element over k in
 * the same order. */
enum { DPT_MR = 8, DPT_NR = 32, DPT_MR_AVX2 = 6, DPT_NR_AVX2 = 16, DPT_NR_HALF = 16 };

/* c[mr][nr] (row stride ldc) := (accumulate ? c : 0) + sum_k a[k][:] (outer) b[k][:],
 * from panels a[kc][mr] and b[kc][nr] */
typedef void (*DptUKernel)(size_t kc, const float *restrict a, const float *restrict b, float *restrict c, size_t ldc,
                           int accumulate);
/* c[0..n) (+)= round(scale * t[0..n)) (to nearest even, as llrint). */
typedef void (*DptFixedFn)(int64_t *restrict c, const float *restrict t, size_t n, double scale);

/* The fixed-point micro-kernel of deterministic mode: one block of kc rows,
 *   q[r*ldq + j] := (add ? q[r*ldq + j] : 0) + llrint(scale * c[r][j]) + dpt_ufixed_bias - sub
 * (modulo 2^64), c the dpt_umr x dpt_unr float tile that dpt_ukernel computes
 * from the same panels (the same operations in the same order: the same
 * bits); scale is a power of two (so that scale * c is exact). lim is a
 * float at most 2^51 / scale: tiles holding a value that large take the
 * scalar path. tile is MR x NR floats of scratch. dpt_ufixed_bias is the
 * kernel's: the AVX2 kernel adds each value with the bits of its rounding
 * constant still on it, and the caller takes them all off at once (sub =
 * the number of blocks summed into q, times dpt_ufixed_bias, in one of the
 * calls); 0 for the others. */
typedef void (*DptUFixed)(size_t kc, const float *restrict a, const float *restrict b, int64_t *restrict q,
                          size_t ldq, int add, uint64_t sub, double scale, float lim, float *restrict tile);

/* The same product from operands in place (no packing): A's row r at
 * a + r * a_rs advancing a_ks per k, B's rows ldb apart; NULL where the
 * chosen kernel has no such variant (then everything is packed). */
typedef void (*DptUKernelS)(size_t kc, const float *restrict a, size_t a_rs, size_t a_ks, const float *restrict b,
                            size_t ldb, float *restrict c, size_t ldc, int accumulate);

extern DptUKernel dpt_ukernel;        /* NULL until chosen */
extern DptUKernelS dpt_ukernel_s;
/* dpt_ukernel_s's tile cut to its first DPT_NR_HALF columns (AVX-512 only;
 * NULL elsewhere): for products of that many columns or fewer. */
extern DptUKernelS dpt_ukernel_s_half;
extern int dpt_ukernel_s_any;         /* dpt_ukernel_s serves every batch, not only small products */
extern DptUFixed dpt_ufixed;
extern uint64_t dpt_ufixed_bias;
extern int dpt_umr, dpt_unr;          /* the chosen kernel's tile */
extern const char *dpt_ukernel_name;
extern DptFixedFn dpt_fixed_add, dpt_fixed_set;
/* dst[i] = (float)((double)q[i] * inv) (see dpt_kern_fixed_to_float). */
typedef void (*DptToFloatFn)(float *restrict dst, const int64_t *restrict q, size_t n, double inv);
extern DptToFloatFn dpt_fixed_to_float;

/* Whether ks (an in-place variant of dpt_ukernel) gives dpt_ukernel's bits
 * on a small product: A's rows in place and as a packed panel, B's rows at
 * a stride, storing and accumulating. dpt_ukernel_choose uses an in-place
 * kernel only where it agrees. */
int dpt_ukernel_s_agrees(DptUKernelS ks);
/* The same for a kernel that computes only the tile's first DPT_NR_HALF
 * columns (and must leave the others as they were). */
int dpt_ukernel_s_half_agrees(DptUKernelS ks);

/* Chooses the best micro-kernel this CPU runs, or force ("generic",
 * "avx2", "avx512") where it can. */
void dpt_ukernel_choose(const char *force);

/* The largest float f with f * scale < 2^51 (the AVX2 rounding's range);
 * +inf when every float qualifies. */
float dpt_fixed_limit(double scale);

static inline int64_t dpt_to_fixed(float v, double scale) { return (int64_t)llrint((double)v * scale); }

/* a + b modulo 2^64, as the vector adds do. The sums of a product's values
 * stay far inside int64 (the scale sees to it), but an edge tile also
 * computes the columns past the operand's edge, from a packed copy's
 * padding, which need not start zeroed: whatever it holds, those columns'
 * sums (thrown away) must not be undefined behaviour. */
static inline int64_t dpt_fixed_sum(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

#endif
