#include "dptrain/train.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/infer.h"
#include "dptrain/kernels.h"
#include "dptrain/log.h"
#include "dptrain/machine.h"
#include "dptrain/metrics.h"
#include "dptrain/optim.h"
#include "dptrain/rng.h"
#include "dptrain/runckpt.h"
#include "dptrain/step.h"
#include "dptrain/stop.h"
#include "dptrain/trace.h"

#include "trainer.h"

#define STR_(x) #x
#define STR(x) STR_(x)   /* a macro's value as a string literal */

/* Where a run stands, and what it writes on the way. */
typedef struct {
    Trainer t;
    DptRunCkpt ck;
    DptMetricsFile mf;
    DptTrace *trace;
    DptStopGuard stop;
    DptTrainState start;  /* where the run (re)started */
    int64_t epoch, global_step, total_steps;
    size_t step;          /* steps of the epoch taken */
    double sums[3];       /* the epoch's loss, correct and count so far */
    double count0;        /* count at the epoch's (re)start */
    long faults0;
    double lr, run_start, epoch_start, train_time;
    double kt0[DPT_KT_COUNT];  /* the products' clock at the start */
    double last_train_loss, test_loss, test_acc;
    int stopped, reached_max;
    int traced;           /* this step is recorded in the trace */
    double log_t0, log_loss, log_count;  /* --log-every: the window's start, loss and sample sums */
    int64_t end_step;     /* the last step this run takes (epochs or --max-steps) */
} Run;

static DptAfterStepHook test_hook;
static void *test_hook_ctx;

void dpt_train_set_test_hook(DptAfterStepHook fn, void *ctx)
{
    test_hook = fn;
    test_hook_ctx = ctx;
}

static uint64_t state_hash(const Trainer *t)
{
    uint64_t h = dpt_hash_bytes(DPT_HASH_INIT, t->params, t->arch.n_params * sizeof(float));
    for (int i = 0; i < t->opt.n_state; i++)
        h = dpt_hash_bytes(h, t->opt.state[i], t->opt.n * sizeof(float));
    return h;
}

/* ---------------------------------------------------------------- set-up */

/* Deterministic results depend on the micro-kernel (the portable one rounds
 * a*b+c twice, the vector ones once): every rank runs the highest one all of
 * them can. Collective. */
