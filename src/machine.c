#define _GNU_SOURCE /* sched_getaffinity, CPU_ISSET */
#include "dptrain/machine.h"

#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

/* The CPUs of the OpenMP places, if the runtime made any (OMP_PLACES or
 * OMP_PROC_BIND set): it derives them from the mask the process started
 * with, and may already have narrowed the main thread's own mask to the
 * first place, so sched_getaffinity would see one CPU. Returns 0 if none. */
static int places_cpus(cpu_set_t *set)
{
    int n_places = omp_get_num_places(), n = 0;
    CPU_ZERO(set);
    for (int p = 0; p < n_places; p++) {
        int ids[CPU_SETSIZE];
        int k = omp_get_place_num_procs(p);
        if (k <= 0 || k > CPU_SETSIZE)
            continue;
        omp_get_place_proc_ids(p, ids);
        for (int i = 0; i < k; i++)
            if (ids[i] >= 0 && ids[i] < CPU_SETSIZE && !CPU_ISSET(ids[i], set)) {
                CPU_SET(ids[i], set);
                n++;
            }
    }
    return n;
}

int dpt_machine_cpus(char *buf, size_t len)
{
    cpu_set_t set;
    buf[0] = '\0';
    if (places_cpus(&set) == 0 && sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    int n = 0;
    size_t used = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set))
            e++;
        n += e - c + 1;
        if (used < len) {
            int w = e > c ? snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", c, e)
                          : snprintf(buf + used, len - used, "%s%d", used ? "," : "", c);
            used += (size_t)(w > 0 ? w : 0);
        }
        c = e;
    }
    return n;
}

void dpt_machine_host(char *buf, size_t len)
{
    if (gethostname(buf, len) != 0)
        snprintf(buf, len, "?");
    buf[len - 1] = '\0';
}
