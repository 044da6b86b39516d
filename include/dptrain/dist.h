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
    int initialised_here;          /* we called MPI_Init_thread (and will finalize) */
} DptDist;

/* Collective. MPI_Init_thread(FUNNELED), checked; the node communicator. */
DptStatus dpt_dist_init(DptDist *d, int *argc, char ***argv);
/* Collective. */
void dpt_dist_finalize(DptDist *d);
/* Collective over MPI_COMM_WORLD (for tests): from now on "the world" is its
 * first n ranks (n >= world size: all of them). Returns 1 on the ranks inside,
 * whose d is refilled; the others keep a world of the ranks outside and
 * should only call dpt_dist_subset again. */
int dpt_dist_subset(DptDist *d, int n);

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
/* 1 if every rank passed the same hash. */
int dpt_dist_same_hash(const DptDist *d, uint64_t hash);

/* Non-blocking in-place float sums, one request per bucket (at most 4096). */
void dpt_dist_isum_floats(const DptDist *d, float *buf, size_t n, int slot);
void dpt_dist_wait_all(const DptDist *d);
/* Lets pending non-blocking reductions progress (MPI_Testall). */
void dpt_dist_progress(const DptDist *d);

/* Collective over the node. Memory shared by the ranks of a node, allocated by
 * node rank 0; *ptr is valid on every rank of the node. */
DptStatus dpt_dist_shared_alloc(const DptDist *d, size_t bytes, void **ptr, void **handle);
void dpt_dist_shared_free(void **handle);
void dpt_dist_node_barrier(const DptDist *d);

#endif
