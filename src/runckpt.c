#include "dptrain/runckpt.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dptrain/ckptdir.h"
#include "dptrain/kernels.h"
#include "dptrain/log.h"
#include "dptrain/metrics.h"
#include "dptrain/rng.h"
#include "dptrain/stop.h"

/* ---------------------------------------------------------------- history */

DptStatus dpt_runckpt_record(DptRunCkpt *c, const char *line)
{
    if (!c->cfg->checkpoint_dir[0])
        return DPT_OK;
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

/* ---------------------------------------------------------------- writing */

int dpt_runckpt_ask(DptRunCkpt *c)
{
    const DptConfig *cfg = c->cfg;
    const unsigned saves = dpt_stop_save_signals();
    if (!cfg->checkpoint_dir[0]) {
        if (saves != 0 && !c->saves_warned && c->d->rank == 0) {
            dpt_log_warn("SIGUSR2 asks for a checkpoint, but this run has no --checkpoint-dir: nothing is written");
            c->saves_warned = 1;
        }
        return 0;
    }
    return saves != c->saves_done ||
           (cfg->checkpoint_minutes > 0 && dpt_clock() - c->last_clock >= 60.0 * cfg->checkpoint_minutes);
}

int dpt_runckpt_due(const DptRunCkpt *c, int64_t global_step, int forced)
{
    const DptConfig *cfg = c->cfg;
    return cfg->checkpoint_dir[0] &&
           (forced || (cfg->checkpoint_every > 0 && global_step % cfg->checkpoint_every == 0));
}

DptStatus dpt_runckpt_write(DptRunCkpt *c, int64_t epoch, int64_t step, int64_t global_step, const double sums[3])
{
    const DptConfig *cfg = c->cfg;
    DptStatus st = DPT_OK;
    double t0 = dpt_clock();
    if (c->d->rank == 0) {
        DptTrainState ts = {epoch, step, global_step, cfg->seed, c->batch, cfg->deterministic,
                            c->d->world_size, omp_get_max_threads(), sums[0], sums[1], sums[2], "", ""};
        snprintf(ts.run_id, sizeof ts.run_id, "%s", c->run_id);
        snprintf(ts.kernel, sizeof ts.kernel, "%s", dpt_kern_name());
        char text[8192];
        dpt_config_format(cfg, text, sizeof text);
        dpt_ckptdir_path(cfg->checkpoint_dir, global_step, c->last_path, sizeof c->last_path);
        st = dpt_ckpt_save(c->last_path, c->arch, c->params, c->opt, &ts, text, c->history, c->meta);
        if (st == DPT_OK)
            dpt_ckptdir_prune(cfg->checkpoint_dir, c->run_id, (int)cfg->keep);
    }
    st = dpt_dist_agree(c->d, st, NULL);
    c->write_s = dpt_clock() - t0;
    if (st == DPT_OK) {
        c->last_step = global_step;
        c->last_clock = dpt_clock();
        /* Every SIGUSR2 so far is answered by this checkpoint: one that came
         * during the step (a launcher forwards one request to the ranks at
         * slightly different times, so some ranks see it only then) would
         * otherwise ask for a second checkpoint a step later. */
        c->saves_done = dpt_stop_save_signals();
    }
    return st;
}

/* ---------------------------------------------------------------- the run's identity and directory */

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
    DptCkptdirEntry *e = dpt_calloc(4096, sizeof *e, "checkpoint list");
    if (!e)
        return DPT_ENOMEM;
    dpt_ckptdir_remove_stale(dir);
    int n = dpt_ckptdir_scan(dir, e, 4096);
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
        char aside[DPT_PATH_MAX + 64];
        int moved = dpt_ckptdir_set_aside(dir, run_id, resumed_step, aside, sizeof aside);
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

/* ---------------------------------------------------------------- resuming */

/* Rank 0: the newest checkpoint of --checkpoint-dir that loads, skipping
 * (and naming) the ones that do not; its path in path. */
static DptStatus load_latest(DptRunCkpt *c, DptTrainState *ts, char *path, size_t len, char **hist)
{
    const char *dir = c->cfg->checkpoint_dir;
    int64_t steps[4096];
    int n = dpt_ckptdir_list(dir, steps, 4096);
    if (n == 0)
        return dpt_err(DPT_EINPUT, "--resume latest: no checkpoint in %s", dir);
    for (int i = 0; i < n; i++) {
        dpt_ckptdir_path(dir, steps[i], path, len);
        dpt_err_clear();
        if (dpt_ckpt_load(path, c->arch, c->params, c->opt, ts, hist) == DPT_OK)
            return DPT_OK;
        dpt_log_warn("skipping checkpoint %s: %s", path, dpt_err_message());
    }
    dpt_err_clear();
    return dpt_err(DPT_EINPUT, "--resume latest: none of the %d checkpoints in %s loads", n, dir);
}

/* Rank 0: what differs from the run that wrote the checkpoint, said once. */
static void warn_differences(const DptRunCkpt *c, const DptTrainState *ts, const char *path)
{
    const DptConfig *cfg = c->cfg;
    if (ts->batch != c->batch || ts->seed != cfg->seed || ts->deterministic != cfg->deterministic)
        dpt_log_warn("%s was written with batch %lld, seed %lld, %s mode; this run has batch %lld, seed %lld, %s mode:"
                     " the continuation will not match an uninterrupted run", path, (long long)ts->batch,
                     (long long)ts->seed, ts->deterministic ? "deterministic" : "default", (long long)c->batch,
                     (long long)cfg->seed, cfg->deterministic ? "deterministic" : "default");
    else if (!cfg->deterministic && ts->ranks != c->d->world_size)
        dpt_log_warn("%s was written by %d ranks, this run has %d: in the default mode the continuation is "
                     "equivalent but not bitwise identical (use --deterministic for that)",
                     path, ts->ranks, c->d->world_size);
}

/* Continues with the checkpoint's micro-kernel when every rank can run it
 * (a lower level: the ranks already agreed on the highest common one), so
 * that a deterministic run resumed elsewhere stays the same run. Collective. */
static void resume_kernel(const DptDist *d, const char *recorded)
{
    int want = dpt_kern_level(recorded), now = dpt_kern_level(dpt_kern_name());
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

/* Loads --resume (rank 0), then gives every rank its parameters, optimiser
 * state and training state. Collective. */
static DptStatus resume(DptRunCkpt *c, DptTrainState *ts)
{
    const DptConfig *cfg = c->cfg;
    const DptDist *d = c->d;
    DptStatus st = DPT_OK;
    if (d->rank == 0) {
        char path[DPT_PATH_MAX + 32];
        char *hist = NULL;
        if (strcmp(cfg->resume, "latest") == 0) {
            st = load_latest(c, ts, path, sizeof path, &hist);
        } else {
            snprintf(path, sizeof path, "%s", cfg->resume);
            st = dpt_ckpt_load(path, c->arch, c->params, c->opt, ts, &hist);
        }
        if (st == DPT_OK) {
            warn_differences(c, ts, path);
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
    dpt_dist_bcast_model(d, c->params, c->arch->n_params * sizeof(float), c->shared_model);
    for (int i = 0; i < c->opt->n_state; i++)
        dpt_dist_bcast_model(d, c->opt->state[i], c->opt->n * sizeof(float), c->shared_model);
    dpt_dist_bcast(d, &c->opt->t, sizeof c->opt->t, 0);
    dpt_dist_bcast(d, &c->opt->mu_prod, sizeof c->opt->mu_prod, 0);
    dpt_dist_bcast(d, ts, sizeof *ts, 0);
    c->last_step = ts->global_step;
    if (cfg->deterministic)
        resume_kernel(d, ts->kernel);
    return DPT_OK;
}

DptStatus dpt_runckpt_open(DptRunCkpt *c, const DptConfig *cfg, const DptDist *d, const DptArch *arch, float *params,
                           DptOptim *opt, int shared_model, int64_t batch, DptTrainState *ts)
{
    memset(c, 0, sizeof *c);
    memset(ts, 0, sizeof *ts);
    c->cfg = cfg;
    c->d = d;
    c->arch = arch;
    c->params = params;
    c->opt = opt;
    c->shared_model = shared_model;
    c->batch = batch;
    c->lock_fd = -1;
    c->last_step = -1;
    c->last_clock = dpt_clock();
    c->saves_done = 0;   /* a SIGUSR2 during the start is answered after the first step */
    const char *dir = cfg->checkpoint_dir;
    if (dir[0])
        DPT_TRY(dpt_dist_agree(d, d->rank == 0 ? dpt_ckptdir_lock(dir, &c->lock_fd) : DPT_OK, NULL));
    if (cfg->resume[0])
        DPT_TRY(resume(c, ts));
    if (d->rank == 0 && !c->run_id[0])
        new_run_id(c->run_id);
    if (dir[0]) {
        int legacy = cfg->resume[0] && !ts->run_id[0];
        int64_t resumed_step = cfg->resume[0] ? ts->global_step : -1;
        DPT_TRY(dpt_dist_agree(d, d->rank == 0 ? claim_dir(dir, c->run_id, legacy, resumed_step) : DPT_OK, NULL));
    }
    return DPT_OK;
}

void dpt_runckpt_close(DptRunCkpt *c)
{
    dpt_ckptdir_unlock(&c->lock_fd);
    free(c->history);
    c->history = NULL;
}
