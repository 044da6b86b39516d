#include "dptrain/train.h"

#include <math.h>
#include <omp.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "dptrain/ckpt.h"
#include "dptrain/data.h"
#include "dptrain/h5util.h"
#include "dptrain/kernels.h"
#include "dptrain/log.h"
#include "dptrain/loss.h"
#include "dptrain/machine.h"
#include "dptrain/metrics.h"
#include "dptrain/net.h"
#include "dptrain/optim.h"
#include "dptrain/rng.h"
#include "dptrain/stop.h"
#include "dptrain/trace.h"

/* Control words appended to the gradient buffer, reduced in the same call.
 * Counts travel as two floats (value mod 4096, value / 4096) so that the float
 * sums stay exact (below 2^24) for up to 4095 ranks and 2^36 samples. */
enum { C_COUNT_LO, C_COUNT_HI, C_CORRECT_LO, C_CORRECT_HI, C_LOSS, C_NONFINITE, C_STOP, C_PAD, N_CTRL };
/* Deterministic mode: the control words are int64 and exact. */
enum { Q_COUNT, Q_CORRECT, Q_LOSS, Q_NONFINITE, Q_STOP, N_CTRLQ };

enum { SPLIT_TRAIN, SPLIT_TEST, SPLIT_VALIDATION, N_SPLITS };
static const char *const split_names[N_SPLITS] = {"train", "test", "validation"};

enum { EVAL_ROWS = 256, CHUNK_ROWS = 512 };

typedef struct {
    const DptConfig *cfg;
    const DptDist *d;
    DptArch arch;
    float *params;        /* [n_params] */
    float *grad;          /* [n_params + N_CTRL]: gradient sums, then averages */
    int64_t *gradq;       /* deterministic mode: [n_params + N_CTRLQ] fixed-point sums */
    double *scales;       /* deterministic mode: [2L + 1] per-tensor scales (W_l, b_l, loss) */
    double *bounds;       /* deterministic mode: [2L + 2] bounds (+ non-finite flag) */
    double *row_a, *row_d;/* deterministic mode: [cap] per-row maxima */
    DptOptim opt;
    DptWork work;
    size_t chunk;         /* rows per forward/backward pass */
    DptSplit split[N_SPLITS];
    void *win[N_SPLITS];
    uint32_t *perm;       /* [N] this epoch's order */
    size_t batch;         /* global B */
    DptTimers timers;
} Trainer;

/* ---------------------------------------------------------------- helpers */

uint64_t dpt_train_hash(const float *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, p + i, sizeof w);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return h;
}

static uint64_t state_hash(const Trainer *t)
{
    uint64_t h = dpt_train_hash(t->params, t->arch.n_params, DPT_HASH_INIT);
    for (int i = 0; i < t->opt.n_state; i++)
        h = dpt_train_hash(t->opt.state[i], t->opt.n, h);
    return h;
}

/* Loads one split into node-shared memory: every rank probes, node rank 0
 * reads and validates, the others attach. Collective. */
static DptStatus load_split(const DptDist *d, const char *path, int which, int required, const DptArch *arch,
                            DptSplit *s, void **win)
{
    DptSplitInfo info;
    DptStatus st = dpt_data_probe(path, split_names[which], required, &info);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    memset(s, 0, sizeof *s);
    if (!info.present)
        return DPT_OK;
    void *mem = NULL;
    st = dpt_dist_shared_alloc(d, dpt_data_bytes(&info), &mem, win);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    st = DPT_OK;
    if (d->node_rank == 0) {
        st = dpt_data_load(path, split_names[which], &info, mem, s);
        if (st == DPT_OK)
            st = dpt_data_validate(s, path, split_names[which], arch->sizes[0], arch->sizes[arch->n_layers]);
    }
    dpt_dist_node_barrier(d);
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    dpt_data_attach(s, &info, mem);
    return DPT_OK;
}

static void free_splits(DptSplit *split, void **win, int n)
{
    for (int i = 0; i < n; i++) {
        dpt_dist_shared_free(&win[i]);
        memset(&split[i], 0, sizeof split[i]);
    }
}

/* Loss and accuracy over a whole split, sharded by contiguous ranges and
 * reduced. Collective. */
