/* Data parallelism under mpiexec (run with 1 to 4 ranks). Each check runs the
 * same work on the first P ranks for every P up to the world size, so that one
 * launch compares layouts: the reduced gradient equals the one-rank gradient
 * (bitwise in deterministic mode), replicas stay identical, deterministic
 * training gives the same bits for every P and thread count, and empty slices
 * do not hang. Assertions run after the collectives, on world rank 0. */
#include <math.h>
#include <signal.h>
#include <mpi.h>
#include <omp.h>
#include <unistd.h>

#include "testutil.h"
#include "dptrain/config.h"
#include "dptrain/dist.h"
#include "dptrain/infer.h"
#include "dptrain/kernels.h"
#include "dptrain/net.h"
#include "dptrain/step.h"
#include "dptrain/train.h"

static DptDist dist;
static int world_rank, world_size;
static char data_path[512];

static void base_config(DptConfig *c)
{
    dpt_config_defaults(c);
    assert_int_equal(dpt_config_set(c, "data", data_path), DPT_OK);
    c->n_sizes = 3;
    c->sizes[0] = 6;
    c->sizes[1] = 7;
    c->sizes[2] = 3;
    c->hidden = DPT_ACT_TANH;
    c->quiet = 1;
    c->seed = 11;
    c->batch = 10;
    c->sched.lr = 0.2;
    c->det_block = 4;
}

static size_t n_params(void) { return 6 * 7 + 7 + 7 * 3 + 3; }

/* Runs fn on the first P ranks for P = 1..world_size; fn's result on world
 * rank 0 lands in out[P]. */
typedef DptStatus (*Work)(const DptConfig *c, int threads, float *out);

static void over_layouts(Work fn, const DptConfig *c, int threads, float **out, DptStatus *st)
{
    for (int P = 1; P <= world_size; P++) {
        if (dpt_dist_subset(&dist, P)) {
            omp_set_num_threads(threads);
            st[P] = fn(c, threads, out[P]);
            omp_set_num_threads(2);
        }
        dpt_dist_subset(&dist, world_size);
    }
}

static DptStatus grad_work(const DptConfig *c, int threads, float *out)
{
    (void)threads;
    return dpt_train_gradient(c, &dist, (size_t)c->batch, out, NULL);
}

static DptStatus train_work(const DptConfig *c, int threads, float *out)
{
    (void)threads;
    float *p = NULL;
    DptStatus st = dpt_train_run(c, &dist, NULL, &p);
    if (st == DPT_OK) {
        memcpy(out, p, n_params() * sizeof(float));
        free(p);
    }
    return st;
}

static float **alloc_outs(void)
{
    float **o = calloc((size_t)world_size + 1, sizeof *o);
    for (int i = 0; i <= world_size; i++)
        o[i] = calloc(n_params(), sizeof(float));
    return o;
}

static void free_outs(float **o)
{
    for (int i = 0; i <= world_size; i++)
        free(o[i]);
    free(o);
}

/* The reduced gradient on every P, through MPI_Allreduce and through node
 * shared memory (the default: the node-sliced gradient from 2 ranks; and
 * each rank's gradient summed, DPT_SLICED=0, with and without overlap),
 * against the one-rank MPI one: bitwise in deterministic mode, to float
 * precision in the default mode. */
static int check_gradients(int deterministic, int batch)
{
    DptConfig c;
    base_config(&c);
    c.deterministic = deterministic;
    c.batch = batch;
    float **ref = alloc_outs(), **g = alloc_outs();
    DptStatus st[8] = {0};
    /* failures counted and returned, asserted after the last collective (an
     * assertion on rank 0 between collectives would leave the others waiting) */
    int bad_st = 0, bad_grad = 0;
    c.reduce = DPT_REDUCE_MPI;
    over_layouts(grad_work, &c, 2, ref, st);
    for (int v = 0; v < 4; v++) {
        c.reduce = v == 0 ? DPT_REDUCE_MPI : DPT_REDUCE_SHM;
        c.overlap = v == 2;
        if (v >= 2)
            setenv("DPT_SLICED", "0", 1);
        over_layouts(grad_work, &c, 2, g, st);
        unsetenv("DPT_SLICED");
        if (world_rank != 0)
            continue;
        for (int P = 1; P <= world_size; P++) {
            bad_st += st[P] != DPT_OK;
            if (deterministic)
                bad_grad += memcmp(g[P], ref[1], n_params() * sizeof(float)) != 0;
            else
                for (size_t i = 0; i < n_params(); i++)
                    bad_grad += !(fabs(g[P][i] - ref[1][i]) <= 1e-6 * (1 + fabs(ref[1][i])));
        }
    }
    free_outs(ref);
    free_outs(g);
    return bad_st + bad_grad;
}

/* B = 10 on 1..4 ranks: slices of 10, 5+5, 3+3+4, 2+3+2+3 (det: blocks of 4). */
static void test_gradient_default(void **s) { (void)s; assert_int_equal(check_gradients(0, 10), 0); }
static void test_gradient_deterministic(void **s) { (void)s; assert_int_equal(check_gradients(1, 10), 0); }
/* B = 2 on up to 4 ranks: empty slices. */
static void test_gradient_empty_slices(void **s)
{
    (void)s;
    int bad = check_gradients(0, 2);
    bad += check_gradients(1, 2);
    assert_int_equal(bad, 0);
}

