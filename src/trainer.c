#include "trainer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/ckpt.h"
#include "dptrain/kernels.h"

enum { EVAL_ROWS = 256 };

void dpt_trainer_free(Trainer *t)
{
    if (t->model_win)
        dpt_dist_shared_free(&t->model_win);
    else
        free(t->params);
    free(t->perm);
    dpt_step_free(&t->step);
    dpt_data_meta_free(&t->meta);
    dpt_optim_free(&t->opt);
    dpt_work_free(&t->work);
    if (t->wp_win)
        dpt_dist_shared_free(&t->wp_win);
    else
        free(t->wp);
    for (int i = 0; i < DPT_N_SPLITS; i++) {
        dpt_dist_shared_free(&t->win[i]);
        memset(&t->split[i], 0, sizeof t->split[i]);
    }
}

/* Rank 0: the architecture and parameters of --init-from, checked against
 * this run's options as --layers would be. */
static DptStatus load_init_from(const DptConfig *c, DptArch *arch, float **loaded)
{
    DPT_TRY(dpt_ckpt_load_model(c->init_from, arch, loaded));
    int same = c->n_sizes < 2 || c->n_sizes == arch->n_layers + 1;
    for (int l = 0; same && c->n_sizes >= 2 && l < c->n_sizes; l++)
        same = c->sizes[l] == arch->sizes[l];
    if (!same) {
        char have[1024];
        dpt_arch_format(arch, have, sizeof have);
        return dpt_err(DPT_EUSAGE, "--init-from %s: the model has layers %s, which differ from --layers", c->init_from,
                       have);
    }
    if (arch->hidden != c->hidden || arch->output != c->output)
        return dpt_err(DPT_EUSAGE, "--init-from %s: the model has --hidden %s --output %s; pass the same", c->init_from,
                       dpt_act_name(arch->hidden), dpt_act_name(arch->output));
    /* The model file's cost is the one it was trained with; this run's
     * --cost must suit its output units, as with --layers. */
    DptArch check;
    if (dpt_arch_init(&check, arch->sizes, arch->n_layers + 1, arch->hidden, arch->output, c->cost) != DPT_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", dpt_err_message());
        dpt_err_clear();
        return dpt_err(DPT_EUSAGE, "--init-from %s: %s", c->init_from, why);
    }
    arch->cost = c->cost;
    return DPT_OK;
}

/* The update's threads take a layer's units as the weight gradient's and
 * the forward product's do (whole panels of them: dpt_optim_set_blocks),
 * so that each reads the rows of dW it wrote and writes the rows of W it
 * reads next (DPT_UPDATE_UNITS=0: a contiguous range each instead). */
static DptStatus split_update_by_units(Trainer *t)
{
    if (dpt_env_switch("DPT_UPDATE_UNITS") == 0)   /* split flat, as before (for comparisons) */
        return DPT_OK;
    DptOptBlock b[2 * DPT_MAX_LAYERS];
    const int n = dpt_net_blocks(&t->arch, b);
    return dpt_optim_set_blocks(&t->opt, b, n, (size_t)dpt_kern_panel_rows());
}

/* The parameters and the optimiser state. With several ranks on a node and
 * the shared-memory reduction, the node keeps one copy of both in a shared
 * window and each rank updates its slice (cut on cache lines): the update
 * costs 1/node_size of a full one, the node's ranks read the same weights,
 * and the arithmetic of every element is that of the replicated update. With
 * --reduce mpi (or one rank on every node) every rank holds its own copy.
 * Collective. */
static DptStatus alloc_model(Trainer *t)
{
    const DptConfig *c = t->cfg;
    const DptDist *d = t->d;
    const size_t n = t->arch.n_params;
    /* The same choice on every node (a node of one rank keeps a "shared"
     * model of its own): the broadcasts and checkpoints that follow depend on it. */
    t->shared_model = d->node_size_max > 1 && c->reduce != DPT_REDUCE_MPI;
    t->own_lo = 0;
    t->own_hi = n;
    if (!t->shared_model) {
        t->params = dpt_aligned_alloc(n * sizeof(float), "parameters");
        DPT_TRY(t->params ? dpt_optim_init(&t->opt, &c->opt, n) : DPT_ENOMEM);
        return split_update_by_units(t);
    }
    const size_t stride = (n + 15) / 16 * 16, lines = stride / 16, k = (size_t)d->node_size, j = (size_t)d->node_rank;
    const size_t vectors = 1 + (size_t)dpt_optim_state_count(c->opt.kind);
    void *mem = NULL;
    DPT_TRY(dpt_dist_shared_alloc(d, vectors * stride * sizeof(float), &mem, &t->model_win));
    t->params = mem;
    t->own_lo = lines * j / k * 16;
    t->own_hi = lines * (j + 1) / k * 16 < n ? lines * (j + 1) / k * 16 : n;
    /* Each rank zeroes (and so first touches) its own slice of every vector. */
    for (size_t v = 0; v < vectors; v++)
        memset(t->params + v * stride + t->own_lo, 0, (t->own_hi > t->own_lo ? t->own_hi - t->own_lo : 0) * sizeof(float));
    dpt_optim_init_in(&t->opt, &c->opt, n, t->params + stride, stride);
    dpt_dist_node_barrier(d);
    return split_update_by_units(t);
}

