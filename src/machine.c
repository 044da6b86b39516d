#define _GNU_SOURCE /* sched_getaffinity, CPU_ISSET */
#include "dptrain/machine.h"

#include <sched.h>
#include <stdio.h>
#include <unistd.h>

int dpt_machine_cpus(char *buf, size_t len)
{
    cpu_set_t set;
    buf[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set) != 0)
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