static void test_deterministic_training_any_layout(void **state)
{
    (void)state;
    DptConfig c;
    base_config(&c);
    c.deterministic = 1;
    c.epochs = 3;
    c.opt.kind = DPT_OPT_MOMENTUM;
    float **p1 = alloc_outs(), **p2 = alloc_outs();
    DptStatus st1[8] = {0}, st2[8] = {0};
    over_layouts(train_work, &c, 1, p1, st1);
    c.reduce = DPT_REDUCE_SHM;   /* the shared-memory reduction on 2 threads: the same bits */
    over_layouts(train_work, &c, 2, p2, st2);
    if (world_rank == 0) {
        for (int P = 1; P <= world_size; P++) {
            assert_int_equal(st1[P], DPT_OK);
            assert_int_equal(st2[P], DPT_OK);
            assert_memory_equal(p1[P], p1[1], n_params() * sizeof(float));
            assert_memory_equal(p2[P], p1[1], n_params() * sizeof(float));
        }
    }
    free_outs(p1);
    free_outs(p2);
}

/* Default mode: after several epochs every rank holds the same bits (the
 * trainer also checks this itself), with overlap on and off, through MPI and shared memory. */
static void test_replicas_identical(void **state)
{
    (void)state;
    DptConfig c;
    base_config(&c);
    c.epochs = 4;
    c.batch = 7;
    c.check_every = 3;
    c.opt.kind = DPT_OPT_ADAM;
    c.sched.lr = 0.01;
    int same[4];
    DptStatus st[4];
    for (int v = 0; v < 4; v++) {
        /* overlap off and on, through MPI_Allreduce and through shared
         * memory (with overlap: each rank's gradient summed, DPT_SLICED=0,
         * since the node-sliced one has nothing to overlap) */
        c.overlap = v % 2;
        c.reduce = v < 2 ? DPT_REDUCE_MPI : DPT_REDUCE_SHM;
        float *p = NULL;
        if (v == 3)
            setenv("DPT_SLICED", "0", 1);
        st[v] = dpt_train_run(&c, &dist, NULL, &p);
        unsetenv("DPT_SLICED");
        uint64_t h = p ? dpt_hash_bytes(DPT_HASH_INIT, p, n_params() * sizeof(float)) : 0;
        same[v] = dpt_dist_same_hash(&dist, h);
        free(p);
    }
    for (int v = 0; v < 4; v++) {
        assert_int_equal(st[v], DPT_OK);
        assert_true(same[v]);
    }
}

/* Full runs that leave ranks without samples in some steps finish. */
static void test_no_hang_with_empty_slices(void **state)
{
    (void)state;
    DptConfig c;
    base_config(&c);
    c.batch = 1;
    c.epochs = 1;
    DptStatus a = dpt_train_run(&c, &dist, NULL, NULL);
    c.deterministic = 1;
    c.batch = 3;
    DptStatus b = dpt_train_run(&c, &dist, NULL, NULL);
    assert_int_equal(a, DPT_OK);
    assert_int_equal(b, DPT_OK);
}

/* A bad option on one rank only: every rank gets the error, nobody hangs. */
static void test_error_agreed(void **state)
{
    (void)state;
    DptConfig c;
    base_config(&c);
    if (world_rank == world_size - 1)
        c.sched.lr = -1;
    dpt_err_clear();
    DptStatus st = dpt_train_run(&c, &dist, NULL, NULL);
    assert_int_equal(st, DPT_EUSAGE);
    assert_int_equal(dpt_dist_reporter(), world_size - 1);
    dpt_err_clear();
}

/* Fault injection: rank 1 nudges one parameter after global step 5. */
static void nudge_rank1_after_step5(void *ctx, int64_t global_step, float *params, size_t n)
{
    (void)ctx;
    (void)n;
    if (world_rank == 1 && global_step == 5)
        params[0] = nextafterf(params[0], INFINITY);
}

/* One rank's parameters nudged after step 5 (fault injection): the check at
 * step 6 stops every rank with a message naming the step. */
static void test_replica_mismatch_detected(void **state)
{
    (void)state;
    if (world_size < 2)
        skip();
    DptConfig c;
    base_config(&c);
    c.check_every = 2;
    /* Replicas of their own: with --reduce shm the ranks of a node share one copy. */
    c.reduce = DPT_REDUCE_MPI;
    dpt_train_set_test_hook(nudge_rank1_after_step5, NULL);
    dpt_err_clear();
    DptStatus st = dpt_train_run(&c, &dist, NULL, NULL);
    dpt_train_set_test_hook(NULL, NULL);
    assert_int_equal(st, DPT_EREPLICA);
    if (dpt_dist_reporter() == world_rank)
        assert_non_null(strstr(dpt_err_message(), "ranks hold different parameters after global step 6"));
    dpt_err_clear();
}

/* Runs cmd (an rm -rf) on rank 0, then every rank goes on. Collective. */
static void remove_on_rank0(const char *cmd)
{
    int rc = world_rank == 0 ? system(cmd) : 0;
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(rc, 0);
}

