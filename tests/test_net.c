/* Backprop against central differences for every hidden x output x cost
 * combination the CLI accepts; layout of the parameter buffer. */
#include <math.h>

#include "testutil.h"
#include "dptrain/loss.h"
#include "dptrain/net.h"

/* Cost summed over the rows; *pattern gets a hash of which hidden units are
 * active (> 0), so that a ReLU kink crossed by the difference is noticed. */
static double total_cost(DptWork *w, const DptArch *a, const float *p, size_t n, uint64_t *pattern)
{
    dpt_net_forward(w, a, p, n);
    uint64_t h = DPT_HASH_INIT;
    for (int l = 1; l < a->n_layers && a->hidden == DPT_ACT_RELU; l++)
        for (size_t i = 0; i < n * (size_t)a->sizes[l]; i++) {
            unsigned char on = w->act[l][i] > 0;
            h = dpt_hash_bytes(h, &on, 1);
        }
    *pattern = h;
    return dpt_net_loss(w, a, n, 0, NULL);
}

/* Targets suited to the cost: one-hot for softmax, in [0, 1] for sigmoid, any for linear. */
static void make_targets(float *y, int32_t *cls, size_t n, size_t k, DptAct out, uint64_t seed)
{
    DptRng r;
    dpt_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        cls[i] = (int32_t)dpt_rng_below(&r, k);
        for (size_t j = 0; j < k; j++) {
            if (out == DPT_ACT_SOFTMAX)
                y[i * k + j] = (size_t)cls[i] == j ? 1.0f : 0.0f;
            else if (out == DPT_ACT_SIGMOID)
                y[i * k + j] = (float)dpt_rng_uniform(&r);
            else
                y[i * k + j] = (float)(2.0 * dpt_rng_uniform(&r) - 1.0);
        }
    }
}

static void check_combination(DptAct hidden, DptAct output, DptCost cost, double *worst)
{
    const int sizes[] = {4, 6, 5, 3};
    const size_t n = 5;
    DptArch a;
    DptWork w;
    assert_int_equal(dpt_arch_init(&a, sizes, 4, hidden, output, cost), DPT_OK);
    assert_int_equal(dpt_work_init(&w, &a, n), DPT_OK);
    float *p = malloc(a.n_params * 4), *g = malloc(a.n_params * 4);
    dpt_net_init_params(p, &a, DPT_INIT_XAVIER, 7);
    /* non-zero biases too */
    for (int l = 0; l < a.n_layers; l++)
        tu_fill(p + a.b_off[l], (size_t)sizes[l + 1], 50 + (uint64_t)l, -0.5f, 0.5f);
    tu_fill(w.act[0], n * 4, 3, -1, 1);
    make_targets(w.y, w.cls, n, 3, output, 9);
    float *x0 = malloc(n * 4 * 4);
    memcpy(x0, w.act[0], n * 4 * 4);
    dpt_net_forward(&w, &a, p, n);
    dpt_net_loss(&w, &a, n, 1, NULL);
    dpt_net_backward(&w, &a, p, g, n, 0, NULL, NULL);
    const float h = hidden == DPT_ACT_RELU ? 2e-3f : 1e-2f;
    uint64_t pat0, patp, patm;
    memcpy(w.act[0], x0, n * 4 * 4);
    total_cost(&w, &a, p, n, &pat0);
    int skipped = 0;
    for (size_t i = 0; i < a.n_params; i++) {
        float keep = p[i];
        p[i] = keep + h;
        memcpy(w.act[0], x0, n * 4 * 4);
        double cp = total_cost(&w, &a, p, n, &patp);
        p[i] = keep - h;
        memcpy(w.act[0], x0, n * 4 * 4);
        double cm = total_cost(&w, &a, p, n, &patm);
        p[i] = keep;
        if (patp != pat0 || patm != pat0) {
            /* a ReLU switched inside [p-h, p+h]: the difference quotient is not a derivative */
            skipped++;
            continue;
        }
        double fd = (cp - cm) / (2.0 * ((double)(keep + h) - (double)keep));
        double err = fabs(fd - g[i]) / (1e-3 + fabs(fd));
        if (err > *worst)
            *worst = err;
        if (err > 2e-2) {
            print_error("hidden %s output %s cost %s: parameter %zu backprop %.7g, central difference %.7g\n",
                        dpt_act_name(hidden), dpt_act_name(output), dpt_cost_name(cost), i, g[i], fd);
            fail();
        }
    }
    if (skipped) print_message("hidden %s output %s cost %s: %d of %zu parameters skipped (ReLU kink within h)\n", dpt_act_name(hidden), dpt_act_name(output), dpt_cost_name(cost), skipped, a.n_params);
    assert_true(skipped <= (int)a.n_params / 4);
    free(x0);
    free(p);
    free(g);
    dpt_work_free(&w);
}

