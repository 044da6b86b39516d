/*
 * ckptdir: checkpoint directories, DIR/ckpt-<global step, 9 digits>.h5: the
 * lock that keeps a second run out, listing, the run identity of each file,
 * pruning, setting a branch's newer files aside, leftover temporaries.
 * A directory belongs to one run: pruning and `--resume latest` only ever
 * touch that run's files. Rank 0 alone calls these. Not collective.
 */
#ifndef DPT_CKPTDIR_H
#define DPT_CKPTDIR_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/ckpt.h"
#include "dptrain/status.h"

/* Creates DIR if needed, checks that it is writable, and takes an exclusive
 * lock on DIR/.dptrain.lock (flock; the file then names the holder's pid
 * and host) so that two runs cannot write into the same directory;
 * *lock_fd must be closed at the end (dpt_ckptdir_unlock). A lock held
 * elsewhere is an error naming its holder; a file system without locks
 * gives a warning and *lock_fd = -1 (no lock, the run goes on). */
DptStatus dpt_ckptdir_lock(const char *dir, int *lock_fd);
void dpt_ckptdir_unlock(int *lock_fd);
void dpt_ckptdir_path(const char *dir, int64_t global_step, char *buf, size_t len);
/* Global steps of the checkpoints in DIR, newest first; returns how many (<= cap). */
int dpt_ckptdir_list(const char *dir, int64_t *steps, int cap);

/* A checkpoint found in a directory, and whose run wrote it. */
typedef struct {
    int64_t step;
    int readable;                  /* 0: the file does not open as a checkpoint (damaged, partial) */
    char run_id[DPT_RUN_ID_LEN];   /* "" if unreadable or written without an identity */
} DptCkptdirEntry;

/* The checkpoints of DIR with their run identities, newest first; returns
 * how many (<= cap). Reads one attribute of each file. */
int dpt_ckptdir_scan(const char *dir, DptCkptdirEntry *e, int cap);
/* Removes the leftover temporary files (ckpt-*.h5.tmp.<pid>) of writes that
 * died with their process, naming each in a warning; call with the
 * directory locked. Returns how many. */
int dpt_ckptdir_remove_stale(const char *dir);
/* Removes all but the `keep` newest checkpoints of run `run_id` in DIR;
 * other runs' files, and files that do not open, are never touched. */
void dpt_ckptdir_prune(const char *dir, const char *run_id, int keep);
/* Moves the checkpoints of run `run_id` newer than `step` into a new
 * subdirectory DIR/abandoned-<step>-<n> (its name in moved_to), so that a
 * resumed branch cannot be mixed with them. Returns how many moved (< 0: error). */
int dpt_ckptdir_set_aside(const char *dir, const char *run_id, int64_t step, char *moved_to, size_t len);

#endif
