#include "dptrain/infer.h"

#include <stdlib.h>
#include <string.h>

#include "dptrain/ckpt.h"
#include "dptrain/convert.h"
#include "dptrain/kernels.h"
#include "dptrain/log.h"
#include "dptrain/loss.h"

const char *const dpt_split_names[DPT_N_SPLITS] = {"train", "test", "validation"};

/* Loads one split into node-shared memory: every rank probes, node rank 0
 * reads and validates, the others attach. Collective. */
DptStatus dpt_infer_load_split(const DptDist *d, const char *path, const char *split, int flags, const DptArch *arch,
                               DptSplit *s, void **win)
{
    DptSplitInfo info;
    DptStatus st = dpt_data_probe(path, split, flags, &info);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    memset(s, 0, sizeof *s);
    if (!info.present)
        return DPT_OK;
    void *mem = NULL;
    const size_t bytes = dpt_data_bytes(&info);
    st = dpt_dist_shared_alloc(d, bytes, &mem, win);   /* agreed */
    const int own = st == DPT_ENOMEM && d->node_size > 1;
    if (own) {
        /* The node's shared memory cannot hold the split: a copy on every
         * rank (more memory and reading, the same run). */
        if (d->rank == dpt_dist_reporter())
            dpt_log_warn("%s; every rank reads its own copy of the %s split instead", dpt_err_message(), split);
        dpt_err_clear();
        st = dpt_dist_private_alloc(bytes, &mem, win);
    }
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    if (d->node_rank == 0 || own) {
        st = dpt_data_load(path, split, &info, mem, s);
        if (st == DPT_OK)
            st = dpt_data_validate(s, path, split, arch->sizes[0], arch->sizes[arch->n_layers]);
    }
    if (!own)
        dpt_dist_node_barrier(d);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    dpt_data_attach(s, &info, mem);
    return DPT_OK;
}

/* Loss and accuracy over a whole split, sharded by contiguous ranges and
 * reduced. Collective. */
void dpt_infer_evaluate(const DptDist *d, const DptArch *arch, const float *params, DptWork *w, const DptSplit *s,
                        double *loss, double *acc)
{
    size_t n = s->info.n, k = (size_t)arch->sizes[arch->n_layers];
    size_t lo = n * (size_t)d->rank / (size_t)d->world_size, hi = n * (size_t)(d->rank + 1) / (size_t)d->world_size;
    double v[2] = {0.0, 0.0};
    for (size_t r = lo; r < hi; r += w->cap) {
        size_t m = hi - r < w->cap ? hi - r : w->cap;
        int64_t correct = 0;
        dpt_data_gather(w->act[0], w->y, w->cls, s, NULL, r, m, k);
        dpt_net_forward(w, arch, params, m);
        v[0] += dpt_net_loss(w, arch, m, 0, &correct);
        v[1] += (double)correct;
    }
    dpt_dist_sum_doubles(d, v, 2);
    *loss = v[0] / (double)n;
    *acc = v[1] / (double)n;
}

/* ---------------------------------------------------------------- eval and predict */

/* Model (rank 0 reads, all receive) and the chosen split. Collective. */
static DptStatus load_model_and_split(const DptDist *d, const char *model, const char *data, const char *split,
                                      int unlabeled_ok, DptArch *arch, float **params, DptSplit *s, void **win,
                                      const char **name)
{
    DptStatus st = DPT_OK;
    *params = NULL;
    if (d->rank == 0)
        st = dpt_ckpt_load_model(model, arch, params);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    dpt_dist_bcast(d, arch, sizeof *arch, 0);
    if (d->rank != 0) {
        *params = dpt_aligned_alloc(arch->n_params * sizeof(float), "parameters");
        st = *params ? DPT_OK : DPT_ENOMEM;
    }
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    dpt_dist_bcast(d, *params, arch->n_params * sizeof(float), 0);
    if (!data)
        return DPT_OK;   /* the model alone */
    /* --split, else test if present, else the root's /x, else train. */
    const int flags = DPT_PROBE_REQUIRED | (unlabeled_ok ? DPT_PROBE_UNLABELED_OK : 0);
    if (split && split[0]) {
        int which = dpt_name_index(dpt_split_names, DPT_N_SPLITS, split);
        if (which < 0)
            return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "--split '%s': expected train, test or validation", split),
                                  NULL);
        *name = dpt_split_names[which];
    } else {
        DptSplitInfo test, root;
        st = dpt_data_probe(data, "test", flags & ~DPT_PROBE_REQUIRED, &test);
        if (st == DPT_OK)
            st = dpt_data_probe(data, "", flags & ~DPT_PROBE_REQUIRED, &root);
        DPT_TRY(dpt_dist_agree(d, st, NULL));
        *name = test.present ? "test" : root.present ? "" : "train";
    }
    return dpt_infer_load_split(d, data, *name, flags, arch, s, win);
}

