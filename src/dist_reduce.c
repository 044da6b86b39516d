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
 *   2. node rank j owns slice j of the bucket: once every rank is ready, it
 *      sums the slice over the node's ranks in rank order (so the result does
 *      not depend on timing) into the result region, allreduces it with the
 *      owners of the same slice on the other nodes, and raises done[b][j];
 *   3. every rank reads the result once all slices are done.
 * A rank does step 2 for the buckets that are ready when it declares one of
 * its own (during backprop, with --overlap), and the rest at the end. The
 * step numbers order everything: a rank overwrites its region only after all
 * slices of the previous step were summed (it saw them done), and an owner
 * overwrites the result only after every rank finished the step's backward
 * pass, hence its previous update. Flags are atomics in the window; waits
 * spin, then yield the core (ranks may outnumber cores).
 */
#include "dptrain/dist.h"

#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "dist_comm.h"

enum { LINE = 64, MAX_BUCKETS = 1024 };

struct DptReducer {
    int shared;                 /* 1: the shared-memory path; 0: MPI_Allreduce of the whole vector */
    size_t n, elem;             /* elements, bytes per element */
    int is_int;                 /* int64 (exact) or float */
    int n_buckets;
    size_t lo[MAX_BUCKETS], hi[MAX_BUCKETS];  /* bucket b: elements [lo, hi), in the order they become ready */
    int node_rank, node_size;
    MPI_Comm cross;             /* ranks with this node rank on every node (MPI_COMM_NULL: one node) */
    void *win;                  /* the window handle (dist's shared allocation) */
    char *mine;                 /* this rank's contribution region [n] */
    char *base;                 /* region of node rank 0; rank j's at base + j * stride */
    size_t stride;              /* bytes between regions (padded to a cache line) */
    char *result;               /* [n] the reduced vector */
    int64_t *flags;             /* ready[b][rank] then done[b][rank], one cache line each */
    int64_t gen;                /* this step's number */
    int next;                   /* the next bucket this rank has to sum its slice of */
    int declared;               /* buckets this rank declared ready this step */
    char *flat;                 /* the flat path: [n] private buffer, reduced in place */
    int world_size;
    MPI_Request req[MAX_BUCKETS];/* the flat path with buckets: one MPI_Iallreduce each */
    int n_req;
};

static int64_t *flag(DptReducer *r, int which, int b, int rank)
{
    size_t per = LINE / sizeof(int64_t);
    return r->flags + (((size_t)which * (size_t)r->n_buckets + (size_t)b) * (size_t)r->node_size + (size_t)rank) * per;
}

static void spin_pause(unsigned *spins)
{
    if (++*spins >= 64) {
        sched_yield();
        *spins = 0;
    }
}

/* Are all node ranks at this step for bucket b (which: 0 ready, 1 done)? */
static int all_at(DptReducer *r, int which, int b)
{
    for (int j = 0; j < r->node_size; j++)
        if (__atomic_load_n(flag(r, which, b, j), __ATOMIC_ACQUIRE) < r->gen)
            return 0;
    return 1;
}

static void wait_all(DptReducer *r, int which, int b)
{
    unsigned spins = 0;
    while (!all_at(r, which, b))
        spin_pause(&spins);
}

/* This rank's slice [*a, *z) of bucket b: node_size parts, cut on cache lines. */
static void slice_of(const DptReducer *r, int b, size_t *a, size_t *z)
{
    size_t per_line = LINE / r->elem, len = r->hi[b] - r->lo[b];
    size_t lines = (len + per_line - 1) / per_line, k = (size_t)r->node_size, j = (size_t)r->node_rank;
    size_t la = lines * j / k, lz = lines * (j + 1) / k;
    *a = r->lo[b] + la * per_line;
    *z = r->lo[b] + lz * per_line;
    if (*a > r->hi[b])
        *a = r->hi[b];
    if (*z > r->hi[b])
        *z = r->hi[b];
}

/* The sum over the node's regions of elements [a, z), in rank order, then
 * across nodes; done raised. */
