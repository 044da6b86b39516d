/* Dataset files: round trip, IDX and CSV conversion, and every malformed file
 * turned into a clear message. */
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
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

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static DptStatus csv(const char *path, const char *text, DptCsvOptions o, const char *out)
{
    write_text(path, text);
    if (o.scale == 0)
        o.scale = 1.0f;
    if (o.header == 0)
        o.header = -1;   /* tests ask for "no header" with header = 2 */
    else if (o.header == 2)
        o.header = 0;
    dpt_err_clear();
    return dpt_convert_csv(path, NULL, &o, out);
}

/* The class names stored by the converter, as one "a,b,c" string. */
static void class_names(const char *path, char *buf, size_t len)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Aopen(f, "class_names", H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t t = H5Aget_type(ds), sp = H5Aget_space(ds);
    size_t sz = H5Tget_size(t), n = (size_t)H5Sget_simple_extent_npoints(sp);
    char *raw = calloc(n, sz);
    assert_true(H5Aread(ds, t, raw) >= 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(buf, i ? "," : "", len - strlen(buf) - 1);
        strncat(buf, raw + i * sz, sz < len - strlen(buf) - 1 ? sz : len - strlen(buf) - 1);
    }
    free(raw);
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(ds);
    H5Fclose(f);
}

static void test_csv_conversion(void **state)
{
    (void)state;
    const char *in = tu_path("d.csv"), *out = tu_path("csv.h5");
    DptSplitInfo info;
    DptSplit s;
    void *mem;
    /* A header (detected), a blank line, scale. */
    assert_int_equal(csv(in, "a,b,label\n1.5,2,1\n-3,4e-1,0\n\n5,6,2\n", (DptCsvOptions){.scale = 0.5f}, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    assert_true(info.n == 3 && info.d == 2 && !info.x_u8 && info.y_labels);
    const float *x = s.x;
    assert_float_equal(x[0], 0.75, 1e-7);
    assert_float_equal(x[3], 0.2, 1e-7);
    assert_true(s.lab[0] == 1 && s.lab[1] == 0 && s.lab[2] == 2);
    free(mem);
    /* Numbers with fractions are regression targets; --regression forces it. */
    assert_int_equal(csv(in, "1,2,1.5\n3,4,-2\n", (DptCsvOptions){0}, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    assert_true(!info.y_labels && info.k == 1 && s.tgt[0] == 1.5f && s.tgt[1] == -2.0f);
    free(mem);
    assert_int_equal(csv(in, "1,2,1\n3,4,0\n", (DptCsvOptions){.regression = 1}, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    assert_true(!info.y_labels && info.k == 1 && s.tgt[0] == 1.0f);
    free(mem);
    /* pandas' to_csv: an unnamed index column, class names (sorted). */
    assert_int_equal(csv(in, ",a,b,species\n0,1,2,setosa\n1,3,4,virginica\n2,5,6,setosa\n3,7,8,versicolor\n",
                         (DptCsvOptions){0}, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    x = s.x;
    assert_true(info.n == 4 && info.d == 2 && x[0] == 1.0f && x[7] == 8.0f);
    assert_true(s.lab[0] == 0 && s.lab[1] == 2 && s.lab[2] == 0 && s.lab[3] == 1);
    free(mem);
    char names[256];
    class_names(out, names, sizeof names);
    assert_string_equal(names, "setosa,versicolor,virginica");
    /* A spreadsheet's export: ';' separators, quoted fields, label named. */
    assert_int_equal(csv(in, "\"id\";\"kind\";\"f;1\";\"f 2\"\n7;\"b\";1;\"2\"\n8;\"a \"\"x\"\"\";3;4\n",
                         (DptCsvOptions){.label_col = "kind", .index_col = "id"}, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    x = s.x;
    assert_true(info.n == 2 && info.d == 2 && x[0] == 1.0f && x[1] == 2.0f && x[2] == 3.0f);
    assert_true(s.lab[0] == 1 && s.lab[1] == 0);
    free(mem);
    class_names(out, names, sizeof names);
    assert_string_equal(names, "a \"x\",b");
    /* Tabs, label column by number, no header. */
    assert_int_equal(csv(in, "2\t10\t20\n0\t30\t40\n", (DptCsvOptions){.label_col = "0", .header = 2}, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    x = s.x;
    assert_true(info.d == 2 && x[0] == 10.0f && x[3] == 40.0f && s.lab[0] == 2 && s.lab[1] == 0);
    free(mem);
    /* A decimal comma, as European spreadsheets write numbers (';' detected). */
    assert_int_equal(csv(in, "a;b;kind\n4,5;-1,25;cat\n2;3,0;dog\n", (DptCsvOptions){.decimal = ','}, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    x = s.x;
    assert_true(info.n == 2 && info.d == 2 && x[0] == 4.5f && x[1] == -1.25f && x[3] == 3.0f);
    assert_true(s.lab[0] == 0 && s.lab[1] == 1);
    free(mem);
    assert_int_equal(csv(in, "a;b;y\n4,5;1;0\n", (DptCsvOptions){.decimal = ',', .sep = ','}, out), DPT_EUSAGE);
    /* Inputs only. */
    assert_int_equal(csv(in, "a,b\n1,2\n3,4\n", (DptCsvOptions){.label_col = "none"}, out), DPT_OK);
    assert_int_equal(dpt_data_probe(out, "train", DPT_PROBE_UNLABELED_OK, &info), DPT_OK);
    assert_true(info.unlabeled && info.n == 2 && info.d == 2);
    /* Bad input: one-line messages naming the file, line and column. */
    assert_int_equal(csv(in, "1,2,1\n3,x,0\n", (DptCsvOptions){0}, out), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "d.csv:2: column 1 ('x') is not a number"));
    assert_int_equal(csv(in, "1,2,1\n3,0\n", (DptCsvOptions){0}, out), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "d.csv:2: 2 fields; the first line has 3"));
    assert_int_equal(csv(in, "a,b,c\n1,2,1\n", (DptCsvOptions){.label_col = "y"}, out), DPT_EUSAGE);
    assert_non_null(strstr(dpt_err_message(), "--label-col 'y': "));
    assert_non_null(strstr(dpt_err_message(), "d.csv has no such column"));
    assert_int_equal(csv(in, "1,2,1\n3,4,cat\n", (DptCsvOptions){0}, out), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "label 'cat' is text but earlier labels are numbers"));
    assert_int_equal(csv(in, "1,\"2,1\n", (DptCsvOptions){0}, out), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "quoted field is not closed"));
    assert_int_equal(csv(in, "1,2,cat\n", (DptCsvOptions){.regression = 1}, out), DPT_EUSAGE);
    dpt_err_clear();
}

/* --split: a seeded shuffle cut into train, validation and test; every row
 * lands in exactly one split. --standardize: training statistics, stored
 * and applied to every split, and reusable with standardize_from. */
static void test_csv_split_standardize(void **state)
{
    (void)state;
    char in[512], out[512], out2[512], fresh[512], missing[512];   /* tu_path's buffers rotate */
    snprintf(in, sizeof in, "%s", tu_path("s.csv"));
    snprintf(out, sizeof out, "%s", tu_path("s.h5"));
    snprintf(out2, sizeof out2, "%s", tu_path("s2.h5"));
    snprintf(fresh, sizeof fresh, "%s", tu_path("new.csv"));
    snprintf(missing, sizeof missing, "%s", tu_path("csv-missing.h5"));
    char text[4096] = "x,y,label\n";
    for (int r = 0; r < 20; r++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%d,%d,%d\n", r, 100 + 2 * r, r % 3);
    DptCsvOptions o = {.split = {0.5, 0.25, 0.25}, .seed = 7};
    assert_int_equal(csv(in, text, o, out), DPT_OK);
    int seen[20] = {0}, n_split[3] = {0};
    const char *names[3] = {"train", "validation", "test"};
    for (int k = 0; k < 3; k++) {
        DptSplitInfo info;
        DptSplit s;
        void *mem;
        load(out, names[k], &info, &mem, &s);
        n_split[k] = (int)info.n;
        const float *x = s.x;
        for (size_t i = 0; i < info.n; i++) {
            int r = (int)x[2 * i];
            assert_true(r >= 0 && r < 20 && x[2 * i + 1] == 100.0f + 2.0f * (float)r && s.lab[i] == r % 3);
            seen[r]++;
        }
        free(mem);
    }
    assert_true(n_split[0] == 10 && n_split[1] == 5 && n_split[2] == 5);
    for (int r = 0; r < 20; r++)
        assert_int_equal(seen[r], 1);
    /* Shuffled (not the file's order), and the same shuffle for the same seed. */
    DptSplitInfo info;
    DptSplit s, s2;
    void *mem, *mem2;
    load(out, "train", &info, &mem, &s);
    int in_order = 1;
    for (size_t i = 0; i < info.n; i++)
        in_order &= ((const float *)s.x)[2 * i] == (float)i;
    assert_false(in_order);
    assert_int_equal(csv(in, text, o, out2), DPT_OK);
    load(out2, "train", &info, &mem2, &s2);
    assert_memory_equal(s.x, s2.x, info.n * info.d * sizeof(float));
    free(mem);
    free(mem2);
    /* Standardised: training rows have mean 0 and sd 1 (population). */
    o.standardize = 1;
    assert_int_equal(csv(in, text, o, out), DPT_OK);
    load(out, "train", &info, &mem, &s);
    DptDataMeta meta;
    assert_int_equal(dpt_data_read_meta(out, &meta), DPT_OK);
    assert_true(meta.d == 2 && meta.n_classes == 0);
    float mean[2] = {meta.mean[0], meta.mean[1]}, sd[2] = {meta.sd[0], meta.sd[1]};
    dpt_data_meta_free(&meta);
    for (int j = 0; j < 2; j++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < info.n; i++)
            m += ((const float *)s.x)[2 * i + (size_t)j];
        m /= (double)info.n;
        for (size_t i = 0; i < info.n; i++) {
            double e = ((const float *)s.x)[2 * i + (size_t)j] - m;
            v += e * e;
        }
        assert_true(fabs(m) < 1e-6 && fabs(v / (double)info.n - 1.0) < 1e-5);
    }
    assert_true(fabs(sd[1] - 2.0 * sd[0]) < 1e-5 * sd[0] && fabs(mean[1] - (100.0 + 2.0 * mean[0])) < 1e-4);
    free(mem);
    /* New inputs converted with the stored statistics: row r = 4 maps as before. */
    DptCsvOptions o2 = {.label_col = "none", .standardize_from = out};
    assert_int_equal(csv(fresh, "x,y\n4,108\n", o2, out2), DPT_OK);
    assert_int_equal(dpt_data_probe(out2, "train", DPT_PROBE_UNLABELED_OK, &info), DPT_OK);
    mem = aligned_alloc(64, (dpt_data_bytes(&info) + 63) / 64 * 64);
    assert_int_equal(dpt_data_load(out2, "train", &info, mem, &s), DPT_OK);
    assert_float_equal(((const float *)s.x)[0], (4.0 - mean[0]) / sd[0], 1e-6);
    assert_float_equal(((const float *)s.x)[1], (108.0 - mean[1]) / sd[1], 1e-6);
    free(mem);
    o2.standardize_from = missing;
    assert_int_equal(csv(fresh, "x,y\n4,108\n", o2, out2), DPT_EINPUT);
    assert_int_equal(csv(fresh, "x\n4\n", (DptCsvOptions){.label_col = "none", .standardize_from = out},
                         out2), DPT_EINPUT);
    assert_non_null(strstr(dpt_err_message(), "statistics of 2 features; the table has 1"));
    dpt_err_clear();
}

/* The crash net (src/h5net.c), in a child process: on a file that makes
 * HDF5 1.10 itself read through a null pointer (found by fuzz_hdf5), the
 * probe ends in status 3 and one line naming the file; a SIGSEGV raised in
 * our own code with the net installed still kills the process by its signal. */
static int crash_child(int ours, const char *path, const char *err_path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (int i = 0; i < 5; i++)
            signal(sigs[i], SIG_DFL);   /* not CMocka's */
        if (!freopen(err_path, "w", stderr))
            _exit(90);
        if (!dpt_h5_net_install(NULL, 0))
            _exit(91);
        if (ours)
            raise(SIGSEGV);   /* not a null store: UBSan would end that first */
        DptSplitInfo info;
        dpt_data_probe(path, "train", 1, &info);
        _exit(92);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void test_crash_net(void **state)
{
    (void)state;
    const char *path = DPT_TEST_DATA "/../fuzz/regressions/hdf5-library/group-local-heap-null-read";
    char err_path[4096], line[4096] = "";
    snprintf(err_path, sizeof err_path, "%s", tu_path("net-err.txt"));
    int st = crash_child(0, path, err_path);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), DPT_EINPUT);
    FILE *f = fopen(err_path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_null(fgets(line + strlen(line), (int)(sizeof line - strlen(line)), f));   /* one line */
    fclose(f);
    assert_non_null(strstr(line, "dptrain: error: "));
    assert_non_null(strstr(line, "group-local-heap-null-read: damaged file: the HDF5 library crashed reading it (SIGSEGV)"));
    st = crash_child(1, path, err_path);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSEGV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_idx_conversion),
        cmocka_unit_test(test_csv_conversion),
        cmocka_unit_test(test_csv_split_standardize),
        cmocka_unit_test(test_crash_net),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
