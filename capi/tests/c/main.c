/*
 * The C test suite of libmultiproc: every function of include/multiproc.h and every status
 * it can return (MP_INTERNAL, a caught panic, through the library's test hook
 * mp_debug_panic, built with the `test-hooks` feature). Built and run by
 * capi/lib/tests/c_suite.rs with AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * Each test forks real processes where it needs a second party; alarm() is the watchdog.
 */
#include "check.h"

int failures = 0;
const char *current = "";

int main(void) {
    alarm(120); /* the watchdog: a hang fails the run */
    test_status();
    test_invalid();
    test_lock();
    test_lock_threads();
    test_named();
    test_rlock();
    test_semaphore();
    test_event();
    test_condition();
    test_barrier();
    test_shm();
    test_queue();
    test_corrupt();
    test_arrayqueue();
    test_broadcast();
    test_pipe();
    test_listener();
    test_fork();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("c suite: all checks passed\n");
    return 0;
}
