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
/* The host name (at most len - 1 characters). */
void dpt_machine_host(char *buf, size_t len);

#endif
