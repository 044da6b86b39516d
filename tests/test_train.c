/* The training loop on one rank, against values worked out by hand:
 * Nielsen's single neuron with two momentum steps, full-batch descent as the
 * mean gradient over all N, SGD visiting every sample once per epoch. */
#include <hdf5.h>
#include <math.h>

#include "testutil.h"
#include "dptrain/ckpt.h"
#include "dptrain/config.h"
#include "dptrain/dist.h"
#include "dptrain/infer.h"
#include "dptrain/train.h"
#include "dptrain/loss.h"
#include "dptrain/net.h"
#include "dptrain/step.h"

static DptDist dist;

static void write_model(const char *path, const int *sizes, int n, DptAct hidden, DptAct out, DptCost cost,
                        const float *params)
{
    DptArch a;
    assert_int_equal(dpt_arch_init(&a, sizes, n, hidden, out, cost), DPT_OK);
    assert_int_equal(dpt_ckpt_save_model(path, &a, params, NULL, NULL), DPT_OK);
}

static void load_params(const char *path, float **p, DptArch *a)
{
    assert_int_equal(dpt_ckpt_load_model(path, a, p), DPT_OK);
}

/* One input x = 1, target y = 0, w = 0.6, b = 0.9, quadratic cost, eta = 0.15.
 *   z = 1.5, a = s(1.5) = 0.8175744762, dC/dw = dC/db = (a - y) a (1 - a) = 0.1219383324
 *   Dw(1) = -0.15 * 0.1219383324 = -0.0182907499: w1 = 0.5817092501, b1 = 0.8817092501
 *   at w1 + b1 = 1.4634185002: a = 0.8120607, gradient 0.1239372070
 *   Dw(2) = -0.15 * 0.1239372070 + 0.9 * Dw(1) = -0.0350524559: w2 = 0.5466569942, b2 = 0.8466569942 */
