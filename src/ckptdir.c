#include "dptrain/ckptdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dptrain/ckpt.h"
#include "dptrain/log.h"

/* "pid host" into the lock file: who holds it (informational only). */
static void write_holder(int fd)
{
    char who[300], host[256] = "";
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    const int n = snprintf(who, sizeof who, "%ld %s\n", (long)getpid(), host[0] ? host : "?");
    if (ftruncate(fd, 0) != 0 || pwrite(fd, who, (size_t)n, 0) != n) {
        /* informational only */
    }
}

DptStatus dpt_ckptdir_lock(const char *dir, int *lock_fd)
{
    char path[4096];
    *lock_fd = -1;
    /* mkdir -p */
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s: cannot create (%s)", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s: not a directory", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s: not writable (%s)", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/.dptrain.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s: cannot create the lock file (%s)", dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        if (e == EWOULDBLOCK) {
            /* the holder wrote "pid host" into the file (unless it has only just locked it) */
            char who[160] = "";
            const ssize_t got = pread(fd, who, sizeof who - 1, 0);
            who[got > 0 ? got : 0] = '\0';
            who[strcspn(who, "\n")] = '\0';
            char *host = strchr(who, ' ');
            if (host)
                *host++ = '\0';
            close(fd);
            if (who[0] && host && host[0])
                return dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s: in use by another run (pid %s on %s holds %s)", dir,
                               who, host, path);
            return dpt_err(DPT_EOUTPUT, "--checkpoint-dir %s: in use by another run (lock %s is held)", dir, path);
        }
        /* No locks on this file system (Lustre mounted noflock: ENOSYS; NFS
         * without its lock daemon: ENOLCK): refusing would leave the user
         * no checkpoints at all, and the run identity in every checkpoint
         * still keeps another run's files from being pruned or resumed. */
        write_holder(fd);   /* still the sign that a run began (jobs/slurm-train.sbatch reads it) */
        close(fd);
        dpt_log_warn("--checkpoint-dir %s: its file system does not lock files (flock: %s); continuing without "
                     "the lock, so nothing stops a second run from checkpointing here at the same time",
                     dir, strerror(e));
        return DPT_OK;
    }
    write_holder(fd);
    *lock_fd = fd;
    return DPT_OK;
}

void dpt_ckptdir_unlock(int *lock_fd)
{
    if (*lock_fd >= 0) {
        flock(*lock_fd, LOCK_UN);
        close(*lock_fd);
    }
    *lock_fd = -1;
}

void dpt_ckptdir_path(const char *dir, int64_t global_step, char *buf, size_t len)
{
    snprintf(buf, len, "%s/ckpt-%09lld.h5", dir, (long long)global_step);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int dpt_ckptdir_list(const char *dir, int64_t *steps, int cap)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < cap) {
        /* exactly ckpt-<digits>.h5: temporary files (ckpt-....h5.tmp.<pid>) do not match */
        const char *p = e->d_name;
        if (strncmp(p, "ckpt-", 5) != 0)
            continue;
        p += 5;
        const char *q = p;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == p || q - p > 18 || strcmp(q, ".h5") != 0)
            continue;
        steps[n++] = strtoll(p, NULL, 10);
    }
    closedir(dp);
    qsort(steps, (size_t)n, sizeof *steps, cmp_desc);
    return n;
}

int dpt_ckptdir_scan(const char *dir, DptCkptdirEntry *e, int cap)
{
    int64_t steps[4096];
    int n = dpt_ckptdir_list(dir, steps, cap < 4096 ? cap : 4096);
    for (int i = 0; i < n; i++) {
        char path[4096];
        dpt_ckptdir_path(dir, steps[i], path, sizeof path);
        e[i].step = steps[i];
        e[i].readable = dpt_ckpt_read_run_id(path, e[i].run_id, sizeof e[i].run_id);
    }
    return n;
}

int dpt_ckptdir_remove_stale(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (strncmp(e->d_name, "ckpt-", 5) != 0 || !strstr(e->d_name, ".h5.tmp."))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) {
            dpt_log_warn("removed %s: the temporary file of a checkpoint write that did not finish", path);
            n++;
        }
    }
    closedir(dp);
    return n;
}

void dpt_ckptdir_prune(const char *dir, const char *run_id, int keep)
{
    DptCkptdirEntry e[4096];
    int n = dpt_ckptdir_scan(dir, e, 4096), mine = 0;
    for (int i = 0; i < n; i++) {
        if (!e[i].readable || strcmp(e[i].run_id, run_id) != 0 || ++mine <= keep)
            continue;
        char path[4096];
        dpt_ckptdir_path(dir, e[i].step, path, sizeof path);
        unlink(path);
    }
}

int dpt_ckptdir_set_aside(const char *dir, const char *run_id, int64_t step, char *moved_to, size_t len)
{
    if (!moved_to || len == 0)
        return -1;
    DptCkptdirEntry e[4096];
    int n = dpt_ckptdir_scan(dir, e, 4096), moved = 0;
    for (int i = 0; i < n; i++) {
        if (!e[i].readable || strcmp(e[i].run_id, run_id) != 0 || e[i].step <= step)
            continue;
        if (moved == 0) {
            int k;
            for (k = 1; k < 1000; k++) {
                snprintf(moved_to, len, "%s/abandoned-%09lld-%d", dir, (long long)step, k);
                if (mkdir(moved_to, 0755) == 0)
                    break;
                if (errno != EEXIST)
                    return -1;
            }
            if (k == 1000)
                return -1;
        }
        char from[4096], to[4096 + 32];
        dpt_ckptdir_path(dir, e[i].step, from, sizeof from);
        snprintf(to, sizeof to, "%s/ckpt-%09lld.h5", moved_to, (long long)e[i].step);
        if (rename(from, to) != 0)
            return -1;
        moved++;
    }
    return moved;
}
