#define _GNU_SOURCE /* sched_getaffinity, CPU_ISSET */
#include "dptrain/machine.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_CPUS = 1024 };   /* DptCpuMask's */

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

/* set as a list ("0-3,8") in buf; returns how many CPUs. */
static int format_set(const cpu_set_t *set, char *buf, size_t len)
{
    int n = 0;
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
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

int dpt_machine_cpus(char *buf, size_t len)
{
    cpu_set_t set;
    buf[0] = '\0';
    if (places_cpus(&set) == 0 && sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    return format_set(&set, buf, len);
}

void dpt_machine_mask(DptCpuMask *m)
{
    cpu_set_t set;
    memset(m, 0, sizeof *m);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE && c < MAX_CPUS; c++)
        if (CPU_ISSET(c, &set))
            m->bits[c / 8] |= (unsigned char)(1u << (c % 8));
}

int dpt_machine_user_binds(void)
{
    static const char *const vars[] = {"OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

static int has_cpu(const DptCpuMask *m, int c)
{
    return (m->bits[c / 8] >> (c % 8)) & 1;
}

/* A number from the CPU's topology in sysfs, or -1. */
static int topology(int cpu, const char *what)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, what);
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

typedef struct {
    int cpu, package, core, sibling;
} CpuPos;

static int cpu_pos_cmp(const void *pa, const void *pb)
{
    const CpuPos *a = pa, *b = pb;
    if (a->sibling != b->sibling)
        return a->sibling < b->sibling ? -1 : 1;
    if (a->package != b->package)
        return a->package < b->package ? -1 : 1;
    if (a->core != b->core)
        return a->core < b->core ? -1 : 1;
    return (a->cpu > b->cpu) - (a->cpu < b->cpu);
}

/* The CPUs of m, first one hardware thread of every core (by package and
 * core), then the second ones, and so on; returns how many. Without sysfs,
 * in CPU order. */
static int core_order(const DptCpuMask *m, int *out)
{
    CpuPos *pos = malloc(MAX_CPUS * sizeof *pos);
    if (!pos)
        return 0;
    int n = 0;
    for (int c = 0; c < MAX_CPUS; c++) {
        if (!has_cpu(m, c))
            continue;
        CpuPos p = {c, topology(c, "physical_package_id"), topology(c, "core_id"), 0};
        for (int i = 0; i < n; i++)
            p.sibling += p.core >= 0 && pos[i].package == p.package && pos[i].core == p.core;
        pos[n++] = p;
    }
    qsort(pos, (size_t)n, sizeof *pos, cpu_pos_cmp);
    for (int i = 0; i < n; i++)
        out[i] = pos[i].cpu;
    free(pos);
    return n;
}

int dpt_machine_pin(const DptCpuMask *masks, int node_size, int node_rank, int threads, char *buf, size_t len)
{
    buf[0] = '\0';
    if (dpt_machine_user_binds() || threads < 1)
        return 0;
    const DptCpuMask *mine = &masks[node_rank];
    int same = 1, disjoint = 1;
    for (int j = 0; j < node_size; j++) {
        if (j == node_rank)
            continue;
        same &= memcmp(&masks[j], mine, sizeof *mine) == 0;
        for (size_t b = 0; b < sizeof mine->bits; b++)
            disjoint &= (masks[j].bits[b] & mine->bits[b]) == 0;
    }
    if (!same && !disjoint)
        return 0;
    int *order = malloc(MAX_CPUS * sizeof *order);
    if (!order)
        return 0;
    int n = core_order(mine, order), first = same ? node_rank * threads : 0;
    if ((same ? node_size : 1) * threads > n) {
        free(order);
        return 0;   /* more threads than CPUs: the OS shares them out */
    }
    int ok = 1;
    /* Thread i to CPU order[first + i]. libgomp keeps this team's threads
     * for the later parallel regions (none is larger), so the pinning stays. */
#pragma omp parallel num_threads(threads) reduction(& : ok)
    {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(order[first + omp_get_thread_num()], &one);
        ok = omp_get_num_threads() == threads && pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
        /* read back what the thread now runs on */
        cpu_set_t got;
        ok &= ok && pthread_getaffinity_np(pthread_self(), sizeof got, &got) == 0 && CPU_EQUAL(&got, &one);
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    if (!ok) {
        /* back to the whole mask */
        for (int i = 0; i < n; i++)
            CPU_SET(order[i], &set);
#pragma omp parallel num_threads(threads)
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        free(order);
        return 0;
    }
    for (int i = 0; i < threads; i++)
        CPU_SET(order[first + i], &set);
    free(order);
    format_set(&set, buf, len);
    return threads;
}

void dpt_machine_host(char *buf, size_t len)
{
    if (gethostname(buf, len) != 0)
        snprintf(buf, len, "?");
    buf[len - 1] = '\0';
}
