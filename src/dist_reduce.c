/*
 * The gradient reduction of the dist module: within a node through an MPI-3
 * shared-memory window, across nodes among the ranks that own the same slice
 * (one allreduce per slice and node rank: hierarchical, as Horovod and NCCL
 * do it), or one MPI_Allreduce of the whole vector (the flat path).
 *
 * Shared path, per step and bucket b (a contiguous range of the vector):
 *   1. every rank writes its contribution into its own region of the window
 *      (the step's backward pass writes there directly: no copy) and raises
 *      ready[b][rank] to this step's number;
 *   2. the bucket is cut into slices on cache lines (node_size of them on
 *      one node; across nodes as many as the smallest node has ranks); once
 *      every rank is ready, a slice is summed over the node's ranks in rank order
 *      (so the result does not depend on who sums it, or when) into the
 *      result region, and done[b] counts it. On one node any rank that
 *      waits takes the next slice not yet taken (claim[b]): with --overlap
 *      the ranks that finished backprop sum the buckets the others have
 *      declared while those still compute. Across nodes slice j belongs to
 *      node rank j, which allreduces it with the owners of slice j on the
 *      other nodes (hierarchical), in bucket order: started without
 *      blocking during backprop (at each declared bucket), tested at the
 *      next ones, finished at the end. A node with more ranks than the
 *      smallest node (uneven nodes) sums each bucket in node_size local
 *      slices instead, taken by whoever waits (claim[b]) and counted in
 *      local[b], so that all its ranks sum; the owners allreduce their
 *      slices once the whole bucket is summed, and the node ranks past the
 *      smallest node's count own none;
 *   3. every rank reads the result once every slice is done.
 * The step numbers order everything: a rank overwrites its region only after
 * all slices of the previous step were summed (it saw them done), and a
 * slice of the result is overwritten only after every rank finished the
 * step's backward pass, hence its previous update. Flags and counters are
 * atomics in the window; waits spin, then yield the core (ranks may
 * outnumber cores).
 */
#include "dptrain/dist.h"

#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "dist_comm.h"

enum { LINE = 64, MAX_BUCKETS = 1024, FLAT_OUT_RANKS = 4 };

static DptStatus cross_new(DptCross **out, MPI_Comm comm, size_t n_max, int is_int);

struct DptReducer {
    int shared;                 /* 1: the shared-memory path; 0: MPI_Allreduce of the whole vector */
    size_t n, elem;             /* elements, bytes per element */
    int is_int;                 /* int64 (exact) or float */
    int n_buckets;
    size_t lo[MAX_BUCKETS], hi[MAX_BUCKETS];  /* bucket b: elements [lo, hi), in the order they become ready */
    int node_rank, node_size;
    int n_slices;               /* slices a bucket is cut into: node_size on one node, else the smallest node's size */
    int split;                  /* several nodes, this one larger than the smallest: summed in node_size local slices */
    int multi;                  /* several nodes: slice j is node rank j's (no claiming) */
    DptCross *cross;            /* with the ranks of this node rank on every node (NULL: one node, or no slice) */
    void *win;                  /* the window handle (dist's shared allocation) */
    char *mine;                 /* this rank's contribution region [n] */
    char *base;                 /* region of node rank 0; rank j's at base + j * stride */
    size_t stride;              /* bytes between regions (padded to a cache line) */
    char *result;               /* [n] the reduced vector */
    int64_t *flags;             /* ready[b][rank], then claim[b] and done[b]: one cache line each */
    int64_t gen;                /* this step's number */
    int next;                   /* the next bucket this rank has to sum its slice of */
    int declared;               /* buckets this rank declared ready this step */
    char *flat;                 /* the flat path: [n] private buffer, reduced in place */
    char *flat_out;             /* the flat path with buckets, 4 ranks or more on several nodes: [n] the reduced vector */
    int world_size;
    MPI_Request req[MAX_BUCKETS];/* the flat path with buckets: one MPI_Iallreduce each */
    int n_req;
};

static int64_t *ready_flag(DptReducer *r, int b, int rank)
{
    return r->flags + ((size_t)b * (size_t)r->node_size + (size_t)rank) * (LINE / sizeof(int64_t));
}

