/*
 * The crash net for HDF5 files. HDF5 1.10 does not check every structure it
 * reads: a damaged file can make the library itself read through a null or
 * wild pointer (found by fuzz_hdf5 in the local heap of a group and in a
 * compact dataset's bytes). Where we can test a structure before the library
 * trusts it, h5util does (dpt_h5_read_all); for the rest, this net turns a
 * crash inside libhdf5 into the usual one-line error naming the file, and a
 * status of 3 (input) or 4 (output), instead of a core dump. Whether a crash
 * is the library's is read from the stack: the first frame that lies in
 * either libhdf5 or our own code (libc's memcpy, zlib and the signal
 * trampoline do not count) decides. A crash in our own code is left to the
 * handler that was there before (Open MPI's, or the default).
 */
#define _GNU_SOURCE /* dl_iterate_phdr, RTLD_DEFAULT */
#include "h5util.h"

#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

#include "dptrain/data.h"

enum { NET_NSIG = 5, NET_FRAMES = 64 };
static const int net_signals[NET_NSIG] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static struct sigaction net_old[NET_NSIG];
static char net_file[1024];
static int net_writing;
static void (*net_fatal)(int status);
static int net_quiet;

/* The address ranges of the loaded segments of an object. */
typedef struct {
    uintptr_t at, lo, hi;
} Range;
static Range h5_range, own_range;

static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    Range *r = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + p->p_vaddr;
        if (a < lo) lo = a;
        if (a + p->p_memsz > hi) hi = a + p->p_memsz;
    }
    if (r->at >= lo && r->at < hi) {
        r->lo = lo;
        r->hi = hi;
        return 1;
    }
    return 0;
}

static int in_range(const Range *r, uintptr_t pc)
{
    return pc >= r->lo && pc < r->hi;
}

void dpt_h5_net_file(const char *path, int writing)
{
    size_t n = strlen(path);
    if (n >= sizeof net_file)
        n = sizeof net_file - 1;
    memcpy(net_file, path, n);
    net_file[n] = '\0';
    net_writing = writing;
}

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    default: return "SIGABRT";
    }
}

/* The stack's return addresses, by libgcc's unwinder itself (glibc's
 * backtrace is replaced by AddressSanitizer's, which follows frame pointers
 * only and stops at the signal frame). */
typedef struct {
    uintptr_t *pc;
    int n, cap;
} Frames;

static _Unwind_Reason_Code take_frame(struct _Unwind_Context *ctx, void *arg)
{
    Frames *f = arg;
    if (f->n == f->cap)
        return _URC_END_OF_STACK;
    f->pc[f->n++] = (uintptr_t)_Unwind_GetIP(ctx);
    return _URC_NO_REASON;
}

static int stack_frames(uintptr_t *pc, int cap)
{
    Frames f = {pc, 0, cap};
    _Unwind_Backtrace(take_frame, &f);
    return f.n;
}

/* Is the crash the library's? The frames from the handler's own up to the
 * signal trampoline are ours and skipped; after them, the first frame in
 * libhdf5 or in our code decides. */
static int library_crash(void)
{
    uintptr_t frames[NET_FRAMES];
    int n = stack_frames(frames, NET_FRAMES), i = 0;
    while (i < n && in_range(&own_range, frames[i]))
        i++;
    for (; i < n; i++) {
        uintptr_t pc = frames[i];
        if (in_range(&h5_range, pc))
            return 1;
        if (in_range(&own_range, pc))
            return 0;
    }
    return 0;
}

static void net_handler(int sig, siginfo_t *si, void *ctx)
{
    int k = 0;
    while (k < NET_NSIG - 1 && net_signals[k] != sig)
        k++;
    if (!library_crash()) {
        /* ours: the handler before decides; the default action is taken
         * by raising the signal again (pending until this returns) */
        sigaction(sig, &net_old[k], NULL);
        if (net_old[k].sa_flags & SA_SIGINFO) {
            if (net_old[k].sa_sigaction)
                net_old[k].sa_sigaction(sig, si, ctx);
        } else if (net_old[k].sa_handler == SIG_DFL) {
            raise(sig);
        } else if (net_old[k].sa_handler != SIG_IGN) {
            net_old[k].sa_handler(sig);
        }
        return;
    }
    /* write only: nothing else is safe here, and HDF5's state is lost */
    char msg[1400];
    size_t at = put(msg, 0, sizeof msg, "dptrain: error: ");
    at = put(msg, at, sizeof msg, net_file[0] ? net_file : "an HDF5 file");
    at = put(msg, at, sizeof msg, net_writing ? ": the HDF5 library crashed writing it (" : ": damaged file: the HDF5 library crashed reading it (");
    at = put(msg, at, sizeof msg, signal_name(sig));
    at = put(msg, at, sizeof msg, ")\n");
    if (!net_quiet) {
        ssize_t w = write(STDERR_FILENO, msg, at);
        (void)w;
    }
    int status = net_writing ? DPT_EOUTPUT : DPT_EINPUT;
    if (net_fatal)
        net_fatal(status);
    _exit(status);
}

void dpt_h5_net_default(void)
{
    for (int k = 0; k < NET_NSIG; k++)
        signal(net_signals[k], SIG_DFL);
}

int dpt_h5_net_install(void (*fatal)(int status), int quiet)
{
    static char alt[1 << 16];
    void *h5 = dlsym(RTLD_DEFAULT, "H5open");
    h5_range = (Range){(uintptr_t)h5, 0, 0};
    own_range = (Range){(uintptr_t)&dpt_h5_net_install, 0, 0};
    if (!h5 || !dl_iterate_phdr(find_object, &h5_range) || !dl_iterate_phdr(find_object, &own_range) ||
        h5_range.lo == own_range.lo)
        return 0;   /* HDF5 linked into our own object: no telling whose a crash is */
    uintptr_t warm[2];
    stack_frames(warm, 2);   /* the unwinder's first use (it may allocate) now, not in the handler */
    stack_t ss;   /* a stack for the handler (a stack overflow is a SIGSEGV too), unless one is there (ASan's) */
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_DISABLE)) {
        ss = (stack_t){.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
        sigaltstack(&ss, NULL);
    }
    net_fatal = fatal;
    net_quiet = quiet;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = net_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < NET_NSIG; k++)
        sigaction(net_signals[k], &sa, &net_old[k]);
    return 1;
}