static void evaluate(const DptDist *d, const DptArch *arch, const float *params, DptWork *w, const DptSplit *s,
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

/* ---------------------------------------------------------------- one step, default mode */

static void bucket_hook(void *ctx, int l)
{
    Trainer *t = ctx;
    const DptArch *a = &t->arch;
    size_t start = a->w_off[l];
    size_t end = l == a->n_layers - 1 ? a->n_params + N_CTRL : a->b_off[l] + (size_t)a->sizes[l + 1];
    dpt_dist_isum_floats(t->d, t->grad + start, end - start, l);
    dpt_dist_progress(t->d);
}

/* Gradient sums over this rank's slice of the step's samples idx[0..cnt),
 * reduced over all ranks; control words filled. */
static void step_default(Trainer *t, const uint32_t *idx, size_t cnt)
{
    const DptDist *d = t->d;
    const DptArch *a = &t->arch;
    DptWork *w = &t->work;
    const size_t k = (size_t)a->sizes[a->n_layers];
    size_t lo = cnt * (size_t)d->rank / (size_t)d->world_size;
    size_t hi = cnt * (size_t)(d->rank + 1) / (size_t)d->world_size;
    float *ctrl = t->grad + a->n_params;
    DptLayerHook hook = t->cfg->overlap && d->world_size > 1 ? bucket_hook : NULL;
    double loss = 0.0;
    int64_t correct = 0;
    memset(ctrl, 0, N_CTRL * sizeof(float));
    ctrl[C_STOP] = dpt_stop_requested() ? 1.0f : 0.0f;
    if (lo == hi) {
        /* An empty slice still takes part in every reduction, in the same order. */
        dpt_timer_start(&t->timers, DPT_T_COMPUTE);
        memset(t->grad, 0, a->n_params * sizeof(float));
        if (hook)
            for (int l = a->n_layers - 1; l >= 0; l--)
                hook(t, l);
        dpt_timer_stop(&t->timers, DPT_T_COMPUTE);
    }
    for (size_t c0 = lo; c0 < hi; c0 += t->chunk) {
        size_t n = hi - c0 < t->chunk ? hi - c0 : t->chunk;
        int last = c0 + n == hi;
        int64_t right = 0;
        dpt_timer_start(&t->timers, DPT_T_DATA);
        dpt_data_gather(w->act[0], w->y, w->cls, &t->split[SPLIT_TRAIN], idx + c0, 0, n, k);
        dpt_timer_stop(&t->timers, DPT_T_DATA);
        dpt_timer_start(&t->timers, DPT_T_COMPUTE);
        dpt_net_forward(w, a, t->params, n);
        loss += dpt_net_loss(w, a, n, 1, &right);
        correct += right;
        if (last) {
            size_t m = hi - lo;
            ctrl[C_COUNT_LO] = (float)(m % 4096);
            ctrl[C_COUNT_HI] = (float)(m / 4096);
            ctrl[C_CORRECT_LO] = (float)(correct % 4096);
            ctrl[C_CORRECT_HI] = (float)(correct / 4096);
            ctrl[C_LOSS] = (float)loss;
            ctrl[C_NONFINITE] = isfinite(loss) ? 0.0f : 1.0f;
        }
        dpt_net_backward(w, a, t->params, t->grad, n, c0 > lo, last ? hook : NULL, t);
        dpt_timer_stop(&t->timers, DPT_T_COMPUTE);
    }
    dpt_timer_start(&t->timers, DPT_T_REDUCE);
    if (hook)
        dpt_dist_wait_all(d);
    else
        dpt_dist_sum_floats(d, t->grad, a->n_params + N_CTRL);
    dpt_timer_stop(&t->timers, DPT_T_REDUCE);
}

/* ---------------------------------------------------------------- one step, deterministic mode */

static double row_absmax(const float *row, size_t m, int *bad)
{
    float mx = 0.0f;
    int nf = 0;
    for (size_t j = 0; j < m; j++) {
        float v = fabsf(row[j]);
        nf |= !isfinite(v);
        mx = v > mx ? v : mx;
    }
    *bad |= nf;
    return mx;
}

/* 2^e with scale * bound * n_blocks <= 2^60, so that the int64 sum of
 * n_blocks terms, each at most bound in magnitude, cannot overflow. */
static double fixed_scale(double bound, size_t n_blocks)
{
    if (!(bound > 0) || !isfinite(bound))
        return 1.0;
    int ex;
    frexp(bound * (double)n_blocks * (1.0 + 1.0 / 1024.0), &ex);
    return ldexp(1.0, 60 - ex);
}

/* Gradient sums, as fixed point, over the fixed blocks of det_block samples:
 * rank r takes a contiguous run of whole blocks. Two collectives: the
 * maximum of the bounds (for the scales), then the integer sum. */
static void step_deterministic(Trainer *t, const uint32_t *idx, size_t cnt)
{
    const DptDist *d = t->d;
    const DptArch *a = &t->arch;
    DptWork *w = &t->work;
    const int L = a->n_layers;
    const size_t k = (size_t)a->sizes[L], blk = (size_t)t->cfg->det_block;
    const size_t nb = (cnt + blk - 1) / blk;
    size_t b0 = nb * (size_t)d->rank / (size_t)d->world_size, b1 = nb * (size_t)(d->rank + 1) / (size_t)d->world_size;
    size_t lo = b0 * blk, hi = b1 * blk < cnt ? b1 * blk : cnt;
    size_t n = hi > lo ? hi - lo : 0;
    int64_t correct = 0;
    int bad = 0;

    dpt_timer_start(&t->timers, DPT_T_DATA);
    dpt_data_gather(w->act[0], w->y, w->cls, &t->split[SPLIT_TRAIN], idx + lo, 0, n, k);
    dpt_timer_stop(&t->timers, DPT_T_DATA);
    dpt_timer_start(&t->timers, DPT_T_COMPUTE);
    dpt_net_forward(w, a, t->params, n);
    dpt_net_loss(w, a, n, 1, &correct);
    dpt_net_deltas(w, a, t->params, n);
    /* Bounds on each block's partial sums: |sum_r d[r,o] a[r,i]| <= sum_r max|d_r| max|a_r|. */
    for (int i = 0; i < 2 * L + 2; i++)
        t->bounds[i] = 0.0;
    for (int l = 0; l < L; l++) {
        size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        int lbad = 0;
#pragma omp parallel for schedule(static) reduction(| : lbad) if (n * (in + out) > 65536)
        for (size_t r = 0; r < n; r++) {
            t->row_a[r] = row_absmax(w->act[l] + r * in, in, &lbad);
            t->row_d[r] = row_absmax(w->delta[l + 1] + r * out, out, &lbad);
        }
        bad |= lbad;
        for (size_t r0 = 0; r0 < n; r0 += blk) {
            size_t r1 = r0 + blk < n ? r0 + blk : n;
            double bw = 0.0, bb = 0.0;
            for (size_t r = r0; r < r1; r++) {
                bw += t->row_d[r] * t->row_a[r];
                bb += t->row_d[r];
            }
            t->bounds[2 * l] = bw > t->bounds[2 * l] ? bw : t->bounds[2 * l];
            t->bounds[2 * l + 1] = bb > t->bounds[2 * l + 1] ? bb : t->bounds[2 * l + 1];
        }
    }
    for (size_t r0 = 0; r0 < n; r0 += blk) {
        size_t r1 = r0 + blk < n ? r0 + blk : n;
        double s = 0.0;
        for (size_t r = r0; r < r1; r++)
            s += fabs(w->row_loss[r]);
        bad |= !isfinite(s);
        t->bounds[2 * L] = s > t->bounds[2 * L] ? s : t->bounds[2 * L];
    }
    t->bounds[2 * L + 1] = bad ? 1.0 : 0.0;
    dpt_timer_stop(&t->timers, DPT_T_COMPUTE);

    dpt_timer_start(&t->timers, DPT_T_REDUCE);
    dpt_dist_max_doubles(d, t->bounds, (size_t)(2 * L + 2));
    dpt_timer_stop(&t->timers, DPT_T_REDUCE);

    dpt_timer_start(&t->timers, DPT_T_COMPUTE);
    int64_t *q = t->gradq;
    memset(q + a->n_params, 0, N_CTRLQ * sizeof *q);
    for (int i = 0; i < 2 * L + 1; i++)
        t->scales[i] = fixed_scale(t->bounds[i], nb);
    if (t->bounds[2 * L + 1] == 0.0) {
        /* Overwrites q (no accumulate): an empty slice writes zeros. */
        for (int l = 0; l < L; l++) {
            size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
            dpt_kern_weight_grad_fixed(q + a->w_off[l], 0, t->scales[2 * l], w->delta[l + 1], w->act[l], n, in, out, blk);
            dpt_kern_bias_grad_fixed(q + a->b_off[l], 0, t->scales[2 * l + 1], w->delta[l + 1], n, out, blk);
        }
    } else {
        memset(q, 0, a->n_params * sizeof *q);
    }
    int64_t *cq = q + a->n_params;
    cq[Q_COUNT] = (int64_t)n;
    cq[Q_CORRECT] = correct;
    for (size_t r0 = 0; r0 < n; r0 += blk) {
        size_t r1 = r0 + blk < n ? r0 + blk : n;
        double s = 0.0;
        for (size_t r = r0; r < r1; r++)
            s += w->row_loss[r];
        cq[Q_LOSS] += isfinite(s) ? llrint(s * t->scales[2 * L]) : 0;
    }
    cq[Q_NONFINITE] = bad;
    cq[Q_STOP] = dpt_stop_requested() ? 1 : 0;
    dpt_timer_stop(&t->timers, DPT_T_COMPUTE);

    dpt_timer_start(&t->timers, DPT_T_REDUCE);
    dpt_dist_sum_i64(d, q, a->n_params + N_CTRLQ);
    dpt_timer_stop(&t->timers, DPT_T_REDUCE);

    /* Back to float sums, in the layout (and control words) of the default mode. */
    for (int l = 0; l < L; l++) {
        size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        double iw = 1.0 / t->scales[2 * l], ib = 1.0 / t->scales[2 * l + 1];
        const int64_t *qw = q + a->w_off[l], *qb = q + a->b_off[l];
        float *gw = t->grad + a->w_off[l], *gb = t->grad + a->b_off[l];
#pragma omp parallel for schedule(static) if (in * out > 65536)
        for (size_t i = 0; i < in * out; i++)
            gw[i] = (float)((double)qw[i] * iw);
        for (size_t o = 0; o < out; o++)
            gb[o] = (float)((double)qb[o] * ib);
    }
    float *ctrl = t->grad + a->n_params;
    int64_t gcount = cq[Q_COUNT], gcorrect = cq[Q_CORRECT];
    ctrl[C_COUNT_LO] = (float)(gcount % 4096);
    ctrl[C_COUNT_HI] = (float)(gcount / 4096);
    ctrl[C_CORRECT_LO] = (float)(gcorrect % 4096);
    ctrl[C_CORRECT_HI] = (float)(gcorrect / 4096);
    ctrl[C_LOSS] = (float)((double)cq[Q_LOSS] / t->scales[2 * L]);
    ctrl[C_NONFINITE] = cq[Q_NONFINITE] ? 1.0f : 0.0f;
    ctrl[C_STOP] = (float)cq[Q_STOP];
}

/* Divides the reduced sums by the global count, clips the result to
 * --clip-norm, adds the L2 term and checks that every value is finite.
 * Returns 0 if something is not. */
static int average_gradient(Trainer *t, double count, size_t n_train)
{
    const DptArch *a = &t->arch;
    float *g = t->grad;
    const float cnt = (float)count;
    const size_t n = a->n_params;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        g[i] = g[i] / cnt;
        bad |= !isfinite(g[i]);
    }
    if (!bad && t->cfg->clip_norm > 0) {
        double norm = dpt_optim_norm(g, n);
        if (norm > t->cfg->clip_norm) {
            const float f = (float)(t->cfg->clip_norm / norm);
#pragma omp parallel for schedule(static) if (n > 65536)
            for (size_t i = 0; i < n; i++)
                g[i] *= f;
        }
    }
    if (t->cfg->weight_decay > 0) {
        /* C = C0 + lambda/(2n) sum w^2 over weights (not biases): dC/dw += (lambda/n) w. */
        const float c = (float)(t->cfg->weight_decay / (double)n_train);
        for (int l = 0; l < a->n_layers; l++) {
            size_t m = (size_t)a->sizes[l] * (size_t)a->sizes[l + 1];
            float *gw = g + a->w_off[l];
            const float *pw = t->params + a->w_off[l];
            for (size_t i = 0; i < m; i++)
                gw[i] += c * pw[i];
        }
    }
    return !bad;
}

