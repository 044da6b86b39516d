/* One and two steps of each optimiser on a single weight, against values
 * worked out by hand from the update rules in optim.h.
 * Start w = 1, gradients g1 = 0.5 then g2 = -0.25, eta = 0.1, alpha = 0.9,
 * beta1 = 0.9, beta2 = 0.999, eps = 1e-8, rho = 0.9. */
#include <hdf5.h>
#include <math.h>
#include <omp.h>

#include "testutil.h"
#include "dptrain/kernels.h"
#include "dptrain/net.h"
#include "dptrain/optim.h"

#ifndef DPT_TEST_DATA
#define DPT_TEST_DATA "tests/data"
#endif

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

/* ---- against the independent reference (tools/fixtures/make_optim_reference.py) ----
 * Our float32 net and optimiser, 50 full-batch steps, compared after every
 * step with torch (nadam: a NumPy transcription of Dozat 2016). The error of a
 * parameter is |ours - ref| / max(|ref|, 0.1): relative, with a floor so that
 * parameters crossing zero are judged on the scale of the weights. */
static void read_f32(hid_t f, const char *name, float *dst)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0);
    H5Dclose(d);
}

static double read_attr(hid_t f, const char *group, const char *name)
{
    double v = 0;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    hid_t a = H5Aopen(g, name, H5P_DEFAULT);
    assert_true(a >= 0);
    H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Gclose(g);
    return v;
}