static void test_single_neuron_momentum(void **state)
{
    (void)state;
    float x[1] = {1.0f}, y[1] = {0.0f}, p[2] = {0.6f, 0.9f};
    DptSplitData s = {.name = "train", .n = 1, .d = 1, .x = x, .y_labels = 0, .k = 1, .tgt = y};
    assert_int_equal(dpt_data_write(tu_path("neuron.h5"), &s, 1, NULL), DPT_OK);
    const int sizes[] = {1, 1};
    write_model(tu_path("neuron0.h5"), sizes, 2, DPT_ACT_SIGMOID, DPT_ACT_SIGMOID, DPT_COST_MSE, p);
    DptConfig c;
    dpt_config_defaults(&c);
    assert_int_equal(dpt_config_set(&c, "data", tu_path("neuron.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "init-from", tu_path("neuron0.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "save", tu_path("neuron2.h5")), DPT_OK);
    c.output = DPT_ACT_SIGMOID;
    c.cost = DPT_COST_MSE;
    c.opt.kind = DPT_OPT_MOMENTUM;
    c.opt.momentum = 0.9;
    c.sched.lr = 0.15;
    c.batch = 1;
    c.epochs = 1;
    c.quiet = 1;
    DptTrainResult r;
    assert_int_equal(dpt_train_run(&c, &dist, &r, NULL), DPT_OK);
    float *q;
    DptArch a;
    load_params(tu_path("neuron2.h5"), &q, &a);
    assert_float_equal(q[0], 0.5817092501, 2e-7);
    assert_float_equal(q[1], 0.8817092501, 2e-7);
    free(q);
    c.epochs = 2;
    assert_int_equal(dpt_train_run(&c, &dist, &r, NULL), DPT_OK);
    assert_int_equal(r.steps, 2);
    load_params(tu_path("neuron2.h5"), &q, &a);
    assert_float_equal(q[0], 0.5466569942, 2e-7);
    assert_float_equal(q[1], 0.8466569942, 2e-7);
    free(q);
    /* 300 epochs of plain descent bring the output to about 0.09 (Nielsen, ch. 3) */
    c.opt.kind = DPT_OPT_SGD;
    c.epochs = 300;
    assert_int_equal(dpt_train_run(&c, &dist, &r, NULL), DPT_OK);
    load_params(tu_path("neuron2.h5"), &q, &a);
    double out = 1.0 / (1.0 + exp(-(double)(q[0] + q[1])));
    assert_float_equal(out, 0.0939557, 1e-5);
    free(q);
}

/* The same neuron, one sgd step (n = 1 sample):
 *   --weight-decay 0.5: w1 = 0.6 - 0.15 (0.1219383324 + 0.5/1 * 0.6) = 0.5367092501, b1 = 0.8817092501
 *     (no decay on the bias)
 *   --clip-norm 0.1: |g| = 0.1219383324 sqrt 2 = 0.1724470 > 0.1, g -> g * 0.1/|g| = (0.0707107, 0.0707107):
 *     w1 = 0.6 - 0.0106066017 = 0.5893933983, b1 = 0.8893933983
 *   --warmup 2 (epochs of one step) with eta = 0.15: the first step uses 0.075:
 *     w1 = 0.6 - 0.075 * 0.1219383324 = 0.5908546251 */
static void test_single_neuron_decay_clip_warmup(void **state)
{
    (void)state;
    DptConfig c;
    dpt_config_defaults(&c);
    assert_int_equal(dpt_config_set(&c, "data", tu_path("neuron.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "init-from", tu_path("neuron0.h5")), DPT_OK);
    c.output = DPT_ACT_SIGMOID;
    c.cost = DPT_COST_MSE;
    c.sched.lr = 0.15;
    c.batch = 1;
    c.epochs = 1;
    c.quiet = 1;
    float *q = NULL;
    c.weight_decay = 0.5;
    assert_int_equal(dpt_train_run(&c, &dist, NULL, &q), DPT_OK);
    assert_float_equal(q[0], 0.5367092501, 2e-7);
    assert_float_equal(q[1], 0.8817092501, 2e-7);
    free(q);
    c.weight_decay = 0;
    c.clip_norm = 0.1;
    assert_int_equal(dpt_train_run(&c, &dist, NULL, &q), DPT_OK);
    assert_float_equal(q[0], 0.5893933983, 2e-7);
    assert_float_equal(q[1], 0.8893933983, 2e-7);
    free(q);
    c.clip_norm = 0;
    c.sched.warmup_epochs = 2;
    assert_int_equal(dpt_train_run(&c, &dist, NULL, &q), DPT_OK);
    assert_float_equal(q[0], 0.5908546251, 2e-7);
    free(q);
}

/* --trace on the neuron with momentum: records at steps 0, 1, 2 holding the
 * hand-worked parameters, the gradient norms |dC/dw| = |dC/db| = 0.1219383324
 * at step 1 and 0.1239372070 at step 2, and the cost a^2/2 at each step. */
static void test_trace_single_neuron(void **state)
{
    (void)state;
    DptConfig c;
    dpt_config_defaults(&c);
    assert_int_equal(dpt_config_set(&c, "data", tu_path("neuron.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "init-from", tu_path("neuron0.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "trace", tu_path("trace.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "trace-params", "0:0:0,0:0:b"), DPT_OK);
    c.output = DPT_ACT_SIGMOID;
    c.cost = DPT_COST_MSE;
    c.opt.kind = DPT_OPT_MOMENTUM;
    c.opt.momentum = 0.9;
    c.sched.lr = 0.15;
    c.batch = 1;
    c.epochs = 2;
    c.quiet = 1;
    assert_int_equal(dpt_train_run(&c, &dist, NULL, NULL), DPT_OK);
    hid_t f = H5Fopen(tu_path("trace.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    int64_t step[3];
    float loss[3], gw[3], gb[3], par[6];
    hid_t d = H5Dopen2(f, "trace/step", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    assert_int_equal(n, 3);
    H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, step);
    H5Sclose(sp);
    H5Dclose(d);
    const char *names[4] = {"trace/loss", "trace/grad_norm_weight", "trace/grad_norm_bias", "trace/params"};
    float *dst[4] = {loss, gw, gb, par};
    for (int i = 0; i < 4; i++) {
        d = H5Dopen2(f, names[i], H5P_DEFAULT);
        assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst[i]) >= 0);
        H5Dclose(d);
    }
    H5Fclose(f);
    assert_true(step[0] == 0 && step[1] == 1 && step[2] == 2);
    assert_true(isnan(loss[0]) && isnan(gw[0]));
    assert_float_equal(loss[1], 0.5 * 0.8175744762 * 0.8175744762, 1e-6);
    assert_float_equal(gw[1], 0.1219383324, 1e-7);
    assert_float_equal(gb[1], 0.1219383324, 1e-7);
    assert_float_equal(gw[2], 0.1239372070, 1e-7);
    assert_float_equal(par[0], 0.6, 1e-7);
    assert_float_equal(par[1], 0.9, 1e-7);
    assert_float_equal(par[2], 0.5817092501, 2e-7);
    assert_float_equal(par[5], 0.8466569942, 2e-7);
}

/* With --batch full and sgd at eta = 1, one epoch is one step: the parameters
 * move by exactly the mean of the per-sample gradients. */
static void test_full_batch_is_mean_gradient(void **state)
{
    (void)state;
    const char *data = tu_path("syn.h5");
    tu_make_dataset(data, 23, 4, 3, 5);
    DptConfig c;
    dpt_config_defaults(&c);
    assert_int_equal(dpt_config_set(&c, "data", data), DPT_OK);
    c.n_sizes = 3;
    c.sizes[0] = 4;
    c.sizes[1] = 5;
    c.sizes[2] = 3;
    c.quiet = 1;
    c.seed = 3;
    DptArch a;
    const int sizes[] = {4, 5, 3};
    assert_int_equal(dpt_arch_init(&a, sizes, 3, c.hidden, c.output, c.cost), DPT_OK);
    float *g_full = malloc(a.n_params * 4), *g_one = malloc(a.n_params * 4);
    double *mean = calloc(a.n_params, sizeof(double));
    c.batch = 0;
    assert_int_equal(dpt_train_gradient(&c, &dist, 23, g_full, NULL), DPT_OK);
    /* Per-sample gradients: one single-sample dataset file per sample. */
    float *x = NULL;
    int32_t *lab = NULL;
    {
        DptSplitInfo info;
        DptSplit s;
        assert_int_equal(dpt_data_probe(data, "train", 1, &info), DPT_OK);
        void *mem = aligned_alloc(64, (dpt_data_bytes(&info) + 63) / 64 * 64);
        assert_int_equal(dpt_data_load(data, "train", &info, mem, &s), DPT_OK);
        x = malloc(23 * 4 * 4);
        lab = malloc(23 * 4);
        memcpy(x, s.x, 23 * 4 * 4);
        memcpy(lab, s.lab, 23 * 4);
        free(mem);
    }
    for (int i = 0; i < 23; i++) {
        DptSplitData one = {.name = "train", .n = 1, .d = 4, .x = x + 4 * i, .y_labels = 1, .lab = lab + i};
        assert_int_equal(dpt_data_write(tu_path("one.h5"), &one, 1, NULL), DPT_OK);
        DptConfig c1 = c;
        c1.strings = NULL;   /* c1's own values only; c's stay c's */
        assert_int_equal(dpt_config_set(&c1, "data", tu_path("one.h5")), DPT_OK);
        c1.batch = 1;
        assert_int_equal(dpt_train_gradient(&c1, &dist, 1, g_one, NULL), DPT_OK);
        for (size_t j = 0; j < a.n_params; j++)
            mean[j] += g_one[j] / 23.0;
    }
    for (size_t j = 0; j < a.n_params; j++)
        assert_float_equal(g_full[j], mean[j], 1e-6 * (1 + fabs(mean[j])));
    /* and one full-batch epoch of sgd at eta = 1 moves the weights by it */
    float *p0 = malloc(a.n_params * 4), *p1 = NULL;
    dpt_net_init_params(p0, &a, c.init, (uint64_t)c.seed);
    c.opt.kind = DPT_OPT_SGD;
    c.sched.lr = 1.0;
    c.epochs = 1;
    DptTrainResult r;
    assert_int_equal(dpt_train_run(&c, &dist, &r, &p1), DPT_OK);
    assert_int_equal(r.steps, 1);
    for (size_t j = 0; j < a.n_params; j++)
        assert_float_equal(p1[j], p0[j] - mean[j], 1e-6 * (1 + fabs(p0[j])));
    free(p0);
    free(p1);
    free(g_full);
    free(g_one);
    free(mean);
    free(x);
    free(lab);
}

/* [N, 1] linear unit, input x_i = e_i, target 1, weights and bias 0: a step on
 * sample i moves w_i and b by the same amount. After one epoch of batch-1 SGD,
 * every w_i has moved (every sample was visited) and the moves add up to b's
 * (no sample twice: N steps, N distinct weights). */
static void test_sgd_visits_every_sample_once(void **state)
{
    (void)state;
    enum { N = 17 };
    float x[N * N] = {0}, y[N], p[N + 1] = {0};
    for (int i = 0; i < N; i++) {
        x[i * N + i] = 1.0f;
        y[i] = 1.0f;
    }
    DptSplitData s = {.name = "train", .n = N, .d = N, .x = x, .y_labels = 0, .k = 1, .tgt = y};
    assert_int_equal(dpt_data_write(tu_path("eye.h5"), &s, 1, NULL), DPT_OK);
    const int sizes[] = {N, 1};
    write_model(tu_path("zero.h5"), sizes, 2, DPT_ACT_SIGMOID, DPT_ACT_LINEAR, DPT_COST_MSE, p);
    DptConfig c;
    dpt_config_defaults(&c);
    assert_int_equal(dpt_config_set(&c, "data", tu_path("eye.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "init-from", tu_path("zero.h5")), DPT_OK);
    c.output = DPT_ACT_LINEAR;
    c.cost = DPT_COST_MSE;
    c.sched.lr = 0.1;
    c.batch = 1;
    c.epochs = 1;
    c.quiet = 1;
    float *q = NULL;
    DptTrainResult r;
    assert_int_equal(dpt_train_run(&c, &dist, &r, &q), DPT_OK);
    assert_int_equal(r.steps, N);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        assert_true(q[i] > 0.0f);
        sum += q[i];
    }
    assert_float_equal(sum, q[N], 1e-5);
    free(q);
}

/* predict writes the outputs of a forward pass and their argmax; eval agrees. */
static void test_predict_and_eval(void **state)
{
    (void)state;
    const char *data = tu_path("pred-data.h5"), *model = tu_path("pred-model.h5"), *out = tu_path("pred.h5");
    tu_make_dataset(data, 40, 5, 3, 8);
    DptConfig c;
    dpt_config_defaults(&c);
    assert_int_equal(dpt_config_set(&c, "data", data), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "save", model), DPT_OK);
    c.n_sizes = 3;
    c.sizes[0] = 5;
    c.sizes[1] = 6;
    c.sizes[2] = 3;
    c.epochs = 3;
    c.quiet = 1;
    assert_int_equal(dpt_train_run(&c, &dist, NULL, NULL), DPT_OK);
    assert_int_equal(dpt_predict_run(model, data, "train", out, &dist), DPT_OK);
    DptArch a;
    float *p = NULL;
    assert_int_equal(dpt_ckpt_load_model(model, &a, &p), DPT_OK);
    DptSplitInfo info;
    DptSplit sp;
    assert_int_equal(dpt_data_probe(data, "train", 1, &info), DPT_OK);
    void *mem = aligned_alloc(64, (dpt_data_bytes(&info) + 63) / 64 * 64);
    assert_int_equal(dpt_data_load(data, "train", &info, mem, &sp), DPT_OK);
    DptWork w;
    assert_int_equal(dpt_work_init(&w, &a, 40), DPT_OK);
    dpt_data_gather(w.act[0], w.y, w.cls, &sp, NULL, 0, 40, 3);
    dpt_net_forward(&w, &a, p, 40);
    float outputs[40 * 3];
    int32_t cls[40];
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "predictions/output", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, outputs);
    H5Dclose(d);
    d = H5Dopen2(f, "predictions/class", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, cls);
    H5Dclose(d);
    H5Fclose(f);
    assert_memory_equal(outputs, w.act[2], sizeof outputs);
    for (int i = 0; i < 40; i++)
        assert_int_equal(cls[i], dpt_loss_predict(w.act[2] + 3 * i, 3));
    assert_int_equal(dpt_eval_run(model, data, "train", &dist), DPT_OK);
    dpt_err_clear();
    assert_int_equal(dpt_eval_run(model, data, "nosuch", &dist), DPT_EUSAGE);
    dpt_err_clear();
    dpt_work_free(&w);
    free(mem);
    free(p);
}

static void test_init_from_mismatch(void **state)
{
    (void)state;
    float p[2] = {0};
    const int sizes[] = {1, 1};
    write_model(tu_path("tiny.h5"), sizes, 2, DPT_ACT_SIGMOID, DPT_ACT_SIGMOID, DPT_COST_MSE, p);
    tu_make_dataset(tu_path("syn2.h5"), 10, 4, 3, 1);
    DptConfig c;
    dpt_config_defaults(&c);
    assert_int_equal(dpt_config_set(&c, "data", tu_path("syn2.h5")), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "init-from", tu_path("tiny.h5")), DPT_OK);
    c.n_sizes = 2;
    c.sizes[0] = 4;
    c.sizes[1] = 3;
    c.quiet = 1;
    dpt_err_clear();
    assert_int_equal(dpt_train_run(&c, &dist, NULL, NULL), DPT_EUSAGE);
    assert_non_null(strstr(dpt_err_message(), "the model has layers 1,1, which differ from --layers"));
    dpt_err_clear();
    /* batch larger than the data */
    c.init_from = "";
    c.batch = 11;
    assert_int_equal(dpt_train_run(&c, &dist, NULL, NULL), DPT_EUSAGE);
    assert_non_null(strstr(dpt_err_message(), "--batch 11 is larger than the training set (10 samples"));
    dpt_err_clear();
}

/* The automatic block of deterministic mode, a function of the global batch
 * alone: 8, doubled while at least 4 blocks remain, up to 64. */
static void test_auto_block(void **state)
{
    (void)state;
    const size_t batch[] = {1, 10, 31, 32, 63, 64, 127, 128, 255, 256, 1024, 60000};
    const size_t want[] = {8, 8, 8, 8, 8, 16, 16, 32, 32, 64, 64, 64};
    for (size_t i = 0; i < sizeof batch / sizeof batch[0]; i++)
        assert_int_equal(dpt_step_auto_block(batch[i]), want[i]);
}

/* The fixed-point scale: a power of two, the largest that keeps a block sum
 * below 2^51 and n_blocks of them below 2^60; its rounding error (half a
 * step, 0.5 / scale) within the stated bound. */
static void test_fixed_scale(void **state)
{
    (void)state;
    const double bounds[] = {1e-30, 3e-7, 0.75, 1.0, 1.5, 1000.0, 7.3e12};
    const size_t blocks[] = {1, 4, 16, 512, 513, 4096, 1u << 20};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
        for (size_t j = 0; j < sizeof blocks / sizeof blocks[0]; j++) {
            double b = bounds[i] * (1.0 + 1.0 / 1024.0), n = (double)blocks[j];
            double s = dpt_step_fixed_scale(bounds[i], blocks[j]);
            int e;
            assert_true(frexp(s, &e) == 0.5);               /* a power of two */
            assert_true(s * b < 0x1p51 && s * b * n < 0x1p60);
            assert_true(2 * s * b >= 0x1p51 || 2 * s * b * n >= 0x1p60);   /* the largest */
            double worst = (n * 0x1p-60 > 0x1p-51 ? n * 0x1p-60 : 0x1p-51) * b;
            assert_true(0.5 / s <= worst);
        }
    assert_true(dpt_step_fixed_scale(0.0, 4) == 1.0);
    assert_true(dpt_step_fixed_scale(INFINITY, 4) == 1.0);
}

int main(int argc, char **argv)
{
    assert_int_equal(dpt_dist_init(&dist, &argc, &argv), DPT_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_block),
        cmocka_unit_test(test_fixed_scale),
        cmocka_unit_test(test_single_neuron_momentum),
        cmocka_unit_test(test_single_neuron_decay_clip_warmup),
        cmocka_unit_test(test_trace_single_neuron),
        cmocka_unit_test(test_full_batch_is_mean_gradient),
        cmocka_unit_test(test_sgd_visits_every_sample_once),
        cmocka_unit_test(test_predict_and_eval),
        cmocka_unit_test(test_init_from_mismatch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dpt_dist_finalize(&dist);
    return rc;
}