/* Checkpoint requests (SIGUSR2, raised here by the test hook, which runs
 * after a step and before its checkpoint): rank 0's signal after step 3 is
 * answered by every rank after step 4; the last rank's copy of that request,
 * arriving only after step 4 (a launcher forwards one signal to the ranks at
 * slightly different times), is answered by the same checkpoint and asks for
 * no second one; the last rank's signal after step 8, a new request, gives
 * one after step 9. On one rank the same three signals give the same. */
static void usr2_hook(void *ctx, int64_t global_step, float *params, size_t n)
{
    (void)ctx;
    (void)params;
    (void)n;
    if ((global_step == 3 && world_rank == 0) || ((global_step == 4 || global_step == 8) && world_rank == world_size - 1))
        raise(SIGUSR2);
}

static void test_checkpoint_requests(void **state)
{
    (void)state;
    char dir[64], cmd[128];
    snprintf(dir, sizeof dir, "usr2-%d", world_size);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    remove_on_rank0(cmd);
    DptConfig c;
    base_config(&c);
    c.batch = 5;
    c.epochs = 2; /* 37 samples: 8 steps an epoch, 16 in all */
    c.keep = 100;
    char found[2][128] = {"", ""};
    DptStatus st[2];
    for (int det = 0; det < 2; det++) {
        c.deterministic = det;
        assert_int_equal(dpt_config_set(&c, "checkpoint-dir", dir), DPT_OK);
        dpt_train_set_test_hook(usr2_hook, NULL);
        st[det] = dpt_train_run(&c, &dist, NULL, NULL);
        dpt_train_set_test_hook(NULL, NULL);
        if (world_rank == 0)
            for (int k = 1; k <= 16; k++) {
                char name[128];
                snprintf(name, sizeof name, "%s/ckpt-%09d.h5", dir, k);
                if (access(name, F_OK) == 0)
                    snprintf(found[det] + strlen(found[det]), sizeof found[det] - strlen(found[det]), "%d ", k);
            }
        remove_on_rank0(cmd);
    }
    /* after every collective: a failed assertion leaves no rank waiting */
    for (int det = 0; det < 2; det++) {
        assert_int_equal(st[det], DPT_OK);
        if (world_rank == 0)
            assert_string_equal(found[det], "4 9 16 ");
    }
}

/* The step's decoded result over all ranks, in both modes: the count, the
 * correct count and the summed loss of the whole global batch (against one
 * forward pass over it on this rank), no non-finite value, and a stop request
 * made by the last rank alone seen by every rank. B = 10 on up to 4 ranks
 * (uneven slices; in deterministic mode, blocks of 4: empty slices). */
static void test_step_result(void **state)
{
    (void)state;
    const int sizes[3] = {6, 7, 3};
    const size_t B = 10;
    DptArch arch;
    assert_int_equal(dpt_arch_init(&arch, sizes, 3, DPT_ACT_TANH, DPT_ACT_SOFTMAX, DPT_COST_CCE), DPT_OK);
    float *params = dpt_aligned_alloc(arch.n_params * sizeof(float), "params");
    dpt_net_init_params(params, &arch, DPT_INIT_NIELSEN, 5);
    DptSplit split;
    void *win = NULL;
    assert_int_equal(dpt_infer_load_split(&dist, data_path, "train", DPT_PROBE_REQUIRED, &arch, &split, &win), DPT_OK);
    uint32_t idx[10];
    for (size_t i = 0; i < B; i++)
        idx[i] = (uint32_t)(3 * i + 1);
    /* The reference: one pass over the whole batch here. */
    DptWork ref;
    assert_int_equal(dpt_work_init(&ref, &arch, B), DPT_OK);
    int64_t correct_ref = 0;
    dpt_data_gather(ref.act[0], ref.y, ref.cls, &split, idx, 0, B, 3);
    dpt_net_forward(&ref, &arch, params, B);
    double loss_ref = dpt_net_loss(&ref, &arch, B, 0, &correct_ref);
    for (int v = 0; v < 6; v++) {
        /* default and deterministic mode x MPI_Allreduce, shared memory, shared memory with overlap */
        int det = v % 2, kind = v / 2;
        DptStep step;
        DptWork w;
        DptTimers tm;
        size_t rows = 0;
        memset(&tm, 0, sizeof tm);
        assert_int_equal(dpt_step_init(&step, &dist, &arch, B, det, kind == 2, 4,
                                       kind ? DPT_REDUCE_SHM : DPT_REDUCE_MPI, &rows), DPT_OK);
        assert_int_equal(dpt_work_init(&w, &arch, rows), DPT_OK);
        step.work = &w;
        /* the last rank asks to stop; the first, in half the variants (both modes), for a checkpoint */
        const int ask_save = v < 3;
        DptStepResult r = dpt_step_gradient(&step, params, &split, idx, B,
                                            (world_rank == world_size - 1 ? DPT_ASK_STOP : 0) |
                                                (world_rank == 0 && ask_save ? DPT_ASK_SAVE : 0), &tm);
        assert_true(r.count == (double)B);
        assert_true(r.correct == (double)correct_ref);
        assert_true(fabs(r.loss - loss_ref) <= 1e-5 * fabs(loss_ref));
        assert_int_equal(r.nonfinite, 0);
        assert_int_equal(r.stop, 1);
        assert_int_equal(r.save, ask_save);
        dpt_work_free(&w);
        dpt_step_free(&step);
    }
    dpt_work_free(&ref);
    dpt_dist_shared_free(&win);
    free(params);
}