/* which: 0 claim[b] (slices taken, counting from the first step), 1 done[b]
 * (slices summed, and across nodes allreduced), 2 local[b] (local slices
 * summed, where the node splits) */
enum { CLAIM, DONE, LOCAL, N_COUNTERS };

static int64_t *counter(DptReducer *r, int which, int b)
{
    size_t first = (size_t)r->n_buckets * (size_t)r->node_size;
    return r->flags + (first + N_COUNTERS * (size_t)b + (size_t)which) * (LINE / sizeof(int64_t));
}

/* Slices a bucket is summed in on this node. */
static int local_slices(const DptReducer *r) { return r->split ? r->node_size : r->n_slices; }

static void spin_pause(unsigned *spins)
{
    if (++*spins >= 64) {
        sched_yield();
        *spins = 0;
    }
}

/* Has every node rank declared bucket b for this step? */
static int all_ready(DptReducer *r, int b)
{
    for (int j = 0; j < r->node_size; j++)
        if (__atomic_load_n(ready_flag(r, b, j), __ATOMIC_ACQUIRE) < r->gen)
            return 0;
    return 1;
}

/* Until done(r, b) holds (the other ranks' flags and counters). */
static void wait_for(DptReducer *r, int b, int (*done)(DptReducer *, int))
{
    unsigned spins = 0;
    while (!done(r, b))
        spin_pause(&spins);
}

/* Are all slices of bucket b summed for this step? */
static int all_done(DptReducer *r, int b)
{
    return __atomic_load_n(counter(r, DONE, b), __ATOMIC_ACQUIRE) >= r->gen * r->n_slices;
}

/* Where the node splits: is all of bucket b summed on the node? */
static int local_done(DptReducer *r, int b)
{
    return __atomic_load_n(counter(r, LOCAL, b), __ATOMIC_ACQUIRE) >= r->gen * r->node_size;
}

