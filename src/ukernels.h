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

enum { DPT_MR = 8, DPT_NR = 32 };   /* the register tile */

/* c[MR][NR] (row stride ldc) := (accumulate ? c : 0) + sum_k a[k][:] (outer) b[k][:] */
typedef void (*DptUKernel)(size_t kc, const float *restrict a, const float *restrict b, float *restrict c, size_t ldc,
                           int accumulate);
/* c[0..n) (+)= round(scale * t[0..n)) (to nearest even, as llrint). */
typedef void (*DptFixedFn)(int64_t *restrict c, const float *restrict t, size_t n, double scale);

extern DptUKernel dpt_ukernel;        /* NULL until chosen */
extern const char *dpt_ukernel_name;
extern DptFixedFn dpt_fixed_add, dpt_fixed_set;

/* Chooses the best micro-kernel this CPU runs, or force ("generic",
 * "avx2", "avx512") where it can. */
void dpt_ukernel_choose(const char *force);

static inline int64_t dpt_to_fixed(float v, double scale) { return (int64_t)llrint((double)v * scale); }

#endif