/* Resume equivalence: 2n steps straight against n steps, stop (mid-epoch),
 * resume for the rest: bitwise equal in the default mode on the same ranks,
 * and in deterministic mode when the second half runs on 1 rank. */
static void test_resume_equivalence(void **state)
{
    (void)state;
    char dir[64], cmd[600];
    snprintf(dir, sizeof dir, "ckpt-%d", world_size);
    snprintf(cmd, sizeof cmd, "rm -rf %s-0 %s-1", dir, dir);
    /* A directory left by an earlier failed run would belong to another run. */
    remove_on_rank0(cmd);
    DptConfig c;
    base_config(&c);
    c.epochs = 3;
    c.batch = 5; /* 37 samples: 8 steps an epoch, 24 in all */
    c.opt.kind = DPT_OPT_NADAM;
    c.sched.lr = 0.01;
    int same[2] = {0, 0};
    DptStatus st[6];
    for (int det = 0; det < 2; det++) {
        c.deterministic = det;
        c.checkpoint_dir = c.resume = "";
        c.max_steps = 0;
        float *straight = NULL, *resumed = NULL;
        st[3 * det] = dpt_train_run(&c, &dist, NULL, &straight);
        char ckdir[512];
        snprintf(ckdir, sizeof ckdir, "%s-%d", dir, det);
        assert_int_equal(dpt_config_set(&c, "checkpoint-dir", ckdir), DPT_OK);
        c.max_steps = 11; /* epoch 2, step 3 */
        st[3 * det + 1] = dpt_train_run(&c, &dist, NULL, NULL);
        c.max_steps = 0;
        assert_int_equal(dpt_config_set(&c, "resume", "latest"), DPT_OK);
        if (det) {
            /* the second half on rank 0 alone */
            if (dpt_dist_subset(&dist, 1))
                st[5] = dpt_train_run(&c, &dist, NULL, &resumed);
            dpt_dist_subset(&dist, world_size);
        } else {
            st[2] = dpt_train_run(&c, &dist, NULL, &resumed);
        }
        if (world_rank == 0 && straight && resumed)
            same[det] = memcmp(straight, resumed, n_params() * sizeof(float)) == 0;
        free(straight);
        free(resumed);
        c.resume = "";
    }
    if (world_rank == 0) {
        assert_int_equal(system(cmd), 0);
        for (int i = 0; i < 6; i++)
            assert_int_equal(st[i], DPT_OK);
        assert_true(same[0]);
        assert_true(same[1]);
    }
}

/* ---------------------------------------------------------------- node layouts
 * Every way of cutting the world into "nodes" of consecutive ranks (one
 * machine: any group of ranks shares memory), equal or not: 2+1, 1+2+1, ...
 * Layout number mask: bit i set = a node ends after rank i; the sizes go to
 * sizes[], their count is returned. */
static int layout_of(unsigned mask, int *sizes)
{
    int n = 0, cur = 0;
    for (int i = 0; i < world_size; i++) {
        cur++;
        if (i == world_size - 1 || (mask >> i & 1u)) {
            sizes[n++] = cur;
            cur = 0;
        }
    }
    return n;
}

/* The reducer alone on every node layout: each rank's contribution (values
 * whose sums are exact in float too) summed over 3 steps, whole or in 3
 * buckets declared one by one, for vectors shorter than the slices (empty
 * slices) and longer; the shared path wherever some node has several
 * ranks, hierarchical across several nodes, and the flat path (MPI, its
 * buckets by MPI_Iallreduce, not in place from 4 ranks); the result equal
 * to the plain sum. */
static void test_reducer_node_layouts(void **state)
{
    (void)state;
    const size_t lens[] = {1, 37, 5000};
    int bad = 0, checked = 0;
    for (unsigned mask = 0; mask < 1u << (world_size - 1); mask++) {
        int sizes[8], n_nodes = layout_of(mask, sizes), largest = 0, smallest = world_size;
        for (int k = 0; k < n_nodes; k++) {
            largest = sizes[k] > largest ? sizes[k] : largest;
            smallest = sizes[k] < smallest ? sizes[k] : smallest;
        }
        assert_int_equal(dpt_dist_subset_nodes(&dist, world_size, sizes), 1);
        assert_int_equal(dist.n_nodes, n_nodes);
        assert_int_equal(dist.node_size_max, largest);
        assert_int_equal(dist.node_size_min, smallest);
        for (int li = 0; li < 3; li++)
            for (int is_int = 0; is_int < 2; is_int++)
                for (int nb = 1; nb <= 3; nb += 2)
                    for (int shared = 0; shared < 2; shared++) {
                        size_t n = lens[li], ends[3] = {n / 3, 2 * n / 3, n};
                        DptReducer *r = NULL;
                        assert_int_equal(dpt_dist_reducer_init(&r, &dist, n, is_int, ends, nb, shared, 1), DPT_OK);
                        bad |= dpt_dist_reducer_shared(r) != (shared && largest > 1);
                        for (int step = 0; step < 3; step++) {
                            void *buf = dpt_dist_reducer_begin(r);
                            for (size_t i = 0; i < n; i++) {
                                int64_t v = (int64_t)(dist.rank + 1) * (int64_t)(i % 13 + 1) + step;
                                if (is_int)
                                    ((int64_t *)buf)[i] = v * 1000000007LL;
                                else
                                    ((float *)buf)[i] = (float)v;
                            }
                            for (int b = 0; b < nb; b++)
                                dpt_dist_reducer_ready(r, 1);
                            const void *sum = dpt_dist_reducer_finish(r, &dist);
                            const int64_t ranks = dist.world_size, rsum = ranks * (ranks + 1) / 2;
                            for (size_t i = 0; i < n; i++) {
                                int64_t want = rsum * (int64_t)(i % 13 + 1) + ranks * step;
                                if (is_int)
                                    bad |= ((const int64_t *)sum)[i] != want * 1000000007LL;
                                else
                                    bad |= ((const float *)sum)[i] != (float)want;
                            }
                            checked++;
                        }
                        dpt_dist_reducer_free(&r);
                    }
        dpt_dist_subset(&dist, world_size);
    }
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    assert_int_equal(bad, 0);
    assert_int_equal(checked, 72 << (world_size - 1));
}

