/*
 * machine: pinning the OpenMP threads nobody placed. Each case reads back,
 * from inside every thread, the CPUs the operating system lets it run on.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include "dptrain/machine.h"

static DptCpuMask whole;   /* the process's mask at the start */
static int n_whole;

static int setup(void **state)
{
    (void)state;
    /* our rule reads these; the runtime read them at start-up already */
    unsetenv("OMP_PROC_BIND");
    unsetenv("OMP_PLACES");
    unsetenv("GOMP_CPU_AFFINITY");
    dpt_machine_mask(&whole);
    n_whole = 0;
    for (int c = 0; c < 1024; c++)
        n_whole += (whole.bits[c / 8] >> (c % 8)) & 1;
    return 0;
}

/* Every thread of a team of `threads` back on the whole mask. */
static void unpin(int threads)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 0; c < 1024; c++)
        if ((whole.bits[c / 8] >> (c % 8)) & 1)
            CPU_SET(c, &set);
#pragma omp parallel num_threads(threads)
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The one CPU each thread of the team may run on (-1: more than one). */
static void team_cpus(int threads, int *cpu)
{
#pragma omp parallel num_threads(threads)
    {
        cpu_set_t got;
        int i = omp_get_thread_num();
        cpu[i] = -1;
        if (pthread_getaffinity_np(pthread_self(), sizeof got, &got) == 0 && CPU_COUNT(&got) == 1)
            for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &got))
                    cpu[i] = c;
    }
}

static void test_one_rank_pins_each_thread_to_its_cpu(void **state)
{
    (void)state;
    int threads = n_whole < 2 ? n_whole : 2, cpu[2];
    char list[64];
    assert_int_equal(dpt_machine_pin(&whole, 1, 0, threads, list, sizeof list), threads);
    team_cpus(threads, cpu);
    for (int i = 0; i < threads; i++) {
        assert_true(cpu[i] >= 0);
        assert_true((whole.bits[cpu[i] / 8] >> (cpu[i] % 8)) & 1);
    }
    if (threads == 2)
        assert_int_not_equal(cpu[0], cpu[1]);
    unpin(threads);
}

static void test_ranks_sharing_a_mask_take_different_cpus(void **state)
{
    (void)state;
    if (n_whole < 2)
        skip();
    DptCpuMask masks[2] = {whole, whole};
    char list[64];
    int cpu0, cpu1;
    assert_int_equal(dpt_machine_pin(masks, 2, 0, 1, list, sizeof list), 1);
    team_cpus(1, &cpu0);
    assert_int_equal(dpt_machine_pin(masks, 2, 1, 1, list, sizeof list), 1);
    team_cpus(1, &cpu1);
    assert_true(cpu0 >= 0 && cpu1 >= 0);
    assert_int_not_equal(cpu0, cpu1);
    unpin(1);
}

static void test_left_alone(void **state)
{
    (void)state;
    char list[64];
    /* more threads than the shared mask holds for all ranks */
    DptCpuMask masks[2] = {whole, whole};
    assert_int_equal(dpt_machine_pin(masks, 2, 0, n_whole, list, sizeof list), 0);
    assert_string_equal(list, "");
    /* masks that overlap without being the same: who would take what? */
    DptCpuMask part = whole;
    for (int c = 0; c < 1024; c++)
        if ((part.bits[c / 8] >> (c % 8)) & 1) {
            part.bits[c / 8] &= (unsigned char)~(1u << (c % 8));   /* drop the first CPU */
            break;
        }
    if (n_whole >= 2) {
        DptCpuMask mixed[2] = {whole, part};
        assert_int_equal(dpt_machine_pin(mixed, 2, 0, 1, list, sizeof list), 0);
    }
    /* the user chose the binding */
    setenv("OMP_PROC_BIND", "false", 1);
    assert_int_equal(dpt_machine_pin(&whole, 1, 0, 1, list, sizeof list), 0);
    unsetenv("OMP_PROC_BIND");
    setenv("OMP_PLACES", "cores", 1);
    assert_int_equal(dpt_machine_pin(&whole, 1, 0, 1, list, sizeof list), 0);
    unsetenv("OMP_PLACES");
    int cpu;
    team_cpus(1, &cpu);
    assert_true(n_whole == 1 || cpu == -1);   /* nothing was pinned */
}

static void test_disjoint_masks_each_use_their_own(void **state)
{
    (void)state;
    DptCpuMask masks[2] = {whole, {{0}}};
    masks[1].bits[127] = 0x80;   /* CPU 1023: another rank's */
    if ((whole.bits[127] >> 7) & 1)
        skip();
    char list[64];
    int cpu;
    assert_int_equal(dpt_machine_pin(masks, 2, 0, 1, list, sizeof list), 1);
    team_cpus(1, &cpu);
    assert_true(cpu >= 0 && ((whole.bits[cpu / 8] >> (cpu % 8)) & 1));
    unpin(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rank_pins_each_thread_to_its_cpu),
        cmocka_unit_test(test_ranks_sharing_a_mask_take_different_cpus),
        cmocka_unit_test(test_left_alone),
        cmocka_unit_test(test_disjoint_masks_each_use_their_own),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