/* The next slice of bucket b nobody has taken this step, or -1. */
static int claim_slice(DptReducer *r, int b)
{
    const int k = local_slices(r);
    int64_t *c = counter(r, CLAIM, b), end = r->gen * k;
    int64_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    while (v < end)
        if (__atomic_compare_exchange_n(c, &v, v + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return (int)(v - (end - k));
    return -1;
}

/* Slice j [*a, *z) of bucket b cut into parts parts, on cache lines. */
static void slice_of(const DptReducer *r, int b, int slice, int parts, size_t *a, size_t *z)
{
    size_t per_line = LINE / r->elem, len = r->hi[b] - r->lo[b];
    size_t lines = (len + per_line - 1) / per_line, k = (size_t)parts, j = (size_t)slice;
    size_t la = lines * j / k, lz = lines * (j + 1) / k;
    *a = r->lo[b] + la * per_line;
    *z = r->lo[b] + lz * per_line;
    if (*a > r->hi[b])
        *a = r->hi[b];
    if (*z > r->hi[b])
        *z = r->hi[b];
}

/* This rank's own slice of bucket b, summed on the node, allreduced across
 * nodes; counted done when that completes (progress_owned). */
static void start_cross(DptReducer *r, int b)
{
    size_t a, z;
    slice_of(r, b, r->node_rank, r->n_slices, &a, &z);
    dpt_dist_cross_start(r->cross, r->result + a * r->elem, z - a);
}

/* Slice j of bucket b summed over the node's regions in rank order; then,
 * where the node does not split, across nodes (by its owner) or counted done;
 * where it splits, counted in local[b]. */
static void sum_slice(DptReducer *r, int b, int slice)
{
    size_t a, z;
    slice_of(r, b, slice, local_slices(r), &a, &z);
    /* Block by block, so that the output stays in L1 while each region is
     * added to it (vectorised); every element is still r0 + r1 + ... in rank order. */
    const int k = r->node_size;
    enum { BLOCK = 2048 };
    for (size_t b0 = a; b0 < z; b0 += BLOCK) {
        size_t b1 = b0 + BLOCK < z ? b0 + BLOCK : z;
        if (r->is_int) {
            int64_t *restrict out = (int64_t *)r->result;
            const int64_t *restrict r0 = (const int64_t *)r->base;
            for (size_t i = b0; i < b1; i++)
                out[i] = r0[i];
            for (int j = 1; j < k; j++) {
                const int64_t *restrict rj = (const int64_t *)(r->base + (size_t)j * r->stride);
                for (size_t i = b0; i < b1; i++)
                    out[i] += rj[i];
            }
        } else {
            float *restrict out = (float *)r->result;
            const float *restrict r0 = (const float *)r->base;
            for (size_t i = b0; i < b1; i++)
                out[i] = r0[i];
            for (int j = 1; j < k; j++) {
                const float *restrict rj = (const float *)(r->base + (size_t)j * r->stride);
                for (size_t i = b0; i < b1; i++)
                    out[i] += rj[i];
            }
        }
    }
    if (r->split)
        __atomic_add_fetch(counter(r, LOCAL, b), 1, __ATOMIC_RELEASE);
    else if (r->cross)
        start_cross(r, b);
    else
        __atomic_add_fetch(counter(r, DONE, b), 1, __ATOMIC_RELEASE);
}

DptStatus dpt_dist_reducer_init(DptReducer **out, const DptDist *d, size_t n, int is_int, const size_t *bucket_ends,
                                int n_buckets, int shared, int flat_buckets)
{
    DptReducer *r = calloc(1, sizeof *r);
    if (!r)
        return dpt_err(DPT_ENOMEM, "cannot allocate the reducer");
    *out = r;
    r->n = n;
    r->is_int = is_int;
    r->elem = is_int ? sizeof(int64_t) : sizeof(float);
    r->node_rank = d->node_rank;
    r->node_size = d->node_size;
    r->world_size = d->world_size;
    /* Buckets are given by their ends, in memory order; they become ready last first. */
    if (n_buckets < 1 || n_buckets > MAX_BUCKETS || !bucket_ends)
        n_buckets = 1;
    r->n_buckets = n_buckets;
    for (int b = 0; b < n_buckets; b++) {
        int m = n_buckets - 1 - b;
        r->hi[b] = n_buckets == 1 ? n : bucket_ends[m];
        r->lo[b] = m > 0 ? bucket_ends[m - 1] : 0;
    }
    /* Shared memory where some node has several ranks (on every node, then:
     * the choice is the same everywhere); across nodes a bucket is cut into
     * as many slices as the smallest node has ranks, the cross-node unit. */
    int use = shared && d->node_size_max > 1;
    r->multi = d->n_nodes > 1;
    r->n_slices = r->multi ? d->node_size_min : d->node_size;
    r->split = r->multi && d->node_size > r->n_slices;
    DptStatus st = DPT_OK;
    if (use) {
        r->stride = (n * r->elem + LINE - 1) / LINE * LINE;
        size_t flags_bytes = (size_t)r->n_buckets * ((size_t)r->node_size + N_COUNTERS) * LINE;
        size_t bytes = ((size_t)r->node_size + 1) * r->stride + flags_bytes;
        void *mem = NULL;
        st = dpt_dist_shared_alloc(d, bytes, &mem, &r->win);
        if (st == DPT_OK) {
            r->base = mem;
            r->mine = r->base + (size_t)r->node_rank * r->stride;
            r->result = r->base + (size_t)r->node_size * r->stride;
            r->flags = (int64_t *)(r->result + r->stride);
            /* First touch of this rank's own region by this rank; the flags start at 0. */
            memset(r->mine, 0, r->stride);
            if (r->node_rank == 0)
                memset(r->flags, 0, flags_bytes);
            dpt_dist_node_barrier(d);
            if (r->multi) {
                MPI_Comm comm;
                MPI_Comm_split(dpt_dist_world_comm(), r->node_rank < r->n_slices ? r->node_rank : MPI_UNDEFINED,
                               d->rank, &comm);
                if (comm != MPI_COMM_NULL && (st = cross_new(&r->cross, comm, n, r->is_int)) != DPT_OK)
                    MPI_Comm_free(&comm);
            }
        }
    }
    st = dpt_dist_agree(d, st, NULL);
    if (st != DPT_OK)
        return st;
    r->shared = use;
    if (!use && !flat_buckets) {
        r->n_buckets = 1;
        r->lo[0] = 0;
        r->hi[0] = n;
    }
    if (!use) {
        r->flat = calloc(n ? n : 1, r->elem);
        /* Buckets reduced by MPI_Iallreduce: not in place across nodes from
         * 4 ranks on, where Open MPI's libnbc (4.x) then reduce-scatters and
         * all-gathers a bucket of 64 KiB or more; in place it always runs a
         * binomial reduce, then a broadcast (nbc_iallreduce.c). 2 namespaced
         * hosts x 2 ranks: 1.12-1.14x; on one node, 4 ranks on 2 cores, in
         * place measured faster (1.02-1.14x; README "Scaling"). */
        const int out_of_place = r->n_buckets > 1 && d->world_size >= FLAT_OUT_RANKS && d->n_nodes > 1;
        if (out_of_place)
            r->flat_out = calloc(n ? n : 1, r->elem);
        if (!r->flat || (out_of_place && !r->flat_out))
            st = dpt_err(DPT_ENOMEM, "cannot allocate the gradient buffer (%zu values)", n);
    }
    return dpt_dist_agree(d, st, NULL);
}

int dpt_dist_reducer_shared(const DptReducer *r) { return r->shared; }

void *dpt_dist_reducer_begin(DptReducer *r)
{
    r->declared = 0;
    r->n_req = 0;
    if (!r->shared)
        return r->flat;
    /* The previous step's slices were all summed (finish saw them done), so
     * no one reads this rank's region any more. */
    r->gen++;
    r->next = 0;
    return r->mine;
}

/* Every slice of bucket b that nobody has taken yet, summed here. */
static void sum_free_slices(DptReducer *r, int b)
{
    for (int j; (j = claim_slice(r, b)) >= 0;)
        sum_slice(r, b, j);
}

/* Across nodes: this rank's own slice of the buckets that every node rank
 * has declared, summed and its allreduce started, in bucket order (the
 * per-slice allreduces must start in the same order on every node); then the
 * ones in flight tested (Open MPI moves them only inside MPI calls). With
 * wait: all of them, to the end, and then counted done. The
 * allreduces are non-blocking so that backprop never waits here for another
 * node to reach the same bucket. */
static void progress_owned(DptReducer *r, int wait)
{
    while (r->next < r->n_buckets && (r->next < r->declared || wait)) {
        const int b = r->next;
        if (!all_ready(r, b)) {
            if (!wait)
                break;
            wait_for(r, b, all_ready);
        }
        if (r->split) {
            /* the node's local slices first (with whoever else waits), then
             * this rank's cross-node slice once all of the bucket is summed */
            sum_free_slices(r, b);
            if (!local_done(r, b)) {
                if (!wait)
                    break;
                wait_for(r, b, local_done);
            }
            start_cross(r, b);
        } else {
            sum_slice(r, b, r->node_rank);
        }
        r->next++;
    }
    if (!wait) {
        dpt_dist_cross_test(r->cross);
        return;
    }
    dpt_dist_cross_wait(r->cross);
    for (int b = 0; b < r->n_buckets; b++)
        __atomic_add_fetch(counter(r, DONE, b), 1, __ATOMIC_RELEASE);
}

/* On one node, or on a node that splits: every (local) slice not yet taken,
 * bucket by bucket as they become ready; the slices of the ranks still
 * computing are summed by those that wait. */
static void help_all(DptReducer *r)
{
    for (int b = 0; b < r->n_buckets; b++) {
        wait_for(r, b, all_ready);
        sum_free_slices(r, b);
    }
}

/* The flat path with buckets: each ready bucket gets its MPI_Iallreduce, and
 * the pending ones a chance to progress (Open MPI moves them only inside MPI
 * calls). */
static void flat_ready(DptReducer *r, int count)
{
    for (; count > 0 && r->declared < r->n_buckets; count--, r->declared++) {
        int b = r->declared;
        char *at = r->flat + r->lo[b] * r->elem;
        MPI_Iallreduce(r->flat_out ? at : MPI_IN_PLACE, r->flat_out ? r->flat_out + r->lo[b] * r->elem : at,
                       (int)(r->hi[b] - r->lo[b]), r->is_int ? MPI_INT64_T : MPI_FLOAT, MPI_SUM,
                       dpt_dist_world_comm(), &r->req[r->n_req++]);
    }
    int flag_done;
    MPI_Testall(r->n_req, r->req, &flag_done, MPI_STATUSES_IGNORE);
}

void dpt_dist_reducer_ready(DptReducer *r, int count)
{
    if (!r->shared) {
        if (r->n_buckets > 1 && r->world_size > 1)
            flat_ready(r, count);
        return;
    }
    for (; count > 0 && r->declared < r->n_buckets; count--, r->declared++)
        __atomic_store_n(ready_flag(r, r->declared, r->node_rank), r->gen, __ATOMIC_RELEASE);
    if (r->cross)   /* a slice of its own across nodes */
        progress_owned(r, 0);
}

const void *dpt_dist_reducer_finish(DptReducer *r, const DptDist *d)
{
    if (!r->shared && r->n_buckets > 1 && d->world_size > 1) {
        flat_ready(r, r->n_buckets);
        MPI_Waitall(r->n_req, r->req, MPI_STATUSES_IGNORE);
        return r->flat_out ? r->flat_out : r->flat;
    }
    if (!r->shared) {
        if (d->world_size > 1) {
            if (r->is_int)
                dpt_dist_sum_i64(d, (int64_t *)r->flat, r->n);
            else
                dpt_dist_sum_floats(d, (float *)r->flat, r->n);
        }
        return r->flat;
    }
    dpt_dist_reducer_ready(r, r->n_buckets);
    if (r->cross)
        progress_owned(r, 1);
    else if (!r->multi || r->split)
        help_all(r);   /* on a split node: a rank past the smallest node's count, no slice of its own */
    for (int b = 0; b < r->n_buckets; b++)
        wait_for(r, b, all_done);
    return r->result;
}

void dpt_dist_reducer_free(DptReducer **rp)
{
    DptReducer *r = rp ? *rp : NULL;
    if (!r)
        return;
    dpt_dist_cross_free(&r->cross);
    dpt_dist_shared_free(&r->win);
    free(r->flat);
    free(r->flat_out);
    free(r);
    *rp = NULL;
}

/* ---------------------------------------------------------------- across nodes
 * An allreduce among one rank per node (the ranks with the same node rank),
 * in place and without blocking, of ranges started in the same order on
 * every node. A range is cut into one part per node; every node sends part
 * j to node j, which sums it over the nodes in node order and sends the sum
 * back to every node (a reduce-scatter, then an all-gather: each node sends
 * and receives 2 (N - 1) / N of the range, as a ring does, in two rounds
 * instead of 2 (N - 1)). Two nodes send each other the whole range and
 * both sum it: the same bytes, in one round, so that nothing waits for a
 * second round to be posted (only MPI calls move messages in Open MPI, and
 * backprop makes none); so do more nodes for a small range (up to
 * ONE_ROUND bytes sent a node), where the count of messages, not their
 * bytes, sets the time (each node then sums all of it). The order of the
 * sums is fixed by the node numbers alone, so the float result does not
 * depend on how the vector was cut into ranges (nor on timing); with two
 * nodes it is a + b on both, the bits of MPI_Allreduce. Every message of a
 * round is posted at once, so the ranges in flight share the links. Open
 * MPI's MPI_Iallreduce (libnbc, 4.1) reduces in place by a binomial
 * reduce, then a broadcast, one after the other (README, "Across
 * (namespaced) hosts"). */

enum { MAX_FLIGHT = 1024, ONE_ROUND = 64 << 10, ONE_ROUND_STAGE = 1 << 20 };

typedef struct {
    char *buf;
    size_t n;                   /* values */
    int one;                    /* every node sums the whole range: one round */
    int round;                  /* 0: parts sent to their owners; 1: sums sent to every node; 2: complete */
    size_t at;                  /* the other nodes' parts of this node's part, in stage from this byte */
} Flight;

struct DptCross {
    MPI_Comm comm;              /* one rank per node, this node rank */
    int nodes, me;
    int is_int;                 /* int64 values (exact sums), else float */
    size_t elem;                /* bytes a value */
    char *stage;                /* [stage_cap] bytes: the parts received in round 0 */
    size_t stage_cap, stage_used;
    size_t one_used;            /* of it, by one-round ranges of more than two nodes (at most ONE_ROUND_STAGE) */
    MPI_Request *req;           /* [MAX_FLIGHT][2 (nodes - 1)] */
    Flight fl[MAX_FLIGHT];
    int n_fl, n_done;           /* ranges in fl; complete from the first on */
    size_t n_max, started;      /* values in flight at most, and now */
};

/* Part j of range f, [*a, *a + *len): the values node j sums (in one
 * round, all of them). */
static void part_of(const DptCross *x, const Flight *f, int j, size_t *a, size_t *len)
{
    const int parts = f->one ? 1 : x->nodes, p = f->one ? 0 : j;
    *a = f->n * (size_t)p / (size_t)parts;
    *len = f->n * (size_t)(p + 1) / (size_t)parts - *a;
}

/* Takes comm (one rank per node); room for ranges of n_max values (int64
 * if is_int, else float) in flight at once (each rank stages at most (N -
 * 1) / N of a range in two rounds, plus one value per range and node for
 * the rounding, and ONE_ROUND_STAGE bytes of ranges in one; with two
 * nodes, all of every range). */
static DptStatus cross_new(DptCross **out, MPI_Comm comm, size_t n_max, int is_int)
{
    DptCross *x = calloc(1, sizeof *x);
    if (x) {
        x->comm = comm;
        x->is_int = is_int;
        x->elem = is_int ? sizeof(int64_t) : sizeof(float);
        MPI_Comm_size(comm, &x->nodes);
        MPI_Comm_rank(comm, &x->me);
        x->n_max = n_max ? n_max : 1;
        const size_t others = (size_t)(x->nodes - 1);
        const size_t m = x->n_max;
        x->stage_cap = x->nodes == 2 ? m * x->elem
                                     : ((m * others + others) / (size_t)x->nodes + others * MAX_FLIGHT) * x->elem +
                                           ONE_ROUND_STAGE;
        x->stage = malloc(x->stage_cap);
        x->req = malloc(sizeof *x->req * MAX_FLIGHT * 2 * (size_t)(x->nodes > 1 ? x->nodes - 1 : 1));
    }
    if (!x || !x->stage || !x->req) {
        if (x)
            x->comm = MPI_COMM_NULL;   /* the caller frees it */
        dpt_dist_cross_free(&x);
        return dpt_err(DPT_ENOMEM, "cannot allocate the cross-node reduction (%zu values)", n_max);
    }
    *out = x;
    return DPT_OK;
}

static MPI_Request *flight_req(DptCross *x, int i) { return x->req + (size_t)i * 2 * (size_t)(x->nodes - 1); }

/* Round r of range i: with each other node k (counted from this one),
 * receive into and send from the parts the round moves. */
static void post_round(DptCross *x, int i, int r)
{
    Flight *f = &x->fl[i];
    const size_t e = x->elem;
    const MPI_Datatype t = x->is_int ? MPI_INT64_T : MPI_FLOAT;
    size_t a, mine;
    part_of(x, f, x->me, &a, &mine);
    MPI_Request *q = flight_req(x, i);
    for (int k = 1; k < x->nodes; k++) {
        const int j = (x->me + k) % x->nodes;
        size_t ja, jn;
        part_of(x, f, j, &ja, &jn);
        /* round 0: node j's copy of this node's part in, this node's of j's out;
         * round 1: j's sum in, this node's sum out (to each) */
        char *in = r == 0 ? x->stage + f->at + (size_t)(k - 1) * mine * e : f->buf + ja * e;
        const size_t in_n = r == 0 ? mine : jn, out_n = r == 0 ? jn : mine;
        char *out = f->buf + (r == 0 ? ja : a) * e;
        q[2 * k - 2] = q[2 * k - 1] = MPI_REQUEST_NULL;
        if (in_n)
            MPI_Irecv(in, (int)in_n, t, j, 2 * i + r, x->comm, &q[2 * k - 2]);
        if (out_n)
            MPI_Isend(out, (int)out_n, t, j, 2 * i + r, x->comm, &q[2 * k - 1]);
    }
}

/* This node's part of range f summed over the nodes, in node order. */
static void sum_part(DptCross *x, const Flight *f)
{
    const size_t e = x->elem;
    size_t a, mine;
    part_of(x, f, x->me, &a, &mine);
    enum { BLOCK = 1024 };
    union {
        int64_t i[BLOCK];
        float f[BLOCK];
    } acc;
    for (size_t b0 = 0; b0 < mine; b0 += BLOCK) {
        const size_t len = mine - b0 < BLOCK ? mine - b0 : BLOCK;
        for (int j = 0; j < x->nodes; j++) {
            const int k = (j - x->me + x->nodes) % x->nodes;   /* its place in the stage (0: this node's) */
            const char *src = k == 0 ? f->buf + (a + b0) * e : x->stage + f->at + ((size_t)(k - 1) * mine + b0) * e;
            if (j == 0)
                memcpy(&acc, src, len * e);
            else if (x->is_int)
                for (size_t i = 0; i < len; i++)
                    acc.i[i] += ((const int64_t *)src)[i];
            else
                for (size_t i = 0; i < len; i++)
                    acc.f[i] += ((const float *)src)[i];
        }
        memcpy(f->buf + (a + b0) * e, &acc, len * e);
    }
}

/* Moves range i on as far as its messages allow (all the way with wait). */
static void advance(DptCross *x, int i, int wait)
{
    Flight *f = &x->fl[i];
    const int count = 2 * (x->nodes - 1);
    while (f->round < 2) {
        int complete = 1;
        if (wait)
            MPI_Waitall(count, flight_req(x, i), MPI_STATUSES_IGNORE);
        else
            MPI_Testall(count, flight_req(x, i), &complete, MPI_STATUSES_IGNORE);
        if (!complete)
            return;
        if (++f->round == 1) {
            sum_part(x, f);
            if (f->one)
                f->round = 2;   /* every node has summed all of it */
            else
                post_round(x, i, 1);
        }
    }
}

DptStatus dpt_dist_cross_init(DptCross **out, const DptDist *d, size_t n_max, int is_int)
{
    MPI_Comm comm;
    MPI_Comm_split(dpt_dist_world_comm(), d->node_rank, d->rank, &comm);
    DptStatus st = cross_new(out, comm, n_max, is_int);
    if (st != DPT_OK)
        MPI_Comm_free(&comm);
    return dpt_dist_agree(d, st, NULL);
}

void dpt_dist_cross_start(DptCross *x, void *buf, size_t n)
{
    if (n > x->n_max) {   /* in pieces (the sums do not depend on the cut) */
        for (size_t at = 0; at < n; at += x->n_max)
            dpt_dist_cross_start(x, (char *)buf + at * x->elem, n - at < x->n_max ? n - at : x->n_max);
        return;
    }
    /* past what init allowed for: the earlier ones complete first, at the
     * same range on every node (the tags restart) */
    if (x->n_fl == MAX_FLIGHT || x->started + n > x->n_max)
        dpt_dist_cross_wait(x);
    /* one round: the same choice on every node (n, the nodes, and the
     * ranges before it decide) */
    const size_t whole = n * (size_t)(x->nodes - 1) * x->elem;
    const int one = x->nodes == 2 || (whole <= ONE_ROUND && x->one_used + whole <= ONE_ROUND_STAGE);
    x->one_used += one && x->nodes > 2 ? whole : 0;
    Flight *f = &x->fl[x->n_fl];
    *f = (Flight){buf, n, one, 0, x->stage_used};
    size_t a, mine;
    part_of(x, f, x->me, &a, &mine);
    x->stage_used += mine * (size_t)(x->nodes - 1) * x->elem;
    x->started += n;
    post_round(x, x->n_fl++, 0);
    dpt_dist_cross_test(x);
}

void dpt_dist_cross_test(DptCross *x)
{
    for (int i = x->n_done; i < x->n_fl; i++)
        advance(x, i, 0);
    while (x->n_done < x->n_fl && x->fl[x->n_done].round == 2)
        x->n_done++;
}

void dpt_dist_cross_wait(DptCross *x)
{
    for (int i = x->n_done; i < x->n_fl; i++)
        advance(x, i, 1);
    x->n_fl = x->n_done = 0;
    x->stage_used = x->started = x->one_used = 0;
}

void dpt_dist_cross_free(DptCross **xp)
{
    DptCross *x = xp ? *xp : NULL;
    if (!x)
        return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin && x->comm != MPI_COMM_NULL)
        MPI_Comm_free(&x->comm);
    free(x->req);
    free(x->stage);
    free(x);
    *xp = NULL;
}
