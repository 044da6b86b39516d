/* Dataset files: round trip, IDX and CSV conversion, and every malformed file
 * turned into a clear message. */
#include <hdf5.h>
#include <math.h>
#include <zlib.h>

#include "testutil.h"
#include "dptrain/convert.h"
#include "dptrain/data.h"

static void load(const char *path, const char *split, DptSplitInfo *info, void **mem, DptSplit *s)
{
    assert_int_equal(dpt_data_probe(path, split, 1, info), DPT_OK);
    *mem = aligned_alloc(64, (dpt_data_bytes(info) + 63) / 64 * 64);
    assert_int_equal(dpt_data_load(path, split, info, *mem, s), DPT_OK);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *path = tu_path("rt.h5");
    uint8_t xu[6] = {0, 51, 102, 153, 204, 255};
    int32_t lab[3] = {2, 0, 1};
    float xf[4] = {0.5f, -1.0f, 2.0f, 3.5f}, tg[4] = {1, 0, 0.25f, 0.75f};
    DptSplitData sp[2] = {
        {.name = "train", .n = 3, .d = 2, .x_u8 = 1, .x_scale = 0.2f, .x = xu, .y_labels = 1, .lab = lab},
        {.name = "test", .n = 2, .d = 2, .x = xf, .y_labels = 0, .k = 2, .tgt = tg},
    };
    assert_int_equal(dpt_data_write(path, sp, 2, "round trip"), DPT_OK);
    DptSplitInfo info;
    DptSplit s;
    void *mem;
    load(path, "train", &info, &mem, &s);
    assert_true(info.x_u8 && info.y_labels && info.n == 3 && info.d == 2);
    assert_float_equal(info.x_scale, 0.2, 1e-7);
    assert_memory_equal(s.x, xu, 6);
    assert_memory_equal(s.lab, lab, sizeof lab);
    assert_int_equal(dpt_data_validate(&s, path, "train", 2, 3), DPT_OK);
    /* gather expands labels to one-hot and scales the bytes */
    float x[4], y[6];
    int32_t cls[2];
    uint32_t idx[2] = {2, 0};
    dpt_data_gather(x, y, cls, &s, idx, 0, 2, 3);
    assert_float_equal(x[0], 0.2 * 204, 1e-5);
    assert_float_equal(x[3], 0.2 * 51, 1e-5);
    assert_true(y[0] == 0 && y[1] == 1 && y[2] == 0 && cls[0] == 1);
    assert_true(y[3] == 0 && y[4] == 0 && y[5] == 1 && cls[1] == 2);
    free(mem);
    load(path, "test", &info, &mem, &s);
    assert_true(!info.x_u8 && !info.y_labels && info.k == 2);
    assert_memory_equal(s.x, xf, sizeof xf);
    assert_memory_equal(s.tgt, tg, sizeof tg);
    free(mem);
    /* a missing optional split */
    assert_int_equal(dpt_data_probe(path, "validation", 0, &info), DPT_OK);
    assert_false(info.present);
}

