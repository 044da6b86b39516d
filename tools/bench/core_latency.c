/*
 * How far apart two cores are: the round trip of one cache line between a
 * thread bound to core A and one bound to core B (each waits for the
 * other's write, then writes), in ns, the median of 15 runs of 20,000 round
 * trips. Cores that share a cache answer in tens of ns; cores on different
 * chiplets or sockets (separate L3s) in hundreds. On a virtual machine the
 * answer can change while it runs: the host moves the virtual CPUs
 * (2-core AMD EPYC VM, 2026-11-29: 61-75 ns at one time, 331-355 ns at
 * another), and every figure that shares data between threads or ranks
 * changes with it. tools/bench/bench prints it before and after its rows.
 * Usage: core_latency [A B] (default: the first two CPUs this process may
 * use).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

enum { TRIPS = 20000, RUNS = 15 };

static _Alignas(64) atomic_long line;
static int cpu_b;

static int bind_to(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

/* Core B's side: answer every odd value with the next even one (even if
 * it could not bind, so that core A never waits for nothing). */
static void *answer(void *arg)
{
    (void)arg;
    const int unbound = bind_to(cpu_b) != 0;
    for (long i = 0; i < (long)TRIPS * RUNS; i++) {
        while (atomic_load_explicit(&line, memory_order_acquire) != 2 * i + 1)
            ;
        atomic_store_explicit(&line, 2 * i + 2, memory_order_release);
    }
    return unbound ? (void *)1 : NULL;
}

int main(int argc, char **argv)
{
    int cpu_a = -1;
    cpu_b = -1;
    cpu_set_t mine;
    CPU_ZERO(&mine);
    sched_getaffinity(0, sizeof mine, &mine);
    if (argc == 3) {
        cpu_a = atoi(argv[1]);
        cpu_b = atoi(argv[2]);
    } else if (argc == 1) {
        for (int c = 0; c < CPU_SETSIZE && cpu_b < 0; c++)
            if (CPU_ISSET(c, &mine))
                *(cpu_a < 0 ? &cpu_a : &cpu_b) = c;
    } else {
        fprintf(stderr, "usage: core_latency [cpu_a cpu_b]\n");
        return 2;
    }
    const int ok_a = cpu_a >= 0 && cpu_a < CPU_SETSIZE && CPU_ISSET(cpu_a, &mine);
    const int ok_b = cpu_b >= 0 && cpu_b < CPU_SETSIZE && CPU_ISSET(cpu_b, &mine);
    if (!ok_a || !ok_b || cpu_a == cpu_b) {
        fprintf(stderr, "core_latency: needs two different CPUs this process may use (got %d and %d)\n", cpu_a, cpu_b);
        return 2;
    }
    /* B's thread first, while this one may still run anywhere it may */
    pthread_t t;
    if (pthread_create(&t, NULL, answer, NULL) != 0) {
        fprintf(stderr, "core_latency: cannot start a thread\n");
        return 1;
    }
    (void)bind_to(cpu_a);
    double ns[RUNS];
    long v = 0;
    for (int r = 0; r < RUNS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < TRIPS; i++, v += 2) {
            atomic_store_explicit(&line, v + 1, memory_order_release);
            while (atomic_load_explicit(&line, memory_order_acquire) != v + 2)
                ;
        }
        ns[r] = (bench_now() - t0) * 1e9 / TRIPS;
    }
    void *bad;
    pthread_join(t, &bad);
    if (bad) {
        fprintf(stderr, "core_latency: cannot bind a thread to CPU %d\n", cpu_b);
        return 1;
    }
    printf("cores %d and %d: cache-line round trip %.0f ns (median of %d x %d)\n", cpu_a, cpu_b,
           bench_median(ns, RUNS), RUNS, TRIPS);
    return 0;
}
