#include "dptrain/ckpt.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dptrain/h5util.h"

/* Names of groups, datasets and attributes: defined once. */
#define G_MODEL "model"
#define G_CONFIG "config"
#define A_FORMAT "format"
#define A_FORMAT_VERSION "format_version"
#define A_VERSION "dptrain_version"
#define A_LAYERS "layers"
#define A_HIDDEN "hidden"
#define A_OUTPUT "output"
#define A_COST "cost"
#define D_WEIGHT "weight"
#define D_BIAS "bias"

static DptStatus write_text_dataset(hid_t loc, const char *name, const char *text, const char *file)
{
    DptStatus st = DPT_OK;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text) < 0)
        st = dpt_err(DPT_EOUTPUT, "%s: cannot write /%s", file, name);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    return st;
}

static DptStatus write_model_group(hid_t f, const DptArch *arch, const float *params, const char *file)
{
    DptStatus st = DPT_OK;
    hid_t g = H5Gcreate2(f, G_MODEL, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return dpt_err(DPT_EOUTPUT, "%s: cannot create /%s", file, G_MODEL);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_ints(g, A_LAYERS, arch->sizes, arch->n_layers + 1, file), done);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(g, A_HIDDEN, dpt_act_name(arch->hidden), file), done);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(g, A_OUTPUT, dpt_act_name(arch->output), file), done);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(g, A_COST, dpt_cost_name(arch->cost), file), done);
    for (int l = 0; l < arch->n_layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "layer_%d", l);
        hid_t lg = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (lg < 0) {
            st = dpt_err(DPT_EOUTPUT, "%s: cannot create /%s/%s", file, G_MODEL, name);
            goto done;
        }
        hsize_t wd[2] = {(hsize_t)arch->sizes[l + 1], (hsize_t)arch->sizes[l]};
        hsize_t bd[1] = {(hsize_t)arch->sizes[l + 1]};
        st = dpt_h5_write_dataset(lg, D_WEIGHT, H5T_NATIVE_FLOAT, 2, wd, params + arch->w_off[l], 0, file);
        if (st == DPT_OK)
            st = dpt_h5_write_dataset(lg, D_BIAS, H5T_NATIVE_FLOAT, 1, bd, params + arch->b_off[l], 0, file);
        H5Gclose(lg);
        if (st != DPT_OK)
            goto done;
    }
done:
    H5Gclose(g);
    return st;
}

