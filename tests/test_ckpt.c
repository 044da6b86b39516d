/* Model files: save then load gives identical parameters and architecture;
 * wrong format, version or shape gives a clear error. */
#include <hdf5.h>

#include "testutil.h"
#include "dptrain/ckpt.h"

static void test_save_load(void **state)
{
    (void)state;
    const int sizes[] = {5, 7, 3, 2};
    DptArch a, b;
    assert_int_equal(dpt_arch_init(&a, sizes, 4, DPT_ACT_TANH, DPT_ACT_SIGMOID, DPT_COST_BCE), DPT_OK);
    float *p = malloc(a.n_params * 4), *q = NULL;
    dpt_net_init_params(p, &a, DPT_INIT_NIELSEN, 17);
    const char *path = tu_path("model.h5");
    assert_int_equal(dpt_ckpt_save_model(path, &a, p, "[train]\nlr = 0.5\n", NULL), DPT_OK);
    assert_true(dpt_ckpt_is_ours(path));
    assert_int_equal(dpt_ckpt_load_model(path, &b, &q), DPT_OK);
    assert_int_equal(b.n_layers, 3);
    assert_memory_equal(b.sizes, sizes, sizeof sizes);
    assert_int_equal(b.hidden, DPT_ACT_TANH);
    assert_int_equal(b.output, DPT_ACT_SIGMOID);
    assert_int_equal(b.cost, DPT_COST_BCE);
    assert_int_equal(b.n_params, a.n_params);
    assert_memory_equal(p, q, a.n_params * 4);
    /* no temporary file left behind */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
    free(p);
    free(q);
}

static void expect_load_error(const char *path, const char *fragment)
{
    DptArch a;
    float *q = (float *)1;
    dpt_err_clear();
    assert_int_equal(dpt_ckpt_load_model(path, &a, &q), DPT_EINPUT);
    assert_null(q);
    if (!strstr(dpt_err_message(), fragment)) {
        print_error("message '%s' lacks '%s'\n", dpt_err_message(), fragment);
        fail();
    }
}

static void test_bad_models(void **state)
{
    (void)state;
    const int sizes[] = {3, 2};
    DptArch a;
    assert_int_equal(dpt_arch_init(&a, sizes, 2, DPT_ACT_SIGMOID, DPT_ACT_SOFTMAX, DPT_COST_CCE), DPT_OK);
    float p[8] = {0};
    const char *path = tu_path("m.h5");
    assert_int_equal(dpt_ckpt_save_model(path, &a, p, NULL, NULL), DPT_OK);
    /* a future format version */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int64_t v = 99;
    hid_t at = H5Aopen(f, "format_version", H5P_DEFAULT);
    H5Awrite(at, H5T_NATIVE_INT64, &v);
    H5Aclose(at);
    H5Fclose(f);
    expect_load_error(path, "format_version 99");
    /* a weight of the wrong shape */
    assert_int_equal(dpt_ckpt_save_model(path, &a, p, NULL, NULL), DPT_OK);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "model/layer_0/weight", H5P_DEFAULT);
    hsize_t d[2] = {3, 3};
    hid_t sp = H5Screate_simple(2, d, NULL);
    hid_t ds = H5Dcreate2(f, "model/layer_0/weight", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    expect_load_error(path, "has shape [3, 3]; expected [2, 3]");
    /* a dataset file is not a model */
    float x[3] = {1, 2, 3};
    int32_t y[1] = {0};
    DptSplitData s = {.name = "train", .n = 1, .d = 3, .x = x, .y_labels = 1, .lab = y};
    assert_int_equal(dpt_data_write(tu_path("data.h5"), &s, 1, NULL), DPT_OK);
    assert_false(dpt_ckpt_is_ours(tu_path("data.h5")));
    expect_load_error(tu_path("data.h5"), "not a dptrain model");
    expect_load_error(tu_path("nothing.h5"), "cannot open");
    /* a truncated file */
    assert_int_equal(dpt_ckpt_save_model(path, &a, p, NULL, NULL), DPT_OK);
    assert_int_equal(truncate(path, 600), 0);
    expect_load_error(path, "");
    dpt_err_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_bad_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
