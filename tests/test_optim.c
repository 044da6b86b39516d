/* One and two steps of each optimiser on a single weight, against values
 * worked out by hand from the update rules in optim.h.
 * Start w = 1, gradients g1 = 0.5 then g2 = -0.25, eta = 0.1, alpha = 0.9,
 * beta1 = 0.9, beta2 = 0.999, eps = 1e-8, rho = 0.9. */
#include <math.h>

#include "testutil.h"
#include "dptrain/optim.h"

static void run2(DptOptKind kind, double *w1, double *w2)
{
    DptOptHyper h = {.kind = kind, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .decay = 0.9};
    DptOptim o;
    assert_int_equal(dpt_optim_init(&o, &h, 1), DPT_OK);
    float w = 1.0f, g1 = 0.5f, g2 = -0.25f;
    dpt_optim_step(&o, &w, &g1, 0.1);
    *w1 = w;
    dpt_optim_step(&o, &w, &g2, 0.1);
    *w2 = w;
    assert_int_equal(o.t, 2);
    dpt_optim_free(&o);
}

#define CHECK(kind, e1, e2)                   \
    do {                                      \
        double w1, w2;                        \
        run2(kind, &w1, &w2);                 \
        assert_float_equal(w1, e1, 2e-7);     \
        assert_float_equal(w2, e2, 2e-7);     \
    } while (0)

/* w1 = 1 - 0.1*0.5 = 0.95; w2 = 0.95 + 0.1*0.25 = 0.975 */
static void test_sgd(void **s) { (void)s; CHECK(DPT_OPT_SGD, 0.95, 0.975); }

/* v1 = -0.05, w1 = 0.95; v2 = 0.9*(-0.05) + 0.025 = -0.02, w2 = 0.93 */
static void test_momentum(void **s) { (void)s; CHECK(DPT_OPT_MOMENTUM, 0.95, 0.93); }

/* v1 = -0.05, w1 = 1 + 0.9*(-0.05) - 0.05 = 0.905;
 * v2 = -0.02, w2 = 0.905 + 0.9*(-0.02) + 0.025 = 0.912 */
static void test_nesterov(void **s) { (void)s; CHECK(DPT_OPT_NESTEROV, 0.905, 0.912); }

/* G1 = 0.25, w1 = 1 - 0.1*0.5/(0.5 + 1e-8) = 0.900000002;
 * G2 = 0.3125, w2 = w1 + 0.1*0.25/(sqrt(0.3125) + 1e-8) = 0.94472136075 */
static void test_adagrad(void **s) { (void)s; CHECK(DPT_OPT_ADAGRAD, 0.900000002, 0.94472136075); }

/* E1 = 0.1*0.25 = 0.025, w1 = 1 - 0.05/sqrt(0.025) = 0.68377225398;
 * E2 = 0.0225 + 0.00625 = 0.02875, w2 = w1 + 0.025/sqrt(0.02875) = 0.83121420144 */
static void test_rmsprop(void **s) { (void)s; CHECK(DPT_OPT_RMSPROP, 0.68377225398, 0.83121420144); }

/* m1 = 0.05, v1 = 2.5e-4, m^ = 0.5, v^ = 0.25: w1 = 1 - 0.1*0.5/(0.5 + 1e-8) = 0.900000002;
 * m2 = 0.045 - 0.025 = 0.02, v2 = 2.4975e-4 + 6.25e-5 = 3.1225e-4;
 * m^ = 0.02/0.19, v^ = 3.1225e-4/0.001999: w2 = w1 - 0.1*0.10526316/0.39522538 = 0.87336629871 */
static void test_adam(void **s) { (void)s; CHECK(DPT_OPT_ADAM, 0.900000002, 0.87336629871); }

/* mu_t = 0.9 (1 - 0.5 * 0.96^(0.004 t)): mu_1 = 0.45007347, mu_2 = 0.45014694, mu_3 = 0.45022038.
 * t=1: m = 0.05, v^ = 0.25; w1 = 1 - 0.1 [(1-mu_1)/(1-mu_1) 0.5 + mu_2/(1-mu_1 mu_2) 0.05] / 0.5
 *      = 0.89435482428
 * t=2: m = 0.02, v^ = 3.1225e-4/0.001999;
 *      w2 = w1 - 0.1 [(1-mu_2)/(1-mu_1 mu_2) (-0.25) + mu_3/(1-mu_1 mu_2 mu_3) 0.02] / sqrt(v^)
 *      = 0.93546579616 */
static void test_nadam(void **s) { (void)s; CHECK(DPT_OPT_NADAM, 0.89435482428, 0.93546579616); }

static void test_names(void **s)
{
    (void)s;
    for (int k = 0; k < 7; k++)
        assert_int_equal(dpt_optim_parse(dpt_optim_name((DptOptKind)k)), k);
    assert_int_equal(dpt_optim_parse("adamw"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),     cmocka_unit_test(test_momentum), cmocka_unit_test(test_nesterov),
        cmocka_unit_test(test_adagrad), cmocka_unit_test(test_rmsprop),  cmocka_unit_test(test_adam),
        cmocka_unit_test(test_nadam),   cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