static void test_gradient_check_all_combinations(void **state)
{
    (void)state;
    const DptAct hiddens[] = {DPT_ACT_SIGMOID, DPT_ACT_RELU, DPT_ACT_TANH, DPT_ACT_LINEAR};
    const DptAct outputs[] = {DPT_ACT_SIGMOID, DPT_ACT_SOFTMAX, DPT_ACT_LINEAR};
    const DptCost costs[] = {DPT_COST_MSE, DPT_COST_BCE, DPT_COST_CCE};
    int checked = 0;
    double worst = 0;
    for (int h = 0; h < 4; h++)
        for (int o = 0; o < 3; o++)
            for (int c = 0; c < 3; c++) {
                if (dpt_loss_check(outputs[o], costs[c]))
                    continue;
                check_combination(hiddens[h], outputs[o], costs[c], &worst);
                checked++;
            }
    /* sigmoid|softmax|linear x mse, sigmoid x bce, sigmoid|softmax x cce: 6 pairs x 4 hidden */
    assert_int_equal(checked, 24);
    print_message("24 combinations, worst relative error %.2e\n", worst);
}

static void test_layout(void **state)
{
    (void)state;
    const int sizes[] = {784, 100, 10};
    DptArch a;
    assert_int_equal(dpt_arch_init(&a, sizes, 3, DPT_ACT_SIGMOID, DPT_ACT_SOFTMAX, DPT_COST_CCE), DPT_OK);
    assert_int_equal(a.n_params, 784 * 100 + 100 + 100 * 10 + 10);
    assert_int_equal(a.w_off[0], 0);
    assert_int_equal(a.b_off[0], 78400);
    assert_int_equal(a.w_off[1], 78500);
    assert_int_equal(a.b_off[1], 79500);
    /* rejected combinations */
    assert_int_equal(dpt_arch_init(&a, sizes, 3, DPT_ACT_SIGMOID, DPT_ACT_LINEAR, DPT_COST_BCE), DPT_EUSAGE);
    assert_int_equal(dpt_arch_init(&a, sizes, 3, DPT_ACT_SIGMOID, DPT_ACT_SOFTMAX, DPT_COST_BCE), DPT_EUSAGE);
    assert_int_equal(dpt_arch_init(&a, sizes, 3, DPT_ACT_SIGMOID, DPT_ACT_LINEAR, DPT_COST_CCE), DPT_EUSAGE);
    assert_int_equal(dpt_arch_init(&a, sizes, 1, DPT_ACT_SIGMOID, DPT_ACT_SOFTMAX, DPT_COST_CCE), DPT_EUSAGE);
    dpt_err_clear();
}

/* Nielsen's initialisation: weights N(0, 1/n_in), biases N(0, 1). */
static void test_init_statistics(void **state)
{
    (void)state;
    const int sizes[] = {400, 300, 2};
    DptArch a;
    assert_int_equal(dpt_arch_init(&a, sizes, 3, DPT_ACT_SIGMOID, DPT_ACT_SOFTMAX, DPT_COST_CCE), DPT_OK);
    float *p = malloc(a.n_params * 4), *q = malloc(a.n_params * 4);
    dpt_net_init_params(p, &a, DPT_INIT_NIELSEN, 3);
    dpt_net_init_params(q, &a, DPT_INIT_NIELSEN, 3);
    assert_memory_equal(p, q, a.n_params * 4);
    double s = 0, s2 = 0;
    size_t m = 400 * 300;
    for (size_t i = 0; i < m; i++) {
        s += p[i];
        s2 += (double)p[i] * p[i];
    }
    assert_true(fabs(s / m) < 0.005);
    assert_float_equal(s2 / m, 1.0 / 400, 0.05 / 400);
    double b2 = 0;
    for (size_t i = 0; i < 300; i++)
        b2 += (double)p[a.b_off[0] + i] * p[a.b_off[0] + i];
    assert_float_equal(b2 / 300, 1.0, 0.2);
    dpt_net_init_params(q, &a, DPT_INIT_HE, 3);
    s2 = 0;
    for (size_t i = 0; i < m; i++)
        s2 += (double)q[i] * q[i];
    assert_float_equal(s2 / m, 2.0 / 400, 0.1 / 400);
    free(p);
    free(q);
}

int main(void)
{
    assert_int_equal(dpt_kern_init(), DPT_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_check_all_combinations),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_init_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
