#include "dptrain/metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

const char *const dpt_timer_names[DPT_T_COUNT] = {"data",       "compute",          "allreduce",
                                                   "update",     "eval",             "checkpoint",
                                                   "forward_products", "weight_gradients", "input_gradients"};

double dpt_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dpt_timer_start(DptTimers *t, DptTimer which) { t->started[which] = dpt_clock(); }

void dpt_timer_stop(DptTimers *t, DptTimer which) { t->total[which] += dpt_clock() - t->started[which]; }

long dpt_metrics_page_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

double dpt_metrics_max_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* A JSON number, or null for NaN (a value that was not measured). */
static const char *json_number(char *buf, size_t len, double v)
{
    if (isfinite(v))
        snprintf(buf, len, "%.8g", v);
    else
        snprintf(buf, len, "null");
    return buf;
}

size_t dpt_metrics_json(const DptEpochRecord *r, char *buf, size_t len)
{
    char n[6][32], timing[1024];
    size_t used = 0;
    for (int i = 0; i < DPT_T_COUNT && used < sizeof timing; i++)
        used += (size_t)snprintf(timing + used, sizeof timing - used, "%s\"%s\":{\"min\":%.6f,\"mean\":%.6f,\"max\":%.6f}",
                                 i ? "," : "", dpt_timer_names[i], r->time[i][0], r->time[i][1], r->time[i][2]);
    int w = snprintf(buf, len,
                     "{\"epoch\":%lld,\"step\":%lld,\"train_loss\":%.8g,\"train_acc\":%.8g,\"train_eval_loss\":%s,"
                     "\"train_eval_acc\":%s,\"test_loss\":%s,\"test_acc\":%s,\"val_loss\":%s,\"val_acc\":%s,"
                     "\"samples_per_s\":%.3f,\"epoch_s\":%.6f,\"elapsed_s\":%.6f,\"lr\":%.8g,\"ranks\":%d,\"threads\":%d,"
                     "\"max_rss_mb\":%.1f,\"step_page_faults\":%ld,\"time\":{%s}}",
                     (long long)r->epoch, (long long)r->step, r->train_loss, r->train_acc,
                     json_number(n[0], sizeof n[0], r->train_eval_loss), json_number(n[1], sizeof n[1], r->train_eval_acc),
                     json_number(n[2], sizeof n[2], r->test_loss), json_number(n[3], sizeof n[3], r->test_acc),
                     json_number(n[4], sizeof n[4], r->val_loss), json_number(n[5], sizeof n[5], r->val_acc),
                     r->samples_per_s, r->epoch_s, r->elapsed_s, r->lr, r->ranks, r->threads, r->max_rss_mb,
                     r->step_page_faults, timing);
    return w > 0 ? (size_t)w : 0;
}

size_t dpt_metrics_timing_table(const double time[DPT_T_COUNT][3], char *buf, size_t len)
{
    static const struct {
        DptTimer t;
        const char *label;
    } rows[DPT_T_COUNT] = {{DPT_T_DATA, "data"},
                           {DPT_T_COMPUTE, "compute"},
                           {DPT_T_FORWARD, "  forward products"},
                           {DPT_T_WGRAD, "  weight gradients"},
                           {DPT_T_IGRAD, "  input gradients"},
                           {DPT_T_REDUCE, "allreduce"},
                           {DPT_T_UPDATE, "update"},
                           {DPT_T_EVAL, "eval"},
                           {DPT_T_CKPT, "checkpoint"}};
    size_t used = 0;
    for (int i = 0; i < DPT_T_COUNT && used < len; i++) {
        const double *v = time[rows[i].t];
        used += (size_t)snprintf(buf + used, len - used, "  %-20s %10.3f %10.3f %10.3f\n", rows[i].label, v[0], v[1],
                                 v[2]);
    }
    return used;
}

DptStatus dpt_metrics_open(DptMetricsFile *m, const char *path)
{
    memset(m, 0, sizeof *m);
    if (!path || !path[0])
        return DPT_OK;
    snprintf(m->path, sizeof m->path, "%s", path);
    m->fp = fopen(path, "w");
    if (!m->fp)
        return dpt_err(DPT_EOUTPUT, "--metrics %s: cannot create (%s)", path, strerror(errno));
    return DPT_OK;
}

DptStatus dpt_metrics_write(DptMetricsFile *m, const char *json)
{
    if (!m->fp)
        return DPT_OK;
    if (fprintf(m->fp, "%s\n", json) < 0 || fflush(m->fp) != 0)
        return dpt_err(DPT_EOUTPUT, "--metrics %s: write failed (%s)", m->path, strerror(errno));
    return DPT_OK;
}

void dpt_metrics_close(DptMetricsFile *m)
{
    if (m->fp)
        fclose(m->fp);
    m->fp = NULL;
}
