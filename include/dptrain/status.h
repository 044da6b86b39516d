/*
 * status: error codes, the one-line error message, and the propagate macro.
 *
 * Every fallible function returns a DptStatus. The first failure records a
 * message with dpt_err() (what went wrong, naming the file, dataset, option or
 * value, and what was expected); callers propagate with DPT_TRY, which appends
 * the source location to a trace that is printed only when DPT_DEBUG is set.
 * The library never calls exit(): main alone decides how the process ends.
 * Not thread-safe: errors are raised outside OpenMP regions only.
 */
#ifndef DPT_STATUS_H
#define DPT_STATUS_H

#include <stddef.h>

/* Values double as process exit codes (README: "Errors and exit codes"). */
typedef enum {
    DPT_OK = 0,
    DPT_EINTERNAL = 1,   /* a bug: an internal invariant failed */
    DPT_EUSAGE = 2,      /* bad command line, option, value or config file */
    DPT_EINPUT = 3,      /* missing, unreadable or malformed input file */
    DPT_EOUTPUT = 4,     /* cannot write an output file */
    DPT_ENOMEM = 5,      /* allocation failed */
    DPT_EDIVERGED = 6,   /* non-finite loss or gradient */
    DPT_EREPLICA = 7,    /* ranks hold different parameters */
    DPT_EMPI = 8,        /* an MPI call failed */
    DPT_EDIFFER = 9,     /* `dptrain compare`: the models differ */
    DPT_ESTOPPED = 75    /* stopped on request (signal) after saving state; EX_TEMPFAIL */
} DptStatus;

/* Records the message of the first error since the last dpt_err_clear() and
 * returns `code`, so that `return dpt_err(DPT_EUSAGE, "...")` reads naturally. */
DptStatus dpt_err(DptStatus code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The recorded message ("" if none) and the trace of DPT_TRY locations. */
const char *dpt_err_message(void);
const char *dpt_err_trace(void);
void dpt_err_clear(void);
/* Appends "file:line" to the trace (used by DPT_TRY). */
void dpt_err_at(const char *file, int line);

/* A short name for a status ("usage error", "input error", ...). */
const char *dpt_status_name(DptStatus s);

#define DPT_TRY(expr)                                   \
    do {                                                \
        DptStatus dpt_try_s_ = (expr);                  \
        if (dpt_try_s_ != DPT_OK) {                     \
            dpt_err_at(__FILE__, __LINE__);             \
            return dpt_try_s_;                          \
        }                                               \
    } while (0)

/* Like DPT_TRY, but jumps to a cleanup label with the status stored in `st`. */
#define DPT_TRY_GOTO(st, expr, label)                   \
    do {                                                \
        (st) = (expr);                                  \
        if ((st) != DPT_OK) {                           \
            dpt_err_at(__FILE__, __LINE__);             \
            goto label;                                 \
        }                                               \
    } while (0)

/* Checks, before any work, that a file can be created at `path` (its
 * directory exists and is writable, and path is not a directory); "" passes.
 * `what` names the option in the message (DPT_EOUTPUT). */
DptStatus dpt_check_writable(const char *what, const char *path);

/* The index of s in names[0..n), or -1: the one lookup behind every
 * name-to-enum parser (activations, costs, optimisers, schedules, ...). */
int dpt_name_index(const char *const *names, int n, const char *s);

/* An on/off switch from the environment (DPT_TEAM=0/1 and the like): -1
 * where `name` is unset or empty (the caller's rule decides), else 0 for a
 * value that reads as the number 0 and 1 for any other. */
int dpt_env_switch(const char *name);

/* calloc/malloc that record a DPT_ENOMEM message naming what was allocated. */
void *dpt_calloc(size_t n, size_t size, const char *what);
void *dpt_aligned_alloc(size_t bytes, const char *what); /* 64-byte aligned, zeroed */

#endif