/* What eval and predict share: the model, one split, work buffers. */
typedef struct {
    DptArch arch;
    float *params;
    DptSplit s;
    void *win;
    float *csv_x;         /* inputs read from a CSV table (predict, rank 0) */
    const char *name;
    DptWork w;
} ModelRun;

static int is_csv(const char *path)
{
    size_t len = strlen(path);
    return len > 4 && strcmp(path + len - 4, ".csv") == 0;
}

/* Rank 0: the inputs of a CSV table without labels (predict). */
static DptStatus load_csv_inputs(ModelRun *m, const char *data)
{
    size_t n, dcols;
    DPT_TRY(dpt_convert_read_features(data, &m->csv_x, &n, &dcols));
    if (dcols != (size_t)m->arch.sizes[0])
        return dpt_err(DPT_EINPUT, "%s: %zu columns but the model takes %d inputs", data, dcols, m->arch.sizes[0]);
    m->s.info = (DptSplitInfo){.present = 1, .n = n, .d = dcols, .x_scale = 1.0f, .unlabeled = 1};
    m->s.x = m->csv_x;
    return DPT_OK;
}

/* unlabeled_ok: predict, which needs inputs only (also from a CSV table).
 * Collective. */
static DptStatus model_run_open(ModelRun *m, const DptDist *d, const char *model, const char *data, const char *split,
                                int unlabeled_ok)
{
    memset(m, 0, sizeof *m);
    DptStatus st = dpt_dist_agree(d, dpt_kern_init(), NULL);
    if (st == DPT_OK && is_csv(data)) {
        if (!unlabeled_ok)
            return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "--data %s: eval needs labels; convert the table first "
                                             "(dptrain convert csv)", data), NULL);
        st = load_model_and_split(d, model, NULL, NULL, 1, &m->arch, &m->params, NULL, NULL, NULL);
        if (st == DPT_OK)
            st = dpt_dist_agree(d, d->rank == 0 ? load_csv_inputs(m, data) : DPT_OK, NULL);
        m->name = "the CSV rows";
    } else if (st == DPT_OK) {
        st = load_model_and_split(d, model, data, split, unlabeled_ok, &m->arch, &m->params, &m->s, &m->win, &m->name);
    }
    if (st == DPT_OK && !unlabeled_ok && m->s.info.unlabeled)
        st = dpt_err(DPT_EINPUT, "%s: /%s has no labels (y); eval needs them", data, m->name);
    if (st == DPT_OK)
        st = dpt_dist_agree(d, dpt_work_init(&m->w, &m->arch, 1024), NULL);
    return st;
}

static void model_run_close(ModelRun *m)
{
    dpt_work_free(&m->w);
    free(m->params);
    free(m->csv_x);
    dpt_dist_shared_free(&m->win);
}

DptStatus dpt_eval_run(const char *model, const char *data, const char *split, const DptDist *d)
{
    ModelRun m;
    DptStatus st = model_run_open(&m, d, model, data, split, 0);
    if (st == DPT_OK) {
        double loss, acc;
        dpt_infer_evaluate(d, &m.arch, m.params, &m.w, &m.s, &loss, &acc);
        dpt_log_info("%s on %s /%s: loss %.6f accuracy %.4f (%zu samples, cost %s)\n", model, data, m.name, loss, acc,
                     m.s.info.n, dpt_cost_name(m.arch.cost));
    }
    model_run_close(&m);
    return st;
}