static void agree_kernel(const DptDist *d)
{
    int mine = dpt_kern_level(dpt_kern_name());
    double v = -(double)mine;
    dpt_dist_max_doubles(d, &v, 1);
    int all = (int)-v;
    if (mine >= 0 && all >= 0 && all != mine) {
        dpt_kern_select(dpt_kern_level_name(all));
        dpt_log_warn("deterministic mode: micro-kernel %s here too, the one every rank runs (not %s)",
                     dpt_kern_level_name(all), dpt_kern_level_name(mine));
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

/* Rank 0: the metrics file (a resumed run rewrites it with the history its
 * checkpoint carries) and the trace. */
static DptStatus open_records(Run *r)
{
    const DptConfig *cfg = r->t.cfg;
    DPT_TRY(dpt_metrics_open(&r->mf, cfg->metrics));
    if (r->ck.history && r->mf.fp) {
        fputs(r->ck.history, r->mf.fp);
        fflush(r->mf.fp);
    }
    if (!cfg->trace[0])
        return DPT_OK;
    size_t offs[DPT_TRACE_MAX_PARAMS];
    char names[DPT_TRACE_MAX_PARAMS][32];
    int n_tp = 0;
    if (cfg->trace_params[0])
        DPT_TRY(dpt_trace_parse_params(cfg->trace_params, &r->t.arch, offs, names, &n_tp));
    DPT_TRY(dpt_trace_open(&r->trace, cfg->trace, &r->t.arch, cfg->trace_every, offs, names, n_tp,
                           cfg->trace_project, (uint64_t)cfg->seed, r->t.params));
    if (r->start.global_step == 0) {
        dpt_trace_grads(r->trace, 0, NAN, NULL, 1.0);
        DPT_TRY(dpt_trace_params(r->trace, r->t.params));
    }
    return DPT_OK;
}

/* Where every rank runs: host, threads and the CPUs they may use, printed
 * by rank 0. Threads nobody placed are pinned first (dpt_machine_pin: one CPU
 * each, when the user set no OpenMP binding and the node's CPUs suffice); a
 * rank with more threads than CPUs warns (its threads would share cores).
 * Collective. */
static void print_placement(const DptDist *d)
{
    enum { LINE = 256 };
    char host[64], cpus[128], mine[2][LINE];
    int threads = omp_get_max_threads(), n_cpus, pinned = 0;
    DptCpuMask mask, *masks = malloc((size_t)d->node_size * sizeof *masks);
    dpt_machine_mask(&mask);
    if (masks) {
        dpt_dist_node_allgather(d, &mask, sizeof mask, masks);
        pinned = dpt_machine_pin(masks, d->node_size, d->node_rank, threads, cpus, sizeof cpus);
        free(masks);
    }
    n_cpus = pinned ? pinned : dpt_machine_cpus(cpus, sizeof cpus);
    dpt_machine_host(host, sizeof host);
    snprintf(mine[0], LINE, "  rank %d on %s: %d thread%s, CPUs %s (%d)%s", d->rank, host, threads,
             threads == 1 ? "" : "s", n_cpus ? cpus : "?", n_cpus, pinned == 1 ? ", pinned" : pinned ? ", one thread pinned to each" : "");
    snprintf(mine[1], LINE, "%s %s", host, cpus);
    if (n_cpus > 0 && threads > n_cpus)
        dpt_log_warn("%d OpenMP threads but %d CPU%s allowed (%s): the threads share cores. Give each rank its cores: "
                     "mpirun --map-by slot:PE=%d (or --bind-to none), srun -c %d (or SRUN_CPUS_PER_TASK)",
                     threads, n_cpus, n_cpus == 1 ? "" : "s", cpus, threads, threads);
    char *all = d->rank == 0 ? malloc((size_t)d->world_size * 2 * LINE) : NULL;
    dpt_dist_gather_text(d, mine[0], 2 * LINE, all);
    if (!all)
        return;
    dpt_log_info("placement (ranks, threads, CPUs each may use):\n");
    for (int r = 0; r < d->world_size; r++)
        dpt_log_info("%s\n", all + (size_t)r * 2 * LINE);
    /* Unbound ranks with thread binding on: each pins its threads to the
     * first places of the same mask, so all of them share those cores. */
    const char *bind = getenv("OMP_PROC_BIND");
    int binds = bind && strcmp(bind, "false") != 0 && strcmp(bind, "FALSE") != 0;
    for (int r = 1; binds && r < d->world_size; r++)
        for (int q = 0; q < r; q++)
            if (strcmp(all + ((size_t)r * 2 + 1) * LINE, all + ((size_t)q * 2 + 1) * LINE) == 0) {
                dpt_log_warn("ranks %d and %d may use the same CPUs and OMP_PROC_BIND=%s pins the threads of each to "
                             "the first of them: bind the ranks (mpirun --map-by slot:PE=T --bind-to core, srun -c T) "
                             "or set OMP_PROC_BIND=false", q, r, bind);
                binds = 0;
                break;
            }
    free(all);
}

/* Collective. */
static void print_header(const Trainer *t)
{
    const DptConfig *c = t->cfg;
    char text[8192], layers[1024];
    dpt_config_format_changed(c, text, sizeof text);
    dpt_arch_format(&t->arch, layers, sizeof layers);
    dpt_log_info("dptrain %s: %d rank%s (%d node%s) x %d thread%s, kernels %s\n", DPT_VERSION, t->d->world_size,
                 t->d->world_size == 1 ? "" : "s", t->d->n_nodes, t->d->n_nodes == 1 ? "" : "s", omp_get_max_threads(),
                 omp_get_max_threads() == 1 ? "" : "s", dpt_kern_name());
    DptBlockRowsFrom mc_from;
    const size_t mc = dpt_kern_block_rows(&mc_from);
    if (mc_from == DPT_MC_ENV_BAD && t->d->rank == 0)   /* the launcher gives every rank the same */
        dpt_log_warn("DPT_MC=%s ignored: expected " DPT_MC_EXPECTED " (blocks of %zu rows)",
                     getenv("DPT_MC"), mc);
    int loop_bad;
    const DptLoop loop = dpt_kern_loop(NULL, &loop_bad);
    if (loop_bad && t->d->rank == 0)
        dpt_log_warn("DPT_LOOP=%s ignored: expected a or b (the rule for this L1d and kernel gives %s)",
                     getenv("DPT_LOOP"), loop == DPT_LOOP_A ? "a" : "b");
    char mode[64] = "default";
    if (c->deterministic)
        snprintf(mode, sizeof mode, "deterministic (blocks of %zu samples)", t->step.det_block);
    dpt_log_info("network %s (%zu parameters), %zu training samples, global batch %zu, %s mode\n", layers,
                 t->arch.n_params, t->n_train, t->batch, mode);
    if (t->step.sliced)
        dpt_log_info("reduction: none within a node: each rank computes its units' rows of the weight gradient "
                     "over the node's samples, in node-shared memory%s%s%s (DPT_SLICED)%s%s\n",
                     t->step.ns_ctr ? ", taking them in turns (DPT_CLAIM)" : "",
                     t->step.ns_wrows ? ", each rank's rows in proportion to its rate (DPT_WROWS=1)" : "",
                     t->d->n_nodes > 1 ? "; across nodes, one allreduce per rank's units and layer (hierarchical)" : "",
                     t->step.ns_team == 0   ? ""
                     : t->step.ns_team == 1 ? "; and its units of the hidden layers' forward products and errors "
                                              "(DPT_NTEAM=1)"
                                            : "; and its units of the hidden layers' forward products and errors "
                                              "where a rank has at most " STR(DPT_TEAM_ROWS) " rows and it moves fewer floats "
                                              "(DPT_NTEAM)",
                     c->overlap == 1 ? "; --overlap has nothing to overlap on this path (DPT_SLICED=0 gives the "
                                       "summed reduction, which overlaps)"
                                     : "");
    else if (t->d->world_size > 1)
        dpt_log_info("reduction: %s%s\n",
                     !dpt_dist_reducer_shared(t->step.red) ? "MPI_Allreduce of the whole vector"
                     : t->d->n_nodes > 1 ? "node-shared memory, then one allreduce per slice across nodes (hierarchical)"
                                         : "node-shared memory",
                     !t->step.overlap            ? ""
                     : t->step.deterministic ? ", per-layer buckets as their fixed-point sums complete (overlap)"
                                             : ", per-layer buckets during backprop (overlap)");
    if (t->step.xr_on) {
        char which[5 * DPT_MAX_LAYERS] = "";   /* up to 3 digits and a comma each */
        for (int l = 0, at = 0; l < t->arch.n_layers; l++)
            if (t->step.xr[l] && at < (int)sizeof which)
                at += snprintf(which + at, sizeof which - (size_t)at, "%s%d", at ? "," : "", l + 1);
        dpt_log_info("across nodes, layer(s) %s: each rank's rows of errors and input activations instead of its "
                     "units' gradient sums, every node computing the layer's gradient over all rows (where the rows "
                     "are at most half the gradient; DPT_XROWS=0/1 overrides)\n", which);
    }
    if (t->step.xr_kernels_differ)
        dpt_log_info("across nodes: the ranks' micro-kernels differ (nodes of different CPUs, or DPT_KERNEL), so "
                     "each node's gradient sums cross, not rows (rank 0's kernel: %s)\n", dpt_kern_name());
    if (t->step.team)
        dpt_log_info("threads as ranks: each of the %d threads computes its rows, then its units of the weight "
                     "gradient over all of them (DPT_TEAM)%s\n", t->step.team,
                     t->step.overlap ? "; the layers' buckets are handed over together at the end" : "");
    if (t->wp) {
        int f = 0, b = 0;
        for (int l = 0; l < t->arch.n_layers; l++) {
            f |= t->work.wp_fwd[l] != NULL;
            b |= t->work.wp_bwd[l] != NULL;
        }
        dpt_log_info("W kept packed %s for the %s (DPT_WPACK)\n", t->shared_model ? "once per node" : "by each rank",
                     f && b ? "forward products and input gradients" : f ? "forward products" : "input gradients");
    }
    dpt_log_info("options (those that differ from the defaults; --print-config shows all):\n%s\n", text);
    print_placement(t->d);
}

/* Set-up, in order: the stop handlers, the trainer, the micro-kernel of a
 * deterministic run, the output paths, the checkpoint directory and resume,
 * the metrics and trace files, the header. Collective. */
static DptStatus run_open(Run *r, const DptConfig *cfg, const DptDist *d)
{
    memset(r, 0, sizeof *r);
    r->ck.lock_fd = -1;
    dpt_log_init(d->rank, d->world_size, cfg->quiet, cfg->progress);
    /* From here a stop request is a request: it ends the run after its first step. */
    dpt_stop_install(&r->stop, cfg->signal_grace, d->rank == 0 && !cfg->quiet);
    Trainer *t = &r->t;
    DPT_TRY(dpt_trainer_init(t, cfg, d));
    if (cfg->deterministic)
        agree_kernel(d);
    DPT_TRY(dpt_dist_agree(d, d->rank == 0 ? check_outputs(cfg) : DPT_OK, NULL));
    DPT_TRY(dpt_runckpt_open(&r->ck, cfg, d, &t->arch, t->params, &t->opt, t->shared_model, (int64_t)t->batch,
                             &r->start));
    r->ck.meta = &t->meta;
    DPT_TRY(dpt_trainer_wpack(t));   /* the kernel is final; the resumed parameters, if any */
    DPT_TRY(dpt_dist_agree(d, d->rank == 0 ? open_records(r) : DPT_OK, NULL));
    print_header(t);
    r->epoch = r->start.epoch;
    r->global_step = r->start.global_step;
    /* The schedule spans --epochs; --max-steps only stops early, so a run
     * stopped by it and resumed follows the uninterrupted run's rates. */
    r->total_steps = cfg->epochs * (int64_t)t->steps_per_epoch;
    r->lr = cfg->sched.lr;
    r->last_train_loss = r->test_loss = r->test_acc = NAN;
    r->reached_max = cfg->max_steps > 0 && r->global_step >= cfg->max_steps;
    if (r->epoch >= cfg->epochs || r->reached_max)
        dpt_log_info("nothing to train: the state resumed is at epoch %lld, global step %lld (--epochs %lld, "
                     "--max-steps %lld)\n", (long long)r->epoch + 1, (long long)r->global_step, (long long)cfg->epochs,
                     (long long)cfg->max_steps);
    r->end_step = cfg->max_steps > 0 && cfg->max_steps < r->total_steps ? cfg->max_steps : r->total_steps;
    r->run_start = r->log_t0 = dpt_clock();
    dpt_kern_times(r->kt0);
    dpt_kern_timing(1);   /* the products of the steps, not of evaluation */
    return DPT_OK;
}

/* Seconds as "1h02m03s". */
static void format_eta(char *buf, size_t len, double s)
{
    long t = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    snprintf(buf, len, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
}

/* --log-every: step, the window's mean loss and samples/s, and the time left
 * at that rate (rank 0; a plain line, for batch-job logs). */
static void log_line(Run *r, const DptStepResult *res)
{
    const DptConfig *cfg = r->t.cfg;
    r->log_loss += res->loss;
    r->log_count += res->count;
    if (cfg->log_every <= 0 || r->global_step % cfg->log_every != 0)
        return;
    double now = dpt_clock(), dt = now - r->log_t0;
    char eta[32];
    format_eta(eta, sizeof eta, dt / (double)cfg->log_every * (double)(r->end_step - r->global_step));
    dpt_log_info("step %lld/%lld (epoch %lld/%lld)  loss %.4f  %.0f samples/s  eta %s\n", (long long)r->global_step,
                 (long long)r->end_step, (long long)r->epoch + 1, (long long)cfg->epochs, r->log_loss / r->log_count,
                 r->log_count / dt, eta);
    r->log_t0 = now;
    r->log_loss = r->log_count = 0.0;
}

/* The products' share of compute so far (the kernels' clock, since the start). */
static void product_times(Run *r)
{
    double now[DPT_KT_COUNT];
    dpt_kern_times(now);
    r->t.timers.total[DPT_T_FORWARD] = now[DPT_KT_FORWARD] - r->kt0[DPT_KT_FORWARD];
    r->t.timers.total[DPT_T_WGRAD] = now[DPT_KT_WGRAD] - r->kt0[DPT_KT_WGRAD];
    r->t.timers.total[DPT_T_IGRAD] = now[DPT_KT_IGRAD] - r->kt0[DPT_KT_IGRAD];
}

/* ---------------------------------------------------------------- one step */

/* Averaging, the rate of this step, the optimiser; a non-finite loss or
 * gradient ends the run (no checkpoint is written after it). */
static DptStatus update(Run *r, const DptStepResult *res)
{
    Trainer *t = &r->t;
    const DptConfig *cfg = t->cfg;
    dpt_timer_start(&t->timers, DPT_T_UPDATE);
    const int64_t done = r->global_step + 1;
    float div = 0.0f;
    if (!res->nonfinite && isfinite(res->loss))
        div = dpt_step_average(&t->step, res, cfg->clip_norm, cfg->weight_decay / (double)t->n_train, t->params,
                               t->own_lo, t->own_hi);
    int ok = div != 0.0f;   /* the same on every rank: it comes from reduced values */
    if (ok) {
        r->lr = dpt_schedule_lr(&cfg->sched, r->global_step, (int64_t)t->steps_per_epoch, r->total_steps);
        ok = dpt_optim_step_range(&t->opt, t->params, t->step.grad, r->lr, div, t->own_lo, t->own_hi);
        /* this rank's slice of the packed W, in the node's copy (unless packed in the update) */
        if (t->wp && !t->opt.rows_done)
            dpt_net_wpack(&t->work, &t->arch, t->params, t->own_lo, t->own_hi);
        /* A shared model: the node's slices agree, and every slice is written
         * before anyone reads the parameters again. */
        if (t->shared_model)
            ok = dpt_dist_node_all(t->d, ok);
    }
    r->global_step = done;
    dpt_timer_stop(&t->timers, DPT_T_UPDATE);
    if (ok)
        return DPT_OK;
    return dpt_err(DPT_EDIVERGED, "non-finite %s at epoch %lld, step %zu (global step %lld); try a smaller --lr",
                   isfinite(res->loss) ? "gradient" : "loss", (long long)r->epoch + 1, r->step + 1,
                   (long long)done);
}

/* After a step: the traced parameters, the test hook, the epoch's sums, the replica check, the
 * checkpoint policy, the progress bar. Collective. */
static DptStatus after_step(Run *r, const DptStepResult *res)
{
    Trainer *t = &r->t;
    const DptConfig *cfg = t->cfg;
    const DptDist *d = t->d;
    if (r->traced && dpt_trace_params(r->trace, t->params) != DPT_OK) {
        dpt_log_warn("%s; tracing stops", dpt_err_message());
        dpt_err_clear();
        dpt_trace_close(&r->trace);
    }
    if (test_hook)
        test_hook(test_hook_ctx, r->global_step, t->params, t->arch.n_params);
    r->step++;
    r->sums[0] += res->loss;
    r->sums[1] += res->correct;
    r->sums[2] += res->count;
    if (cfg->check_every > 0 && r->global_step % cfg->check_every == 0 && !dpt_dist_same_hash(d, state_hash(t)))
        return dpt_err(DPT_EREPLICA, "ranks hold different parameters after global step %lld", (long long)r->global_step);
    r->stopped = res->stop;
    r->reached_max = cfg->max_steps > 0 && r->global_step >= cfg->max_steps;
    if (dpt_runckpt_due(&r->ck, r->global_step, r->stopped || r->reached_max || res->save)) {
        dpt_timer_start(&t->timers, DPT_T_CKPT);
        DptStatus st = dpt_runckpt_write(&r->ck, r->epoch, (int64_t)r->step, r->global_step, r->sums);
        dpt_timer_stop(&t->timers, DPT_T_CKPT);
        DPT_TRY(st);
        if (res->save && !r->stopped)
            dpt_log_info("checkpoint %s written after global step %lld (--checkpoint-minutes or SIGUSR2)\n",
                         r->ck.last_path, (long long)r->global_step);
    }
    log_line(r, res);
    if (!r->stopped && !r->reached_max) {
        double dt = dpt_clock() - r->epoch_start, sps = dt > 0 ? (r->sums[2] - r->count0) / dt : 0.0;
        double eta = sps > 0 ? (double)(r->end_step - r->global_step) * (double)t->batch / sps : 0.0;
        dpt_log_progress((long)r->epoch + 1, (long)r->step, (long)t->steps_per_epoch, r->sums[0] / r->sums[2], sps,
                         eta);
    }
    return DPT_OK;
}

/* ---------------------------------------------------------------- one epoch */

/* The epoch's order (from seed and epoch), and its sums so far (a resumed
 * epoch continues its own). */
static void begin_epoch(Run *r)
{
    Trainer *t = &r->t;
    DptRng rng;
    dpt_rng_stream(&rng, (uint64_t)t->cfg->seed, DPT_STREAM_SHUFFLE, (uint64_t)r->epoch);
    dpt_rng_permutation(&rng, t->perm, t->n_train);
    const int resumed = r->epoch == r->start.epoch;
    r->step = resumed ? (size_t)r->start.step : 0;
    r->sums[0] = resumed ? r->start.epoch_loss : 0.0;
    r->sums[1] = resumed ? r->start.epoch_correct : 0.0;
    r->sums[2] = resumed ? r->start.epoch_count : 0.0;
    r->count0 = r->sums[2];
    r->faults0 = dpt_metrics_page_faults();
    r->epoch_start = dpt_clock();
}

/* The epoch's steps, until its end, a stop request or --max-steps. Collective. */
static DptStatus run_steps(Run *r)
{
    Trainer *t = &r->t;
    begin_epoch(r);
    while (r->step < t->steps_per_epoch) {
        size_t first = r->step * t->batch, cnt = t->n_train - first < t->batch ? t->n_train - first : t->batch;
        const int ask = (dpt_stop_requested() ? DPT_ASK_STOP : 0) | (dpt_runckpt_ask(&r->ck) ? DPT_ASK_SAVE : 0);
        DptStepResult res = dpt_step_gradient(&t->step, t->params, &t->split[DPT_SPLIT_TRAIN], t->perm + first, cnt,
                                              ask, &t->timers);
        /* The trace sees the reduced sums before the update averages them. */
        r->traced = r->trace && dpt_trace_wants(r->trace, r->global_step + 1);
        if (r->traced)
            dpt_trace_grads(r->trace, r->global_step + 1, res.loss / res.count, dpt_step_sums(&t->step), res.count);
        DPT_TRY(update(r, &res));
        DPT_TRY(after_step(r, &res));
        if (r->stopped || r->reached_max)
            break;
    }
    return DPT_OK;
}

/* After an epoch: evaluation, the epoch's line and metrics record, the
 * epoch's checkpoint. Collective. */
static DptStatus after_epoch(Run *r)
{
    Trainer *t = &r->t;
    const DptConfig *cfg = t->cfg;
    const DptDist *d = t->d;
    DptEpochRecord e = {.epoch = r->epoch + 1, .step = r->global_step, .lr = r->lr, .ranks = d->world_size,
                        .threads = omp_get_max_threads(), .train_eval_loss = NAN, .train_eval_acc = NAN,
                        .test_loss = NAN, .test_acc = NAN, .val_loss = NAN, .val_acc = NAN};
    e.step_page_faults = dpt_metrics_page_faults() - r->faults0;
    e.epoch_s = dpt_clock() - r->epoch_start;
    r->train_time += e.epoch_s;
    r->last_train_loss = e.train_loss = r->sums[0] / r->sums[2];
    e.train_acc = r->sums[1] / r->sums[2];
    dpt_log_progress((long)r->epoch + 1, (long)t->steps_per_epoch, (long)t->steps_per_epoch, 0.0, 0.0, 0.0);
    dpt_timer_start(&t->timers, DPT_T_EVAL);
    dpt_kern_timing(0);
    const DptSplit *test = &t->split[DPT_SPLIT_TEST], *val = &t->split[DPT_SPLIT_VALIDATION];
    if (cfg->eval_train)
        dpt_infer_evaluate(d, &t->arch, t->params, &t->work, &t->split[DPT_SPLIT_TRAIN], &e.train_eval_loss,
                           &e.train_eval_acc);
    if (val->info.present)
        dpt_infer_evaluate(d, &t->arch, t->params, &t->work, val, &e.val_loss, &e.val_acc);
    if (test->info.present)
        dpt_infer_evaluate(d, &t->arch, t->params, &t->work, test, &r->test_loss, &r->test_acc);
    e.test_loss = r->test_loss;
    e.test_acc = r->test_acc;
    dpt_kern_timing(1);
    dpt_timer_stop(&t->timers, DPT_T_EVAL);
    e.samples_per_s = (r->sums[2] - r->count0) / e.epoch_s;
    e.elapsed_s = dpt_clock() - r->run_start;
    e.max_rss_mb = dpt_metrics_max_rss_mb();
    product_times(r);
    for (int i = 0; i < DPT_T_COUNT; i++)
        dpt_dist_stats(d, t->timers.total[i], e.time[i]);

    char line[512], json[4096];
    int used = snprintf(line, sizeof line, "epoch %3lld/%lld  train loss %.4f acc %.4f", (long long)e.epoch,
                        (long long)cfg->epochs, cfg->eval_train ? e.train_eval_loss : e.train_loss,
                        cfg->eval_train ? e.train_eval_acc : e.train_acc);
    if (val->info.present)
        used += snprintf(line + used, sizeof line - (size_t)used, " | val loss %.4f acc %.4f", e.val_loss, e.val_acc);
    if (test->info.present)
        used += snprintf(line + used, sizeof line - (size_t)used, " | test loss %.4f acc %.4f", e.test_loss, e.test_acc);
    snprintf(line + used, sizeof line - (size_t)used, " | %.0f samples/s | %.1f s", e.samples_per_s, e.elapsed_s);
    dpt_log_info("%s\n", line);
    dpt_metrics_json(&e, json, sizeof json);
    DptStatus st = DPT_OK;
    if (d->rank == 0) {
        st = dpt_metrics_write(&r->mf, json);
        if (st == DPT_OK)
            st = dpt_runckpt_record(&r->ck, json);
    }
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    const int finished_epoch = !r->reached_max || r->sums[2] >= (double)t->n_train;
    if (cfg->checkpoint_dir[0] && cfg->checkpoint_epoch && finished_epoch) {
        const double zero[3] = {0.0, 0.0, 0.0};
        dpt_timer_start(&t->timers, DPT_T_CKPT);
        st = dpt_runckpt_write(&r->ck, r->epoch + 1, 0, r->global_step, zero);
        dpt_timer_stop(&t->timers, DPT_T_CKPT);
    }
    return st;
}

/* ---------------------------------------------------------------- the end */

/* The replicas compared, the stop reported, the final checkpoint, the
 * summary, the model saved. Collective. */
static DptStatus run_finish(Run *r, DptStatus st)
{
    Trainer *t = &r->t;
    const DptConfig *cfg = t->cfg;
    const DptDist *d = t->d;
    if (r->trace && dpt_trace_close(&r->trace) != DPT_OK && st == DPT_OK)
        st = DPT_EOUTPUT;
    st = dpt_dist_agree(d, st, NULL);
    if (st == DPT_OK && !dpt_dist_same_hash(d, state_hash(t)))
        st = dpt_err(DPT_EREPLICA, "ranks hold different parameters at the end of training");
    st = dpt_dist_agree(d, st, NULL);
    if (st == DPT_OK && r->stopped) {
        if (cfg->checkpoint_dir[0])
            st = dpt_err(DPT_ESTOPPED, "stopped by a signal after global step %lld; checkpoint %s written; "
                         "continue with --resume latest", (long long)r->global_step, r->ck.last_path);
        else
            st = dpt_err(DPT_ESTOPPED, "stopped by a signal after global step %lld; no --checkpoint-dir, so the state "
                         "was not saved", (long long)r->global_step);
        return dpt_dist_agree(d, st, NULL);
    }
    if (st == DPT_OK && cfg->checkpoint_dir[0] && r->ck.last_step != r->global_step) {
        /* The final state, so that a finished run can be extended or inspected. */
        const double zero[3] = {0.0, 0.0, 0.0};
        st = dpt_runckpt_write(&r->ck, cfg->epochs, 0, r->global_step, zero);
    }
    if (st != DPT_OK)
        return st;
    double time[DPT_T_COUNT][3];
    char table[2048];
    product_times(r);
    for (int i = 0; i < DPT_T_COUNT; i++)
        dpt_dist_stats(d, t->timers.total[i], time[i]);
    dpt_metrics_timing_table(time, table, sizeof table);
    dpt_log_info("done: %lld steps in %.2f s (training %.2f s)\ntime per phase over ranks (s):\n  %-20s %10s %10s %10s\n%s",
                 (long long)r->global_step, dpt_clock() - r->run_start, r->train_time, "", "min", "mean", "max", table);
    if (r->ck.last_step >= 0)
        dpt_log_info("newest checkpoint %s (written in %.3f s)\n", r->ck.last_path, r->ck.write_s);
    if (!cfg->save[0])
        return DPT_OK;
    if (d->rank == 0) {
        char text[8192];
        dpt_config_format(cfg, text, sizeof text);
        st = dpt_ckpt_save_model(cfg->save, &t->arch, t->params, text, &t->meta);
        if (st == DPT_OK)
            dpt_log_info("model saved to %s\n", cfg->save);
    }
    return dpt_dist_agree(d, st, NULL);
}

/* Releases what the run holds (every rank). */
static void run_close(Run *r)
{
    dpt_kern_timing(0);
    dpt_stop_restore(&r->stop);
    if (r->trace)
        dpt_trace_close(&r->trace);
    if (r->t.d && r->t.d->rank == 0)
        dpt_metrics_close(&r->mf);
    dpt_runckpt_close(&r->ck);
    dpt_trainer_free(&r->t);
}

/* ---------------------------------------------------------------- the run */

DptStatus dpt_train_run(const DptConfig *cfg, const DptDist *d, DptTrainResult *res, float **final_params)
{
    Run r;
    DptStatus st = run_open(&r, cfg, d);
    if (st != DPT_OK) {
        run_close(&r);
        return st;
    }
    while (st == DPT_OK && r.epoch < cfg->epochs && !r.stopped && !r.reached_max) {
        st = run_steps(&r);
        if (st == DPT_OK && !r.stopped)
            st = after_epoch(&r);
        r.epoch++;
    }
    st = run_finish(&r, st);
    if (res) {
        res->steps = r.global_step;
        res->train_loss = r.last_train_loss;
        res->test_loss = r.test_loss;
        res->test_acc = r.test_acc;
        res->param_hash = dpt_hash_bytes(DPT_HASH_INIT, r.t.params, r.t.arch.n_params * sizeof(float));
    }
    if (final_params && (st == DPT_OK || st == DPT_ESTOPPED)) {
        *final_params = malloc(r.t.arch.n_params * sizeof(float));
        if (*final_params)
            memcpy(*final_params, r.t.params, r.t.arch.n_params * sizeof(float));
    }
    run_close(&r);
    return st;
}

DptStatus dpt_train_gradient(const DptConfig *cfg, const DptDist *d, size_t count, float *grad, double *loss)
{
    Trainer t;
    DptStatus st = dpt_trainer_init(&t, cfg, d);
    if (st == DPT_OK)
        st = dpt_trainer_wpack(&t);
    if (st == DPT_OK && (count == 0 || count > t.batch))
        st = dpt_err(DPT_EUSAGE, "gradient of %zu samples: expected 1..%zu", count, t.batch);
    if (st == DPT_OK) {
        DptRng rng;
        DptTimers tm;
        memset(&tm, 0, sizeof tm);
        dpt_rng_stream(&rng, (uint64_t)cfg->seed, DPT_STREAM_SHUFFLE, 0);
        dpt_rng_permutation(&rng, t.perm, t.n_train);
        DptStepResult r = dpt_step_gradient(&t.step, t.params, &t.split[DPT_SPLIT_TRAIN], t.perm, count, 0, &tm);
        float div = dpt_step_average(&t.step, &r, cfg->clip_norm, cfg->weight_decay / (double)t.n_train, t.params, 0,
                                     t.arch.n_params);
        int bad = div == 0.0f;
        for (size_t i = 0; i < t.arch.n_params; i++) {
            grad[i] = t.step.grad[i] / div;
            bad |= !isfinite(grad[i]);
        }
        if (bad)
            st = dpt_err(DPT_EDIVERGED, "non-finite gradient");
        if (loss)
            *loss = r.loss / r.count;
    }
    dpt_trainer_free(&t);
    return st;
}
