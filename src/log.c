#include "dptrain/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int log_rank, log_world = 1, log_quiet, log_bar;
static double last_bar;

void dpt_log_init(int rank, int world_size, int quiet, int progress)
{
    log_rank = rank;
    log_world = world_size;
    log_quiet = quiet;
    log_bar = progress && !quiet && rank == 0 && isatty(STDERR_FILENO);
}

void dpt_log_info(const char *fmt, ...)
{
    if (log_rank != 0 || log_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void dpt_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (log_world > 1)
        fprintf(stderr, "[rank %d] ", log_rank);
    fprintf(stderr, "dptrain: warning: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void dpt_log_error(const char *msg)
{
    fprintf(stderr, "dptrain: error: %s\n", msg);
    fflush(stderr);
}

void dpt_log_progress(long epoch, long done, long total, double loss, double samples_per_s, double eta_s)
{
    if (!log_bar)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    if (done >= total) {
        fprintf(stderr, "\r%-100s\r", "");
        return;
    }
    if (now - last_bar < 0.1)
        return;
    last_bar = now;
    int width = 30, fill = total > 0 ? (int)((double)width * (double)done / (double)total) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    long t = eta_s > 0 && eta_s < 1e9 ? (long)(eta_s + 0.5) : 0;
    fprintf(stderr, "\repoch %ld [%s] %ld/%ld loss %.4f %.0f/s eta %ldh%02ldm%02lds ", epoch, bar, done, total, loss,
            samples_per_s, t / 3600, t / 60 % 60, t % 60);
    fflush(stderr);
}
