/*
 * The C test suite of libmultiproc: every function of include/multiproc.h and every status
 * it can return (MP_INTERNAL, a caught panic, through the library's test hook
 * mp_debug_panic, built with the `test-hooks` feature). Built and run by
 * capi/lib/tests/c_suite.rs with AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * Each test forks real processes where it needs a second party; alarm() is the watchdog.
 */
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

static int failures = 0;
static const char *current = "";

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
static const char *uname(const char *what) {
    static char buf[8][96];
    static int next = 0;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "mp-csuite-%d-%s", (int)getpid(), what);
    return b;
}

/* Waits for a child and returns its exit code (or 128 + signal). */
static int reap(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* fork(), with the child's failure count starting at zero. */
static pid_t spawn(void) {
    pid_t pid = fork();
    if (pid == 0) failures = 0;
    return pid;
}

/* In a child: exits 0 if every check there passed. */
static void child_done(void) { _exit(failures == 0 ? 0 : 1); }

#ifdef MP_TEST_HOOKS
/* The test hook of the `test-hooks` feature: panics inside the library's boundary. */
mp_status mp_debug_panic(void);
#endif

static void test_status(void) {
    current = "status";
#ifdef MP_TEST_HOOKS
    /* A Rust panic never crosses into C: it is MP_INTERNAL with its message, and the process
     * goes on. */
    EXPECT(mp_debug_panic(), MP_INTERNAL);
    CHECK(strstr(mp_last_error(), "mp_debug_panic was called") != NULL);
#endif
    CHECK(strcmp(mp_status_name(MP_OK), "MP_OK") == 0);
    CHECK(strcmp(mp_status_name(MP_INTERNAL), "MP_INTERNAL") == 0);
    CHECK(strcmp(mp_status_name(1234), "MP_UNKNOWN") == 0);
    CHECK(mp_version() == MP_VERSION);
    CHECK(mp_last_error() != NULL);
}

/* Invalid arguments are refused, never used: null handles, foreign pointers, null outs. */
static void test_invalid(void) {
    current = "invalid";
    EXPECT(mp_lock_acquire(NULL, 0), MP_INVALID);
    CHECK(strstr(mp_last_error(), "null") != NULL);
    uint64_t foreign[64] = {0};
    EXPECT(mp_lock_acquire((const mp_lock *)foreign, 0), MP_INVALID);
    EXPECT(mp_event_set((const mp_event *)foreign), MP_INVALID);
    /* Only the first 8 bytes are read: an 8-byte object is refused without reading past it
     * (AddressSanitizer would say so). */
    uint64_t small = 42;
    EXPECT(mp_queue_qsize((const mp_queue *)&small, NULL), MP_INVALID);
    EXPECT(mp_lock_new(NULL), MP_INVALID);
    EXPECT(mp_lock_create(NULL, NULL), MP_INVALID);
    mp_lock *l = NULL;
    EXPECT(mp_lock_create("bad name with spaces", &l), MP_INVALID);
    EXPECT(mp_lock_create("\xff\xfe", &l), MP_INVALID);
    /* A handle of one type is not one of another. */
    mp_event *e = NULL;
    OK(mp_event_new(&e));
    EXPECT(mp_lock_acquire((const mp_lock *)(const void *)e, 0), MP_INVALID);
    OK(mp_event_free(e));
    OK(mp_lock_free(NULL)); /* as free(NULL) */
}

static void test_lock(void) {
    current = "lock";
    mp_lock *l = NULL;
    OK(mp_lock_new(&l));
    OK(mp_lock_acquire(l, MP_FOREVER));
    EXPECT(mp_lock_acquire(l, 0), MP_INVALID); /* this thread holds it: would deadlock */
    OK(mp_lock_release(l));
    EXPECT(mp_lock_release(l), MP_INVALID);
    EXPECT(mp_lock_make_consistent(l), MP_INVALID);

    /* Held by a child: a timed acquire runs out, a try says not now. */
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = spawn();
    if (pid == 0) {
        OK(mp_lock_acquire(l, MP_FOREVER));
        char c = 1;
        CHECK(write(ready[1], &c, 1) == 1);
        usleep(300 * 1000);
        OK(mp_lock_release(l));
        child_done();
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    EXPECT(mp_lock_acquire(l, 0), MP_TIMEOUT);
    EXPECT(mp_lock_acquire(l, MS(20)), MP_TIMEOUT);
    OK(mp_lock_acquire(l, MP_FOREVER)); /* the child releases it */
    OK(mp_lock_release(l));
    CHECK(reap(pid) == 0);

    /* A holder that dies: the next acquire gets it with MP_OWNER_DIED. */
    pid = spawn();
    if (pid == 0) {
        OK(mp_lock_acquire(l, MP_FOREVER));
        _exit(failures == 0 ? 0 : 1); /* dies holding it */
    }
    CHECK(reap(pid) == 0);
    EXPECT(mp_lock_acquire(l, MS(1000)), MP_OWNER_DIED);
    OK(mp_lock_make_consistent(l));
    OK(mp_lock_release(l));
    OK(mp_lock_acquire(l, 0));
    OK(mp_lock_release(l));

    /* A holder that ends through exit() (thread-local destructors run) is a dead owner too. */
    pid = spawn();
    if (pid == 0) {
        OK(mp_lock_acquire(l, MP_FOREVER));
        exit(0);
    }
    CHECK(reap(pid) == 0);
    EXPECT(mp_lock_acquire(l, MS(1000)), MP_OWNER_DIED);
    OK(mp_lock_make_consistent(l));
    OK(mp_lock_release(l));

    /* Not made consistent: the lock is then unusable. */
    pid = spawn();
    if (pid == 0) {
        OK(mp_lock_acquire(l, MP_FOREVER));
        _exit(0);
    }
    CHECK(reap(pid) == 0);
    EXPECT(mp_lock_acquire(l, MS(1000)), MP_OWNER_DIED);
    OK(mp_lock_release(l));
    EXPECT(mp_lock_acquire(l, 0), MP_CORRUPT);
    OK(mp_lock_free(l));
    close(ready[0]);
    close(ready[1]);
}

struct thread_arg {
    mp_lock *lock;
    mp_status got;
};

static void *release_from_other_thread(void *p) {
    struct thread_arg *a = p;
    a->got = mp_lock_release(a->lock);
    return NULL;
}

static void *take_and_end(void *p) {
    struct thread_arg *a = p;
    a->got = mp_lock_acquire(a->lock, MP_FOREVER);
    return NULL; /* the thread ends holding it */
}

static void *take_and_wait(void *p) {
    struct thread_arg *a = p;
    a->got = mp_lock_acquire(a->lock, MP_FOREVER);
    usleep(200 * 1000);
    mp_lock_release(a->lock);
    return NULL;
}

/* A hold belongs to the thread that took it. */
static void test_lock_threads(void) {
    current = "lock_threads";
    mp_lock *l = NULL;
    OK(mp_lock_new(&l));
    OK(mp_lock_acquire(l, MP_FOREVER));
    struct thread_arg a = {l, MP_OK};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_from_other_thread, &a) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(a.got == MP_INVALID);
    OK(mp_lock_release(l));
    /* Freed while this thread holds it: released first, nothing leaks. */
    OK(mp_lock_acquire(l, MP_FOREVER));
    OK(mp_lock_free(l));

    /* A thread that ends holding a lock is a dead owner, as for a robust pthread mutex. */
    OK(mp_lock_new(&l));
    a.lock = l;
    CHECK(pthread_create(&t, NULL, take_and_end, &a) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(a.got == MP_OK);
    EXPECT(mp_lock_acquire(l, MS(1000)), MP_OWNER_DIED);
    OK(mp_lock_make_consistent(l));
    OK(mp_lock_release(l));

    /* A handle another thread holds the lock through cannot be freed under it. */
    CHECK(pthread_create(&t, NULL, take_and_wait, &a) == 0);
    usleep(50 * 1000);
    EXPECT(mp_lock_free(l), MP_INVALID);
    CHECK(pthread_join(t, NULL) == 0);
    OK(mp_lock_free(l));
}

static void test_named(void) {
    current = "named";
    const char *n = uname("lock");
    mp_lock *a = NULL, *b = NULL, *c = NULL;
    OK(mp_lock_create(n, &a));
    EXPECT(mp_lock_create(n, &c), MP_EXISTS);
    OK(mp_lock_open(n, 0, &b));
    OK(mp_lock_acquire(a, MP_FOREVER));
    EXPECT(mp_lock_acquire(b, 0), MP_INVALID); /* same lock, same thread */
    OK(mp_lock_release(a));
    mp_event *e = NULL;
    EXPECT(mp_event_open(n, 0, &e), MP_MISMATCH); /* a lock is not an event */
    OK(mp_lock_free(b));
    OK(mp_lock_free(a)); /* the creator's handle removes the name */
    EXPECT(mp_lock_open(n, 0, &b), MP_NOT_FOUND);
    EXPECT(mp_lock_open(uname("never"), MS(20), &b), MP_NOT_FOUND);

    /* Every kind opens by name. */
    mp_rlock *r1, *r2;
    OK(mp_rlock_create(uname("rlock"), &r1));
    OK(mp_rlock_open(uname("rlock"), 0, &r2));
    OK(mp_rlock_free(r2));
    OK(mp_rlock_free(r1));
    mp_semaphore *s1, *s2;
    OK(mp_semaphore_create(uname("sem"), 2, &s1));
    OK(mp_semaphore_open(uname("sem"), 0, &s2));
    EXPECT(mp_bounded_semaphore_open(uname("sem"), 0, &s2), MP_MISMATCH);
    OK(mp_semaphore_acquire(s2, 0));
    uint32_t v = 0;
    OK(mp_semaphore_value(s1, &v));
    CHECK(v == 1);
    OK(mp_semaphore_free(s2));
    OK(mp_semaphore_free(s1));
    OK(mp_bounded_semaphore_create(uname("bsem"), 1, &s1));
    OK(mp_bounded_semaphore_open(uname("bsem"), 0, &s2));
    EXPECT(mp_semaphore_release(s2), MP_INVALID); /* bounded through the opened handle too */
    OK(mp_semaphore_free(s2));
    EXPECT(mp_semaphore_open(uname("bsem"), 0, &s2), MP_MISMATCH);
    OK(mp_semaphore_free(s1));
    mp_event *e1, *e2;
    OK(mp_event_create(uname("event"), &e1));
    OK(mp_event_open(uname("event"), 0, &e2));
    OK(mp_event_set(e1));
    OK(mp_event_wait(e2, 0));
    OK(mp_event_free(e2));
    OK(mp_event_free(e1));
    mp_condition *c1, *c2;
    OK(mp_condition_create(uname("cond"), &c1));
    OK(mp_condition_open(uname("cond"), 0, &c2));
    OK(mp_condition_free(c2));
    OK(mp_condition_free(c1));
    mp_barrier *b1, *b2;
    OK(mp_barrier_create(uname("barrier"), 1, &b1));
    OK(mp_barrier_open(uname("barrier"), 0, &b2));
    uint32_t idx = 7;
    OK(mp_barrier_wait(b2, MP_FOREVER, &idx));
    CHECK(idx == 0);
    OK(mp_barrier_free(b2));
    OK(mp_barrier_free(b1));
}

static void test_rlock(void) {
    current = "rlock";
    mp_rlock *r = NULL;
    OK(mp_rlock_new(&r));
    OK(mp_rlock_acquire(r, MP_FOREVER));
    OK(mp_rlock_acquire(r, 0));
    OK(mp_rlock_acquire(r, MS(10)));
    pid_t pid = spawn();
    if (pid == 0) {
        EXPECT(mp_rlock_acquire(r, MS(20)), MP_TIMEOUT); /* the parent holds it */
        EXPECT(mp_rlock_release(r), MP_INVALID);
        child_done();
    }
    CHECK(reap(pid) == 0);
    OK(mp_rlock_release(r));
    OK(mp_rlock_release(r));
    OK(mp_rlock_release(r));
    EXPECT(mp_rlock_release(r), MP_INVALID);
    EXPECT(mp_rlock_make_consistent(r), MP_INVALID);
    pid = spawn();
    if (pid == 0) {
        OK(mp_rlock_acquire(r, MP_FOREVER));
        _exit(0);
    }
    CHECK(reap(pid) == 0);
    EXPECT(mp_rlock_acquire(r, MS(1000)), MP_OWNER_DIED);
    OK(mp_rlock_make_consistent(r));
    OK(mp_rlock_release(r));
    OK(mp_rlock_free(r));
}

static void test_semaphore(void) {
    current = "semaphore";
    mp_semaphore *s = NULL;
    OK(mp_semaphore_new(1, &s));
    OK(mp_semaphore_acquire(s, MP_FOREVER));
    EXPECT(mp_semaphore_acquire(s, 0), MP_TIMEOUT);
    EXPECT(mp_semaphore_acquire(s, MS(10)), MP_TIMEOUT);
    pid_t pid = spawn();
    if (pid == 0) {
        usleep(50 * 1000);
        OK(mp_semaphore_release(s)); /* any process may release */
        child_done();
    }
    OK(mp_semaphore_acquire(s, MS(5000)));
    CHECK(reap(pid) == 0);
    OK(mp_semaphore_release(s));
    OK(mp_semaphore_release(s)); /* a plain semaphore may pass its start */
    uint32_t v = 0;
    OK(mp_semaphore_value(s, &v));
    CHECK(v == 2);
    EXPECT(mp_semaphore_value(s, NULL), MP_INVALID);
    OK(mp_semaphore_free(s));

    EXPECT(mp_semaphore_new(UINT32_MAX, &s), MP_INVALID); /* over INT32_MAX */
    OK(mp_bounded_semaphore_new(1, &s));
    EXPECT(mp_semaphore_release(s), MP_INVALID); /* past its bound */
    OK(mp_semaphore_acquire(s, 0));
    OK(mp_semaphore_release(s));
    OK(mp_semaphore_free(s));
}

static void test_event(void) {
    current = "event";
    mp_event *e = NULL;
    OK(mp_event_new(&e));
    bool set = true;
    OK(mp_event_is_set(e, &set));
    CHECK(!set);
    EXPECT(mp_event_wait(e, 0), MP_TIMEOUT);
    EXPECT(mp_event_wait(e, MS(10)), MP_TIMEOUT);
    pid_t pid = spawn();
    if (pid == 0) {
        usleep(30 * 1000);
        OK(mp_event_set(e));
        child_done();
    }
    OK(mp_event_wait(e, MP_FOREVER));
    CHECK(reap(pid) == 0);
    OK(mp_event_is_set(e, &set));
    CHECK(set);
    OK(mp_event_clear(e));
    OK(mp_event_is_set(e, &set));
    CHECK(!set);
    EXPECT(mp_event_is_set(e, NULL), MP_INVALID);
    OK(mp_event_free(e));
}

static void test_condition(void) {
    current = "condition";
    mp_condition *c = NULL;
    mp_shm *flag = NULL;
    OK(mp_condition_new(&c));
    OK(mp_shm_new(sizeof(int), &flag));
    volatile int *ready = NULL;
    OK(mp_shm_data(flag, (void **)&ready, NULL));
    EXPECT(mp_condition_wait(c, 0), MP_INVALID); /* not held */
    EXPECT(mp_condition_notify(c, 1, NULL), MP_INVALID);
    EXPECT(mp_condition_release(c), MP_INVALID);
    EXPECT(mp_condition_make_consistent(c), MP_INVALID);
    OK(mp_condition_acquire(c, MP_FOREVER));
    size_t woken = 99;
    OK(mp_condition_notify_all(c, &woken));
    CHECK(woken == 0);
    EXPECT(mp_condition_wait(c, MS(10)), MP_TIMEOUT);
    OK(mp_condition_release(c)); /* held again after the timeout */

    pid_t pid = spawn();
    if (pid == 0) {
        OK(mp_condition_acquire(c, MP_FOREVER));
        while (!*ready) {
            mp_status st = mp_condition_wait(c, MS(5000));
            if (st != MP_OK) {
                EXPECT(st, MP_OK);
                break;
            }
        }
        OK(mp_condition_release(c));
        child_done();
    }
    usleep(30 * 1000);
    OK(mp_condition_acquire(c, MS(5000)));
    *ready = 1;
    OK(mp_condition_notify(c, 1, &woken));
    OK(mp_condition_release(c));
    CHECK(reap(pid) == 0);

    /* The lock's owner died: the next acquire says so and holds it. */
    pid = spawn();
    if (pid == 0) {
        OK(mp_condition_acquire(c, MP_FOREVER));
        _exit(0);
    }
    CHECK(reap(pid) == 0);
    EXPECT(mp_condition_acquire(c, MS(1000)), MP_OWNER_DIED);
    OK(mp_condition_make_consistent(c));
    OK(mp_condition_release(c));
    OK(mp_condition_free(c));
    OK(mp_shm_free(flag));
}

static void test_barrier(void) {
    current = "barrier";
    mp_barrier *b = NULL;
    EXPECT(mp_barrier_new(0, &b), MP_INVALID);
    OK(mp_barrier_new(2, &b));
    uint32_t parties = 0, waiting = 9;
    bool broken = true;
    OK(mp_barrier_state(b, &parties, &waiting, &broken));
    CHECK(parties == 2 && waiting == 0 && !broken);
    pid_t pid = spawn();
    if (pid == 0) {
        uint32_t i = 9;
        OK(mp_barrier_wait(b, MS(5000), &i));
        CHECK(i < 2);
        child_done();
    }
    uint32_t i = 9;
    OK(mp_barrier_wait(b, MS(5000), &i));
    CHECK(i < 2);
    CHECK(reap(pid) == 0);
    /* Alone, the wait runs out and breaks the barrier. */
    EXPECT(mp_barrier_wait(b, MS(20), NULL), MP_TIMEOUT);
    OK(mp_barrier_state(b, NULL, NULL, &broken));
    CHECK(broken);
    EXPECT(mp_barrier_wait(b, 0, NULL), MP_BROKEN);
    OK(mp_barrier_reset(b));
    OK(mp_barrier_state(b, NULL, NULL, &broken));
    CHECK(!broken);
    OK(mp_barrier_abort(b));
    EXPECT(mp_barrier_wait(b, MP_FOREVER, NULL), MP_BROKEN);
    OK(mp_barrier_free(b));
}

static void test_shm(void) {
    current = "shm";
    mp_shm *s = NULL;
    EXPECT(mp_shm_new(0, &s), MP_INVALID);
    OK(mp_shm_new(4096, &s));
    unsigned char *p = NULL;
    size_t len = 0;
    OK(mp_shm_data(s, (void **)&p, &len));
    CHECK(p != NULL && len == 4096 && p[100] == 0);
    pid_t pid = spawn();
    if (pid == 0) {
        memcpy(p, "hello", 6);
        child_done();
    }
    CHECK(reap(pid) == 0);
    CHECK(strcmp((char *)p, "hello") == 0);
    EXPECT(mp_shm_unlink(s), MP_NOT_FOUND); /* anonymous: no name */
    OK(mp_shm_free(s));

    const char *n = uname("shm");
    mp_shm *a = NULL, *b = NULL;
    OK(mp_shm_create(n, 64, &a));
    OK(mp_shm_open(n, 0, &b));
    unsigned char *pa, *pb;
    OK(mp_shm_data(a, (void **)&pa, NULL));
    OK(mp_shm_data(b, (void **)&pb, &len));
    CHECK(len == 64);
    pa[3] = 42;
    CHECK(pb[3] == 42);
    OK(mp_shm_unlink(a));
    EXPECT(mp_shm_unlink(a), MP_NOT_FOUND);
    EXPECT(mp_shm_open(n, 0, &b), MP_NOT_FOUND);
    OK(mp_shm_free(a));
    OK(mp_shm_free(b));
    size_t removed = 99;
    OK(mp_shm_clean(&removed));
    CHECK(removed != 99);
    EXPECT(mp_shm_clean(NULL), MP_INVALID);
}

static void test_queue(void) {
    current = "queue";
    mp_queue *q = NULL;
    OK(mp_queue_new(2, 0, &q));
    char buf[64];
    size_t len = 0;
    EXPECT(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_EMPTY);
    EXPECT(mp_queue_get(q, buf, sizeof buf, &len, MS(10)), MP_TIMEOUT);
    OK(mp_queue_put(q, "one", 3, MP_FOREVER));
    OK(mp_queue_put(q, "second", 6, 0));
    EXPECT(mp_queue_put(q, "x", 1, 0), MP_FULL); /* maxsize 2 */
    EXPECT(mp_queue_put(q, "x", 1, MS(10)), MP_TIMEOUT);
    size_t n = 0;
    OK(mp_queue_qsize(q, &n));
    CHECK(n == 2);
    OK(mp_queue_get(q, buf, sizeof buf, &len, MP_FOREVER));
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
    /* Too small a buffer: the size is told and the message kept. */
    EXPECT(mp_queue_get(q, buf, 2, &len, 0), MP_TOO_LARGE);
    CHECK(len == 6);
    EXPECT(mp_queue_get(q, NULL, 0, &len, 0), MP_TOO_LARGE);
    OK(mp_queue_get(q, buf, sizeof buf, &len, 0));
    CHECK(len == 6 && memcmp(buf, "second", 6) == 0);
    OK(mp_queue_put(q, NULL, 0, 0)); /* an empty message */
    OK(mp_queue_get(q, buf, sizeof buf, &len, 0));
    CHECK(len == 0);
    EXPECT(mp_queue_put(q, NULL, 5, 0), MP_INVALID);
    EXPECT(mp_queue_put(q, "x", SIZE_MAX, 0), MP_TOO_LARGE); /* refused before any read */
    /* Bad arguments to a get cost no message: they are refused before it is taken. */
    OK(mp_queue_put(q, "kept", 4, 0));
    EXPECT(mp_queue_get(q, buf, SIZE_MAX, &len, 0), MP_INVALID);
    EXPECT(mp_queue_get(q, buf, sizeof buf, NULL, 0), MP_INVALID);
    EXPECT(mp_queue_get(q, NULL, sizeof buf, &len, 0), MP_INVALID);
    OK(mp_queue_get(q, buf, sizeof buf, &len, 0));
    CHECK(len == 4 && memcmp(buf, "kept", 4) == 0);

    /* Across processes, in order. */
    pid_t pid = spawn();
    if (pid == 0) {
        for (int i = 0; i < 100; i++) OK(mp_queue_put(q, &i, sizeof i, MS(5000)));
        child_done();
    }
    for (int i = 0; i < 100; i++) {
        int v = -1;
        OK(mp_queue_get(q, &v, sizeof v, &len, MS(5000)));
        CHECK(v == i && len == sizeof v);
    }
    CHECK(reap(pid) == 0);
    OK(mp_queue_shutdown(q));
    EXPECT(mp_queue_put(q, "x", 1, 0), MP_CLOSED);
    EXPECT(mp_queue_get(q, buf, sizeof buf, &len, MP_FOREVER), MP_CLOSED);
    OK(mp_queue_free(q));

    /* A ring no segment can hold is refused at once. */
    EXPECT(mp_queue_new(0, SIZE_MAX, &q), MP_TOO_LARGE);
    EXPECT(mp_queue_create(uname("huge"), 0, SIZE_MAX - 4096, &q), MP_TOO_LARGE);
    /* A message that can never fit the ring. */
    OK(mp_queue_new(0, 4096, &q));
    static char big[8192];
    EXPECT(mp_queue_put(q, big, sizeof big, 0), MP_TOO_LARGE);
    OK(mp_queue_free(q));

    const char *name = uname("queue");
    mp_queue *a, *b;
    OK(mp_queue_create(name, 0, 0, &a));
    OK(mp_queue_open(name, 0, &b));
    OK(mp_queue_put(a, "named", 5, 0));
    OK(mp_queue_get(b, buf, sizeof buf, &len, MS(1000)));
    CHECK(len == 5);
    mp_arrayqueue *aq;
    EXPECT(mp_arrayqueue_open(name, 8, 0, &aq), MP_MISMATCH);
    OK(mp_queue_free(b));
    OK(mp_queue_free(a));
}

/* A queue whose ring a peer scribbled over: the next get says MP_CORRUPT, never crashes. */
static void test_corrupt(void) {
    current = "corrupt";
    const char *name = uname("scribbled");
    mp_queue *q;
    OK(mp_queue_create(name, 0, 4096, &q));
    OK(mp_queue_put(q, "payload", 7, 0));
    char path[160];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    /* The record's header (the 16 bytes before its payload) becomes 0xa5 bytes. */
    unsigned char *at = m == MAP_FAILED ? NULL : memmem(m, (size_t)st.st_size, "payload", 7);
    CHECK(at != NULL && at - m >= 16);
    if (at != NULL) memset(at - 16, 0xa5, 16);
    char buf[64];
    size_t len;
    EXPECT(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_CORRUPT);
    munmap(m, (size_t)st.st_size);
    close(fd);
    OK(mp_queue_free(q));
}

struct rec {
    uint32_t id;
    char tag[20];
};

static void test_arrayqueue(void) {
    current = "arrayqueue";
    mp_arrayqueue *q = NULL;
    EXPECT(mp_arrayqueue_new(0, 4, &q), MP_INVALID);
    EXPECT(mp_arrayqueue_new(MP_ARRAYQUEUE_MAX_RECORD + 1, 4, &q), MP_INVALID);
    EXPECT(mp_arrayqueue_new(sizeof(struct rec), 0, &q), MP_INVALID);
    OK(mp_arrayqueue_new(sizeof(struct rec), 2, &q));
    struct rec r = {1, "first"}, out;
    EXPECT(mp_arrayqueue_pop(q, &out, 0), MP_EMPTY);
    EXPECT(mp_arrayqueue_pop(q, &out, MS(10)), MP_TIMEOUT);
    OK(mp_arrayqueue_push(q, &r, 0));
    r.id = 2;
    OK(mp_arrayqueue_push(q, &r, MP_FOREVER));
    EXPECT(mp_arrayqueue_push(q, &r, 0), MP_FULL);
    EXPECT(mp_arrayqueue_push(q, &r, MS(10)), MP_TIMEOUT);
    EXPECT(mp_arrayqueue_push(q, NULL, 0), MP_INVALID);
    size_t len = 0, cap = 0, size = 0;
    OK(mp_arrayqueue_state(q, &len, &cap, &size));
    CHECK(len == 2 && cap == 2 && size == sizeof(struct rec));
    OK(mp_arrayqueue_pop(q, &out, MP_FOREVER));
    CHECK(out.id == 1 && strcmp(out.tag, "first") == 0);
    OK(mp_arrayqueue_pop(q, &out, 0));
    CHECK(out.id == 2);
    pid_t pid = spawn();
    if (pid == 0) {
        for (uint32_t i = 0; i < 50; i++) {
            struct rec x = {i, "child"};
            OK(mp_arrayqueue_push(q, &x, MS(5000)));
        }
        child_done();
    }
    for (uint32_t i = 0; i < 50; i++) {
        OK(mp_arrayqueue_pop(q, &out, MS(5000)));
        CHECK(out.id == i);
    }
    CHECK(reap(pid) == 0);
    OK(mp_arrayqueue_free(q));

    const char *name = uname("arrayqueue");
    mp_arrayqueue *a, *b;
    OK(mp_arrayqueue_create(name, 24, 8, &a));
    EXPECT(mp_arrayqueue_open(name, 20, 0, &b), MP_MISMATCH); /* same slot type, other size */
    EXPECT(mp_arrayqueue_open(name, 100, 0, &b), MP_MISMATCH);
    OK(mp_arrayqueue_open(name, 24, 0, &b));
    OK(mp_arrayqueue_push(a, &r, 0));
    OK(mp_arrayqueue_pop(b, &out, 0));
    CHECK(out.id == 2);
    OK(mp_arrayqueue_free(b));
    /* Without its size block, the queue was not made by mp_arrayqueue_create. */
    char rec[160];
    snprintf(rec, sizeof rec, "/%s.rec", name);
    CHECK(shm_unlink(rec) == 0);
    EXPECT(mp_arrayqueue_open(name, 24, 0, &b), MP_MISMATCH);
    OK(mp_arrayqueue_free(a));
}

static void test_broadcast(void) {
    current = "broadcast";
    mp_broadcast *b = NULL;
    OK(mp_broadcast_new(4, 64, &b));
    mp_subscriber *s = NULL, *old = NULL;
    OK(mp_broadcast_subscribe(b, false, &s));
    char buf[64];
    size_t len = 0;
    EXPECT(mp_subscriber_recv(s, buf, sizeof buf, &len, 0), MP_EMPTY);
    EXPECT(mp_subscriber_recv(s, buf, sizeof buf, &len, MS(10)), MP_TIMEOUT);
    uint64_t seq = 99;
    OK(mp_broadcast_publish(b, "hello", 5, MP_FOREVER, &seq));
    OK(mp_broadcast_subscribe(b, true, &old));
    EXPECT(mp_subscriber_recv(s, buf, 3, &len, 0), MP_TOO_LARGE);
    CHECK(len == 5);
    OK(mp_subscriber_recv(s, buf, sizeof buf, &len, 0));
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);
    OK(mp_subscriber_recv(old, buf, sizeof buf, &len, 0)); /* from the oldest */
    CHECK(len == 5);
    static char big[100];
    EXPECT(mp_broadcast_publish(b, big, sizeof big, 0, NULL), MP_TOO_LARGE);
    mp_broadcast *zero;
    EXPECT(mp_broadcast_new(0, 8, &zero), MP_INVALID);
    EXPECT(mp_broadcast_new(1, 0, &zero), MP_INVALID);
    EXPECT(mp_broadcast_create(uname("zero"), 0, 8, &zero), MP_INVALID);
    /* Lapped: 6 messages into 4 slots. */
    for (int i = 0; i < 6; i++) OK(mp_broadcast_publish(b, &i, sizeof i, 0, NULL));
    EXPECT(mp_subscriber_recv(s, buf, sizeof buf, &len, 0), MP_LAGGED);
    uint64_t missed = 0;
    OK(mp_subscriber_missed(s, &missed));
    CHECK(missed >= 2);
    OK(mp_subscriber_recv(s, buf, sizeof buf, &len, 0));
    /* Another process sees what is published. */
    mp_subscriber *t;
    OK(mp_broadcast_subscribe(b, false, &t));
    pid_t pid = spawn();
    if (pid == 0) {
        int v = -1;
        OK(mp_subscriber_recv(t, &v, sizeof v, &len, MS(5000)));
        CHECK(v == 77);
        child_done();
    }
    int v = 77;
    OK(mp_broadcast_publish(b, &v, sizeof v, MS(1000), NULL));
    CHECK(reap(pid) == 0);
    OK(mp_subscriber_free(t));
    OK(mp_subscriber_free(old));
    OK(mp_subscriber_free(s));
    OK(mp_broadcast_free(b));

    const char *name = uname("broadcast");
    mp_broadcast *x, *y;
    OK(mp_broadcast_create(name, 8, 32, &x));
    OK(mp_broadcast_open(name, 0, &y));
    OK(mp_broadcast_free(y));
    OK(mp_broadcast_free(x));
}

static void test_pipe(void) {
    current = "pipe";
    mp_conn *a = NULL, *b = NULL;
    EXPECT(mp_pipe_new(true, NULL, &b), MP_INVALID);
    OK(mp_pipe_new(true, &a, &b));
    EXPECT(mp_conn_set_wait(a, 7), MP_INVALID);
    OK(mp_conn_set_wait(a, MP_WAIT_SPIN));
    OK(mp_conn_set_wait(a, MP_WAIT_PARK));
    OK(mp_conn_set_wait(a, MP_WAIT_ADAPTIVE));
    char buf[64];
    size_t len = 0;
    EXPECT(mp_conn_poll(b, 0), MP_EMPTY);
    EXPECT(mp_conn_poll(b, MS(10)), MP_TIMEOUT);
    EXPECT(mp_conn_recv(b, buf, sizeof buf, &len, 0), MP_EMPTY);
    EXPECT(mp_conn_recv(b, buf, sizeof buf, &len, MS(10)), MP_TIMEOUT);
    OK(mp_conn_send(a, "ping", 4, MP_FOREVER));
    OK(mp_conn_poll(b, 0));
    EXPECT(mp_conn_recv(b, buf, 2, &len, 0), MP_TOO_LARGE);
    CHECK(len == 4);
    OK(mp_conn_poll(b, 0)); /* the kept message counts */
    OK(mp_conn_recv(b, buf, sizeof buf, &len, 0));
    CHECK(len == 4 && memcmp(buf, "ping", 4) == 0);
    pid_t pid = spawn();
    if (pid == 0) {
        char m[64];
        size_t n;
        for (int i = 0; i < 100; i++) {
            OK(mp_conn_recv(b, m, sizeof m, &n, MS(5000)));
            OK(mp_conn_send(b, m, n, MS(5000)));
        }
        child_done();
    }
    for (int i = 0; i < 100; i++) {
        OK(mp_conn_send(a, &i, sizeof i, MS(5000)));
        int v = -1;
        OK(mp_conn_recv(a, &v, sizeof v, &len, MS(5000)));
        CHECK(v == i);
    }
    CHECK(reap(pid) == 0);
    OK(mp_conn_free(b));
    EXPECT(mp_conn_recv(a, buf, sizeof buf, &len, MS(1000)), MP_CLOSED);
    EXPECT(mp_conn_send(a, "x", 1, MS(1000)), MP_CLOSED);
    OK(mp_conn_free(a));

    OK(mp_pipe_new(false, &a, &b)); /* a receives, b sends */
    EXPECT(mp_conn_send(a, "x", 1, 0), MP_INVALID);
    EXPECT(mp_conn_send(b, NULL, 1, 0), MP_INVALID);
    int sent = 0;
    while (mp_conn_send(b, buf, sizeof buf, 0) == MP_OK) sent++;
    CHECK(sent > 0);
    EXPECT(mp_conn_send(b, buf, sizeof buf, 0), MP_FULL);
    EXPECT(mp_conn_send(b, buf, sizeof buf, MS(10)), MP_TIMEOUT);
    OK(mp_conn_free(a));
    OK(mp_conn_free(b));
}

static void test_listener(void) {
    current = "listener";
    char addr[128];
    snprintf(addr, sizeof addr, "abstract:%s", uname("listener"));
    mp_listener *l = NULL;
    EXPECT(mp_listener_bind("nonsense", NULL, 0, &l), MP_INVALID);
    EXPECT(mp_listener_bind("unix:/nonexistent-dir/x/y.sock", NULL, 0, &l), MP_OS);
    EXPECT(mp_listener_bind(addr, NULL, 5, &l), MP_INVALID); /* a null key with a length */
    char longpath[200];
    memset(longpath, 'x', sizeof longpath - 1);
    memcpy(longpath, "unix:/tmp/", 10);
    longpath[sizeof longpath - 1] = 0;
    EXPECT(mp_listener_bind(longpath, NULL, 0, &l), MP_INVALID);
    /* A regular file in the way of a unix address is left alone. */
    char file[128], fileaddr[160];
    snprintf(file, sizeof file, "/tmp/%s.txt", uname("not-a-socket"));
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    snprintf(fileaddr, sizeof fileaddr, "unix:%s", file);
    EXPECT(mp_listener_bind(fileaddr, NULL, 0, &l), MP_EXISTS);
    CHECK(access(file, F_OK) == 0);
    unlink(file);
    OK(mp_listener_bind(addr, (const uint8_t *)"key", 3, &l));
    mp_listener *l2;
    EXPECT(mp_listener_bind(addr, NULL, 0, &l2), MP_EXISTS);
    char got[128];
    size_t len = 0;
    OK(mp_listener_address(l, got, sizeof got, &len));
    CHECK(strcmp(got, addr) == 0 && len == strlen(addr));
    EXPECT(mp_listener_address(l, got, 4, &len), MP_TOO_LARGE);
    mp_conn *c = NULL;
    EXPECT(mp_listener_accept(l, 0, &c), MP_EMPTY);
    EXPECT(mp_listener_accept(l, MS(10), &c), MP_TIMEOUT);
    pid_t pid = spawn();
    if (pid == 0) {
        mp_conn *k = NULL;
        OK(mp_client_connect(addr, (const uint8_t *)"key", 3, MS(5000), &k));
        OK(mp_conn_send(k, "over a socket", 13, MS(5000)));
        char m[32];
        size_t n;
        OK(mp_conn_recv(k, m, sizeof m, &n, MS(5000)));
        CHECK(n == 2 && memcmp(m, "ok", 2) == 0);
        OK(mp_conn_free(k));
        /* The wrong key fails the handshake. */
        EXPECT(mp_client_connect(addr, (const uint8_t *)"nope", 4, MS(5000), &k), MP_MISMATCH);
        child_done();
    }
    EXPECT(mp_listener_accept(l, MS(5000), NULL), MP_INVALID); /* refused before accepting */
    OK(mp_listener_accept(l, MS(5000), &c));
    char m[32];
    OK(mp_conn_recv(c, m, sizeof m, &len, MS(5000)));
    CHECK(len == 13 && memcmp(m, "over a socket", 13) == 0);
    OK(mp_conn_send(c, "ok", 2, MS(5000)));
    mp_conn *bad = NULL;
    EXPECT(mp_listener_accept(l, MS(5000), &bad), MP_MISMATCH);
    CHECK(reap(pid) == 0);
    OK(mp_conn_free(c));
    OK(mp_listener_free(l));
    EXPECT(mp_client_connect(addr, NULL, 0, MS(200), &c), MP_NOT_FOUND);
    EXPECT(mp_client_connect("tcp:nohost", NULL, 0, 0, &c), MP_INVALID);

    /* TCP, with a timeout of 0: one short look, never an OS error. */
    OK(mp_listener_bind("tcp:127.0.0.1:0", NULL, 0, &l));
    OK(mp_listener_address(l, got, sizeof got, &len));
    mp_status st = mp_client_connect(got, NULL, 0, 0, &c);
    CHECK(st == MP_OK || st == MP_TIMEOUT);
    if (st == MP_OK) OK(mp_conn_free(c));
    OK(mp_listener_free(l));
}

/* Objects made before fork work in the child; a lock the parent holds is not the child's. */
static void test_fork(void) {
    current = "fork";
    mp_lock *l;
    mp_queue *q;
    OK(mp_lock_new(&l));
    OK(mp_queue_new(0, 0, &q));
    OK(mp_lock_acquire(l, MP_FOREVER));
    pid_t pid = spawn();
    if (pid == 0) {
        EXPECT(mp_lock_release(l), MP_INVALID); /* the parent's hold */
        EXPECT(mp_lock_acquire(l, MS(20)), MP_TIMEOUT);
        OK(mp_queue_put(q, "from child", 10, MS(1000)));
        OK(mp_lock_free(l)); /* forgets the parent's hold, releases nothing */
        OK(mp_queue_free(q));
        child_done();
    }
    CHECK(reap(pid) == 0);
    char buf[32];
    size_t len;
    OK(mp_queue_get(q, buf, sizeof buf, &len, MS(1000)));
    CHECK(len == 10);
    /* A child that ends through exit() leaves the parent's holds alone. */
    mp_condition *c;
    OK(mp_condition_new(&c));
    OK(mp_condition_acquire(c, MP_FOREVER));
    OK(mp_condition_acquire(c, MP_FOREVER));
    pid = spawn();
    if (pid == 0) exit(0);
    CHECK(reap(pid) == 0);
    EXPECT(mp_lock_acquire(l, 0), MP_INVALID); /* still held here: taking it again would deadlock */
    EXPECT(mp_condition_wait(c, MS(10)), MP_TIMEOUT);
    OK(mp_condition_release(c));
    OK(mp_condition_release(c));
    EXPECT(mp_condition_release(c), MP_INVALID);
    OK(mp_condition_free(c));
    /* A message kept for a too-small buffer is the parent's alone: never delivered twice. */
    OK(mp_queue_put(q, "kept for the parent", 19, 0));
    EXPECT(mp_queue_get(q, buf, 4, &len, 0), MP_TOO_LARGE);
    pid = spawn();
    if (pid == 0) {
        EXPECT(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_EMPTY);
        child_done();
    }
    CHECK(reap(pid) == 0);
    OK(mp_queue_get(q, buf, sizeof buf, &len, 0));
    CHECK(len == 19);
    OK(mp_lock_release(l)); /* still the parent's */
    OK(mp_lock_free(l));
    OK(mp_queue_free(q));
}

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