static void test_against_reference(void **state)
{
    (void)state;
    enum { N = 12, STEPS = 50 };
    const int sizes[] = {4, 5, 3};
    DptArch a;
    DptWork w;
    assert_int_equal(dpt_arch_init(&a, sizes, 3, DPT_ACT_SIGMOID, DPT_ACT_SOFTMAX, DPT_COST_CCE), DPT_OK);
    assert_int_equal(dpt_work_init(&w, &a, N), DPT_OK);
    size_t n = a.n_params;
    hid_t f = H5Fopen(DPT_TEST_DATA "/optim_reference.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    float x[N * 4], init[64], *ref = malloc(STEPS * n * sizeof(float)), *p = malloc(n * 4), *g = malloc(n * 4);
    int32_t y[N];
    assert_int_equal(n, 43);
    read_f32(f, "inputs/x", x);
    hid_t dy = H5Dopen2(f, "inputs/y", H5P_DEFAULT);
    H5Dread(dy, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
    H5Dclose(dy);
    read_f32(f, "init", init);
    const char *names[] = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "nadam"};
    for (int k = 0; k < 7; k++) {
        char path[64];
        snprintf(path, sizeof path, "%s/params", names[k]);
        read_f32(f, path, ref);
        DptOptHyper h = {.kind = (DptOptKind)dpt_optim_parse(names[k]),
                         .momentum = read_attr(f, names[k], "momentum"),
                         .beta1 = read_attr(f, names[k], "beta1"),
                         .beta2 = read_attr(f, names[k], "beta2"),
                         .eps = read_attr(f, names[k], "eps"),
                         .decay = read_attr(f, names[k], "decay")};
        double lr = read_attr(f, names[k], "lr");
        DptOptim o;
        assert_int_equal(dpt_optim_init(&o, &h, n), DPT_OK);
        memcpy(p, init, n * 4);
        double worst = 0;
        int worst_step = 0;
        for (int s = 0; s < STEPS; s++) {
            memcpy(w.act[0], x, sizeof x);
            for (int r = 0; r < N; r++) {
                for (int j = 0; j < 3; j++)
                    w.y[r * 3 + j] = y[r] == j ? 1.0f : 0.0f;
                w.cls[r] = y[r];
            }
            dpt_net_forward(&w, &a, p, N);
            dpt_net_loss(&w, &a, N, 1, NULL);
            dpt_net_backward(&w, &a, p, g, N, 0, NULL, NULL);
            for (size_t i = 0; i < n; i++)
                g[i] = g[i] / (float)N;
            dpt_optim_step(&o, p, g, lr);
            for (size_t i = 0; i < n; i++) {
                double r0 = ref[(size_t)s * n + i];
                double e = fabs(p[i] - r0) / fmax(fabs(r0), 0.1);
                if (e > worst) {
                    worst = e;
                    worst_step = s + 1;
                }
            }
        }
        print_message("%-9s max error %.2e (step %d)\n", names[k], worst, worst_step);
        assert_true(worst <= 1e-5);
        dpt_optim_free(&o);
    }
    H5Fclose(f);
    free(ref);
    free(p);
    free(g);
    dpt_work_free(&w);
}

/* Schedules worked by hand: eta = 1, 10 steps per epoch, 100 steps. */
static void test_schedules(void **state)
{
    (void)state;
    DptSchedule s = {.kind = DPT_SCHED_CONSTANT, .lr = 1.0, .gamma = 0.5, .step_epochs = 3};
    assert_float_equal(dpt_schedule_lr(&s, 57, 10, 100), 1.0, 0);
    s.kind = DPT_SCHED_STEP; /* epochs 0-2: 1, 3-5: 0.5, 6-8: 0.25 */
    assert_float_equal(dpt_schedule_lr(&s, 29, 10, 100), 1.0, 1e-15);
    assert_float_equal(dpt_schedule_lr(&s, 30, 10, 100), 0.5, 1e-15);
    assert_float_equal(dpt_schedule_lr(&s, 61, 10, 100), 0.25, 1e-15);
    s.kind = DPT_SCHED_COSINE;
    s.lr_min = 0.1; /* first step eta, last step lr_min, half way the mean */
    assert_float_equal(dpt_schedule_lr(&s, 0, 10, 101), 1.0, 1e-15);
    assert_float_equal(dpt_schedule_lr(&s, 50, 10, 101), 0.55, 1e-15);
    assert_float_equal(dpt_schedule_lr(&s, 100, 10, 101), 0.1, 1e-15);
    /* warm-up over 2 epochs (20 steps) from 0: step k has (k + 1) / 20 */
    s.kind = DPT_SCHED_CONSTANT;
    s.warmup_epochs = 2;
    assert_float_equal(dpt_schedule_lr(&s, 0, 10, 100), 0.05, 1e-15);
    assert_float_equal(dpt_schedule_lr(&s, 9, 10, 100), 0.5, 1e-15);
    assert_float_equal(dpt_schedule_lr(&s, 19, 10, 100), 1.0, 1e-15);
    assert_float_equal(dpt_schedule_lr(&s, 20, 10, 100), 1.0, 1e-15);
    s.warmup_from = 0.2; /* from 0.2: 0.2 + 0.8 (k + 1) / 20 */
    assert_float_equal(dpt_schedule_lr(&s, 4, 10, 100), 0.4, 1e-15);
}

/* The gradient norm: exact on a hand case, the same bits for 1 and 2 threads. */
static void test_norm(void **state)
{
    (void)state;
    float v[3] = {3, 0, 4};
    assert_float_equal(dpt_optim_norm(v, 3), 5.0, 0);
    size_t n = 300001;
    float *g = malloc(n * 4);
    tu_fill(g, n, 4, -1, 1);
    omp_set_num_threads(1);
    double a = dpt_optim_norm(g, n);
    omp_set_num_threads(2);
    double b = dpt_optim_norm(g, n);
    assert_memory_equal(&a, &b, sizeof a);
    free(g);
}

/* The update rules written out element by element, in this file's own
 * build (x86-64's baseline), for test_update_bitwise. */
static void ref_update(const DptOptHyper *h, int64_t t, double mu_prod, float lr, float count, float *w,
                       const float *g, float *s0, float *s1, size_t n)
{
    const float a = (float)h->momentum, eps = (float)h->eps, rho = (float)h->decay, rho1 = (float)(1.0 - h->decay);
    const float b1 = (float)h->beta1, b2 = (float)h->beta2, m1 = (float)(1.0 - h->beta1), m2 = (float)(1.0 - h->beta2);
    const float c1 = (float)(1.0 / (1.0 - pow(h->beta1, (double)t)));
    const float c2 = (float)(1.0 / (1.0 - pow(h->beta2, (double)t)));
    const double mu_t = h->beta1 * (1.0 - 0.5 * pow(0.96, 0.004 * (double)t));
    const double mu_next = h->beta1 * (1.0 - 0.5 * pow(0.96, 0.004 * (double)(t + 1)));
    const double prod = mu_prod * mu_t;
    const float cg = (float)((1.0 - mu_t) / (1.0 - prod)), cm = (float)(mu_next / (1.0 - prod * mu_next));
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i] / count;
        switch (h->kind) {
        case DPT_OPT_SGD: w[i] -= lr * gi; break;
        case DPT_OPT_MOMENTUM: s0[i] = a * s0[i] - lr * gi; w[i] += s0[i]; break;
        case DPT_OPT_NESTEROV: s0[i] = a * s0[i] - lr * gi; w[i] += a * s0[i] - lr * gi; break;
        case DPT_OPT_ADAGRAD: s0[i] += gi * gi; w[i] -= lr * gi / (sqrtf(s0[i]) + eps); break;
        case DPT_OPT_RMSPROP:
            s0[i] = rho * s0[i] + rho1 * gi * gi;
            w[i] -= lr * gi / (sqrtf(s0[i]) + eps);
            break;
        case DPT_OPT_ADAM:
            s0[i] = b1 * s0[i] + m1 * gi;
            s1[i] = b2 * s1[i] + m2 * gi * gi;
            w[i] -= lr * (s0[i] * c1) / (sqrtf(s1[i] * c2) + eps);
            break;
        case DPT_OPT_NADAM:
            s0[i] = b1 * s0[i] + m1 * gi;
            s1[i] = b2 * s1[i] + m2 * gi * gi;
            w[i] -= lr * (cg * gi + cm * s0[i]) / (sqrtf(s1[i] * c2) + eps);
            break;
        }
    }
}