static void sum_slice(DptReducer *r, int b)
{
    size_t a, z;
    slice_of(r, b, &a, &z);
    const int k = r->node_size;
    if (r->is_int) {
        int64_t *out = (int64_t *)r->result;
        for (size_t i = a; i < z; i++) {
            int64_t s = ((const int64_t *)r->base)[i];
            for (int j = 1; j < k; j++)
                s += ((const int64_t *)(r->base + (size_t)j * r->stride))[i];
            out[i] = s;
        }
    } else {
        float *out = (float *)r->result;
        for (size_t i = a; i < z; i++) {
            float s = ((const float *)r->base)[i];
            for (int j = 1; j < k; j++)
                s += ((const float *)(r->base + (size_t)j * r->stride))[i];
            out[i] = s;
        }
    }
    if (r->cross != MPI_COMM_NULL && z > a)
        MPI_Allreduce(MPI_IN_PLACE, r->result + a * r->elem, (int)(z - a), r->is_int ? MPI_INT64_T : MPI_FLOAT,
                      MPI_SUM, r->cross);
    __atomic_store_n(flag(r, 1, b, r->node_rank), r->gen, __ATOMIC_RELEASE);
}

DptStatus dpt_dist_reducer_init(DptReducer **out, const DptDist *d, size_t n, int is_int, const size_t *bucket_ends,
                                int n_buckets, int shared)
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
    r->cross = MPI_COMM_NULL;
    /* Buckets are given by their ends, in memory order; they become ready last first. */
    if (n_buckets < 1 || n_buckets > MAX_BUCKETS || !bucket_ends)
        n_buckets = 1;
    r->n_buckets = n_buckets;
    for (int b = 0; b < n_buckets; b++) {
        int m = n_buckets - 1 - b;
        r->hi[b] = n_buckets == 1 ? n : bucket_ends[m];
        r->lo[b] = m > 0 ? bucket_ends[m - 1] : 0;
    }
    /* Shared memory needs several ranks here and the same number on every
     * node (the slices are the cross-node unit). */
    int equal = 1;
    if (shared && d->node_size > 1) {
        int mm[2] = {d->node_size, -d->node_size};
        MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_INT, MPI_MAX, dpt_dist_world_comm());
        equal = mm[0] == -mm[1];
    }
    int use = shared && d->node_size > 1 && equal;
    DptStatus st = DPT_OK;
    if (use) {
        r->stride = (n * r->elem + LINE - 1) / LINE * LINE;
        size_t flags_bytes = 2 * (size_t)r->n_buckets * (size_t)r->node_size * LINE;
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
            if (d->n_nodes > 1)
                MPI_Comm_split(dpt_dist_world_comm(), r->node_rank, d->rank, &r->cross);
        }
    }
    st = dpt_dist_agree(d, st, NULL);
    if (st != DPT_OK)
        return st;
    r->shared = use;
    if (!use) {
        r->flat = calloc(n ? n : 1, r->elem);
        if (!r->flat)
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

/* Sums this rank's slice of the buckets that every rank has declared, in
 * order; with wait, all of them. */
static void progress(DptReducer *r, int wait)
{
    while (r->next < r->n_buckets && (r->next < r->declared || wait)) {
        if (!all_at(r, 0, r->next)) {
            if (!wait)
                return;
            wait_all(r, 0, r->next);
        }
        sum_slice(r, r->next);
        r->next++;
    }
}

/* The flat path with buckets: each ready bucket gets its MPI_Iallreduce, and
 * the pending ones a chance to progress (Open MPI moves them only inside MPI
 * calls). */
static void flat_ready(DptReducer *r, int count)
{
    for (; count > 0 && r->declared < r->n_buckets; count--, r->declared++) {
        int b = r->declared;
        MPI_Iallreduce(MPI_IN_PLACE, r->flat + r->lo[b] * r->elem, (int)(r->hi[b] - r->lo[b]),
                       r->is_int ? MPI_INT64_T : MPI_FLOAT, MPI_SUM, dpt_dist_world_comm(), &r->req[r->n_req++]);
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
        __atomic_store_n(flag(r, 0, r->declared, r->node_rank), r->gen, __ATOMIC_RELEASE);
    progress(r, 0);
}

const void *dpt_dist_reducer_finish(DptReducer *r, const DptDist *d)
{
    if (!r->shared && r->n_buckets > 1 && d->world_size > 1) {
        flat_ready(r, r->n_buckets);
        MPI_Waitall(r->n_req, r->req, MPI_STATUSES_IGNORE);
        return r->flat;
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
    progress(r, 1);
    for (int b = 0; b < r->n_buckets; b++)
        wait_all(r, 1, b);
    return r->result;
}

void dpt_dist_reducer_free(DptReducer **rp)
{
    DptReducer *r = rp ? *rp : NULL;
    if (!r)
        return;
    if (r->cross != MPI_COMM_NULL)
        MPI_Comm_free(&r->cross);
    dpt_dist_shared_free(&r->win);
    free(r->flat);
    free(r);
    *rp = NULL;
}
