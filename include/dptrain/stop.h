/*
 * stop: stop requests from signals (a person's Ctrl-C, scancel, a time limit,
 * a preemption, SLURM's --signal warning).
 *
 * The first SIGTERM, SIGINT or SIGUSR1 asks for "checkpoint and stop": the
 * trainer carries the request in the next step's control words, so every rank
 * stops after the same step. Further signals within the grace period are the
 * same request arriving again (SLURM sends SIGTERM to every task and to srun,
 * which forwards it; a batch script may forward its own copy) and are
 * ignored; only a repeat after the grace period (a person pressing Ctrl-C
 * again) ends the process at once, with the signal's default action.
 * Handlers use SA_RESTART, so interrupted system calls (a checkpoint write)
 * resume.
 *
 * SIGUSR2 asks for a checkpoint without stopping (`scancel --signal=USR2`,
 * `kill -USR2` to mpirun, which forwards it): every arrival is counted, and
 * the trainer carries the request in the next step's control words, so every
 * rank writes after the same step and training goes on.
 * Not collective; process-wide state.
 */
#ifndef DPT_STOP_H
#define DPT_STOP_H

#include <signal.h>

typedef struct {
    struct sigaction old[4];   /* the dispositions replaced, restored by dpt_stop_restore */
    int nested;                /* installed inside another install: restore leaves them */
} DptStopGuard;

/* Installs the handlers and clears any earlier request. grace_s: seconds
 * during which repeats are ignored. announce: write one line to stderr when
 * the first request arrives (rank 0). Inside an earlier install (main's,
 * made before MPI starts so that a launcher's early signal is not fatal) it
 * only sets grace_s and announce, and keeps a pending request. */
void dpt_stop_install(DptStopGuard *g, double grace_s, int announce);
void dpt_stop_restore(const DptStopGuard *g);
/* The signal number of the pending request, 0 if none. */
int dpt_stop_requested(void);
/* How many SIGUSR2 (checkpoint requests) arrived since the outermost install
 * (an install inside another keeps the count, as it keeps a stop request). */
unsigned dpt_stop_save_signals(void);

#endif