/* The cross-node allreduce alone, every rank a "node" (2 nodes: one round;
 * 3 and 4: reduce-scatter and all-gather, or one round for small ranges, up
 * to a budget that 40 ranges of 2000 values exceed): ranges of 0 to 20000
 * values, in float and int64, the float sums bitwise those of node order
 * (values whose sums round differently in another order), and more ranges
 * or values in flight than init allowed for (earlier ones complete first; a
 * range longer than that goes in pieces). */
/* Node g's float value i: 1 + 2^-23 (i % 97 + 1), scaled by 3^g (exact):
 * sums of these round differently in any order but node order. */
static float cross_value(size_t i, int g)
{
    return (1.0f + (float)(i % 97 + 1) * 0x1p-23f) * powf(3.0f, (float)g);
}

static void test_cross_ranges(void **state)
{
    (void)state;
    int sizes[8];
    for (int k = 0; k < world_size; k++)
        sizes[k] = 1;
    assert_int_equal(dpt_dist_subset_nodes(&dist, world_size, sizes), 1);
    enum { N_LEN = 48, MANY = 1100 };
    size_t lens[N_LEN] = {0, 1, 2, 3, 5, 64, 1000, 20000}, total = 0;
    for (int i = 8; i < N_LEN; i++)
        lens[i] = 2000;
    for (int i = 0; i < N_LEN; i++)
        total += lens[i];
    int bad = 0;
    for (int is_int = 0; is_int < 2; is_int++)
        for (int cap = 0; cap < 2; cap++) {
            /* cap 1: room for half the values between waits */
            DptCross *x = NULL;
            assert_int_equal(dpt_dist_cross_init(&x, &dist, cap ? total / 2 : total, is_int), DPT_OK);
            float *f = calloc(total, sizeof *f);
            int64_t *q = calloc(total, sizeof *q);
            assert_non_null(f);
            assert_non_null(q);
            for (size_t i = 0; i < total; i++) {
                f[i] = cross_value(i, dist.rank);
                q[i] = ((int64_t)1 << 40) * (dist.rank + 1) + (int64_t)i;
            }
            size_t at = 0;
            for (int i = 0; i < N_LEN; i++) {
                dpt_dist_cross_start(x, is_int ? (void *)(q + at) : (void *)(f + at), lens[i]);
                at += lens[i];
                dpt_dist_cross_test(x);
            }
            dpt_dist_cross_wait(x);
            for (size_t i = 0; i < total; i++) {
                float want = cross_value(i, 0);
                for (int g = 1; g < world_size; g++)
                    want += cross_value(i, g);
                const int64_t wq = ((int64_t)1 << 40) * world_size * (world_size + 1) / 2 + (int64_t)i * world_size;
                bad |= is_int ? q[i] != wq : memcmp(&f[i], &want, sizeof want) != 0;
            }
            /* more ranges than may be in flight: one value each (exact sums in float too) */
            float *m = calloc(MANY, sizeof(int64_t));
            assert_non_null(m);
            for (int i = 0; i < MANY; i++) {
                if (is_int)
                    ((int64_t *)m)[i] = i + dist.rank;
                else
                    m[i] = (float)(i + dist.rank);
                dpt_dist_cross_start(x, is_int ? (void *)((int64_t *)m + i) : (void *)(m + i), 1);
            }
            dpt_dist_cross_wait(x);
            for (int i = 0; i < MANY; i++) {
                const int64_t want = (int64_t)i * world_size + world_size * (world_size - 1) / 2;
                bad |= is_int ? ((int64_t *)m)[i] != want : m[i] != (float)want;
            }
            free(m);
            free(f);
            free(q);
            dpt_dist_cross_free(&x);
        }
    dpt_dist_subset(&dist, world_size);
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    assert_int_equal(bad, 0);
}

/* Training on every node layout, equal or not (a node-shared model on each
 * "node", hierarchical reduction across them; or --reduce mpi): deterministic
 * mode gives the one-rank bits; the default mode keeps the replicas identical. */
