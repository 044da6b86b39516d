#include "dptrain/stop.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

/* The stop signals, then SIGUSR2 (a checkpoint request). */
static const int stop_signals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
enum { N_SIGNALS = sizeof stop_signals / sizeof stop_signals[0] };
_Static_assert(N_SIGNALS == sizeof ((DptStopGuard *)0)->old / sizeof ((DptStopGuard *)0)->old[0],
               "DptStopGuard keeps one old disposition a signal");

/* Written only by the handler (after install); read by the step. */
static volatile sig_atomic_t requested;
static volatile sig_atomic_t first_s;      /* CLOCK_MONOTONIC seconds of the first request */
static volatile sig_atomic_t saves;        /* SIGUSR2 arrivals (the handlers block each other) */
static double grace;
static int announce_first;
static int installed;      /* handlers in place (by an outer dpt_stop_install) */

static long now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);   /* async-signal-safe (POSIX) */
    return (long)ts.tv_sec;
}

/* Async-signal-safe: clock_gettime, write, signal, raise only. */
static void on_signal(int sig)
{
    if (sig == SIGUSR2) {
        saves = saves + 1;
        return;
    }
    if (!requested) {
        requested = sig;
        first_s = (sig_atomic_t)now_s();
        if (announce_first) {
            static const char msg[] = "dptrain: stop requested: every rank stops after the next step and the state "
                                      "is checkpointed\n";
            ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
            (void)w;
        }
        return;
    }
    if ((double)(now_s() - (long)first_s) < grace)
        return;   /* the same request again */
    signal(sig, SIG_DFL);
    raise(sig);
}

void dpt_stop_install(DptStopGuard *g, double grace_s, int announce)
{
    grace = grace_s;
    announce_first = announce;
    g->nested = installed;
    if (installed)
        return;   /* an outer install (main's, before MPI starts) stays in charge; its request is kept */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_SIGNALS; i++)
        sigaddset(&sa.sa_mask, stop_signals[i]);
    requested = 0;
    saves = 0;
    for (int i = 0; i < N_SIGNALS; i++)
        sigaction(stop_signals[i], &sa, &g->old[i]);
    installed = 1;
}

void dpt_stop_restore(const DptStopGuard *g)
{
    if (g->nested)
        return;
    for (int i = 0; i < N_SIGNALS; i++)
        sigaction(stop_signals[i], &g->old[i], NULL);
    installed = 0;
}

int dpt_stop_requested(void)
{
    return requested;
}

unsigned dpt_stop_save_signals(void)
{
    return (unsigned)saves;
}
