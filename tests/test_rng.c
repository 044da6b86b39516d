/* Our generator: reproducible streams, unbiased bounded integers, true permutations. */
#include <math.h>

#include "testutil.h"
#include "dptrain/rng.h"

static void test_streams(void **s)
{
    (void)s;
    DptRng a, b, c;
    dpt_rng_stream(&a, 42, DPT_STREAM_SHUFFLE, 3);
    dpt_rng_stream(&b, 42, DPT_STREAM_SHUFFLE, 3);
    dpt_rng_stream(&c, 42, DPT_STREAM_SHUFFLE, 4);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = dpt_rng_next(&a);
        assert_true(x == dpt_rng_next(&b));
        differ += x != dpt_rng_next(&c);
    }
    assert_true(differ > 95);
    /* xoshiro256** reference: state {1, 2, 3, 4} gives 11520, 0, 1509978240, 1215971899390074240 */
    DptRng r = {{1, 2, 3, 4}};
    assert_true(dpt_rng_next(&r) == 11520ULL);
    assert_true(dpt_rng_next(&r) == 0ULL);
    assert_true(dpt_rng_next(&r) == 1509978240ULL);
    assert_true(dpt_rng_next(&r) == 1215971899390074240ULL);
}

static void test_permutation(void **s)
{
    (void)s;
    enum { N = 1000 };
    uint32_t p[N];
    unsigned char seen[N] = {0};
    DptRng r;
    dpt_rng_seed(&r, 5);
    dpt_rng_permutation(&r, p, N);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        assert_true(p[i] < N);
        assert_false(seen[p[i]]);
        seen[p[i]] = 1;
        moved += p[i] != (uint32_t)i;
    }
    assert_true(moved > 900);
}

static void test_distributions(void **s)
{
    (void)s;
    DptRng r;
    dpt_rng_seed(&r, 9);
    long counts[7] = {0};
    double sum = 0, sum2 = 0;
    enum { M = 70000 };
    for (int i = 0; i < M; i++) {
        counts[dpt_rng_below(&r, 7)]++;
        double z = dpt_rng_normal(&r);
        sum += z;
        sum2 += z * z;
    }
    for (int i = 0; i < 7; i++)
        assert_true(labs(counts[i] - M / 7) < 500); /* about 5 standard deviations */
    assert_true(fabs(sum / M) < 0.02);
    assert_true(fabs(sum2 / M - 1.0) < 0.03);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_distributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