/* Writes raw datasets with h5py-like freedom, to build malformed files. */
static void write_raw(const char *path, const char *xname, hid_t xtype, int xrank, const hsize_t *xd, const void *x,
                      const char *yname, hid_t ytype, int yrank, const hsize_t *yd, const void *y)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (xname) {
        hid_t sp = H5Screate_simple(xrank, xd, NULL);
        hid_t d = H5Dcreate2(g, xname, xtype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (x)
            H5Dwrite(d, xtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dclose(d);
        H5Sclose(sp);
    }
    if (yname) {
        hid_t sp = H5Screate_simple(yrank, yd, NULL);
        hid_t d = H5Dcreate2(g, yname, ytype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (y)
            H5Dwrite(d, ytype, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
        H5Dclose(d);
        H5Sclose(sp);
    }
    H5Gclose(g);
    H5Fclose(f);
}

static void expect_probe_error(const char *path, const char *fragment)
{
    DptSplitInfo info;
    dpt_err_clear();
    assert_int_equal(dpt_data_probe(path, "train", 1, &info), DPT_EINPUT);
    if (!strstr(dpt_err_message(), fragment)) {
        print_error("message '%s' lacks '%s'\n", dpt_err_message(), fragment);
        fail();
    }
}

static void test_bad_files(void **state)
{
    (void)state;
    float x[12] = {0};
    int32_t y[4] = {0}, xi[12] = {0};
    double xd[12] = {0};
    hsize_t d2[2] = {4, 3}, d1[1] = {4}, d3[3] = {4, 3, 1}, d1b[1] = {3}, d0[2] = {0, 3}, d10[1] = {0};
    const char *p = tu_path("bad.h5");

    expect_probe_error(tu_path("missing.h5"), "cannot open");
    FILE *fp = fopen(tu_path("empty.h5"), "w");
    fclose(fp);
    expect_probe_error(tu_path("empty.h5"), "empty file");
    fp = fopen(tu_path("text.h5"), "w");
    fputs("this is not HDF5\n", fp);
    fclose(fp);
    expect_probe_error(tu_path("text.h5"), "not an HDF5 file");

    write_raw(p, "x", H5T_NATIVE_FLOAT, 3, d3, x, "y", H5T_NATIVE_INT32, 1, d1, y);
    expect_probe_error(p, "rank 3");
    write_raw(p, "x", H5T_NATIVE_INT32, 2, d2, xi, "y", H5T_NATIVE_INT32, 1, d1, y);
    expect_probe_error(p, "unsupported type");
    write_raw(p, "x", H5T_NATIVE_FLOAT, 2, d2, x, "y", H5T_NATIVE_INT32, 1, d1b, y);
    expect_probe_error(p, "has 3 rows but");
    write_raw(p, "x", H5T_NATIVE_FLOAT, 2, d0, NULL, "y", H5T_NATIVE_INT32, 1, d10, NULL);
    expect_probe_error(p, "empty");
    write_raw(p, "x", H5T_NATIVE_FLOAT, 2, d2, x, NULL, 0, 0, NULL, NULL);
    expect_probe_error(p, "missing dataset /train/y");
    write_raw(p, NULL, 0, 0, NULL, NULL, "y", H5T_NATIVE_INT32, 1, d1, y);
    expect_probe_error(p, "missing dataset /train/x");
    write_raw(p, "x", H5T_NATIVE_FLOAT, 2, d2, x, "y", H5T_NATIVE_FLOAT, 1, d1, x);
    expect_probe_error(p, "integer labels");
    /* float64 x is accepted and read as float32 */
    write_raw(p, "x", H5T_NATIVE_DOUBLE, 2, d2, xd, "y", H5T_NATIVE_INT32, 1, d1, y);
    DptSplitInfo info;
    assert_int_equal(dpt_data_probe(p, "train", 1, &info), DPT_OK);
    /* no /train group */
    assert_int_equal(dpt_data_probe(p, "test", 1, &info), DPT_EINPUT);
    dpt_err_clear();
}

static void expect_validate_error(DptSplit *s, int n_in, int n_out, const char *fragment)
{
    dpt_err_clear();
    assert_int_equal(dpt_data_validate(s, "f.h5", "train", n_in, n_out), DPT_EINPUT);
    if (!strstr(dpt_err_message(), fragment)) {
        print_error("message '%s' lacks '%s'\n", dpt_err_message(), fragment);
        fail();
    }
}

static void test_validation(void **state)
{
    (void)state;
    float x[6] = {0, 1, 2, 3, 4, 5};
    int32_t lab[3] = {0, 1, 2};
    DptSplit s = {.info = {.present = 1, .n = 3, .d = 2, .y_labels = 1}, .x = x, .lab = lab};
    assert_int_equal(dpt_data_validate(&s, "f.h5", "train", 2, 3), DPT_OK);
    expect_validate_error(&s, 784, 3, "has 2 columns but --layers starts with 784");
    expect_validate_error(&s, 2, 2, "row 2 has label 2; expected 0..1");
    lab[0] = -1;
    expect_validate_error(&s, 2, 3, "row 0 has label -1");
    lab[0] = 0;
    x[3] = NAN;
    expect_validate_error(&s, 2, 3, "row 1 column 1 is NaN");
    x[3] = INFINITY;
    expect_validate_error(&s, 2, 3, "is Inf");
    x[3] = 3;
    float tg[3] = {0, 1, INFINITY};
    DptSplit t = {.info = {.present = 1, .n = 3, .d = 2, .k = 1}, .x = x, .tgt = tg};
    expect_validate_error(&t, 2, 1, "row 2 column 0 is not finite");
    expect_validate_error(&t, 2, 4, "1 target columns but --layers ends with 4");
    dpt_err_clear();
}

static void write_idx(const char *path, int gz, const unsigned char *hdr, size_t hlen, const unsigned char *data,
                      size_t n)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, hdr, (unsigned)hlen);
        gzwrite(f, data, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(hdr, 1, hlen, f);
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void test_idx_conversion(void **state)
{
    (void)state;
    /* 3 images of 2 x 2 pixels, gzip'd; labels plain */
    unsigned char ih[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    unsigned char lh[8] = {0, 0, 8, 1, 0, 0, 0, 3};
    unsigned char img[12] = {0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, lab[3] = {7, 0, 9};
    write_idx(tu_path("img.gz"), 1, ih, 16, img, 12);
    write_idx(tu_path("lab"), 0, lh, 8, lab, 3);
    const char *out = tu_path("idx.h5");
    assert_int_equal(dpt_convert_idx(tu_path("img.gz"), tu_path("lab"), NULL, NULL, out, "tiny"), DPT_OK);
    DptSplitInfo info;
    DptSplit s;
    void *mem;
    load(out, "train", &info, &mem, &s);
    assert_true(info.n == 3 && info.d == 4 && info.x_u8 && info.y_labels);
    assert_float_equal(info.x_scale, 1.0 / 255, 1e-9);
    assert_memory_equal(s.x, img, 12);
    assert_true(s.lab[0] == 7 && s.lab[1] == 0 && s.lab[2] == 9);
    free(mem);
    /* truncated data, wrong magic, count mismatch */
    write_idx(tu_path("short.gz"), 1, ih, 16, img, 7);
    dpt_err_clear();
    assert_int_equal(dpt_convert_idx(tu_path("short.gz"), tu_path("lab"), NULL, NULL, out, NULL), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "truncated"));
    dpt_err_clear();
    assert_int_equal(dpt_convert_idx(tu_path("lab"), tu_path("lab"), NULL, NULL, out, NULL), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "dimensions"));
    unsigned char lh2[8] = {0, 0, 8, 1, 0, 0, 0, 2};
    write_idx(tu_path("lab2"), 0, lh2, 8, lab, 2);
    dpt_err_clear();
    assert_int_equal(dpt_convert_idx(tu_path("img.gz"), tu_path("lab2"), NULL, NULL, out, NULL), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "3 images but"));
    dpt_err_clear();
}

static void test_csv_conversion(void **state)
{
    (void)state;
    const char *csv = tu_path("d.csv"), *out = tu_path("csv.h5");
    FILE *f = fopen(csv, "w");
    fputs("a,b,label\n1.5,2,1\n-3,4e-1,0\n\n5,6,2\n", f);
    fclose(f);
    assert_int_equal(dpt_convert_csv(csv, NULL, -1, 1, 0.5f, out), DPT_OK);
    DptSplitInfo info;
    DptSplit s;
    void *mem;
    load(out, "train", &info, &mem, &s);
    assert_true(info.n == 3 && info.d == 2 && !info.x_u8);
    const float *x = s.x;
    assert_float_equal(x[0], 0.75, 1e-7);
    assert_float_equal(x[3], 0.2, 1e-7);
    assert_true(s.lab[0] == 1 && s.lab[1] == 0 && s.lab[2] == 2);
    free(mem);
    f = fopen(csv, "w");
    fputs("1,2,1\n3,x,0\n", f);
    fclose(f);
    dpt_err_clear();
    assert_int_equal(dpt_convert_csv(csv, NULL, -1, 0, 1.0f, out), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), ":2: field 2 is not a finite number"));
    f = fopen(csv, "w");
    fputs("1,2,1\n3,0\n", f);
    fclose(f);
    dpt_err_clear();
    assert_int_equal(dpt_convert_csv(csv, NULL, -1, 0, 1.0f, out), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), ":2: 2 fields; the first row has 3"));
    f = fopen(csv, "w");
    fputs("1,2,1.5\n", f);
    fclose(f);
    dpt_err_clear();
    assert_int_equal(dpt_convert_csv(csv, NULL, -1, 0, 1.0f, out), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "not a non-negative integer"));
    dpt_err_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_idx_conversion),
        cmocka_unit_test(test_csv_conversion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
