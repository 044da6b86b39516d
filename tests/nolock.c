/*
 * Preloaded (LD_PRELOAD) by tests/ckpt_recovery.sh into one dptrain run:
 * flock() fails as it does on a file system without locks (Lustre mounted
 * noflock answers ENOSYS; NFS without its lock daemon, ENOLCK), with the
 * errno DPT_TEST_FLOCK_ERRNO names (default ENOSYS).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/file.h>

int flock(int fd, int operation)
{
    (void)fd;
    (void)operation;
    const char *e = getenv("DPT_TEST_FLOCK_ERRNO");
    errno = e && atoi(e) > 0 ? atoi(e) : ENOSYS;
    return -1;
}