/* The trainer's update loops (built for AVX2 too, chosen at load time)
 * give, bit for bit, the rules written out above in the baseline build:
 * every optimiser, three steps with the states carried, gradient sums
 * divided by a count that is not a power of two, on 1 and 3 threads, over
 * more elements than one thread takes alone. */
static void test_update_bitwise(void **state)
{
    (void)state;
    enum { N = 70001, STEPS = 3 };
    float *w1 = malloc(N * 4), *w2 = malloc(N * 4), *g = malloc(N * 4), *s[2] = {calloc(N, 4), calloc(N, 4)};
    for (int k = 0; k < 7; k++) {
        DptOptHyper h = {.kind = (DptOptKind)k, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                         .decay = 0.9};
        DptOptim o;
        assert_int_equal(dpt_optim_init(&o, &h, N), DPT_OK);
        for (int j = 0; j < o.n_state; j++)
            memset(s[j], 0, N * 4);
        tu_fill(w1, N, 61, -1, 1);
        memcpy(w2, w1, N * 4);
        for (int t = 1; t <= STEPS; t++) {
            tu_fill(g, N, 62 + (uint64_t)t, -3, 3);
            const double mu_prod = o.mu_prod;
            omp_set_num_threads(t == 2 ? 3 : 1);
            assert_int_equal(dpt_optim_step_range(&o, w1, g, 0.05, 10.0f, 0, N), 1);
            ref_update(&h, t, mu_prod, 0.05f, 10.0f, w2, g, s[0], s[1], N);
            assert_memory_equal(w1, w2, N * 4);
            for (int j = 0; j < o.n_state; j++)
                assert_memory_equal(o.state[j], s[j], N * 4);
        }
        /* a sum that is not finite is reported */
        g[500] = INFINITY;
        assert_int_equal(dpt_optim_step_range(&o, w1, g, 0.05, 10.0f, 0, N), 0);
        dpt_optim_free(&o);
    }
    omp_set_num_threads(1);
    free(w1);
    free(w2);
    free(g);
    free(s[0]);
    free(s[1]);
}

/* test_update_blocks's hook: counts the calls for each row of each block,
 * and checks that a run ends on a multiple of DPT_OPT_ROWS_DONE or at its
 * thread's last row. */
typedef struct {
    int seen[6][700];
    int bad;
} RowsSeen;

static void count_rows(void *ctx, int k, size_t r0, size_t r1)
{
    RowsSeen *rs = ctx;
    if (r1 <= r0 || (r1 % DPT_OPT_ROWS_DONE != 0 && r1 - r0 >= DPT_OPT_ROWS_DONE))
        rs->bad = 1;
    for (size_t r = r0; r < r1; r++)
        rs->seen[k][r]++;
}