/* ---------------------------------------------------------------- setup */

static void trainer_free(Trainer *t)
{
    free(t->params);
    free(t->grad);
    free(t->gradq);
    free(t->scales);
    free(t->bounds);
    free(t->row_a);
    free(t->row_d);
    free(t->perm);
    dpt_optim_free(&t->opt);
    dpt_work_free(&t->work);
    free_splits(t->split, t->win, N_SPLITS);
}

/* Architecture and initial parameters: from --init-from (read by rank 0) or
 * random on rank 0; broadcast to all. Collective. */
static DptStatus setup_params(Trainer *t)
{
    const DptConfig *c = t->cfg;
    const DptDist *d = t->d;
    DptStatus st = DPT_OK;
    float *loaded = NULL;
    if (c->init_from[0]) {
        if (d->rank == 0) {
            st = dpt_ckpt_load_model(c->init_from, &t->arch, &loaded);
            if (st == DPT_OK && c->n_sizes >= 2) {
                int same = c->n_sizes == t->arch.n_layers + 1;
                for (int l = 0; same && l < c->n_sizes; l++)
                    same = c->sizes[l] == t->arch.sizes[l];
                if (!same) {
                    char have[1024];
                    dpt_arch_format(&t->arch, have, sizeof have);
                    st = dpt_err(DPT_EUSAGE, "--init-from %s: the model has layers %s, which differ from --layers",
                                 c->init_from, have);
                }
            }
            if (st == DPT_OK && (t->arch.hidden != c->hidden || t->arch.output != c->output))
                st = dpt_err(DPT_EUSAGE, "--init-from %s: the model has --hidden %s --output %s; pass the same",
                             c->init_from, dpt_act_name(t->arch.hidden), dpt_act_name(t->arch.output));
            if (st == DPT_OK) {
                /* The model file's cost is the one it was trained with; this run's
                 * --cost must suit its output units, as with --layers. */
                DptArch check;
                st = dpt_arch_init(&check, t->arch.sizes, t->arch.n_layers + 1, t->arch.hidden, t->arch.output, c->cost);
                if (st != DPT_OK) {
                    char why[512];
                    snprintf(why, sizeof why, "%s", dpt_err_message());
                    dpt_err_clear();
                    st = dpt_err(DPT_EUSAGE, "--init-from %s: %s", c->init_from, why);
                }
                t->arch.cost = c->cost;
            }
        }
        st = dpt_dist_agree(d, st, NULL);
        if (st != DPT_OK) {
            free(loaded);
            return st;
        }
        dpt_dist_bcast(d, &t->arch, sizeof t->arch, 0);
    } else {
        DPT_TRY(dpt_arch_init(&t->arch, c->sizes, c->n_sizes, c->hidden, c->output, c->cost));
    }
    t->params = dpt_aligned_alloc(t->arch.n_params * sizeof(float), "parameters");
    st = t->params ? DPT_OK : DPT_ENOMEM;
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    if (d->rank == 0) {
        if (loaded)
            memcpy(t->params, loaded, t->arch.n_params * sizeof(float));
        else
            dpt_net_init_params(t->params, &t->arch, c->init, (uint64_t)c->seed);
    }
    free(loaded);
    dpt_dist_bcast(d, t->params, t->arch.n_params * sizeof(float), 0);
    return DPT_OK;
}

static DptStatus setup(Trainer *t)
{
    const DptConfig *c = t->cfg;
    const DptDist *d = t->d;
    DptStatus st;
    DPT_TRY(setup_params(t));
    for (int s = 0; s < N_SPLITS; s++)
        DPT_TRY(load_split(d, c->data, s, s == SPLIT_TRAIN, &t->arch, &t->split[s], &t->win[s]));
    size_t n_train = t->split[SPLIT_TRAIN].info.n;
    t->batch = c->batch == 0 ? n_train : (size_t)c->batch;
    if (t->batch > n_train) {
        st = dpt_err(DPT_EUSAGE, "--batch %zu is larger than the training set (%zu samples in %s)", t->batch, n_train,
                     c->data);
        return dpt_dist_agree(d, st, NULL);
    }
    size_t P = (size_t)d->world_size, local;
    if (c->deterministic) {
        size_t blk = (size_t)c->det_block, nb = (t->batch + blk - 1) / blk;
        local = (nb + P - 1) / P * blk;
        t->chunk = local;
    } else {
        local = (t->batch + P - 1) / P;
        t->chunk = local < CHUNK_ROWS ? local : CHUNK_ROWS;
    }
    size_t cap = t->chunk > EVAL_ROWS ? t->chunk : EVAL_ROWS;
    int L = t->arch.n_layers;
    st = dpt_work_init(&t->work, &t->arch, cap);
    if (st == DPT_OK)
        st = dpt_optim_init(&t->opt, &c->opt, t->arch.n_params);
    if (st == DPT_OK) {
        t->grad = dpt_aligned_alloc((t->arch.n_params + N_CTRL) * sizeof(float), "gradients");
        t->perm = dpt_calloc(n_train, sizeof *t->perm, "permutation");
        if (c->deterministic) {
            t->gradq = dpt_aligned_alloc((t->arch.n_params + N_CTRLQ) * sizeof(int64_t), "fixed-point gradients");
            t->scales = dpt_calloc((size_t)(2 * L + 1), sizeof(double), "scales");
            t->bounds = dpt_calloc((size_t)(2 * L + 2), sizeof(double), "bounds");
            t->row_a = dpt_calloc(cap, sizeof(double), "row maxima");
            t->row_d = dpt_calloc(cap, sizeof(double), "row maxima");
            if (!t->gradq || !t->scales || !t->bounds || !t->row_a || !t->row_d)
                st = DPT_ENOMEM;
        }
        if (!t->grad || !t->perm)
            st = DPT_ENOMEM;
    }
    return dpt_dist_agree(d, st, NULL);
}