/* Rank 0: the model's class names and, when the inputs are raw (a CSV
 * table, or a dataset without /standardize), its standardisation; *stdz
 * says whether to apply it. */
static DptStatus predict_meta(const char *model, const char *data, int csv, size_t d_in, DptDataMeta *mm, int *stdz)
{
    *stdz = 0;
    DPT_TRY(dpt_data_read_meta(model, mm));
    if (!mm->mean)
        return DPT_OK;
    if (mm->d != d_in)
        return dpt_err(DPT_EINPUT, "%s: standardisation of %zu features; the model takes %zu", model, mm->d, d_in);
    if (!csv) {
        DptDataMeta dm;
        DptStatus st = dpt_data_read_meta(data, &dm);
        *stdz = st == DPT_OK && !dm.mean;
        dpt_data_meta_free(&dm);
        DPT_TRY(st);
    } else {
        *stdz = 1;
    }
    if (*stdz)
        dpt_log_info("inputs of %s standardised with the statistics %s was trained with\n", data, model);
    return DPT_OK;
}

/* x[rows, d] = (x - mean) / sd. */
static void standardize_rows(float *x, size_t rows, const DptDataMeta *m)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < m->d; j++)
            x[i * m->d + j] = (x[i * m->d + j] - m->mean[j]) / m->sd[j];
}

DptStatus dpt_predict_run(const char *model, const char *data, const char *split, const char *out, const DptDist *d)
{
    DptDataMeta mm = {0};
    int stdz = 0;
    ModelRun m;
    float *outputs = NULL;
    int32_t *pred = NULL;
    DptStatus st = dpt_dist_agree(d, d->rank == 0 ? dpt_check_writable("--out", out) : DPT_OK, NULL);
    if (st != DPT_OK)
        return st;
    st = model_run_open(&m, d, model, data, split, 1);
    if (st == DPT_OK && d->rank == 0) {
        /* Rank 0 alone: prediction is one forward pass, rarely worth sharding. */
        const int L = m.arch.n_layers;
        size_t n = m.s.info.n, k = (size_t)m.arch.sizes[L];
        char where[64];
        snprintf(where, sizeof where, "%s%s", m.csv_x ? "" : "/", m.name);
        st = predict_meta(model, data, m.csv_x != NULL, (size_t)m.arch.sizes[0], &mm, &stdz);
        outputs = st == DPT_OK ? dpt_calloc(n * k, sizeof(float), "outputs") : NULL;
        pred = outputs ? dpt_calloc(n, sizeof(int32_t), "predictions") : NULL;
        if (st == DPT_OK && !pred)
            st = DPT_ENOMEM;
        for (size_t r = 0; st == DPT_OK && r < n; r += m.w.cap) {
            size_t rows = n - r < m.w.cap ? n - r : m.w.cap;
            dpt_data_gather(m.w.act[0], m.w.y, m.w.cls, &m.s, NULL, r, rows, k);
            if (stdz)
                standardize_rows(m.w.act[0], rows, &mm);
            dpt_net_forward(&m.w, &m.arch, m.params, rows);
            memcpy(outputs + r * k, m.w.act[L], rows * k * sizeof(float));
            for (size_t i = 0; i < rows; i++)
                pred[r + i] = dpt_loss_predict(m.w.act[L] + i * k, k);
        }
        if (st == DPT_OK)
            st = dpt_data_write_predictions(out, outputs, pred, n, k, model, where, &mm);
        if (st == DPT_OK)
            dpt_log_info("wrote %zu predictions of %s on %s%s to %s\n", n, model, m.name[0] == 't' && m.name[1] == 'h' ? "" : "/",
                         m.name, out);
    }
    st = dpt_dist_agree(d, st, NULL);
    free(outputs);
    free(pred);
    dpt_data_meta_free(&mm);
    model_run_close(&m);
    return st;
}