/* The update split between threads by the units of each layer
 * (dpt_optim_set_blocks) gives the rules' bits for every element: layers
 * whose units do not divide into the threads' groups, on 1-4 threads, the
 * optimisers with no state, one and two vectors; a range short of the
 * whole vector still split flat. The rows-done hook sees every row of
 * every block once a whole-vector step, in runs that end on multiples of
 * DPT_OPT_ROWS_DONE. Blocks that leave a gap or do not cover
 * the vector are refused. */
static void test_update_blocks(void **state)
{
    (void)state;
    const int sizes[] = {700, 97, 37, 5};
    DptOptBlock b[6];
    size_t n = 0;
    for (int l = 0; l < 3; l++) {
        b[2 * l] = (DptOptBlock){.off = n, .rows = (size_t)sizes[l + 1], .cols = (size_t)sizes[l]};
        n += (size_t)sizes[l] * (size_t)sizes[l + 1];
        b[2 * l + 1] = (DptOptBlock){.off = n, .rows = (size_t)sizes[l + 1], .cols = 1};
        n += (size_t)sizes[l + 1];
    }
    assert_true(n > 65536);   /* more than one thread takes part */
    float *w1 = malloc(n * 4), *w2 = malloc(n * 4), *g = malloc(n * 4), *s[2] = {malloc(n * 4), malloc(n * 4)};
    const DptOptKind kinds[] = {DPT_OPT_SGD, DPT_OPT_MOMENTUM, DPT_OPT_ADAM};
    for (int k = 0; k < 3; k++)
        for (int threads = 1; threads <= 4; threads++) {
            DptOptHyper h = {.kind = kinds[k], .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
            DptOptim o;
            assert_int_equal(dpt_optim_init(&o, &h, n), DPT_OK);
            assert_int_equal(dpt_optim_set_blocks(&o, b, 6, 8), DPT_OK);
            static RowsSeen rs;
            memset(&rs, 0, sizeof rs);
            assert_int_equal(dpt_optim_set_rows_done(&o, count_rows, &rs), 1);
            memset(s[0], 0, n * 4);
            memset(s[1], 0, n * 4);
            tu_fill(w1, n, 71, -1, 1);
            memcpy(w2, w1, n * 4);
            omp_set_num_threads(threads);
            for (int t = 1; t <= 3; t++) {
                tu_fill(g, n, 72 + (uint64_t)t, -3, 3);
                const double mu_prod = o.mu_prod;
                if (t < 3) {
                    assert_int_equal(dpt_optim_step_range(&o, w1, g, 0.05, 3.0f, 0, n), 1);
                } else {   /* two ranges, each split flat; the second call steps t no further */
                    assert_int_equal(dpt_optim_step_range(&o, w1, g, 0.05, 3.0f, 0, 70001), 1);
                    o.t--;
                    assert_int_equal(dpt_optim_step_range(&o, w1, g, 0.05, 3.0f, 70001, n), 1);
                }
                ref_update(&h, t, mu_prod, 0.05f, 3.0f, w2, g, s[0], s[1], n);
                assert_memory_equal(w1, w2, n * 4);
                for (int j = 0; j < o.n_state; j++)
                    assert_memory_equal(o.state[j], s[j], n * 4);
            }
            /* each row handed on once a whole-vector step (two of them), never in a ranged one */
            assert_false(rs.bad);
            for (int k2 = 0; k2 < 6; k2++)
                for (size_t r = 0; r < b[k2].rows; r++)
                    assert_int_equal(rs.seen[k2][r], 2);
            b[3].off++;
            assert_int_equal(dpt_optim_set_blocks(&o, b, 6, 8), DPT_EINTERNAL);
            b[3].off--;
            assert_int_equal(dpt_optim_set_blocks(&o, b, 5, 8), DPT_EINTERNAL);
            dpt_optim_free(&o);
        }
    omp_set_num_threads(1);
    free(w1);
    free(w2);
    free(g);
    free(s[0]);
    free(s[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),     cmocka_unit_test(test_momentum), cmocka_unit_test(test_nesterov),
        cmocka_unit_test(test_adagrad), cmocka_unit_test(test_rmsprop),  cmocka_unit_test(test_adam),
        cmocka_unit_test(test_nadam),   cmocka_unit_test(test_names),    cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_schedules), cmocka_unit_test(test_norm), cmocka_unit_test(test_update_bitwise), cmocka_unit_test(test_update_blocks),
    };
    assert_int_equal(dpt_kern_init(), DPT_OK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
