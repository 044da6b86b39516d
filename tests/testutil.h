/* Helpers shared by the tests: seeded random fills, a scratch directory and
 * small synthetic datasets. Header-only; each test program includes it once. */
#ifndef DPT_TESTUTIL_H
#define DPT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dptrain/data.h"
#include "dptrain/rng.h"

static inline void tu_fill(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    DptRng r;
    dpt_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)dpt_rng_uniform(&r);
}

static char tu_dir_name[256];

static inline void tu_cleanup(void)
{
    char cmd[300];
    if (tu_dir_name[0] && !getenv("DPT_KEEP_TEST_FILES")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_dir_name);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tu_dir_name);
    }
}

/* A directory for this test program's files, under the current directory,
 * removed at exit (unless DPT_KEEP_TEST_FILES is set). */
static inline const char *tu_dir(void)
{
    if (!tu_dir_name[0]) {
        snprintf(tu_dir_name, sizeof tu_dir_name, "tmp-%ld", (long)getpid());
        mkdir(tu_dir_name, 0755);
        atexit(tu_cleanup);
    }
    return tu_dir_name;
}

static inline const char *tu_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", tu_dir(), name);
    return p;
}

/* A synthetic classification set: n samples of d features in [-1, 1], labels
 * 0..k-1 from a fixed random linear rule (learnable), float x. Train and test. */
static inline void tu_make_dataset(const char *path, size_t n, size_t d, size_t k, uint64_t seed)
{
    float *x = malloc(n * d * sizeof *x), *w = malloc(d * k * sizeof *w);
    int32_t *y = malloc(n * sizeof *y);
    tu_fill(x, n * d, seed, -1.0f, 1.0f);
    tu_fill(w, d * k, seed + 1, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) {
        size_t best = 0;
        float bv = -1e30f;
        for (size_t c = 0; c < k; c++) {
            float s = 0;
            for (size_t j = 0; j < d; j++)
                s += x[i * d + j] * w[c * d + j];
            if (s > bv) {
                bv = s;
                best = c;
            }
        }
        y[i] = (int32_t)best;
    }
    size_t nt = n / 4 ? n / 4 : 1;
    DptSplitData sp[2] = {
        {.name = "train", .n = n, .d = d, .x = x, .y_labels = 1, .lab = y},
        {.name = "test", .n = nt, .d = d, .x = x, .y_labels = 1, .lab = y},
    };
    assert_int_equal(dpt_data_write(path, sp, 2, "synthetic test set"), DPT_OK);
    free(x);
    free(w);
    free(y);
}

#endif