/* ---------------------------------------------------------------- the run */

/* Where every rank runs, as the launcher placed it: host, allowed CPUs and
 * threads, printed by rank 0; a rank with more threads than CPUs warns (its
 * threads would share cores). Collective. */
static void print_placement(const DptDist *d)
{
    enum { LINE = 256 };
    char host[64], cpus[128], mine[LINE];
    int n_cpus = dpt_machine_cpus(cpus, sizeof cpus), threads = omp_get_max_threads();
    dpt_machine_host(host, sizeof host);
    snprintf(mine, sizeof mine, "  rank %d on %s: %d thread%s, CPUs %s (%d)", d->rank, host, threads,
             threads == 1 ? "" : "s", n_cpus ? cpus : "?", n_cpus);
    if (n_cpus > 0 && threads > n_cpus)
        dpt_log_warn("%d OpenMP threads but %d CPU%s allowed (%s): the threads share cores. Give each rank its cores: "
                     "mpirun --map-by slot:PE=%d (or --bind-to none), srun -c %d (or SRUN_CPUS_PER_TASK)",
                     threads, n_cpus, n_cpus == 1 ? "" : "s", cpus, threads, threads);
    char *all = d->rank == 0 ? malloc((size_t)d->world_size * LINE) : NULL;
    dpt_dist_gather_text(d, mine, LINE, all);
    if (all) {
        dpt_log_info("placement (ranks, threads, CPUs each may use):\n");
        for (int r = 0; r < d->world_size; r++)
            dpt_log_info("%s\n", all + (size_t)r * LINE);
    }
    free(all);
}

static void print_header(const Trainer *t)
{
    const DptConfig *c = t->cfg;
    char text[8192], layers[1024];
    dpt_config_format(c, text, sizeof text);
    dpt_arch_format(&t->arch, layers, sizeof layers);
    dpt_log_info("dptrain %s: %d rank%s (%d node%s) x %d thread%s, kernels %s\n", DPT_VERSION, t->d->world_size,
                 t->d->world_size == 1 ? "" : "s", t->d->n_nodes, t->d->n_nodes == 1 ? "" : "s", omp_get_max_threads(),
                 omp_get_max_threads() == 1 ? "" : "s", dpt_kern_name());
    dpt_log_info("network %s (%zu parameters), %zu training samples, global batch %zu, %s mode\n", layers,
                 t->arch.n_params, t->split[SPLIT_TRAIN].info.n, t->batch,
                 c->deterministic ? "deterministic" : "default");
    dpt_log_info("resolved configuration:\n%s\n", text);
    print_placement(t->d);
}

/* Minor page faults of this process so far. */
static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Peak resident memory of this process so far, in MiB. */
static double max_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* A JSON number, or null for NaN (a value that was not measured). */
static void json_number(char *buf, size_t len, double v)
{
    if (isfinite(v))
        snprintf(buf, len, "%.8g", v);
    else
        snprintf(buf, len, "null");
}

static size_t format_timing(const DptDist *d, const DptTimers *tm, char *buf, size_t len, int json)
{
    size_t used = 0;
    for (int i = 0; i < DPT_T_COUNT; i++) {
        double s[3];
        dpt_dist_stats(d, tm->total[i], s);
        if (used >= len)
            continue;
        if (json)
            used += (size_t)snprintf(buf + used, len - used, "%s\"%s\":{\"min\":%.6f,\"mean\":%.6f,\"max\":%.6f}",
                                     i ? "," : "", dpt_timer_names[i], s[0], s[1], s[2]);
        else
            used += (size_t)snprintf(buf + used, len - used, "  %-10s %10.3f %10.3f %10.3f\n", dpt_timer_names[i],
                                     s[0], s[1], s[2]);
    }
    return used;
}

/* ---------------------------------------------------------------- checkpoints */

typedef struct {
    int lock_fd;          /* rank 0: the directory lock */
    char *history;        /* rank 0: the metrics lines so far */
    size_t hist_len, hist_cap;
    int64_t last_step;    /* global step of the newest checkpoint written or resumed from (-1: none) */
    char last_path[4096];
    char run_id[DPT_RUN_ID_LEN]; /* rank 0: this run's identity (written in every checkpoint) */
    double write_s;       /* seconds of the last write */
} Ckpt;

static DptStatus history_append(Ckpt *c, const char *line)
{
    size_t n = strlen(line);
    if (c->hist_len + n + 2 > c->hist_cap) {
        size_t cap = (c->hist_cap + n + 2) * 2;
        char *p = realloc(c->history, cap);
        if (!p)
            return dpt_err(DPT_ENOMEM, "cannot grow the metrics history");
        c->history = p;
        c->hist_cap = cap;
    }
    memcpy(c->history + c->hist_len, line, n);
    c->hist_len += n;
    c->history[c->hist_len++] = '\n';
    c->history[c->hist_len] = '\0';
    return DPT_OK;
}

/* Rank 0 writes the whole state at (epoch in progress, steps of it taken,
 * global step, the epoch's loss/correct/count sums so far); every rank
 * learns the outcome. Then the run's own older checkpoints beyond --keep
 * are removed. Collective. */
static DptStatus write_checkpoint(Trainer *t, Ckpt *c, int64_t epoch, int64_t step, int64_t global_step,
                                  const double sums[3])
{
    const DptConfig *cfg = t->cfg;
    DptStatus st = DPT_OK;
    double t0 = dpt_dist_time();
    if (t->d->rank == 0) {
        DptTrainState ts = {epoch, step, global_step, cfg->seed, (int64_t)t->batch, cfg->deterministic,
                            t->d->world_size, omp_get_max_threads(), sums[0], sums[1], sums[2], "", ""};
        snprintf(ts.run_id, sizeof ts.run_id, "%s", c->run_id);
        snprintf(ts.kernel, sizeof ts.kernel, "%s", dpt_kern_name());
        char text[8192];
        dpt_config_format(cfg, text, sizeof text);
        dpt_ckpt_path(cfg->checkpoint_dir, global_step, c->last_path, sizeof c->last_path);
        st = dpt_ckpt_save(c->last_path, &t->arch, t->params, &t->opt, &ts, text, c->history);
        if (st == DPT_OK)
            dpt_ckpt_prune(cfg->checkpoint_dir, c->run_id, (int)cfg->keep);
    }
    st = dpt_dist_agree(t->d, st, NULL);
    c->write_s = dpt_dist_time() - t0;
    if (st == DPT_OK)
        c->last_step = global_step;
    return st;
}

