#include "dptrain/trace.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"
#include "dptrain/optim.h"
#include "dptrain/rng.h"

#define G_TRACE "trace"

struct DptTrace {
    char path[1024];
    hid_t file, group;
    hid_t d_step, d_loss, d_gw, d_gb, d_params;
    const DptArch *arch;
    int L, k;                         /* layers, traced values per record */
    size_t offsets[DPT_TRACE_MAX_PARAMS];
    int project;
    float *dir[2];                    /* projection directions [n_params], unit norm */
    float *theta0;                    /* parameters at the start [n_params] */
    int64_t every;
    size_t n_buf;                     /* records buffered */
    hsize_t n_written;
    int64_t *b_step;                  /* [BUFFER] */
    float *b_loss;                    /* [BUFFER] */
    float *b_gw, *b_gb;               /* [BUFFER, L] */
    float *b_params;                  /* [BUFFER, k] */
};

DptStatus dpt_trace_parse_params(const char *spec, const DptArch *arch, size_t *offsets, char names[][32], int *n)
{
    *n = 0;
    const char *p = spec;
    while (*p) {
        int l, i, used = 0;
        char jb[16];
        if (sscanf(p, "%d:%d:%15[0-9b]%n", &l, &i, jb, &used) != 3)
            return dpt_err(DPT_EUSAGE, "--trace-params '%s': expected layer:i:j or layer:i:b, comma-separated", spec);
        if (*n >= DPT_TRACE_MAX_PARAMS)
            return dpt_err(DPT_EUSAGE, "--trace-params: at most %d parameters", DPT_TRACE_MAX_PARAMS);
        if (l < 0 || l >= arch->n_layers || i < 0 || i >= arch->sizes[l + 1])
            return dpt_err(DPT_EUSAGE, "--trace-params %d:%d: layer 0..%d and unit 0..%d expected", l, i,
                           arch->n_layers - 1, l >= 0 && l < arch->n_layers ? arch->sizes[l + 1] - 1 : 0);
        if (strcmp(jb, "b") == 0) {
            offsets[*n] = arch->b_off[l] + (size_t)i;
            snprintf(names[*n], 32, "b%d[%d]", l, i);
        } else {
            int j = atoi(jb);
            if (j >= arch->sizes[l])
                return dpt_err(DPT_EUSAGE, "--trace-params %d:%d:%d: input 0..%d expected", l, i, j, arch->sizes[l] - 1);
            offsets[*n] = arch->w_off[l] + (size_t)i * (size_t)arch->sizes[l] + (size_t)j;
            snprintf(names[*n], 32, "W%d[%d,%d]", l, i, j);
        }
        (*n)++;
        p += used;
        if (*p == ',')
            p++;
        else if (*p)
            return dpt_err(DPT_EUSAGE, "--trace-params '%s': expected layer:i:j or layer:i:b, comma-separated", spec);
    }
    return DPT_OK;
}

