/* dptrain info on datasets and predictions files (part of the data module):
 * splits, shapes, types, label ranges, class names and standardisation. */
#include "dptrain/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_format.h"
#include "h5util.h"

/* The class names and whether x is standardised (datasets and models). */
void dpt_data_describe_meta(const char *path, void *stream)
{
    FILE *out = stream;
    DptDataMeta m;
    if (dpt_data_read_meta(path, &m) != DPT_OK) {
        fprintf(out, "  (class names or standardisation unreadable: %s)\n", dpt_err_message());
        dpt_err_clear();
        return;
    }
    if (m.n_classes) {
        fprintf(out, "  classes    %zu", m.n_classes);
        for (size_t i = 0; i < m.n_classes && i < 20; i++)
            fprintf(out, "%s%s", i ? ", " : ": ", m.class_names[i]);
        fprintf(out, "%s\n", m.n_classes > 20 ? ", ..." : "");
    }
    if (m.mean)
        fprintf(out, "  standardised inputs: x = (raw - /standardize/mean) / /standardize/std, %zu features\n", m.d);
    dpt_data_meta_free(&m);
}

/* The stored type of a dataset, in words. */
static const char *type_name(hid_t f, const char *name)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = ds >= 0 ? H5Dget_type(ds) : H5I_INVALID_HID;
    const char *s = "?";
    if (t >= 0 && H5Tget_class(t) == H5T_FLOAT)
        s = H5Tget_size(t) == 8 ? "float64" : H5Tget_size(t) == 4 ? "float32" : "float";
    else if (t >= 0 && H5Tget_class(t) == H5T_INTEGER)
        s = H5Tget_size(t) == 1 ? (H5Tget_sign(t) == H5T_SGN_NONE ? "uint8" : "int8")
            : H5Tget_size(t) == 8 ? "int64" : H5Tget_size(t) == 4 ? "int32" : "integer";
    if (t >= 0)
        H5Tclose(t);
    if (ds >= 0)
        H5Dclose(ds);
    return s;
}

/* The smallest and largest label of /<split>/y (integer labels). */
static void label_range(hid_t f, const char *split, size_t n, int32_t *lo, int32_t *hi)
{
    char name[64];
    dpt_data_ds_name(name, sizeof name, split, DS_Y);
    int32_t *lab = malloc((n ? n : 1) * sizeof *lab);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    *lo = 0;
    *hi = -1;
    if (lab && d >= 0 && dpt_h5_read_all(d, H5T_NATIVE_INT32, lab) >= 0 && n > 0) {
        *lo = *hi = lab[0];
        for (size_t r = 1; r < n; r++) {
            *lo = lab[r] < *lo ? lab[r] : *lo;
            *hi = lab[r] > *hi ? lab[r] : *hi;
        }
    }
    if (d >= 0)
        H5Dclose(d);
    free(lab);
}

static DptStatus describe_split(hid_t f, const char *path, const char *split, FILE *out, int *any)
{
    DptSplitInfo in;
    DPT_TRY(dpt_data_probe_f(f, path, split, DPT_PROBE_UNLABELED_OK, &in));
    if (!in.present)
        return DPT_OK;
    char name[64], label[16];
    dpt_data_ds_name(name, sizeof name, split, DS_X);
    snprintf(label, sizeof label, "/%s%s", split, split[0] ? "" : "x ");
    *any = 1;
    fprintf(out, "  %-11s x [%zu, %zu] %s", label, in.n, in.d, type_name(f, name));
    if (in.x_u8)
        fprintf(out, " (scale %g)", (double)in.x_scale);
    dpt_data_ds_name(name, sizeof name, split, DS_Y);
    if (in.unlabeled) {
        fprintf(out, ", no y (inputs only: for predict)\n");
    } else if (in.y_labels) {
        int32_t lo, hi;
        label_range(f, split, in.n, &lo, &hi);
        fprintf(out, ", y [%zu] %s labels %d..%d\n", in.n, type_name(f, name), lo, hi);
    } else {
        fprintf(out, ", y [%zu, %zu] %s targets\n", in.n, in.k, type_name(f, name));
    }
    return DPT_OK;
}

/* A file that dptrain predict wrote. */
static void describe_predictions(hid_t f, FILE *out)
{
    hid_t d = H5Dopen2(f, "predictions/output", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    fprintf(out, "  /predictions output [%llu, %llu] float32 (network outputs), class [%llu] int32 (predicted class)\n",
            (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[0]);
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
}

DptStatus dpt_data_describe_dataset(const char *path, void *stream)
{
    FILE *out = stream;
    hid_t f;
    DPT_TRY(dpt_h5_open_read(path, &f));
    char desc[512] = "";
    if (H5Aexists(f, ATTR_DESCRIPTION) > 0 && dpt_h5_read_attr_string(f, ATTR_DESCRIPTION, desc, sizeof desc) != DPT_OK)
        dpt_err_clear();
    const int preds = dpt_h5_exists(f, "predictions/output");
    fprintf(out, "%s: %s%s%s\n", path, preds ? "predictions" : "dataset", desc[0] ? " - " : "", desc);
    dpt_data_describe_meta(path, out);
    const char *splits[] = {"train", "validation", "test", ""};
    int any = 0;
    DptStatus st = DPT_OK;
    for (int i = 0; i < 4 && st == DPT_OK; i++)
        st = describe_split(f, path, splits[i], out, &any);
    if (st == DPT_OK && preds)
        describe_predictions(f, out);
    else if (st == DPT_OK && !any)
        fprintf(out, "  (no train, validation or test group, and no /x)\n");
    H5Fclose(f);
    return st;
}
