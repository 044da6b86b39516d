/* What the benchmark programs of tools/bench share: a monotonic clock and
 * the median of a set of timings (sorted in place). Header-only: each
 * program is one file, some without dptrain's library. */
#ifndef DPT_BENCH_UTIL_H
#define DPT_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (its upper one for even n); v is sorted. */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    return v[n / 2];
}

#endif
