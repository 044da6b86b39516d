/* stop: repeated stop signals within the grace period are one request; a
 * repeat after it ends the process with the signal's default action; SIGUSR2
 * is counted as a checkpoint request and stops nothing. Each
 * case runs in a child process (raise() runs the handler before it returns,
 * so two signals cannot merge into one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dptrain/stop.h"

/* Child: install with `grace`, raise the signals in order; exit 10 + the
 * pending request's index in sigs (or 9 if none). */
static int run_child(double grace, const int *sigs, int n)
{
    pid_t pid = fork();
    if (pid == 0) {
        DptStopGuard g;
        dpt_stop_install(&g, grace, 0);
        for (int i = 0; i < n; i++)
            raise(sigs[i]);
        int req = dpt_stop_requested();
        dpt_stop_restore(&g);
        _exit(req == sigs[0] ? 10 : 9);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void test_no_request(void **state)
{
    (void)state;
    DptStopGuard g;
    dpt_stop_install(&g, 30.0, 0);
    assert_int_equal(dpt_stop_requested(), 0);
    dpt_stop_restore(&g);
}

static void test_repeats_within_grace_are_one_request(void **state)
{
    (void)state;
    const int sigs[5] = {SIGUSR1, SIGTERM, SIGTERM, SIGINT, SIGUSR1};
    int status = run_child(30.0, sigs, 5);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 10);   /* alive; the first signal is the request */
}

static void test_repeat_after_grace_kills(void **state)
{
    (void)state;
    const int sigs[2] = {SIGTERM, SIGINT};
    int status = run_child(0.0, sigs, 2);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGINT);
}

static void test_restore_gives_back_the_old_disposition(void **state)
{
    (void)state;
    struct sigaction before, after;
    sigaction(SIGUSR1, NULL, &before);
    DptStopGuard g;
    dpt_stop_install(&g, 30.0, 0);
    dpt_stop_restore(&g);
    sigaction(SIGUSR1, NULL, &after);
    assert_ptr_equal(before.sa_handler, after.sa_handler);
}

/* SIGUSR2 asks for a checkpoint: each one counts, none is a stop request,
 * and none ends the process, even after the grace period. */
static void test_usr2_counts_and_does_not_stop(void **state)
{
    (void)state;
    pid_t pid = fork();
    if (pid == 0) {
        DptStopGuard g;
        dpt_stop_install(&g, 0.0, 0);
        const unsigned before = dpt_stop_save_signals();
        for (int i = 0; i < 3; i++)
            raise(SIGUSR2);
        const int ok = dpt_stop_save_signals() - before == 3 && dpt_stop_requested() == 0;
        dpt_stop_restore(&g);
        _exit(ok ? 10 : 9);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 10);
}

/* main installs before MPI starts; the run's own install inside it keeps a
 * request that came in between, and its restore leaves main's handlers. */
static void test_nested_install_keeps_the_request(void **state)
{
    (void)state;
    DptStopGuard outer, inner;
    struct sigaction mid;
    dpt_stop_install(&outer, 30.0, 0);
    raise(SIGUSR1);
    dpt_stop_install(&inner, 5.0, 0);
    assert_int_equal(dpt_stop_requested(), SIGUSR1);
    dpt_stop_restore(&inner);
    sigaction(SIGUSR1, NULL, &mid);
    assert_true(mid.sa_handler != SIG_DFL);
    dpt_stop_restore(&outer);
    sigaction(SIGUSR1, NULL, &mid);
    assert_true(mid.sa_handler == SIG_DFL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_request),
        cmocka_unit_test(test_repeats_within_grace_are_one_request),
        cmocka_unit_test(test_repeat_after_grace_kills),
        cmocka_unit_test(test_restore_gives_back_the_old_disposition),
        cmocka_unit_test(test_nested_install_keeps_the_request),
        cmocka_unit_test(test_usr2_counts_and_does_not_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
