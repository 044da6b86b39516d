/*
 * The communicators of the dist module, for its own files (dist.c,
 * dist_reduce.c). A private header: nothing outside dist sees <mpi.h>.
 */
#ifndef DPT_DIST_COMM_H
#define DPT_DIST_COMM_H

#include <mpi.h>

MPI_Comm dpt_dist_world_comm(void);  /* MPI_COMM_WORLD, or the subset of a test */
MPI_Comm dpt_dist_node_comm(void);   /* the ranks of this node (MPI_COMM_TYPE_SHARED) */

#endif
