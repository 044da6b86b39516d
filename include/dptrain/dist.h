/*
 * dist: the only module that talks to MPI.
 *
 * Ranks, the node-local communicator and its shared-memory windows, the
 * gradient allreduce (blocking, or non-blocking per bucket), agreement on
 * errors at phase boundaries, the replica check, timing statistics.
 * MPI is initialised with MPI_THREAD_FUNNELED: only the main thread calls
 * MPI, never from inside an OpenMP region. Functions marked Collective must be
 * called by every rank in the same order.
 */
#ifndef DPT_DIST_H
#define DPT_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

typedef struct {
    int rank, world_size;          /* MPI's answers for MPI_COMM_WORLD */
    int node_rank, node_size;      /* within this node (MPI_COMM_TYPE_SHARED) */
    int n_nodes;
    int node_size_min, node_size_max;  /* over all nodes (nodes may differ) */
    int initialised_here;          /* we called MPI_Init_thread (and will finalize) */
} DptDist;

/* Collective. MPI_Init_thread(FUNNELED), checked; the node communicator. */
DptStatus dpt_dist_init(DptDist *d, int *argc, char ***argv);
/* Collective. */
void dpt_dist_finalize(DptDist *d);
/* For a process about to die (the HDF5 crash net): MPI_Abort with status if
 * MPI runs with more than one rank, so that no other rank waits for it;
 * returns otherwise. */
void dpt_dist_abort(int status);
/* Collective over MPI_COMM_WORLD (for tests): from now on "the world" is its
 * first n ranks (n >= world size: all of them). Returns 1 on the ranks inside,
 * whose d is refilled; the others keep a world of the ranks outside and
 * should only call dpt_dist_subset again. */
int dpt_dist_subset(DptDist *d, int n);
/* The same, with the first n ranks cut into "nodes" of node_sizes[0],
 * node_sizes[1], ... consecutive ranks (summing to n; tests of the
 * multi-node paths on one machine), or the real nodes (NULL). */
int dpt_dist_subset_nodes(DptDist *d, int n, const int *node_sizes);

/* Collective. Every rank learns the worst status; *reporter is the lowest rank
 * that failed (it alone prints the message), or -1 if all succeeded. */
DptStatus dpt_dist_agree(const DptDist *d, DptStatus local, int *reporter);

/* The reporter of the last failed agreement (-1 if it succeeded). */
int dpt_dist_reporter(void);

/* Collective. */
void dpt_dist_bcast(const DptDist *d, void *buf, size_t bytes, int root);
void dpt_dist_sum_floats(const DptDist *d, float *buf, size_t n);     /* in place */
void dpt_dist_sum_doubles(const DptDist *d, double *buf, size_t n);   /* in place */
void dpt_dist_sum_i64(const DptDist *d, int64_t *buf, size_t n);      /* in place */
void dpt_dist_max_doubles(const DptDist *d, double *buf, size_t n);   /* in place */
/* out[0..2] = min, mean, max of v over ranks. */
void dpt_dist_stats(const DptDist *d, double v, double out[3]);
/* Rank 0 receives every rank's text (each at most `len` bytes, NUL included)
 * into all[world_size * len], in rank order; other ranks may pass NULL. */
void dpt_dist_gather_text(const DptDist *d, const char *mine, size_t len, char *all);
/* Every rank of this node receives each node rank's `bytes` into
 * all[node_size * bytes], in node-rank order. */
void dpt_dist_node_allgather(const DptDist *d, const void *mine, size_t bytes, void *all);
/* 1 if every rank passed the same hash. */
int dpt_dist_same_hash(const DptDist *d, uint64_t hash);

/* The gradient reduction (dist_reduce.c): a vector of n floats, or of n
 * int64 (exact sums, deterministic mode), summed over all ranks every step.
 * shared: within a node through an MPI-3 shared-memory window (each node
 * rank sums its slice over the node's ranks, in rank order) and across nodes
 * by one allreduce per slice among the ranks with the same node rank
 * (hierarchical: as many slices as the smallest node has ranks, so nodes
 * may differ); with one rank on every node, or shared == 0, one
 * MPI_Allreduce of the whole vector. Buckets (bucket_ends: the ends of n_buckets contiguous ranges, in
 * memory order) become ready last first, and are reduced while the others
 * are still computed (overlap); on the flat path each bucket is an
 * MPI_Iallreduce, only if flat_buckets (else one allreduce). Collective:
 * init, finish, free. */