/* Architecture and initial parameters: from --init-from (read by rank 0) or
 * random on rank 0; broadcast to all. Collective. */
static DptStatus setup_params(Trainer *t)
{
    const DptConfig *c = t->cfg;
    const DptDist *d = t->d;
    float *loaded = NULL;
    if (c->init_from[0]) {
        DptStatus st = dpt_dist_agree(d, d->rank == 0 ? load_init_from(c, &t->arch, &loaded) : DPT_OK, NULL);
        if (st != DPT_OK) {
            free(loaded);
            return st;
        }
        dpt_dist_bcast(d, &t->arch, sizeof t->arch, 0);
    } else {
        DPT_TRY(dpt_arch_init(&t->arch, c->sizes, c->n_sizes, c->hidden, c->output, c->cost));
    }
    DptStatus st = dpt_dist_agree(d, alloc_model(t), NULL);
    if (st == DPT_OK && d->rank == 0) {
        if (loaded)
            memcpy(t->params, loaded, t->arch.n_params * sizeof(float));
        else
            dpt_net_init_params(t->params, &t->arch, c->init, (uint64_t)c->seed);
    }
    free(loaded);
    if (st == DPT_OK)
        dpt_dist_bcast_model(d, t->params, t->arch.n_params * sizeof(float), t->shared_model);
    return st;
}

/* W kept packed for the products (dpt_kern_wpack): with a node-shared model
 * one copy per node, each rank packing the slice it updates, so a node packs
 * W once a step instead of once per rank and product. Writing a copy of
 * all of W to memory costs more per float than the products' packing into a
 * cache-sized buffer, so the copies are kept from 8 ranks on a node (README
 * "Performance"): 16 x 1 on the 16-core Xeon ran 1.13-1.28x with them, but
 * 4 x 4 there 0.85 / 0.94x, and 2 x 1 on a 2-core Xeon 0.89-0.96x (six
 * pairs, batch 128 and 256: the update phase 0.75 -> 1.9 ms a step against
 * 0.4 ms saved in the forward product); on a 2-core AMD EPYC (AVX2, whose
 * forward product reads W in place) the input gradient's copy at 4 ranks
 * measured equal (median 1.01x). DPT_WPACK=0/1 turns both off/on (on also
 * keeps copies on a rank of its own); a rank whose threads work as ranks
 * (DPT_TEAM=1) keeps both. The ranks of a node
 * agree on where each copy lies: a copy is kept where all of them would use
 * it (a rank's thread count decides whether its forward product reads W in
 * place), and none unless every rank's kernel has the same panel width.
 * Collective. */
enum { WPACK_FWD_RANKS = 8, WPACK_BWD_RANKS = 8 };

static DptStatus alloc_wpack(Trainer *t, size_t rows)
{
    const DptDist *d = t->d;
    const int shared = t->shared_model;
    const int sw = dpt_env_switch("DPT_WPACK"), forced = sw >= 0, on_env = sw == 1;
    /* threads as ranks (step.c) share W like ranks: both copies */
    const int team = t->step.team > 0;
    int on = forced ? on_env : (shared && d->node_size >= WPACK_FWD_RANKS) || team;
    const int bwd_on = forced ? on_env : (shared && d->node_size >= WPACK_BWD_RANKS) || team;
    if (shared) {
        const int same_panels = dpt_dist_same_hash(d, (uint64_t)dpt_kern_panel_width());
        on = dpt_dist_node_all(d, on) && same_panels;
    }
    size_t at[2][DPT_MAX_LAYERS], total = 0;
    for (int l = 0; l < t->arch.n_layers; l++) {
        const size_t in = (size_t)t->arch.sizes[l], out = (size_t)t->arch.sizes[l + 1];
        for (int f = 0; f < 2; f++) {
            /* the input gradient of layer 0 is never computed */
            size_t m = on && (f == 1 || (l > 0 && bwd_on)) ? dpt_kern_wpack_floats(in, out, f, rows) : 0;
            if (shared && on)
                m = dpt_dist_node_all(d, m > 0) ? m : 0;
            at[f][l] = m ? total : SIZE_MAX;
            total += (m + 15) / 16 * 16;
        }
    }
    if (total == 0)
        return DPT_OK;
    if (shared) {
        void *mem = NULL;
        DPT_TRY(dpt_dist_shared_alloc(d, total * sizeof(float), &mem, &t->wp_win));
        t->wp = mem;
    } else if (!(t->wp = dpt_aligned_alloc(total * sizeof(float), "packed weights"))) {
        return DPT_ENOMEM;
    }
    /* Zeroed (the panels' padding stays so) */
    if (shared)
        dpt_dist_shared_zero(d, t->wp, total * sizeof(float));
    else
        memset(t->wp, 0, total * sizeof(float));
    for (int l = 0; l < t->arch.n_layers; l++) {
        t->work.wp_fwd[l] = at[1][l] == SIZE_MAX ? NULL : t->wp + at[1][l];
        t->work.wp_bwd[l] = at[0][l] == SIZE_MAX ? NULL : t->wp + at[0][l];
    }
    return DPT_OK;
}

