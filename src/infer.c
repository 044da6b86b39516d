#include "dptrain/infer.h"

#include <stdlib.h>
#include <string.h>

#include "dptrain/ckpt.h"
#include "dptrain/kernels.h"
#include "dptrain/log.h"
#include "dptrain/loss.h"

const char *const dpt_split_names[DPT_N_SPLITS] = {"train", "test", "validation"};

/* Loads one split into node-shared memory: every rank probes, node rank 0
 * reads and validates, the others attach. Collective. */
DptStatus dpt_infer_load_split(const DptDist *d, const char *path, int which, int required, const DptArch *arch,
                               DptSplit *s, void **win)
{
    DptSplitInfo info;
    DptStatus st = dpt_data_probe(path, dpt_split_names[which], required, &info);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    memset(s, 0, sizeof *s);
    if (!info.present)
        return DPT_OK;
    void *mem = NULL;
    st = dpt_dist_shared_alloc(d, dpt_data_bytes(&info), &mem, win);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    st = DPT_OK;
    if (d->node_rank == 0) {
        st = dpt_data_load(path, dpt_split_names[which], &info, mem, s);
        if (st == DPT_OK)
            st = dpt_data_validate(s, path, dpt_split_names[which], arch->sizes[0], arch->sizes[arch->n_layers]);
    }
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
                                      DptArch *arch, float **params, DptSplit *s, void **win, const char **name)
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
    int which = DPT_SPLIT_TEST;
    if (split && split[0]) {
        for (which = 0; which < DPT_N_SPLITS && strcmp(split, dpt_split_names[which]) != 0; which++)
            ;
        if (which == DPT_N_SPLITS)
            return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "--split '%s': expected train, test or validation", split),
                                  NULL);
    } else {
        DptSplitInfo info;
        st = dpt_data_probe(data, "test", 0, &info);
        DPT_TRY(dpt_dist_agree(d, st, NULL));
        if (!info.present)
            which = DPT_SPLIT_TRAIN;
    }
    *name = dpt_split_names[which];
    return dpt_infer_load_split(d, data, which, 1, arch, s, win);
}

/* What eval and predict share: the model, one split, work buffers. */
typedef struct {
    DptArch arch;
    float *params;
    DptSplit s;
    void *win;
    const char *name;
    DptWork w;
} ModelRun;

/* Collective. */
static DptStatus model_run_open(ModelRun *m, const DptDist *d, const char *model, const char *data, const char *split)
{
    memset(m, 0, sizeof *m);
    DptStatus st = dpt_dist_agree(d, dpt_kern_init(), NULL);
    if (st == DPT_OK)
        st = load_model_and_split(d, model, data, split, &m->arch, &m->params, &m->s, &m->win, &m->name);
    if (st == DPT_OK)
        st = dpt_dist_agree(d, dpt_work_init(&m->w, &m->arch, 1024), NULL);
    return st;
}

static void model_run_close(ModelRun *m)
{
    dpt_work_free(&m->w);
    free(m->params);
    dpt_dist_shared_free(&m->win);
}

DptStatus dpt_eval_run(const char *model, const char *data, const char *split, const DptDist *d)
{
    ModelRun m;
    DptStatus st = model_run_open(&m, d, model, data, split);
    if (st == DPT_OK) {
        double loss, acc;
        dpt_infer_evaluate(d, &m.arch, m.params, &m.w, &m.s, &loss, &acc);
        dpt_log_info("%s on %s /%s: loss %.6f accuracy %.4f (%zu samples, cost %s)\n", model, data, m.name, loss, acc,
                     m.s.info.n, dpt_cost_name(m.arch.cost));
    }
    model_run_close(&m);
    return st;
}

DptStatus dpt_predict_run(const char *model, const char *data, const char *split, const char *out, const DptDist *d)
{
    ModelRun m;
    float *outputs = NULL;
    int32_t *pred = NULL;
    DptStatus st = dpt_dist_agree(d, d->rank == 0 ? dpt_check_writable("--out", out) : DPT_OK, NULL);
    if (st != DPT_OK)
        return st;
    st = model_run_open(&m, d, model, data, split);
    if (st == DPT_OK && d->rank == 0) {
        /* Rank 0 alone: prediction is one forward pass, rarely worth sharding. */
        const int L = m.arch.n_layers;
        size_t n = m.s.info.n, k = (size_t)m.arch.sizes[L];
        outputs = dpt_calloc(n * k, sizeof(float), "outputs");
        pred = outputs ? dpt_calloc(n, sizeof(int32_t), "predictions") : NULL;
        if (!pred)
            st = DPT_ENOMEM;
        for (size_t r = 0; st == DPT_OK && r < n; r += m.w.cap) {
            size_t rows = n - r < m.w.cap ? n - r : m.w.cap;
            dpt_data_gather(m.w.act[0], m.w.y, m.w.cls, &m.s, NULL, r, rows, k);
            dpt_net_forward(&m.w, &m.arch, m.params, rows);
            memcpy(outputs + r * k, m.w.act[L], rows * k * sizeof(float));
            for (size_t i = 0; i < rows; i++)
                pred[r + i] = dpt_loss_predict(m.w.act[L] + i * k, k);
        }
        if (st == DPT_OK)
            st = dpt_data_write_predictions(out, outputs, pred, n, k, model, m.name);
        if (st == DPT_OK)
            dpt_log_info("wrote %zu predictions of %s on /%s to %s\n", n, model, m.name, out);
    }
    st = dpt_dist_agree(d, st, NULL);
    free(outputs);
    free(pred);
    model_run_close(&m);
    return st;
}