DptStatus dpt_ckpt_save_model(const char *path, const DptArch *arch, const float *params, const char *config_text)
{
    DptStatus st = DPT_OK;
    char tmp[4096];
    hid_t f = H5I_INVALID_HID;
    DPT_TRY(dpt_h5_create_tmp(path, tmp, sizeof tmp, &f));
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(f, A_FORMAT, DPT_MODEL_FORMAT, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(f, A_FORMAT_VERSION, DPT_FORMAT_VERSION, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(f, A_VERSION, DPT_VERSION, path), fail);
    DPT_TRY_GOTO(st, write_model_group(f, arch, params, path), fail);
    if (config_text)
        DPT_TRY_GOTO(st, write_text_dataset(f, G_CONFIG, config_text, path), fail);
    return dpt_h5_commit_tmp(&f, tmp, path);
fail:
    H5Fclose(f);
    unlink(tmp);
    return st;
}

static DptStatus check_format(hid_t f, const char *path, int *is_ckpt)
{
    char fmt[64];
    int64_t ver = 0;
    if (dpt_h5_read_attr_string(f, A_FORMAT, fmt, sizeof fmt) != DPT_OK) {
        dpt_err_clear();
        return dpt_err(DPT_EINPUT, "%s: not a dptrain model or checkpoint (no 'format' attribute)", path);
    }
    if (strcmp(fmt, DPT_MODEL_FORMAT) != 0 && strcmp(fmt, DPT_CKPT_FORMAT) != 0)
        return dpt_err(DPT_EINPUT, "%s: format '%s'; expected '%s' or '%s'", path, fmt, DPT_MODEL_FORMAT,
                       DPT_CKPT_FORMAT);
    if (dpt_h5_read_attr_int64(f, A_FORMAT_VERSION, &ver) != DPT_OK || ver != DPT_FORMAT_VERSION) {
        dpt_err_clear();
        return dpt_err(DPT_EINPUT, "%s: format_version %lld; this dptrain reads version %d", path, (long long)ver,
                       DPT_FORMAT_VERSION);
    }
    if (is_ckpt)
        *is_ckpt = strcmp(fmt, DPT_CKPT_FORMAT) == 0;
    return DPT_OK;
}

static DptStatus read_arch(hid_t f, const char *path, DptArch *arch)
{
    DptStatus st = DPT_OK;
    int sizes[DPT_MAX_LAYERS + 1], n = 0;
    char hidden[32], output[32], cost[32];
    hid_t g = H5Gopen2(f, G_MODEL, H5P_DEFAULT);
    if (g < 0)
        return dpt_err(DPT_EINPUT, "%s: missing group /%s", path, G_MODEL);
    if (dpt_h5_read_attr_ints(g, A_LAYERS, sizes, DPT_MAX_LAYERS + 1, &n) != DPT_OK ||
        dpt_h5_read_attr_string(g, A_HIDDEN, hidden, sizeof hidden) != DPT_OK ||
        dpt_h5_read_attr_string(g, A_OUTPUT, output, sizeof output) != DPT_OK ||
        dpt_h5_read_attr_string(g, A_COST, cost, sizeof cost) != DPT_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", dpt_err_message());
        dpt_err_clear();
        st = dpt_err(DPT_EINPUT, "%s: /%s: %s", path, G_MODEL, why);
        goto done;
    }
    int h = dpt_act_parse(hidden), o = dpt_act_parse(output), c = dpt_cost_parse(cost);
    if (h < 0 || o < 0 || c < 0) {
        st = dpt_err(DPT_EINPUT, "%s: /%s has unknown hidden '%s', output '%s' or cost '%s'", path, G_MODEL, hidden,
                     output, cost);
        goto done;
    }
    if (dpt_arch_init(arch, sizes, n, (DptAct)h, (DptAct)o, (DptCost)c) != DPT_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", dpt_err_message());
        dpt_err_clear();
        st = dpt_err(DPT_EINPUT, "%s: invalid architecture in /%s: %s", path, G_MODEL, why);
    }
done:
    H5Gclose(g);
    return st;
}

static DptStatus read_tensor(hid_t f, const char *path, const char *name, float *dst, int rank, const hsize_t *want)
{
    DptStatus st = DPT_OK;
    hid_t d = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    if (!dpt_h5_exists(f, name) || (d = H5Dopen2(f, name, H5P_DEFAULT)) < 0)
        return dpt_err(DPT_EINPUT, "%s: missing dataset /%s", path, name);
    sp = H5Dget_space(d);
    if (H5Sget_simple_extent_ndims(sp) != rank) {
        st = dpt_err(DPT_EINPUT, "%s: /%s has rank %d; expected %d", path, name, H5Sget_simple_extent_ndims(sp), rank);
        goto done;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    for (int i = 0; i < rank; i++)
        if (dims[i] != want[i]) {
            st = dpt_err(DPT_EINPUT, "%s: /%s has shape [%llu%s%llu]; expected [%llu%s%llu]", path, name,
                         (unsigned long long)dims[0], rank > 1 ? ", " : "", rank > 1 ? (unsigned long long)dims[1] : 0ULL,
                         (unsigned long long)want[0], rank > 1 ? ", " : "", rank > 1 ? (unsigned long long)want[1] : 0ULL);
            goto done;
        }
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        st = dpt_err(DPT_EINPUT, "%s: cannot read /%s (checksum mismatch or damaged file)", path, name);
done:
    H5Sclose(sp);
    H5Dclose(d);
    return st;
}

DptStatus dpt_ckpt_load_model(const char *path, DptArch *arch, float **params)
{
    DptStatus st = DPT_OK;
    hid_t f = H5I_INVALID_HID;
    *params = NULL;
    DPT_TRY(dpt_h5_open_read(path, &f));
    DPT_TRY_GOTO(st, check_format(f, path, NULL), done);
    DPT_TRY_GOTO(st, read_arch(f, path, arch), done);
    *params = dpt_aligned_alloc(arch->n_params * sizeof(float), "model parameters");
    if (!*params) {
        st = DPT_ENOMEM;
        goto done;
    }
    for (int l = 0; l < arch->n_layers; l++) {
        char name[96];
        hsize_t wd[2] = {(hsize_t)arch->sizes[l + 1], (hsize_t)arch->sizes[l]};
        hsize_t bd[1] = {(hsize_t)arch->sizes[l + 1]};
        snprintf(name, sizeof name, "%s/layer_%d/%s", G_MODEL, l, D_WEIGHT);
        DPT_TRY_GOTO(st, read_tensor(f, path, name, *params + arch->w_off[l], 2, wd), done);
        snprintf(name, sizeof name, "%s/layer_%d/%s", G_MODEL, l, D_BIAS);
        DPT_TRY_GOTO(st, read_tensor(f, path, name, *params + arch->b_off[l], 1, bd), done);
    }
done:
    if (st != DPT_OK) {
        free(*params);
        *params = NULL;
    }
    H5Fclose(f);
    return st;
}

int dpt_ckpt_is_ours(const char *path)
{
    hid_t f;
    if (dpt_h5_open_read(path, &f) != DPT_OK) {
        dpt_err_clear();
        return 0;
    }
    int ours = H5Aexists(f, A_FORMAT) > 0;
    H5Fclose(f);
    return ours;
}

DptStatus dpt_ckpt_describe(const char *path, FILE *out)
{
    DptStatus st = DPT_OK;
    hid_t f = H5I_INVALID_HID;
    int is_ckpt = 0;
    char ver[64] = "?", layers[1024];
    DptArch arch;
    DPT_TRY(dpt_h5_open_read(path, &f));
    DPT_TRY_GOTO(st, check_format(f, path, &is_ckpt), done);
    DPT_TRY_GOTO(st, read_arch(f, path, &arch), done);
    if (dpt_h5_read_attr_string(f, A_VERSION, ver, sizeof ver) != DPT_OK)
        dpt_err_clear();
    dpt_arch_format(&arch, layers, sizeof layers);
    fprintf(out, "%s: dptrain %s (format version %d, written by dptrain %s)\n", path,
            is_ckpt ? "checkpoint" : "model", DPT_FORMAT_VERSION, ver);
    fprintf(out, "  layers %s, hidden %s, output %s, cost %s\n", layers, dpt_act_name(arch.hidden),
            dpt_act_name(arch.output), dpt_cost_name(arch.cost));
    fprintf(out, "  parameters %zu (%.2f MiB float32)\n", arch.n_params, (double)arch.n_params * 4.0 / 1048576.0);
done:
    H5Fclose(f);
    return st;
}
