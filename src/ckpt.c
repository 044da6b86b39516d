#include "dptrain/ckpt.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt_format.h"
#include "h5util.h"

/* Text as a scalar fixed-length string dataset (not in the global heap). */
static DptStatus write_text_dataset(hid_t loc, const char *name, const char *text, const char *file)
{
    DptStatus st = DPT_OK;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(text) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text) < 0)
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

/* What models and checkpoints share: the root attributes, /model, /config. */
static DptStatus write_common(hid_t f, const char *format, const DptArch *arch, const float *params,
                              const char *config_text, const DptDataMeta *meta, const char *path)
{
    if (meta)
        DPT_TRY(dpt_h5_write_meta(f, meta, path));
    DPT_TRY(dpt_h5_write_attr_string(f, A_FORMAT, format, path));
    DPT_TRY(dpt_h5_write_attr_int64(f, A_FORMAT_VERSION, DPT_FORMAT_VERSION, path));
    DPT_TRY(dpt_h5_write_attr_string(f, A_VERSION, DPT_VERSION, path));
    DPT_TRY(write_model_group(f, arch, params, path));
    if (config_text)
        DPT_TRY(write_text_dataset(f, G_CONFIG, config_text, path));
    return DPT_OK;
}

DptStatus dpt_ckpt_save_model(const char *path, const DptArch *arch, const float *params, const char *config_text,
                              const DptDataMeta *meta)
{
    DptStatus st = DPT_OK;
    char tmp[4096];
    hid_t f = H5I_INVALID_HID;
    DPT_TRY(dpt_h5_create_tmp(path, tmp, sizeof tmp, &f));
    DPT_TRY_GOTO(st, write_common(f, DPT_MODEL_FORMAT, arch, params, config_text, meta, path), fail);
    return dpt_h5_commit_tmp(&f, tmp, path);
fail:
    H5Fclose(f);
    unlink(tmp);
    return st;
}

