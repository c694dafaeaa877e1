/*
 * What every file of the C suite shares: the check macros, names unique to a run, and
 * forking helpers. The suite's files (sync.c, data.c, conn.c, main.c) are compiled together
 * by capi/lib/tests/c_suite.rs.
 */
#ifndef MP_SUITE_CHECK_H
#define MP_SUITE_CHECK_H

#define _GNU_SOURCE
#include "multiproc.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern int failures;
extern const char *current;

#define MS(n) ((uint64_t)(n) * 1000000u)

/* Checks that `call` returns `want`; on a mismatch prints both and this thread's message. */
#define EXPECT(call, want)                                                                  \
    do {                                                                                    \
        mp_status got_ = (call);                                                            \
        if (got_ != (want)) {                                                               \
            fprintf(stderr, "FAIL %s:%d [%s] %s: got %s, want %s (%s)\n", __FILE__, __LINE__, \
                    current, #call, mp_status_name(got_), mp_status_name(want),             \
                    mp_last_error());                                                       \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

#define OK(call) EXPECT(call, MP_OK)

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "FAIL %s:%d [%s] %s\n", __FILE__, __LINE__, current, #cond); \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* A name unique to this run. */
static inline const char *uname(const char *what) {
    static char buf[8][96];
    static int next = 0;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "mp-csuite-%d-%s", (int)getpid(), what);
    return b;
}

/* Waits for a child and returns its exit code (or 128 + signal). */
static inline int reap(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* fork(), with the child's failure count starting at zero. */
static inline pid_t spawn(void) {
    pid_t pid = fork();
    if (pid == 0) failures = 0;
    return pid;
}

/* In a child: exits 0 if every check there passed. */
static inline void child_done(void) { _exit(failures == 0 ? 0 : 1); }

/* The tests, one function each (sync.c, data.c, conn.c). */
void test_status(void);
void test_invalid(void);
void test_lock(void);
void test_lock_threads(void);
void test_named(void);
void test_rlock(void);
void test_semaphore(void);
void test_event(void);
void test_condition(void);
void test_barrier(void);
void test_shm(void);
void test_queue(void);
void test_corrupt(void);
void test_arrayqueue(void);
void test_broadcast(void);
void test_pipe(void);
void test_listener(void);
void test_fork(void);

#endif