static hid_t make_extendible(hid_t g, const char *name, hid_t type, int cols)
{
    hsize_t dims[2] = {0, (hsize_t)cols}, maxd[2] = {H5S_UNLIMITED, (hsize_t)cols};
    hsize_t chunk[2] = {DPT_TRACE_BUFFER, (hsize_t)(cols > 0 ? cols : 1)};
    int rank = cols > 0 ? 2 : 1;
    hid_t sp = H5Screate_simple(rank, dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_fletcher32(dcpl);
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

DptStatus dpt_trace_open(DptTrace **out, const char *path, const DptArch *arch, int64_t every, const size_t *offsets,
                         char names[][32], int n_params, int project, uint64_t seed, const float *theta0)
{
    DptTrace *t = calloc(1, sizeof *t);
    if (!t)
        return dpt_err(DPT_ENOMEM, "cannot allocate the trace");
    *out = t;
    snprintf(t->path, sizeof t->path, "%s", path);
    t->arch = arch;
    t->L = arch->n_layers;
    t->every = every > 0 ? every : 1;
    t->project = project;
    t->k = project ? 2 : n_params;
    t->d_params = H5I_INVALID_HID;
    memcpy(t->offsets, offsets, sizeof(size_t) * (size_t)n_params);
    size_t B = DPT_TRACE_BUFFER, L = (size_t)t->L;
    t->b_step = calloc(B, sizeof *t->b_step);
    t->b_loss = calloc(B, sizeof *t->b_loss);
    t->b_gw = calloc(B * L, sizeof *t->b_gw);
    t->b_gb = calloc(B * L, sizeof *t->b_gb);
    t->b_params = calloc(B * (size_t)(t->k ? t->k : 1), sizeof *t->b_params);
    if (!t->b_step || !t->b_loss || !t->b_gw || !t->b_gb || !t->b_params)
        return dpt_err(DPT_ENOMEM, "cannot allocate the trace buffers");
    if (project) {
        size_t n = arch->n_params;
        for (int d = 0; d < 2; d++) {
            t->dir[d] = malloc(n * sizeof(float));
            if (!t->dir[d])
                return dpt_err(DPT_ENOMEM, "cannot allocate the projection directions");
            DptRng r;
            dpt_rng_stream(&r, seed, DPT_STREAM_PROJECT, (uint64_t)d);
            double s2 = 0;
            for (size_t i = 0; i < n; i++) {
                double v = dpt_rng_normal(&r);
                t->dir[d][i] = (float)v;
                s2 += v * v;
            }
            float inv = (float)(1.0 / sqrt(s2));
            for (size_t i = 0; i < n; i++)
                t->dir[d][i] *= inv;
        }
        t->theta0 = malloc(n * sizeof(float));
        if (!t->theta0)
            return dpt_err(DPT_ENOMEM, "cannot allocate the trace's start point");
        memcpy(t->theta0, theta0, n * sizeof(float));
    }
    /* The file is written in place (a trace grows during the run); an old one is replaced. */
    dpt_h5_init();
    dpt_h5_net_file(path, 1);
    hid_t fapl = dpt_h5_create_fapl();
    t->file = dpt_h5_fcreate(path, fapl);
    H5Pclose(fapl);
    if (t->file < 0)
        return dpt_err(DPT_EOUTPUT, "--trace %s: cannot create", path);
    t->group = H5Gcreate2(t->file, G_TRACE, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    t->d_step = make_extendible(t->group, "step", H5T_STD_I64LE, 0);
    t->d_loss = make_extendible(t->group, "loss", H5T_IEEE_F32LE, 0);
    t->d_gw = make_extendible(t->group, "grad_norm_weight", H5T_IEEE_F32LE, t->L);
    t->d_gb = make_extendible(t->group, "grad_norm_bias", H5T_IEEE_F32LE, t->L);
    if (t->k > 0)
        t->d_params = make_extendible(t->group, "params", H5T_IEEE_F32LE, t->k);
    if (t->group < 0 || t->d_step < 0 || t->d_loss < 0 || t->d_gw < 0 || t->d_gb < 0 || (t->k > 0 && t->d_params < 0))
        return dpt_err(DPT_EOUTPUT, "--trace %s: cannot create the datasets", path);
    char pn[DPT_TRACE_MAX_PARAMS * 32 + 64] = "";
    if (project) {
        snprintf(pn, sizeof pn, "projection on direction 1,projection on direction 2");
    } else {
        for (int i = 0; i < n_params; i++) {
            strcat(pn, i ? "," : "");
            strcat(pn, names[i]);
        }
    }
    DPT_TRY(dpt_h5_write_attr_ints(t->group, "layers", arch->sizes, arch->n_layers + 1, path));
    DPT_TRY(dpt_h5_write_attr_int64(t->group, "every", t->every, path));
    DPT_TRY(dpt_h5_write_attr_string(t->group, "param_names", pn, path));
    DPT_TRY(dpt_h5_write_attr_int64(t->file, "format_version", 1, path));
    DPT_TRY(dpt_h5_write_attr_string(t->file, "format", "dptrain-trace", path));
    return DPT_OK;
}

static DptStatus append(hid_t d, hid_t mem_type, hsize_t at, hsize_t rows, int cols, const void *buf, const char *path)
{
    int rank = cols > 0 ? 2 : 1;
    hsize_t size[2] = {at + rows, (hsize_t)cols}, start[2] = {at, 0}, count[2] = {rows, (hsize_t)cols};
    if (H5Dset_extent(d, size) < 0)
        return dpt_err(DPT_EOUTPUT, "--trace %s: cannot extend a dataset (disk full?)", path);
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    herr_t e = H5Dwrite(d, mem_type, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return e < 0 ? dpt_err(DPT_EOUTPUT, "--trace %s: write failed (disk full?)", path) : DPT_OK;
}

static DptStatus flush(DptTrace *t)
{
    if (t->n_buf == 0)
        return DPT_OK;
    hsize_t n = t->n_buf, at = t->n_written;
    DPT_TRY(append(t->d_step, H5T_NATIVE_INT64, at, n, 0, t->b_step, t->path));
    DPT_TRY(append(t->d_loss, H5T_NATIVE_FLOAT, at, n, 0, t->b_loss, t->path));
    DPT_TRY(append(t->d_gw, H5T_NATIVE_FLOAT, at, n, t->L, t->b_gw, t->path));
    DPT_TRY(append(t->d_gb, H5T_NATIVE_FLOAT, at, n, t->L, t->b_gb, t->path));
    if (t->k > 0)
        DPT_TRY(append(t->d_params, H5T_NATIVE_FLOAT, at, n, t->k, t->b_params, t->path));
    H5Fflush(t->file, H5F_SCOPE_LOCAL);
    t->n_written += n;
    t->n_buf = 0;
    return DPT_OK;
}

int dpt_trace_wants(const DptTrace *t, int64_t step) { return step % t->every == 0; }

void dpt_trace_grads(DptTrace *t, int64_t step, double loss, const float *grad, double count)
{
    const DptArch *a = t->arch;
    size_t r = t->n_buf;
    t->b_step[r] = step;
    t->b_loss[r] = (float)loss;
    for (int l = 0; l < t->L; l++) {
        size_t nw = (size_t)a->sizes[l] * (size_t)a->sizes[l + 1];
        t->b_gw[r * (size_t)t->L + (size_t)l] = grad ? (float)(dpt_optim_norm(grad + a->w_off[l], nw) / count) : NAN;
        t->b_gb[r * (size_t)t->L + (size_t)l] =
            grad ? (float)(dpt_optim_norm(grad + a->b_off[l], (size_t)a->sizes[l + 1]) / count) : NAN;
    }
}

DptStatus dpt_trace_params(DptTrace *t, const float *params)
{
    const DptArch *a = t->arch;
    size_t r = t->n_buf;
    if (t->project) {
        for (int d = 0; d < 2; d++) {
            double s = 0;
            for (size_t i = 0; i < a->n_params; i++)
                s += (double)(params[i] - t->theta0[i]) * t->dir[d][i];
            t->b_params[r * 2 + (size_t)d] = (float)s;
        }
    } else {
        for (int i = 0; i < t->k; i++)
            t->b_params[r * (size_t)t->k + (size_t)i] = params[t->offsets[i]];
    }
    if (++t->n_buf == DPT_TRACE_BUFFER)
        return flush(t);
    return DPT_OK;
}

DptStatus dpt_trace_close(DptTrace **tp)
{
    DptTrace *t = *tp;
    if (!t)
        return DPT_OK;
    DptStatus st = t->file >= 0 ? flush(t) : DPT_OK;
    hid_t ds[5] = {t->d_step, t->d_loss, t->d_gw, t->d_gb, t->d_params};
    for (int i = 0; i < 5; i++)
        if (ds[i] > 0)
            H5Dclose(ds[i]);
    if (t->group > 0)
        H5Gclose(t->group);
    if (t->file > 0)
        H5Fclose(t->file);
    free(t->b_step);
    free(t->b_loss);
    free(t->b_gw);
    free(t->b_gb);
    free(t->b_params);
    free(t->dir[0]);
    free(t->dir[1]);
    free(t->theta0);
    free(t);
    *tp = NULL;
    return st;
}

int dpt_trace_is_trace(const char *path)
{
    hid_t f;
    char fmt[32] = "";
    if (dpt_h5_open_read(path, &f) != DPT_OK) {
        dpt_err_clear();
        return 0;
    }
    if (H5Aexists(f, "format") > 0 && dpt_h5_read_attr_string(f, "format", fmt, sizeof fmt) != DPT_OK)
        dpt_err_clear();
    H5Fclose(f);
    return strcmp(fmt, "dptrain-trace") == 0;
}

DptStatus dpt_trace_describe(const char *path, FILE *out)
{
    hid_t f;
    DPT_TRY(dpt_h5_open_read(path, &f));
    DptStatus st = DPT_OK;
    int layers[DPT_MAX_LAYERS + 1], n = 0;
    int64_t every = 0;
    char names[DPT_TRACE_MAX_PARAMS * 32 + 64] = "";
    hid_t g = H5Gopen2(f, G_TRACE, H5P_DEFAULT), d = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    hsize_t records = 0;
    if (g < 0 || dpt_h5_read_attr_ints(g, "layers", layers, DPT_MAX_LAYERS + 1, &n) != DPT_OK ||
        dpt_h5_read_attr_int64(g, "every", &every) != DPT_OK ||
        dpt_h5_read_attr_string(g, "param_names", names, sizeof names) != DPT_OK ||
        (d = H5Dopen2(g, "step", H5P_DEFAULT)) < 0) {
        dpt_err_clear();
        st = dpt_err(DPT_EINPUT, "%s: not a readable dptrain trace", path);
    } else {
        sp = H5Dget_space(d);
        H5Sget_simple_extent_dims(sp, &records, NULL);
        fprintf(out, "%s: dptrain trace, %llu records (every %lld steps), layers ", path, (unsigned long long)records,
                (long long)every);
        for (int i = 0; i < n; i++)
            fprintf(out, "%s%d", i ? "," : "", layers[i]);
        fprintf(out, "\n  datasets: step, loss, grad_norm_weight, grad_norm_bias%s%s\n", names[0] ? ", params: " : "",
                names);
    }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return st;
}