DptStatus dpt_ckpt_check_format(hid_t f, const char *path, int *is_ckpt)
{
    char fmt[64];
    int64_t ver = 0;
    if (H5Aexists(f, A_FORMAT) <= 0)
        return dpt_err(DPT_EINPUT, "%s: not a dptrain model or checkpoint (no 'format' attribute)", path);
    if (dpt_h5_read_attr_string(f, A_FORMAT, fmt, sizeof fmt) != DPT_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", dpt_err_message());
        dpt_err_clear();
        return dpt_err(DPT_EINPUT, "%s: %s", path, why);
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

DptStatus dpt_ckpt_read_arch(hid_t f, const char *path, DptArch *arch)
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
    if (!dpt_h5_is_number(d, H5T_FLOAT))
        st = dpt_err(DPT_EINPUT, "%s: /%s is not a float array", path, name);
    else if (dpt_h5_read_all(d, H5T_NATIVE_FLOAT, dst) < 0)
        st = dpt_err(DPT_EINPUT, "%s: cannot read /%s (checksum mismatch or damaged file)", path, name);
done:
    H5Sclose(sp);
    H5Dclose(d);
    return st;
}

/* /model/layer_<l>/weight and bias of every layer, into params (arch's layout). */
static DptStatus read_layers(hid_t f, const char *path, const DptArch *arch, float *params)
{
    for (int l = 0; l < arch->n_layers; l++) {
        char name[96];
        hsize_t wd[2] = {(hsize_t)arch->sizes[l + 1], (hsize_t)arch->sizes[l]};
        hsize_t bd[1] = {(hsize_t)arch->sizes[l + 1]};
        snprintf(name, sizeof name, "%s/layer_%d/%s", G_MODEL, l, D_WEIGHT);
        DPT_TRY(read_tensor(f, path, name, params + arch->w_off[l], 2, wd));
        snprintf(name, sizeof name, "%s/layer_%d/%s", G_MODEL, l, D_BIAS);
        DPT_TRY(read_tensor(f, path, name, params + arch->b_off[l], 1, bd));
    }
    return DPT_OK;
}

static DptStatus load_model_f(hid_t f, const char *path, DptArch *arch, float **params)
{
    DptStatus st = DPT_OK;
    *params = NULL;
    DPT_TRY_GOTO(st, dpt_ckpt_check_format(f, path, NULL), done);
    DPT_TRY_GOTO(st, dpt_ckpt_read_arch(f, path, arch), done);
    *params = dpt_aligned_alloc(arch->n_params * sizeof(float), "model parameters");
    if (!*params) {
        st = DPT_ENOMEM;
        goto done;
    }
    DPT_TRY_GOTO(st, read_layers(f, path, arch, *params), done);
done:
    if (st != DPT_OK) {
        free(*params);
        *params = NULL;
    }
    return st;
}

DptStatus dpt_ckpt_load_model(const char *path, DptArch *arch, float **params)
{
    hid_t f;
    *params = NULL;
    DPT_TRY(dpt_h5_open_read(path, &f));
    DptStatus st = load_model_f(f, path, arch, params);
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

/* ---------------------------------------------------------------- checkpoints */

DptStatus dpt_ckpt_read_text(hid_t f, const char *path, const char *name, char **text)
{
    DptStatus st = DPT_OK;
    *text = NULL;
    if (!dpt_h5_exists(f, name))
        return DPT_OK;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t ft = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID;
    hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    size_t sz = ft >= 0 ? H5Tget_size(ft) : 0;
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) != 0 || sz == 0 || sz > ((size_t)1 << 26) ||
        H5Sget_simple_extent_npoints(sp) != 1) {
        st = dpt_err(DPT_EINPUT, "%s: /%s is not a fixed-length text", path, name);
    } else {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz + 1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        *text = calloc(sz + 1, 1);
        if (!*text)
            st = dpt_err(DPT_ENOMEM, "%s: out of memory reading /%s", path, name);
        else if (dpt_h5_read_all(d, mt, *text) < 0)
            st = dpt_err(DPT_EINPUT, "%s: cannot read /%s", path, name);
        H5Tclose(mt);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (d >= 0)
        H5Dclose(d);
    if (st != DPT_OK) {
        free(*text);
        *text = NULL;
    }
    return st;
}

DptStatus dpt_ckpt_save(const char *path, const DptArch *arch, const float *params, const DptOptim *opt,
                        const DptTrainState *ts, const char *config_text, const char *metrics_text,
                        const DptDataMeta *meta)
{
    DptStatus st = DPT_OK;
    char tmp[4096];
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID;
    DPT_TRY(dpt_h5_create_tmp(path, tmp, sizeof tmp, &f));
    DPT_TRY_GOTO(st, write_common(f, DPT_CKPT_FORMAT, arch, params, config_text, meta, path), fail);
    if ((g = H5Gcreate2(f, G_OPTIMIZER, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        st = dpt_err(DPT_EOUTPUT, "%s: cannot create /%s", path, G_OPTIMIZER);
        goto fail;
    }
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(g, "kind", dpt_optim_name(opt->h.kind), path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "momentum", opt->h.momentum, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "beta1", opt->h.beta1, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "beta2", opt->h.beta2, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "eps", opt->h.eps, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "decay", opt->h.decay, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "t", opt->t, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "mu_prod", opt->mu_prod, path), fail);
    for (int i = 0; i < opt->n_state; i++) {
        hsize_t dims[1] = {opt->n};
        DPT_TRY_GOTO(st, dpt_h5_write_dataset(g, dpt_optim_state_name(opt->h.kind, i), H5T_NATIVE_FLOAT, 1, dims,
                                              opt->state[i], 0, path), fail);
    }
    H5Gclose(g);
    if ((g = H5Gcreate2(f, G_TRAIN, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        st = dpt_err(DPT_EOUTPUT, "%s: cannot create /%s", path, G_TRAIN);
        goto fail;
    }
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "epoch", ts->epoch, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "step", ts->step, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "global_step", ts->global_step, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "seed", ts->seed, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "batch", ts->batch, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "deterministic", ts->deterministic, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(g, "rng", "derived: epoch e is shuffled by stream (seed, 2, e)", path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "epoch_loss", ts->epoch_loss, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "epoch_correct", ts->epoch_correct, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_double(g, "epoch_count", ts->epoch_count, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "ranks", ts->ranks, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_int64(g, "threads", ts->threads, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(g, A_RUN_ID, ts->run_id, path), fail);
    DPT_TRY_GOTO(st, dpt_h5_write_attr_string(g, A_KERNEL, ts->kernel, path), fail);
    H5Gclose(g);
    g = H5I_INVALID_HID;
    if (metrics_text) {
        hid_t mg = H5Gcreate2(f, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (mg < 0) {
            st = dpt_err(DPT_EOUTPUT, "%s: cannot create /metrics", path);
            goto fail;
        }
        H5Gclose(mg);
        DPT_TRY_GOTO(st, write_text_dataset(f, D_HISTORY, metrics_text, path), fail);
    }
    return dpt_h5_commit_tmp(&f, tmp, path);
fail:
    if (g >= 0)
        H5Gclose(g);
    H5Fclose(f);
    unlink(tmp);
    return st;
}

static DptStatus read_i64(hid_t g, const char *path, const char *name, int64_t *v)
{
    if (dpt_h5_read_attr_int64(g, name, v) != DPT_OK) {
        dpt_err_clear();
        return dpt_err(DPT_EINPUT, "%s: /train lacks a readable attribute '%s'", path, name);
    }
    return DPT_OK;
}

static DptStatus read_dbl(hid_t g, const char *path, const char *grp, const char *name, double *v)
{
    if (dpt_h5_read_attr_double(g, name, v) != DPT_OK) {
        dpt_err_clear();
        return dpt_err(DPT_EINPUT, "%s: /%s lacks a readable attribute '%s'", path, grp, name);
    }
    return DPT_OK;
}

/* /optimizer: its kind must be this run's; t, mu_prod and the state vectors. */
static DptStatus read_optimizer(hid_t f, const char *path, DptOptim *opt)
{
    DptStatus st = DPT_OK;
    char kind[32];
    hid_t g = H5Gopen2(f, G_OPTIMIZER, H5P_DEFAULT);
    if (g < 0)
        return dpt_err(DPT_EINPUT, "%s: missing group /%s", path, G_OPTIMIZER);
    if (dpt_h5_read_attr_string(g, "kind", kind, sizeof kind) != DPT_OK) {
        dpt_err_clear();
        st = dpt_err(DPT_EINPUT, "%s: /%s lacks its 'kind'", path, G_OPTIMIZER);
        goto done;
    }
    if (dpt_optim_parse(kind) != (int)opt->h.kind) {
        st = dpt_err(DPT_EINPUT, "%s: checkpoint of optimizer %s; this run has --optimizer %s", path, kind,
                     dpt_optim_name(opt->h.kind));
        goto done;
    }
    DPT_TRY_GOTO(st, read_i64(g, path, "t", &opt->t), done);
    DPT_TRY_GOTO(st, read_dbl(g, path, G_OPTIMIZER, "mu_prod", &opt->mu_prod), done);
    for (int i = 0; i < opt->n_state; i++) {
        char name[96];
        hsize_t dims[1] = {opt->n};
        snprintf(name, sizeof name, "%s/%s", G_OPTIMIZER, dpt_optim_state_name(opt->h.kind, i));
        DPT_TRY_GOTO(st, read_tensor(f, path, name, opt->state[i], 1, dims), done);
    }
done:
    H5Gclose(g);
    return st;
}

/* /train: where training stood, checked for consistency with the optimiser's step count t. */
static DptStatus read_train_state(hid_t f, const char *path, int64_t t, DptTrainState *ts)
{
    DptStatus st = DPT_OK;
    int64_t det = 0, ranks = 0, threads = 0;
    hid_t g = H5Gopen2(f, G_TRAIN, H5P_DEFAULT);
    if (g < 0)
        return dpt_err(DPT_EINPUT, "%s: missing group /%s", path, G_TRAIN);
    DPT_TRY_GOTO(st, read_i64(g, path, "epoch", &ts->epoch), done);
    DPT_TRY_GOTO(st, read_i64(g, path, "step", &ts->step), done);
    DPT_TRY_GOTO(st, read_i64(g, path, "global_step", &ts->global_step), done);
    DPT_TRY_GOTO(st, read_i64(g, path, "seed", &ts->seed), done);
    DPT_TRY_GOTO(st, read_i64(g, path, "batch", &ts->batch), done);
    DPT_TRY_GOTO(st, read_i64(g, path, "deterministic", &det), done);
    DPT_TRY_GOTO(st, read_i64(g, path, "ranks", &ranks), done);
    DPT_TRY_GOTO(st, read_i64(g, path, "threads", &threads), done);
    DPT_TRY_GOTO(st, read_dbl(g, path, G_TRAIN, "epoch_loss", &ts->epoch_loss), done);
    DPT_TRY_GOTO(st, read_dbl(g, path, G_TRAIN, "epoch_correct", &ts->epoch_correct), done);
    DPT_TRY_GOTO(st, read_dbl(g, path, G_TRAIN, "epoch_count", &ts->epoch_count), done);
    ts->deterministic = (int)det;
    ts->ranks = (int)ranks;
    ts->threads = (int)threads;
    /* Absent in checkpoints written before run identities: "" (no owner). */
    if (H5Aexists(g, A_RUN_ID) > 0)
        DPT_TRY_GOTO(st, dpt_h5_read_attr_string(g, A_RUN_ID, ts->run_id, sizeof ts->run_id), done);
    if (H5Aexists(g, A_KERNEL) > 0)
        DPT_TRY_GOTO(st, dpt_h5_read_attr_string(g, A_KERNEL, ts->kernel, sizeof ts->kernel), done);
    if (ts->epoch < 0 || ts->step < 0 || ts->global_step < 0 || ts->batch < 0 || t != ts->global_step)
        st = dpt_err(DPT_EINPUT, "%s: inconsistent training state (epoch %lld, step %lld, global step %lld, t %lld)",
                     path, (long long)ts->epoch, (long long)ts->step, (long long)ts->global_step, (long long)t);
done:
    H5Gclose(g);
    return st;
}

/* A checkpoint of this run's architecture (layers, activations, cost) into
 * params, opt and ts; the metrics history malloc'd into *metrics_text. */
static DptStatus load_ckpt_f(hid_t f, const char *path, const DptArch *arch, float *params, DptOptim *opt,
                             DptTrainState *ts, char **metrics_text)
{
    DptStatus st = DPT_OK;
    int is_ckpt = 0;
    DptArch have;
    char a_want[1024], a_have[1024];
    *metrics_text = NULL;
    memset(ts, 0, sizeof *ts);
    DPT_TRY_GOTO(st, dpt_ckpt_check_format(f, path, &is_ckpt), done);
    if (!is_ckpt) {
        st = dpt_err(DPT_EINPUT, "%s: a model file, not a checkpoint (use --init-from to start from its weights)", path);
        goto done;
    }
    DPT_TRY_GOTO(st, dpt_ckpt_read_arch(f, path, &have), done);
    dpt_arch_format(arch, a_want, sizeof a_want);
    dpt_arch_format(&have, a_have, sizeof a_have);
    if (strcmp(a_want, a_have) != 0 || have.hidden != arch->hidden || have.output != arch->output) {
        st = dpt_err(DPT_EINPUT, "%s: checkpoint of layers %s (hidden %s, output %s); this run has %s (hidden %s, output %s)",
                     path, a_have, dpt_act_name(have.hidden), dpt_act_name(have.output), a_want,
                     dpt_act_name(arch->hidden), dpt_act_name(arch->output));
        goto done;
    }
    if (have.cost != arch->cost) {
        st = dpt_err(DPT_EINPUT, "%s: checkpoint of --cost %s; this run has --cost %s", path, dpt_cost_name(have.cost),
                     dpt_cost_name(arch->cost));
        goto done;
    }
    DPT_TRY_GOTO(st, read_layers(f, path, arch, params), done);
    DPT_TRY_GOTO(st, read_optimizer(f, path, opt), done);
    DPT_TRY_GOTO(st, read_train_state(f, path, opt->t, ts), done);
    DPT_TRY_GOTO(st, dpt_ckpt_read_text(f, path, D_HISTORY, metrics_text), done);
done:
    if (st != DPT_OK) {
        free(*metrics_text);
        *metrics_text = NULL;
    }
    return st;
}

DptStatus dpt_ckpt_load(const char *path, const DptArch *arch, float *params, DptOptim *opt, DptTrainState *ts,
                        char **metrics_text)
{
    hid_t f;
    *metrics_text = NULL;
    memset(ts, 0, sizeof *ts);
    DPT_TRY(dpt_h5_open_read(path, &f));
    DptStatus st = load_ckpt_f(f, path, arch, params, opt, ts, metrics_text);
    H5Fclose(f);
    return st;
}

DptStatus dpt_ckpt_check_image(const void *buf, size_t len)
{
    hid_t f;
    DPT_TRY(dpt_h5_open_image(buf, len, &f));
    DptArch arch;
    float *params = NULL;
    /* The architecture first: a few bytes can claim a network of terabytes. */
    DptStatus st = dpt_ckpt_check_format(f, "image", NULL);
    if (st == DPT_OK)
        st = dpt_ckpt_read_arch(f, "image", &arch);
    if (st == DPT_OK && arch.n_params > ((size_t)1 << 24))
        st = dpt_err(DPT_EINPUT, "image: %zu parameters is too many for a check", arch.n_params);
    if (st == DPT_OK)
        st = load_model_f(f, "image", &arch, &params);
    int is_ckpt = 0;
    if (st == DPT_OK)
        st = dpt_ckpt_check_format(f, "image", &is_ckpt);
    if (st == DPT_OK && is_ckpt) {
        /* The optimiser kind the file names, so that its state is read. */
        char kind[32] = "";
        hid_t g = H5Gopen2(f, G_OPTIMIZER, H5P_DEFAULT);
        if (g >= 0) {
            if (dpt_h5_read_attr_string(g, "kind", kind, sizeof kind) != DPT_OK)
                dpt_err_clear();
            H5Gclose(g);
        }
        int k = dpt_optim_parse(kind);
        DptOptHyper h = {.kind = k >= 0 ? (DptOptKind)k : DPT_OPT_SGD};
        DptOptim opt;
        DptTrainState ts;
        char *hist = NULL;
        st = dpt_optim_init(&opt, &h, arch.n_params);
        if (st == DPT_OK)
            st = load_ckpt_f(f, "image", &arch, params, &opt, &ts, &hist);
        free(hist);
        dpt_optim_free(&opt);
    }
    free(params);
    H5Fclose(f);
    return st;
}

/* ---------------------------------------------------------------- run identity */

int dpt_ckpt_read_run_id(const char *path, char *id, size_t len)
{
    hid_t f, g;
    int ok = 0;
    id[0] = '\0';
    if (dpt_h5_open_read(path, &f) != DPT_OK) {
        dpt_err_clear();
        return 0;
    }
    if (dpt_ckpt_check_format(f, path, &ok) == DPT_OK && ok && (g = H5Gopen2(f, G_TRAIN, H5P_DEFAULT)) >= 0) {
        if (H5Aexists(g, A_RUN_ID) > 0 && dpt_h5_read_attr_string(g, A_RUN_ID, id, len) != DPT_OK)
            ok = 0;
        H5Gclose(g);
    } else {
        ok = 0;
    }
    dpt_err_clear();
    H5Fclose(f);
    return ok;
}