/* The optimiser's hook: rows [r0, r1) of block k, just updated by the
 * calling thread, into the copies of W while they are in its caches (k
 * odd: a bias, not packed). */
static void pack_rows_done(void *ctx, int k, size_t r0, size_t r1)
{
    const Trainer *t = ctx;
    const DptArch *a = &t->arch;
    if (k % 2)
        return;
    const size_t in = (size_t)a->sizes[k / 2], w0 = a->w_off[k / 2];
    dpt_net_wpack(&t->work, a, t->params, w0 + r0 * in, w0 + r1 * in);
}

DptStatus dpt_trainer_wpack(Trainer *t)
{
    DPT_TRY(dpt_dist_agree(t->d, alloc_wpack(t, t->step.chunk), NULL));
    if (!t->wp)
        return DPT_OK;
    /* A rank that updates the whole model packs as it updates (the
     * optimiser's hook, then set); a slice of a node's shared model is
     * packed in a pass after it (train.c). */
    if (t->own_lo == 0 && t->own_hi == t->arch.n_params)
        dpt_optim_set_rows_done(&t->opt, pack_rows_done, t);
    if (t->shared_model)
        dpt_dist_node_barrier(t->d);   /* the parameters, done on every rank */
    dpt_net_wpack(&t->work, &t->arch, t->params, t->own_lo, t->own_hi);
    if (t->shared_model)
        dpt_dist_node_barrier(t->d);
    return DPT_OK;
}

/* The model, the data, the global batch, the step and its buffers. Collective. */
DptStatus dpt_trainer_init(Trainer *t, const DptConfig *c, const DptDist *d)
{
    memset(t, 0, sizeof *t);
    t->cfg = c;
    t->d = d;
    DPT_TRY(dpt_dist_agree(d, dpt_config_validate(c), NULL));
    DPT_TRY(dpt_dist_agree(d, dpt_kern_init(), NULL));
    DPT_TRY(setup_params(t));
    for (int s = 0; s < DPT_N_SPLITS; s++)
        DPT_TRY(dpt_infer_load_split(d, c->data, dpt_split_names[s], s == DPT_SPLIT_TRAIN ? DPT_PROBE_REQUIRED : 0,
                                     &t->arch, &t->split[s], &t->win[s]));
    DPT_TRY(dpt_dist_agree(d, d->rank == 0 ? dpt_data_read_meta(c->data, &t->meta) : DPT_OK, NULL));
    if (t->meta.n_classes && t->meta.n_classes != (size_t)t->arch.sizes[t->arch.n_layers] &&
        !(t->meta.n_classes == 2 && t->arch.sizes[t->arch.n_layers] == 1))
        return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "%s names %zu classes but --layers ends in %d outputs", c->data,
                                         t->meta.n_classes, t->arch.sizes[t->arch.n_layers]), NULL);
    t->n_train = t->split[DPT_SPLIT_TRAIN].info.n;
    t->batch = c->batch_per_rank > 0 ? (size_t)c->batch_per_rank * (size_t)d->world_size
               : c->batch == 0      ? t->n_train
                                    : (size_t)c->batch;
    if (t->batch > t->n_train && c->batch_per_rank > 0)
        return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "--batch-per-rank %lld x %d ranks = %zu is larger than the training "
                                         "set (%zu samples in %s)", (long long)c->batch_per_rank, d->world_size, t->batch,
                                         t->n_train, c->data), NULL);
    if (t->batch > t->n_train)
        return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "--batch %zu is larger than the training set (%zu samples in %s)",
                                         t->batch, t->n_train, c->data), NULL);
    t->steps_per_epoch = (t->n_train + t->batch - 1) / t->batch;
    size_t rows = 0;
    DptStatus st = dpt_step_init(&t->step, d, &t->arch, t->batch, c->deterministic, c->overlap, (size_t)c->det_block,
                                 c->reduce, &rows);
    if (st == DPT_OK)
        st = dpt_work_init(&t->work, &t->arch, rows > EVAL_ROWS ? rows : EVAL_ROWS);
    if (st == DPT_OK && !(t->perm = dpt_calloc(t->n_train, sizeof *t->perm, "permutation")))
        st = DPT_ENOMEM;
    t->step.work = &t->work;
    return dpt_dist_agree(d, st, NULL);
}