typedef struct DptReducer DptReducer;
/* --reduce: node-shared memory and per-slice across nodes (shm), one
 * MPI_Allreduce (mpi), or auto: shm, measured faster than Open MPI's
 * MPI_Allreduce at every size from 4 KiB to 64 MiB on 2 and 16 cores
 * (bench_allreduce; README, "Scaling"). */
typedef enum { DPT_REDUCE_AUTO = 0, DPT_REDUCE_MPI, DPT_REDUCE_SHM } DptReduceKind;
DptStatus dpt_dist_reducer_init(DptReducer **r, const DptDist *d, size_t n, int is_int, const size_t *bucket_ends,
                                int n_buckets, int shared, int flat_buckets);
/* Did init choose the shared-memory path? */
int dpt_dist_reducer_shared(const DptReducer *r);
/* Starts a step: the buffer [n] this rank writes its contribution into. */
void *dpt_dist_reducer_begin(DptReducer *r);
/* The next `count` buckets of this rank's contribution are complete (last
 * bucket first); reduces what every rank has completed so far. Not inside an
 * OpenMP region. */
void dpt_dist_reducer_ready(DptReducer *r, int count);
/* Completes the step's reduction; the sum over all ranks [n], read-only and
 * valid until the next begin. Collective. */
const void *dpt_dist_reducer_finish(DptReducer *r, const DptDist *d);
void dpt_dist_reducer_free(DptReducer **r);

/* Across nodes by slice (the node-sliced weight gradient, step.h; nodes of
 * equal size): each rank allreduces, in place and without blocking, ranges
 * it holds the node's sums of, with the ranks of the same node rank on the
 * other nodes (in the same order on every node; the sums in node order,
 * whatever the ranges). start: one more range (and progress on those in
 * flight); test: progress; wait: all of them complete. Values: int64 (is_int),
 * else float. Up to n_max values (and 1024 ranges) are in flight at once; past that, start waits for the
 * earlier ones first (and cuts a longer range into pieces). init and
 * free: collective. Not inside an OpenMP region. */
typedef struct DptCross DptCross;
DptStatus dpt_dist_cross_init(DptCross **x, const DptDist *d, size_t n_max, int is_int);
void dpt_dist_cross_start(DptCross *x, void *buf, size_t n);
void dpt_dist_cross_test(DptCross *x);
void dpt_dist_cross_wait(DptCross *x);
void dpt_dist_cross_free(DptCross **x);

/* Collective. Every rank's node, 0..n_nodes-1 (nodes in the order of their
 * node rank 0's world rank), into node[world_size], and its node rank into
 * nrank[world_size]. */
void dpt_dist_node_table(const DptDist *d, int *node, int *nrank);

/* Point-to-point transfers between world ranks (the rows that cross nodes,
 * step.c), started one by one and completed together by wait. At most max
 * at once (one more waits for those first); bytes below 2^31 each. Not
 * inside an OpenMP region. */
typedef struct DptPeers DptPeers;
DptStatus dpt_dist_peers_init(DptPeers **p, size_t max);
void dpt_dist_peers_send(DptPeers *p, int to, int tag, const void *buf, size_t bytes);
void dpt_dist_peers_recv(DptPeers *p, int from, int tag, void *buf, size_t bytes);
void dpt_dist_peers_wait(DptPeers *p);
void dpt_dist_peers_free(DptPeers **p);

/* Collective. Memory shared by the ranks of a node, allocated by node rank
 * 0; *ptr is valid on every rank of the node. Where a node's /dev/shm cannot
 * hold it, every rank returns DPT_ENOMEM (node rank 0 with the message) and
 * none allocates. */
DptStatus dpt_dist_shared_alloc(const DptDist *d, size_t bytes, void **ptr, void **handle);
/* Not collective: this rank's own memory behind the same kind of handle. */
DptStatus dpt_dist_private_alloc(size_t bytes, void **ptr, void **handle);
/* Frees either kind (NULL-safe). */
void dpt_dist_shared_free(void **handle);
void dpt_dist_node_barrier(const DptDist *d);
/* Collective over the node: bytes of node-shared memory zeroed, each rank
 * first touching an even part of them; then a node barrier. */
void dpt_dist_shared_zero(const DptDist *d, void *mem, size_t bytes);
/* Collective. From world rank 0 to every rank, like dpt_dist_bcast, or, for
 * memory that the ranks of a node share (shared), to one rank per node
 * (then the node waits for it): no two ranks write the same bytes. */
void dpt_dist_bcast_model(const DptDist *d, void *buf, size_t bytes, int shared);
/* Collective over the node: 1 if flag is non-zero on every rank of the node
 * (and a barrier: every rank of the node has arrived). */
int dpt_dist_node_all(const DptDist *d, int flag);

#endif