/* A new run identity (rank 0): 16 hex digits from the clock, host and pid. */
static void new_run_id(char *id)
{
    struct timespec now;
    char host[256] = "";
    long pid = (long)getpid();
    clock_gettime(CLOCK_REALTIME, &now);
    gethostname(host, sizeof host - 1);
    uint64_t h = dpt_hash_bytes(DPT_HASH_INIT, &now, sizeof now);
    h = dpt_hash_bytes(h, host, strlen(host));
    h = dpt_hash_bytes(h, &pid, sizeof pid);
    DptRng rng;
    dpt_rng_seed(&rng, h);
    snprintf(id, DPT_RUN_ID_LEN, "%016llx", (unsigned long long)dpt_rng_next(&rng));
}

/* Rank 0, with the directory locked: makes --checkpoint-dir this run's.
 * Leftover temporary files of dead writes are removed; checkpoints of
 * another run refuse the start (they would be pruned, or picked by a later
 * --resume latest); when a run resumes from an older checkpoint of its own,
 * the newer ones are set aside in a subdirectory (a new branch never deletes
 * them silently). legacy: the run resumed from a file without an identity,
 * whose siblings without one are tolerated (and never pruned). */
static DptStatus claim_dir(const char *dir, const char *run_id, int legacy, int64_t resumed_step)
{
    DptCkptEntry *e = dpt_calloc(4096, sizeof *e, "checkpoint list");
    if (!e)
        return DPT_ENOMEM;
    dpt_ckpt_remove_stale(dir);
    int n = dpt_ckpt_scan(dir, e, 4096);
    DptStatus st = DPT_OK;
    for (int i = 0; i < n && st == DPT_OK; i++) {
        if (!e[i].readable || strcmp(e[i].run_id, run_id) == 0 || (legacy && !e[i].run_id[0]))
            continue;
        st = dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s holds checkpoints of another run (ckpt-%09lld.h5, run %s); "
                     "continue that run with --resume latest, or choose another directory", dir,
                     (long long)e[i].step, e[i].run_id[0] ? e[i].run_id : "without an identity");
    }
    free(e);
    if (st == DPT_OK && resumed_step >= 0) {
        char aside[4096 + 64];
        int moved = dpt_ckpt_set_aside(dir, run_id, resumed_step, aside, sizeof aside);
        if (moved < 0)
            st = dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s: cannot set aside the checkpoints newer than step %lld (%s)",
                         dir, (long long)resumed_step, strerror(errno));
        else if (moved > 0)
            dpt_log_warn("resuming run %s from global step %lld: its %d newer checkpoint%s moved to %s (kept, never "
                         "pruned or resumed from by this branch)", run_id, (long long)resumed_step, moved,
                         moved == 1 ? "" : "s", aside);
    }
    return st;
}

/* ---------------------------------------------------------------- the micro-kernel of deterministic runs
 * Deterministic results depend on the micro-kernel (the portable one rounds
 * a*b+c twice, the vector ones once): every rank must run the same one, and
 * a resumed run the one that computed the checkpoint. Levels in order of
 * availability: every machine runs "generic". */

static const char *const kernel_levels[] = {"generic", "avx2", "avx512"};

static int kernel_level(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, kernel_levels[i]) == 0)
            return i;
    return -1;   /* cblas: nothing to agree on */
}

/* The lowest level any rank runs, for all ranks. Collective. */
static void agree_kernel(const DptDist *d)
{
    int mine = kernel_level(dpt_kern_name());
    double v = -(double)mine;
    dpt_dist_max_doubles(d, &v, 1);
    int all = (int)-v;
    if (mine >= 0 && all >= 0 && all != mine) {
        dpt_kern_select(kernel_levels[all]);
        dpt_log_warn("deterministic mode: micro-kernel %s here too, the one every rank runs (not %s)",
                     kernel_levels[all], kernel_levels[mine]);
    }
}

/* Continues with the checkpoint's micro-kernel when every rank can run it
 * (lower levels only: agree_kernel chose the highest common one). Collective. */
static void resume_kernel(const DptDist *d, const char *recorded)
{
    int want = kernel_level(recorded), now = kernel_level(dpt_kern_name());
    if (!recorded[0] || want < 0 || now < 0 || want == now)
        return;
    if (want < now) {
        dpt_kern_select(recorded);
        dpt_log_info("deterministic mode: micro-kernel %s, as in the checkpoint\n", recorded);
    } else if (d->rank == 0) {
        dpt_log_warn("the checkpoint's gradients were computed by micro-kernel %s, which not every rank runs; "
                     "continuing with %s, so the result will differ from an uninterrupted run's", recorded,
                     dpt_kern_name());
    }
}

/* Every output path of the run, checked before any work (rank 0): a long run
 * must not end in "cannot create". */
static DptStatus check_outputs(const DptConfig *cfg)
{
    DPT_TRY(dpt_check_writable("--save", cfg->save));
    DPT_TRY(dpt_check_writable("--metrics", cfg->metrics));
    DPT_TRY(dpt_check_writable("--trace", cfg->trace));
    return DPT_OK;
}

/* Finds and loads the checkpoint to resume from (rank 0), then gives every
 * rank its parameters, optimiser state and training state. `latest` takes the
 * newest checkpoint of --checkpoint-dir that loads, skipping (and naming) the
 * ones that do not. Collective. */
static DptStatus resume(Trainer *t, Ckpt *c, DptTrainState *ts)
{
    const DptConfig *cfg = t->cfg;
    const DptDist *d = t->d;
    DptStatus st = DPT_OK;
    char path[4096] = "";
    if (d->rank == 0) {
        char *hist = NULL;
        if (strcmp(cfg->resume, "latest") == 0) {
            int64_t steps[4096];
            int n = cfg->checkpoint_dir[0] ? dpt_ckpt_list(cfg->checkpoint_dir, steps, 4096) : 0;
            if (!cfg->checkpoint_dir[0])
                st = dpt_err(DPT_EUSAGE, "--resume latest needs --checkpoint-dir");
            else if (n == 0)
                st = dpt_err(DPT_EINPUT, "--resume latest: no checkpoint in %s", cfg->checkpoint_dir);
            for (int i = 0; i < n; i++) {
                dpt_ckpt_path(cfg->checkpoint_dir, steps[i], path, sizeof path);
                dpt_err_clear();
                st = dpt_ckpt_load(path, &t->arch, t->params, &t->opt, ts, &hist);
                if (st == DPT_OK)
                    break;
                dpt_log_warn("skipping checkpoint %s: %s", path, dpt_err_message());
                if (i == n - 1) {
                    dpt_err_clear();
                    st = dpt_err(DPT_EINPUT, "--resume latest: none of the %d checkpoints in %s loads", n,
                                 cfg->checkpoint_dir);
                }
            }
        } else {
            snprintf(path, sizeof path, "%s", cfg->resume);
            st = dpt_ckpt_load(path, &t->arch, t->params, &t->opt, ts, &hist);
        }
        if (st == DPT_OK) {
            if (ts->batch != (int64_t)t->batch || ts->seed != cfg->seed || ts->deterministic != cfg->deterministic)
                dpt_log_warn("%s was written with batch %lld, seed %lld, %s mode; this run has batch %zu, seed %lld, %s mode:"
                             " the continuation will not match an uninterrupted run", path, (long long)ts->batch,
                             (long long)ts->seed, ts->deterministic ? "deterministic" : "default", t->batch,
                             (long long)cfg->seed, cfg->deterministic ? "deterministic" : "default");
            else if (!cfg->deterministic && ts->ranks != d->world_size)
                dpt_log_warn("%s was written by %d ranks, this run has %d: in the default mode the continuation is "
                             "equivalent but not bitwise identical (use --deterministic for that)",
                             path, ts->ranks, d->world_size);
            free(c->history);
            c->history = hist;
            c->hist_len = hist ? strlen(hist) : 0;
            c->hist_cap = hist ? c->hist_len + 1 : 0;
            /* The continuation is the same run; the state resumed from is its newest checkpoint. */
            snprintf(c->run_id, sizeof c->run_id, "%s", ts->run_id);
            snprintf(c->last_path, sizeof c->last_path, "%s", path);
            dpt_log_info("resuming from %s: epoch %lld, step %lld, global step %lld\n", path, (long long)ts->epoch + 1,
                         (long long)ts->step, (long long)ts->global_step);
        }
    }
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    dpt_dist_bcast(d, t->params, t->arch.n_params * sizeof(float), 0);
    for (int i = 0; i < t->opt.n_state; i++)
        dpt_dist_bcast(d, t->opt.state[i], t->opt.n * sizeof(float), 0);
    dpt_dist_bcast(d, &t->opt.t, sizeof t->opt.t, 0);
    dpt_dist_bcast(d, &t->opt.mu_prod, sizeof t->opt.mu_prod, 0);
    dpt_dist_bcast(d, ts, sizeof *ts, 0);
    c->last_step = ts->global_step;
    if (cfg->deterministic)
        resume_kernel(d, ts->kernel);
    return DPT_OK;
}