static void test_training_node_layouts(void **state)
{
    (void)state;
    DptConfig c;
    base_config(&c);
    c.epochs = 2;
    c.opt.kind = DPT_OPT_MOMENTUM;
    c.reduce = DPT_REDUCE_SHM;
    float *ref = calloc(n_params(), sizeof(float)), *p = NULL;
    c.deterministic = 1;
    if (dpt_dist_subset(&dist, 1)) {
        assert_int_equal(dpt_train_run(&c, &dist, NULL, &p), DPT_OK);
        memcpy(ref, p, n_params() * sizeof(float));
        free(p);
        p = NULL;
    }
    dpt_dist_subset(&dist, world_size);
    MPI_Bcast(ref, (int)n_params(), MPI_FLOAT, 0, MPI_COMM_WORLD);
    for (unsigned mask = 0; mask < 1u << (world_size - 1); mask++) {
        int sizes[8];
        layout_of(mask, sizes);
        for (int det = 0; det < 2; det++) {
            /* shm (the default; with overlap: each rank's gradient summed,
             * DPT_SLICED=0); mpi (a replica per rank) */
            for (int v = 0; v < 3; v++) {
                assert_int_equal(dpt_dist_subset_nodes(&dist, world_size, sizes), 1);
                c.deterministic = det;
                c.overlap = v == 1;
                c.reduce = v == 2 ? DPT_REDUCE_MPI : DPT_REDUCE_SHM;
                if (v == 1)
                    setenv("DPT_SLICED", "0", 1);
                /* the trainer itself fails the run if the replicas differ */
                assert_int_equal(dpt_train_run(&c, &dist, NULL, &p), DPT_OK);
                unsetenv("DPT_SLICED");
                if (det)
                    assert_memory_equal(p, ref, n_params() * sizeof(float));
                free(p);
                p = NULL;
                dpt_dist_subset(&dist, world_size);
            }
        }
    }
    free(ref);
}

/* W kept packed (DPT_WPACK=1; the generic kernel packs W even for these
 * small batches): node-shared copies and a copy per rank (--reduce mpi)
 * give the bits of packing in the products, in both modes and across a
 * stop and resume (the resumed parameters are packed again). */
static void test_wpack_training(void **state)
{
    (void)state;
    dpt_kern_select("generic");
    DptConfig c;
    base_config(&c);
    c.epochs = 3;
    c.batch = 5;   /* 37 samples: 8 steps an epoch */
    c.opt.kind = DPT_OPT_ADAM;
    c.sched.lr = 0.01;
    float *p[2] = {NULL, NULL};
    for (int det = 0; det < 2; det++) {
        for (int v = 0; v < 2; v++) {
            c.deterministic = det;
            c.reduce = v ? DPT_REDUCE_MPI : DPT_REDUCE_SHM;
            for (int wp = 0; wp < 2; wp++) {
                setenv("DPT_WPACK", wp ? "1" : "0", 1);
                assert_int_equal(dpt_train_run(&c, &dist, NULL, &p[wp]), DPT_OK);
            }
            assert_memory_equal(p[0], p[1], n_params() * sizeof(float));
            free(p[0]);
            free(p[1]);
        }
    }
    /* stopped after 11 steps, resumed, against the run straight through */
    char dir[64], cmd[128];
    snprintf(dir, sizeof dir, "wpack-ckpt-%d", world_size);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (world_rank == 0)
        assert_int_equal(system(cmd), 0);
    MPI_Barrier(MPI_COMM_WORLD);
    c.deterministic = 0;
    c.reduce = DPT_REDUCE_SHM;
    setenv("DPT_WPACK", "1", 1);
    assert_int_equal(dpt_train_run(&c, &dist, NULL, &p[0]), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "checkpoint-dir", dir), DPT_OK);
    c.max_steps = 11;
    assert_int_equal(dpt_train_run(&c, &dist, NULL, NULL), DPT_OK);
    c.max_steps = 0;
    assert_int_equal(dpt_config_set(&c, "resume", "latest"), DPT_OK);
    assert_int_equal(dpt_train_run(&c, &dist, NULL, &p[1]), DPT_OK);
    assert_memory_equal(p[0], p[1], n_params() * sizeof(float));
    free(p[0]);
    free(p[1]);
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0)
        assert_int_equal(system(cmd), 0);
    unsetenv("DPT_WPACK");
    dpt_kern_select("avx512");   /* back to the best this CPU runs */
}

/* The node-sliced weight gradient (DPT_SLICED=1; these ranks are one node):
 * each element of a step's gradient is the product over the node's rows in
 * one chain, so default-mode training on every P is bitwise the one-rank run
 * (1 and 2 threads; batch 2: empty slices on 3 and 4 ranks; units claimed
 * in turns, DPT_CLAIM=1, the default, or in fixed shares); deterministic
 * mode gives the reduction path's bits (DPT_SLICED=0); on every node layout
 * the default mode gives the one-rank model to 1e-4. A step in several
 * passes per rank (1100 samples in one step: passes of 512 rows) gives the
 * one-rank gradient to float precision (a pass that overwrote instead of
 * adding would not). */
/* c trained on world rank 0 alone, its n parameters into ref on every
 * rank; returns 1 where that run failed. */
