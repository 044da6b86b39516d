/* Costs and output errors on hand-worked cases; saturated outputs stay finite. */
#include <math.h>

#include "testutil.h"
#include "dptrain/loss.h"

static void sigmoid(const float *z, float *a, int k)
{
    for (int i = 0; i < k; i++)
        a[i] = (float)(1.0 / (1.0 + exp(-(double)z[i])));
}

static void test_mse(void **s)
{
    (void)s;
    /* C = 1/2 ((0.2-0)^2 + (0.7-1)^2) = 0.065 (linear outputs: delta = a - y) */
    float a[2] = {0.2f, 0.7f}, y[2] = {0.0f, 1.0f}, d[2];
    assert_float_equal(dpt_loss_sample(d, a, a, y, 2, DPT_ACT_LINEAR, DPT_COST_MSE), 0.065, 1e-7);
    assert_float_equal(d[0], 0.2, 1e-7);
    assert_float_equal(d[1], -0.3, 1e-7);
    /* sigmoid: delta = (a - y) a (1 - a) */
    dpt_loss_sample(d, a, a, y, 2, DPT_ACT_SIGMOID, DPT_COST_MSE);
    assert_float_equal(d[0], 0.2 * 0.2 * 0.8, 1e-7);
    assert_float_equal(d[1], -0.3 * 0.7 * 0.3, 1e-7);
}

static void test_cross_entropy(void **s)
{
    (void)s;
    /* sigmoid units, z = (0, 2), y = (1, 0): C = -ln s(0) - ln(1 - s(2)) = ln 2 + ln(1 + e^2) */
    float z[2] = {0.0f, 2.0f}, a[2], y[2] = {1.0f, 0.0f}, d[2];
    sigmoid(z, a, 2);
    double c = dpt_loss_sample(d, a, z, y, 2, DPT_ACT_SIGMOID, DPT_COST_BCE);
    assert_float_equal(c, log(2.0) + log(1.0 + exp(2.0)), 1e-6);
    assert_float_equal(d[0], a[0] - 1.0, 1e-7);
    assert_float_equal(d[1], a[1], 1e-7);
    /* cce with sigmoid outputs is the sum of the binary terms: the same */
    assert_float_equal(dpt_loss_sample(NULL, a, z, y, 2, DPT_ACT_SIGMOID, DPT_COST_CCE), c, 1e-12);
    /* softmax, z = (1, 2, 3), y = e_3: C = ln(1 + e^-1 + e^-2) */
    float z3[3] = {1, 2, 3}, a3[3], y3[3] = {0, 0, 1}, d3[3];
    double sum = exp(1.0) + exp(2.0) + exp(3.0);
    for (int i = 0; i < 3; i++)
        a3[i] = (float)(exp((double)z3[i]) / sum);
    assert_float_equal(dpt_loss_sample(d3, a3, z3, y3, 3, DPT_ACT_SOFTMAX, DPT_COST_CCE),
                       log(1.0 + exp(-1.0) + exp(-2.0)), 1e-6);
    for (int i = 0; i < 3; i++)
        assert_float_equal(d3[i], a3[i] - y3[i], 1e-7);
}

static void test_saturated_outputs_are_finite(void **s)
{
    (void)s;
    /* a sigmoid output saturated at 1 with target 0: C = softplus(100) = 100, not inf */
    float z[1] = {100.0f}, a[1], y[1] = {0.0f};
    sigmoid(z, a, 1);
    assert_true(a[0] == 1.0f);
    double c = dpt_loss_sample(NULL, a, z, y, 1, DPT_ACT_SIGMOID, DPT_COST_BCE);
    assert_true(isfinite(c));
    assert_float_equal(c, 100.0, 1e-9);
    /* softmax with the right class at probability e^-200 */
    float z2[2] = {-100.0f, 100.0f}, a2[2] = {0.0f, 1.0f}, y2[2] = {1.0f, 0.0f};
    c = dpt_loss_sample(NULL, a2, z2, y2, 2, DPT_ACT_SOFTMAX, DPT_COST_CCE);
    assert_true(isfinite(c));
    assert_float_equal(c, 200.0, 1e-9);
}

static void test_checks_and_predict(void **s)
{
    (void)s;
    assert_null(dpt_loss_check(DPT_ACT_SOFTMAX, DPT_COST_CCE));
    assert_null(dpt_loss_check(DPT_ACT_LINEAR, DPT_COST_MSE));
    assert_non_null(dpt_loss_check(DPT_ACT_SOFTMAX, DPT_COST_BCE));
    assert_non_null(dpt_loss_check(DPT_ACT_LINEAR, DPT_COST_CCE));
    float a[4] = {0.1f, 0.7f, 0.7f, 0.2f};
    assert_int_equal(dpt_loss_predict(a, 4), 1);
    float b[1] = {0.6f};
    assert_int_equal(dpt_loss_predict(b, 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_saturated_outputs_are_finite),
        cmocka_unit_test(test_checks_and_predict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