/* ---------------------------------------------------------------- the run */

/* Releases what set-up acquired when it fails (every rank; the status is agreed). */
static DptStatus run_abort(Trainer *t, Ckpt *ck, DptMetricsFile *mf, DptTrace **trace, const DptStopGuard *sg,
                           DptStatus st)
{
    dpt_stop_restore(sg);
    if (trace)
        dpt_trace_close(trace);
    if (t->d->rank == 0)
        dpt_metrics_close(mf);
    dpt_ckpt_dir_unlock(&ck->lock_fd);
    free(ck->history);
    trainer_free(t);
    return st;
}

DptStatus dpt_train_run(const DptConfig *cfg, const DptDist *d, DptTrainResult *res, float **final_params)
{
    Trainer t;
    Ckpt ck;
    DptStopGuard sg;
    DptMetricsFile mf;
    DptTrainState ts;
    memset(&t, 0, sizeof t);
    memset(&ck, 0, sizeof ck);
    memset(&mf, 0, sizeof mf);
    memset(&ts, 0, sizeof ts);
    ck.lock_fd = -1;
    ck.last_step = -1;
    t.cfg = cfg;
    t.d = d;
    dpt_log_init(d->rank, d->world_size, cfg->quiet, cfg->progress);
    /* From here a stop request is a request: it ends the run after its first step. */
    dpt_stop_install(&sg, cfg->signal_grace, d->rank == 0 && !cfg->quiet);
    DptStatus st = dpt_dist_agree(d, dpt_config_validate(cfg), NULL);
    if (st == DPT_OK)
        st = dpt_dist_agree(d, dpt_kern_init(), NULL);
    if (st == DPT_OK)
        st = setup(&t);
    if (st == DPT_OK && cfg->deterministic)
        agree_kernel(d);
    if (st == DPT_OK)
        st = dpt_dist_agree(d, d->rank == 0 ? check_outputs(cfg) : DPT_OK, NULL);
    if (st == DPT_OK && cfg->checkpoint_dir[0])
        st = dpt_dist_agree(d, d->rank == 0 ? dpt_ckpt_dir_lock(cfg->checkpoint_dir, &ck.lock_fd) : DPT_OK, NULL);
    if (st == DPT_OK && cfg->resume[0])
        st = resume(&t, &ck, &ts);
    if (st == DPT_OK && d->rank == 0 && !ck.run_id[0])
        new_run_id(ck.run_id);
    if (st == DPT_OK && cfg->checkpoint_dir[0])
        st = dpt_dist_agree(d, d->rank == 0 ? claim_dir(cfg->checkpoint_dir, ck.run_id, cfg->resume[0] && !ts.run_id[0],
                                                        cfg->resume[0] ? ts.global_step : -1) : DPT_OK, NULL);
    if (st == DPT_OK && d->rank == 0) {
        /* A resumed run rewrites the metrics file with the history it carries. */
        st = dpt_metrics_open(&mf, cfg->metrics);
        if (st == DPT_OK && ck.history && mf.fp) {
            fputs(ck.history, mf.fp);
            fflush(mf.fp);
        }
    }
    st = dpt_dist_agree(d, st, NULL);
    if (st != DPT_OK)
        return run_abort(&t, &ck, &mf, NULL, &sg, st);
    DptTrace *trace = NULL;
    if (cfg->trace[0]) {
        DptStatus ts_st = DPT_OK;
        if (d->rank == 0) {
            size_t offs[DPT_TRACE_MAX_PARAMS];
            char names[DPT_TRACE_MAX_PARAMS][32];
            int n_tp = 0;
            if (cfg->trace_params[0])
                ts_st = dpt_trace_parse_params(cfg->trace_params, &t.arch, offs, names, &n_tp);
            if (ts_st == DPT_OK)
                ts_st = dpt_trace_open(&trace, cfg->trace, &t.arch, cfg->trace_every, offs, names, n_tp,
                                       cfg->trace_project, (uint64_t)cfg->seed, t.params);
            if (ts_st == DPT_OK && ts.global_step == 0) {
                dpt_trace_grads(trace, 0, NAN, NULL, 1.0);
                ts_st = dpt_trace_params(trace, t.params);
            }
        }
        st = dpt_dist_agree(d, ts_st, NULL);
        if (st != DPT_OK)
            return run_abort(&t, &ck, &mf, &trace, &sg, st);
    }
    print_header(&t);

    const size_t n_train = t.split[SPLIT_TRAIN].info.n, B = t.batch;
    const size_t steps_per_epoch = (n_train + B - 1) / B;
    const DptSplit *test = &t.split[SPLIT_TEST], *val = &t.split[SPLIT_VALIDATION];
    DptSchedule sched = cfg->sched;
    sched.lr = cfg->lr;
    /* The schedule spans --epochs; --max-steps only stops early, so a run
     * stopped by it and resumed follows the uninterrupted run's rates. */
    const int64_t total_steps = cfg->epochs * (int64_t)steps_per_epoch;
    double lr_now = cfg->lr;
    int64_t global_step = ts.global_step;
    double run_start = dpt_dist_time(), train_time = 0.0;
    double last_train_loss = NAN, test_loss = NAN, test_acc = NAN;
    char json[4096];
    /* Fault injection for the replica check's own test: DPT_FAULT_REPLICA=rank:step
     * nudges one parameter on that rank after that global step. */
    int fault_rank = -1;
    long long fault_step = -1;
    const char *fault = getenv("DPT_FAULT_REPLICA");
    if (fault && sscanf(fault, "%d:%lld", &fault_rank, &fault_step) != 2)
        fault_rank = -1;
    int stopped = 0, reached_max = cfg->max_steps > 0 && global_step >= cfg->max_steps;
    if (ts.epoch >= cfg->epochs || reached_max)
        dpt_log_info("nothing to train: the state resumed is at epoch %lld, global step %lld (--epochs %lld, "
                     "--max-steps %lld)\n", (long long)ts.epoch + 1, (long long)global_step, (long long)cfg->epochs,
                     (long long)cfg->max_steps);

    for (int64_t epoch = ts.epoch; epoch < cfg->epochs && st == DPT_OK && !stopped && !reached_max; epoch++) {
        DptRng rng;
        dpt_rng_stream(&rng, (uint64_t)cfg->seed, DPT_STREAM_SHUFFLE, (uint64_t)epoch);
        dpt_rng_permutation(&rng, t.perm, n_train);
        const int resumed = epoch == ts.epoch;
        size_t first_step = resumed ? (size_t)ts.step : 0;
        double e_start = dpt_dist_time();
        double e_loss = resumed ? ts.epoch_loss : 0.0, e_correct = resumed ? ts.epoch_correct : 0.0;
        double e_count = resumed ? ts.epoch_count : 0.0, e_count0 = e_count;
        long faults0 = minor_faults();
        for (size_t s = first_step; s < steps_per_epoch; s++) {
            size_t first = s * B, cnt = n_train - first < B ? n_train - first : B;
            if (cfg->deterministic)
                step_deterministic(&t, t.perm + first, cnt);
            else
                step_default(&t, t.perm + first, cnt);
            dpt_timer_start(&t.timers, DPT_T_UPDATE);
            const float *ctrl = t.grad + t.arch.n_params;
            double count = (double)ctrl[C_COUNT_LO] + 4096.0 * (double)ctrl[C_COUNT_HI];
            double correct = (double)ctrl[C_CORRECT_LO] + 4096.0 * (double)ctrl[C_CORRECT_HI];
            double loss = ctrl[C_LOSS];
            const int traced = trace && dpt_trace_wants(trace, global_step + 1);
            if (traced)
                dpt_trace_grads(trace, global_step + 1, loss / count, t.grad, count);
            /* Without clipping or decay the division by the count is fused into the optimiser pass. */
            const int fused = cfg->clip_norm == 0 && cfg->weight_decay == 0;
            int finite = ctrl[C_NONFINITE] == 0.0f && isfinite(loss) && (fused || average_gradient(&t, count, n_train));
            global_step++;
            if (!finite) {
                /* No checkpoint is written from here: the last good one stays the newest. */
                st = dpt_err(DPT_EDIVERGED, "non-finite %s at epoch %lld, step %zu (global step %lld); try a smaller --lr",
                             isfinite(loss) ? "gradient" : "loss", (long long)epoch + 1, s + 1, (long long)global_step);
                dpt_timer_stop(&t.timers, DPT_T_UPDATE);
                break;
            }
            lr_now = dpt_schedule_lr(&sched, global_step - 1, (int64_t)steps_per_epoch, total_steps);
            if (!dpt_optim_step_scaled(&t.opt, t.params, t.grad, lr_now, fused ? (float)count : 1.0f)) {
                /* The update is discarded with the run: nothing is saved after this. */
                st = dpt_err(DPT_EDIVERGED, "non-finite gradient at epoch %lld, step %zu (global step %lld); try a smaller --lr",
                             (long long)epoch + 1, s + 1, (long long)global_step);
                dpt_timer_stop(&t.timers, DPT_T_UPDATE);
                break;
            }
            dpt_timer_stop(&t.timers, DPT_T_UPDATE);
            if (traced && (st = dpt_trace_params(trace, t.params)) != DPT_OK) {
                dpt_log_warn("%s; tracing stops", dpt_err_message());
                dpt_err_clear();
                st = DPT_OK;
                dpt_trace_close(&trace);
            }
            if (fault_rank == d->rank && fault_step == global_step)
                t.params[0] = nextafterf(t.params[0], INFINITY);
            e_loss += loss;
            e_correct += correct;
            e_count += count;
            if (cfg->check_every > 0 && global_step % cfg->check_every == 0 && !dpt_dist_same_hash(d, state_hash(&t))) {
                st = dpt_err(DPT_EREPLICA, "ranks hold different parameters after global step %lld", (long long)global_step);
                break;
            }
            stopped = ctrl[C_STOP] > 0.0f;
            reached_max = cfg->max_steps > 0 && global_step >= cfg->max_steps;
            if (cfg->checkpoint_dir[0] && (stopped || reached_max ||
                                           (cfg->checkpoint_every > 0 && global_step % cfg->checkpoint_every == 0))) {
                const double sums[3] = {e_loss, e_correct, e_count};
                dpt_timer_start(&t.timers, DPT_T_CKPT);
                st = write_checkpoint(&t, &ck, epoch, (int64_t)s + 1, global_step, sums);
                dpt_timer_stop(&t.timers, DPT_T_CKPT);
                if (st != DPT_OK)
                    break;
            }
            if (stopped || reached_max)
                break;
            dpt_log_progress((long)epoch + 1, (long)(s + 1), (long)steps_per_epoch, e_loss / e_count);
        }
        long step_faults = minor_faults() - faults0;
        if (st != DPT_OK || stopped)
            break;
        double e_time = dpt_dist_time() - e_start;
        train_time += e_time;
        last_train_loss = e_loss / e_count;
        double train_acc = e_correct / e_count;
        dpt_log_progress((long)epoch + 1, (long)steps_per_epoch, (long)steps_per_epoch, 0.0);
        dpt_timer_start(&t.timers, DPT_T_EVAL);
        double full_loss = NAN, full_acc = NAN, val_loss = NAN, val_acc = NAN;
        if (cfg->eval_train)
            evaluate(d, &t.arch, t.params, &t.work, &t.split[SPLIT_TRAIN], &full_loss, &full_acc);
        if (val->info.present)
            evaluate(d, &t.arch, t.params, &t.work, val, &val_loss, &val_acc);
        if (test->info.present)
            evaluate(d, &t.arch, t.params, &t.work, test, &test_loss, &test_acc);
        dpt_timer_stop(&t.timers, DPT_T_EVAL);
        double sps = (e_count - e_count0) / e_time, elapsed = dpt_dist_time() - run_start;
        char line[512];
        int used = snprintf(line, sizeof line, "epoch %3lld/%lld  train loss %.4f acc %.4f", (long long)epoch + 1,
                            (long long)cfg->epochs, cfg->eval_train ? full_loss : last_train_loss,
                            cfg->eval_train ? full_acc : train_acc);
        if (val->info.present)
            used += snprintf(line + used, sizeof line - (size_t)used, " | val loss %.4f acc %.4f", val_loss, val_acc);
        if (test->info.present)
            used += snprintf(line + used, sizeof line - (size_t)used, " | test loss %.4f acc %.4f", test_loss, test_acc);
        snprintf(line + used, sizeof line - (size_t)used, " | %.0f samples/s | %.1f s", sps, elapsed);
        dpt_log_info("%s\n", line);
        char timing[2048];
        format_timing(d, &t.timers, timing, sizeof timing, 1);
        char nums[6][32];
        const double vals[6] = {full_loss, full_acc, test_loss, test_acc, val_loss, val_acc};
        for (int i = 0; i < 6; i++)
            json_number(nums[i], sizeof nums[i], vals[i]);
        snprintf(json, sizeof json,
                 "{\"epoch\":%lld,\"step\":%lld,\"train_loss\":%.8g,\"train_acc\":%.8g,\"train_eval_loss\":%s,"
                 "\"train_eval_acc\":%s,\"test_loss\":%s,\"test_acc\":%s,\"val_loss\":%s,\"val_acc\":%s,"
                 "\"samples_per_s\":%.3f,\"epoch_s\":%.6f,\"elapsed_s\":%.6f,\"lr\":%.8g,\"ranks\":%d,\"threads\":%d,"
                 "\"max_rss_mb\":%.1f,\"step_page_faults\":%ld,\"time\":{%s}}",
                 (long long)epoch + 1, (long long)global_step, last_train_loss, train_acc, nums[0], nums[1], nums[2],
                 nums[3], nums[4], nums[5], sps, e_time, elapsed, lr_now, d->world_size, omp_get_max_threads(),
                 max_rss_mb(), step_faults, timing);
        if (d->rank == 0) {
            st = dpt_metrics_write(&mf, json);
            if (st == DPT_OK && cfg->checkpoint_dir[0])
                st = history_append(&ck, json);
        }
        st = dpt_dist_agree(d, st, NULL);
        int finished_epoch = !reached_max || e_count >= (double)n_train;
        if (st == DPT_OK && cfg->checkpoint_dir[0] && cfg->checkpoint_epoch && finished_epoch) {
            const double zero[3] = {0.0, 0.0, 0.0};
            dpt_timer_start(&t.timers, DPT_T_CKPT);
            st = write_checkpoint(&t, &ck, epoch + 1, 0, global_step, zero);
            dpt_timer_stop(&t.timers, DPT_T_CKPT);
        }
    }
    dpt_stop_restore(&sg);
    if (trace && dpt_trace_close(&trace) != DPT_OK && st == DPT_OK)
        st = DPT_EOUTPUT;
    st = dpt_dist_agree(d, st, NULL);
    if (st == DPT_OK && !dpt_dist_same_hash(d, state_hash(&t)))
        st = dpt_err(DPT_EREPLICA, "ranks hold different parameters at the end of training");
    st = dpt_dist_agree(d, st, NULL);
    if (st == DPT_OK && stopped) {
        if (cfg->checkpoint_dir[0])
            st = dpt_err(DPT_ESTOPPED, "stopped by a signal after global step %lld; checkpoint %s written; "
                         "continue with --resume latest", (long long)global_step, ck.last_path);
        else
            st = dpt_err(DPT_ESTOPPED, "stopped by a signal after global step %lld; no --checkpoint-dir, so the state "
                         "was not saved", (long long)global_step);
        st = dpt_dist_agree(d, st, NULL);
    }
    if (st == DPT_OK && cfg->checkpoint_dir[0] && ck.last_step != global_step) {
        /* The final state, so that a finished run can be extended or inspected. */
        const double zero[3] = {0.0, 0.0, 0.0};
        st = write_checkpoint(&t, &ck, cfg->epochs, 0, global_step, zero);
    }
    if (st == DPT_OK) {
        char timing[2048];
        format_timing(d, &t.timers, timing, sizeof timing, 0);
        dpt_log_info("done: %lld steps in %.2f s (training %.2f s)\ntime per phase over ranks (s):  %10s %10s %10s\n%s",
                     (long long)global_step, dpt_dist_time() - run_start, train_time, "min", "mean", "max", timing);
        if (ck.last_step >= 0)
            dpt_log_info("newest checkpoint %s (written in %.3f s)\n", ck.last_path, ck.write_s);
    }
    if (st == DPT_OK && cfg->save[0]) {
        DptStatus ss = DPT_OK;
        if (d->rank == 0) {
            char text[8192];
            dpt_config_format(cfg, text, sizeof text);
            ss = dpt_ckpt_save_model(cfg->save, &t.arch, t.params, text);
            if (ss == DPT_OK)
                dpt_log_info("model saved to %s\n", cfg->save);
        }
        st = dpt_dist_agree(d, ss, NULL);
    }
    if (res) {
        res->steps = global_step;
        res->train_loss = last_train_loss;
        res->test_loss = test_loss;
        res->test_acc = test_acc;
        res->param_hash = dpt_train_hash(t.params, t.arch.n_params, DPT_HASH_INIT);
    }
    if (final_params && (st == DPT_OK || st == DPT_ESTOPPED)) {
        *final_params = malloc(t.arch.n_params * sizeof(float));
        if (*final_params)
            memcpy(*final_params, t.params, t.arch.n_params * sizeof(float));
    }
    if (d->rank == 0)
        dpt_metrics_close(&mf);
    dpt_ckpt_dir_unlock(&ck.lock_fd);
    free(ck.history);
    trainer_free(&t);
    return st;
}