static int one_rank_model(const DptConfig *c, float *ref, size_t n)
{
    int bad = 0;
    float *got = NULL;
    if (dpt_dist_subset(&dist, 1)) {
        bad = dpt_train_run(c, &dist, NULL, &got) != DPT_OK;
        if (got)
            memcpy(ref, got, n * sizeof *ref);
        free(got);
    }
    dpt_dist_subset(&dist, world_size);
    MPI_Bcast(ref, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return bad;
}

/* Which node layouts must give ref bit for bit: none, those of equal nodes
 * of 2 ranks or more (the sliced path across nodes), all. */
enum { BITS_NONE, BITS_SLICED, BITS_ALL };

/* c trained on every node layout of the world's ranks, each model (n
 * parameters) against ref: *near counts the elements off by more than 1e-4
 * relative, *bits the layouts (of those bits_of names) not ref's bit for
 * bit; returns the runs that failed. */
static int node_layouts_against(const DptConfig *c, const float *ref, size_t n, int bits_of, int *near, int *bits)
{
    int failed = 0;
    for (unsigned mask = 0; mask < 1u << (world_size - 1); mask++) {
        int sizes[8], n_nodes = layout_of(mask, sizes), equal = 1;
        for (int k = 1; k < n_nodes; k++)
            equal &= sizes[k] == sizes[0];
        assert_int_equal(dpt_dist_subset_nodes(&dist, world_size, sizes), 1);
        float *got = NULL;
        failed += dpt_train_run(c, &dist, NULL, &got) != DPT_OK;
        if (got && (bits_of == BITS_ALL || (bits_of == BITS_SLICED && equal && n_nodes > 1 && sizes[0] > 1)))
            *bits += memcmp(got, ref, n * sizeof *ref) != 0;
        for (size_t i = 0; got && i < n; i++)
            *near += !(fabs(got[i] - ref[i]) <= 1e-4 * (1 + fabs(ref[i])));
        free(got);
        dpt_dist_subset(&dist, world_size);
    }
    return failed;
}

/* c trained on one node of every world rank: *bits counts a model not
 * ref's (n parameters) bit for bit; returns 1 where the run failed. */
static int one_node_against(const DptConfig *c, const float *ref, size_t n, int *bits)
{
    float *got = NULL;
    const int failed = dpt_train_run(c, &dist, NULL, &got) != DPT_OK;
    *bits += !got || memcmp(got, ref, n * sizeof *ref) != 0;
    free(got);
    return failed;
}

static void test_sliced_training(void **state)
{
    (void)state;
    DptConfig c;
    base_config(&c);
    c.epochs = 2;
    c.opt.kind = DPT_OPT_ADAM;
    c.sched.lr = 0.01;
    c.reduce = DPT_REDUCE_SHM;
    float **p = alloc_outs(), **q = alloc_outs();
    DptStatus st[8] = {0};
    /* failures counted, asserted after the last collective (an assertion
     * between collectives would leave the other ranks waiting) */
    int bad_ok = 0, bad_default = 0, bad_det = 0, bad_passes = 0, bad_nodes = 0, bad_rows = 0, bad_claims = 0;
    /* with the node's team for the forward products and the errors
     * (DPT_NTEAM=1, the rule's choice at these batches) and without; with
     * the units claimed in turns (the default) and in fixed shares */
    setenv("DPT_SLICED", "1", 1);
    for (int claim = 0; claim < 2; claim++) {
        setenv("DPT_CLAIM", claim ? "1" : "0", 1);
        for (int team = 0; team < 2; team++) {
            setenv("DPT_NTEAM", team ? "1" : "0", 1);
            for (int batch = 10; batch >= 2; batch -= 8)
                for (int threads = 1; threads <= 2; threads++) {
                    c.batch = batch;
                    over_layouts(train_work, &c, threads, p, st);
                    for (int P = 1; world_rank == 0 && P <= world_size; P++) {
                        bad_ok += st[P] != DPT_OK;
                        bad_default += memcmp(p[P], p[1], n_params() * sizeof(float)) != 0;
                    }
                }
        }
    }
    unsetenv("DPT_CLAIM");
    c.deterministic = 1;
    c.batch = 10;
    setenv("DPT_SLICED", "0", 1);
    over_layouts(train_work, &c, 2, q, st);
    setenv("DPT_SLICED", "1", 1);
    for (int team = 0; team < 2; team++) {
        setenv("DPT_NTEAM", team ? "1" : "0", 1);
        over_layouts(train_work, &c, 2, p, st);
        for (int P = 1; world_rank == 0 && P <= world_size; P++)
            bad_det += memcmp(p[P], q[1], n_params() * sizeof(float)) != 0;
    }
    unsetenv("DPT_NTEAM");
    setenv("DPT_SLICED", "0", 1);

    /* every node layout with DPT_SLICED=1 (equal nodes: the sliced path
     * across nodes; unequal ones: the reduction): default-mode training runs
     * (the trainer checks the replicas) and gives the one-rank model to 1e-4 */
    setenv("DPT_SLICED", "1", 1);
    c.deterministic = 0;
    c.batch = 10;
    float *ref = calloc(n_params(), sizeof *ref);
    bad_ok += one_rank_model(&c, ref, n_params());
    bad_ok += node_layouts_against(&c, ref, n_params(), BITS_NONE, &bad_nodes, &bad_rows);
    /* the same with every layer's rows across nodes instead of its gradient
     * (DPT_XROWS=1): on equal nodes of 2 ranks or more (the sliced path;
     * 2 x 2 at 4 ranks) each layer's sums run over every node's rows in one
     * chain, node after node, and give the one-rank model bit for bit; in
     * deterministic mode every layout gives one rank's model */
    setenv("DPT_XROWS", "1", 1);
    for (int det = 0; det < 2; det++) {   /* deterministic: every layout, the same integers */
        c.deterministic = det;
        if (det)
            bad_ok += one_rank_model(&c, ref, n_params());
        for (int team = 0; team < 2; team++) {   /* with and without the node's team */
            setenv("DPT_NTEAM", team ? "1" : "0", 1);
            bad_ok += node_layouts_against(&c, ref, n_params(), det ? BITS_ALL : BITS_SLICED, &bad_nodes, &bad_rows);
        }
    }
    c.deterministic = 0;
    free(ref);
    unsetenv("DPT_NTEAM");
    unsetenv("DPT_XROWS");
    /* the rule's choice on [6,64,3] at batch 2: the first layer's rows
     * (2 x 70 floats, against 384 of gradient) cross nodes, the second's
     * gradient sums do: the one-rank model to 1e-4 */
    c.sizes[1] = 64;
    c.batch = 2;
    const size_t wide = 6 * 64 + 64 + 64 * 3 + 3;
    float *one = calloc(wide, sizeof *one);
    bad_ok += one_rank_model(&c, one, wide);
    bad_ok += node_layouts_against(&c, one, wide, BITS_NONE, &bad_nodes, &bad_rows);
    /* the same net on one node of every rank, its 64 units in several turns
     * (of 16 at 2-4 ranks; DPT_CLAIM=1) and in fixed shares: the one-rank
     * model bit for bit (the 7-unit net above takes one turn) */
    for (int claim = 1; claim >= 0; claim--) {
        setenv("DPT_CLAIM", claim ? "1" : "0", 1);
        bad_ok += one_node_against(&c, one, wide, &bad_claims);
    }
    unsetenv("DPT_CLAIM");
    /* weighted rows (DPT_WROWS=1: each rank's rows from its rate in the
     * steps before, so the shares follow the ranks' timing): the one-rank
     * model bit for bit at batch 30, whatever shares the timing gave */
    c.batch = 30;
    bad_ok += one_rank_model(&c, one, wide);
    setenv("DPT_WROWS", "1", 1);
    bad_ok += one_node_against(&c, one, wide, &bad_claims);
    unsetenv("DPT_WROWS");
    free(one);
    c.sizes[1] = 7;
    setenv("DPT_SLICED", "0", 1);

    /* one step of 1100 samples */
    char big[64];
    snprintf(big, sizeof big, "dist-big-%d.h5", world_size);
    if (world_rank == 0)
        tu_make_dataset(big, 1100, 6, 3, 5);
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(dpt_config_set(&c, "data", big), DPT_OK);
    c.deterministic = 0;
    c.batch = 1100;
    over_layouts(grad_work, &c, 2, q, st);   /* DPT_SLICED=0: the reference is P = 1 */
    setenv("DPT_SLICED", "1", 1);
    over_layouts(grad_work, &c, 2, p, st);
    for (int P = 1; world_rank == 0 && P <= world_size; P++) {
        bad_ok += st[P] != DPT_OK;
        for (size_t i = 0; i < n_params(); i++)
            bad_passes += !(fabs(p[P][i] - q[1][i]) <= 1e-5 * (1 + fabs(q[1][i])));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0)
        remove(big);
    unsetenv("DPT_SLICED");
    free_outs(p);
    free_outs(q);
    assert_int_equal(bad_ok, 0);
    assert_int_equal(bad_default, 0);
    assert_int_equal(bad_det, 0);
    assert_int_equal(bad_passes, 0);
    assert_int_equal(bad_nodes, 0);
    assert_int_equal(bad_rows, 0);
    assert_int_equal(bad_claims, 0);
}

int main(int argc, char **argv)
{
    assert_int_equal(dpt_dist_init(&dist, &argc, &argv), DPT_OK);
    world_rank = dist.rank;
    world_size = dist.world_size;
    assert_true(world_size <= 7);
    /* One dataset for all ranks, written by rank 0. */
    snprintf(data_path, sizeof data_path, "dist-%d.h5", world_size);
    if (world_rank == 0)
        tu_make_dataset(data_path, 37, 6, 3, 2);
    MPI_Barrier(MPI_COMM_WORLD);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_default),
        cmocka_unit_test(test_gradient_deterministic),
        cmocka_unit_test(test_gradient_empty_slices),
        cmocka_unit_test(test_deterministic_training_any_layout),
        cmocka_unit_test(test_replicas_identical),
        cmocka_unit_test(test_no_hang_with_empty_slices),
        cmocka_unit_test(test_error_agreed),
        cmocka_unit_test(test_replica_mismatch_detected),
        cmocka_unit_test(test_resume_equivalence),
        cmocka_unit_test(test_checkpoint_requests),
        cmocka_unit_test(test_step_result),
        cmocka_unit_test(test_reducer_node_layouts),
        cmocka_unit_test(test_cross_ranges),
        cmocka_unit_test(test_training_node_layouts),
        cmocka_unit_test(test_wpack_training),
        cmocka_unit_test(test_sliced_training),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    int worst = 0;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (world_rank == 0)
        remove(data_path);
    dpt_dist_finalize(&dist);
    return worst;
}
