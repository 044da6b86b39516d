/*
 * machine: what this process may run on, read from the operating system:
 * the CPUs it is allowed (its affinity mask, which mpirun's --bind-to and
 * SLURM's task/affinity set) and the host name. Not collective.
 */
#ifndef DPT_MACHINE_H
#define DPT_MACHINE_H

#include <stddef.h>

/* The CPUs this process may run on, as a list ("0-3,8"), in buf; returns how
 * many (0 if unknown). With OpenMP places (OMP_PLACES, OMP_PROC_BIND), the
 * CPUs of all places, which the runtime took from the launcher's mask. */
int dpt_machine_cpus(char *buf, size_t len);
/* Pinning the OpenMP threads when nobody placed them. Each rank passes its
 * CPU mask (dpt_machine_mask) to the others of its node; if the user set no
 * OpenMP binding (OMP_PROC_BIND, OMP_PLACES, GOMP_CPU_AFFINITY) and the node's
 * ranks either share one mask with room for all their threads (mpirun
 * --bind-to none, an unbound launcher) or hold disjoint masks (bound by
 * mpirun or srun) with room for their own threads, rank k's thread i is
 * pinned to a CPU of its own, cores before their second hardware threads.
 * Otherwise nothing is pinned. */
typedef struct {
    unsigned char bits[128];   /* CPUs 0..1023 */
} DptCpuMask;
/* This process's mask (the main thread's, before any pinning). */
void dpt_machine_mask(DptCpuMask *m);
/* 1 when the user chose the OpenMP binding. */
int dpt_machine_user_binds(void);
/* Chooses CPUs for this rank's `threads` threads from the node's masks
 * (masks[node_size], this rank's at node_rank) and pins the threads (the
 * calling team, outside any parallel region); returns the number pinned (0:
 * left alone) and the CPUs as a list in buf. Not collective. */
int dpt_machine_pin(const DptCpuMask *masks, int node_size, int node_rank, int threads, char *buf, size_t len);
/* The host name (at most len - 1 characters). */
void dpt_machine_host(char *buf, size_t len);

#endif