DptStatus dpt_train_gradient(const DptConfig *cfg, const DptDist *d, size_t count, float *grad, double *loss)
{
    Trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.d = d;
    DptStatus st = dpt_dist_agree(d, dpt_config_validate(cfg), NULL);
    if (st == DPT_OK)
        st = dpt_dist_agree(d, dpt_kern_init(), NULL);
    if (st == DPT_OK)
        st = setup(&t);
    if (st == DPT_OK && (count == 0 || count > t.batch))
        st = dpt_err(DPT_EUSAGE, "gradient of %zu samples: expected 1..%zu", count, t.batch);
    if (st == DPT_OK) {
        DptRng rng;
        dpt_rng_stream(&rng, (uint64_t)cfg->seed, DPT_STREAM_SHUFFLE, 0);
        dpt_rng_permutation(&rng, t.perm, t.split[SPLIT_TRAIN].info.n);
        if (cfg->deterministic)
            step_deterministic(&t, t.perm, count);
        else
            step_default(&t, t.perm, count);
        const float *ctrl = t.grad + t.arch.n_params;
        double n = (double)ctrl[C_COUNT_LO] + 4096.0 * (double)ctrl[C_COUNT_HI];
        if (!average_gradient(&t, n, t.split[SPLIT_TRAIN].info.n))
            st = dpt_err(DPT_EDIVERGED, "non-finite gradient");
        memcpy(grad, t.grad, t.arch.n_params * sizeof(float));
        if (loss)
            *loss = ctrl[C_LOSS] / n;
    }
    trainer_free(&t);
    return st;
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
    int which = SPLIT_TEST;
    if (split && split[0]) {
        for (which = 0; which < N_SPLITS && strcmp(split, split_names[which]) != 0; which++)
            ;
        if (which == N_SPLITS)
            return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "--split '%s': expected train, test or validation", split),
                                  NULL);
    } else {
        DptSplitInfo info;
        st = dpt_data_probe(data, "test", 0, &info);
        DPT_TRY(dpt_dist_agree(d, st, NULL));
        if (!info.present)
            which = SPLIT_TRAIN;
    }
    *name = split_names[which];
    return load_split(d, data, which, 1, arch, s, win);
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
        evaluate(d, &m.arch, m.params, &m.w, &m.s, &loss, &acc);
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
