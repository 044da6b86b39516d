#include "dptrain/metrics.h"

#include <errno.h>
#include <string.h>

#include "dptrain/dist.h"

const char *const dpt_timer_names[DPT_T_COUNT] = {"data", "compute", "allreduce", "update", "eval", "checkpoint"};

void dpt_timer_start(DptTimers *t, DptTimer which) { t->started[which] = dpt_dist_time(); }

void dpt_timer_stop(DptTimers *t, DptTimer which) { t->total[which] += dpt_dist_time() - t->started[which]; }

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
