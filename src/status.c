#include "dptrain/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static char err_msg[1024];
static char err_trace[1024];
static int err_set;

DptStatus dpt_err(DptStatus code, const char *fmt, ...)
{
    if (!err_set) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err_msg, sizeof err_msg, fmt, ap);
        va_end(ap);
        err_set = 1;
    }
    return code;
}

const char *dpt_err_message(void) { return err_msg; }
const char *dpt_err_trace(void) { return err_trace; }

void dpt_err_clear(void)
{
    err_msg[0] = '\0';
    err_trace[0] = '\0';
    err_set = 0;
}

void dpt_err_at(const char *file, int line)
{
    size_t used = strlen(err_trace);
    if (used + 2 < sizeof err_trace)
        snprintf(err_trace + used, sizeof err_trace - used, "%s%s:%d", used ? " <- " : "", file, line);
}

const char *dpt_status_name(DptStatus s)
{
    switch (s) {
    case DPT_OK: return "ok";
    case DPT_EINTERNAL: return "internal error";
    case DPT_EUSAGE: return "usage error";
    case DPT_EINPUT: return "input error";
    case DPT_EOUTPUT: return "output error";
    case DPT_ENOMEM: return "out of memory";
    case DPT_EDIVERGED: return "diverged";
    case DPT_EREPLICA: return "replica mismatch";
    case DPT_EMPI: return "MPI error";
    case DPT_EDIFFER: return "the models differ";
    case DPT_ESTOPPED: return "stopped";
    }
    return "unknown error";
}

void *dpt_calloc(size_t n, size_t size, const char *what)
{
    if (n == 0 || size == 0)
        n = size = 1;
    if (n > ((size_t)-1) / size) {
        dpt_err(DPT_ENOMEM, "size of %s overflows (%zu x %zu bytes)", what, n, size);
        return NULL;
    }
    void *p = calloc(n, size);
    if (!p)
        dpt_err(DPT_ENOMEM, "cannot allocate %zu bytes for %s", n * size, what);
    return p;
}

void *dpt_aligned_alloc(size_t bytes, const char *what)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < bytes || rounded == 0)
        rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        dpt_err(DPT_ENOMEM, "cannot allocate %zu bytes for %s", bytes, what);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

DptStatus dpt_check_writable(const char *what, const char *path)
{
    if (!path || !path[0])
        return DPT_OK;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return dpt_err(DPT_EOUTPUT, "%s %s: is a directory; expected a file name", what, path);
    if (stat(dir, &sb) != 0)
        return dpt_err(DPT_EOUTPUT, "%s %s: cannot create it: directory %s: %s", what, path, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return dpt_err(DPT_EOUTPUT, "%s %s: cannot create it: %s is not a directory", what, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return dpt_err(DPT_EOUTPUT, "%s %s: cannot create it: directory %s is not writable (%s)", what, path, dir,
                       strerror(errno));
    return DPT_OK;
}

int dpt_env_switch(const char *name)
{
    const char *env = getenv(name);
    return env && *env ? atoi(env) != 0 : -1;
}

int dpt_name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}
