/* The C suite: status, argument checks, locks, semaphores, events, conditions, barriers. */
#include "check.h"

#ifdef MP_TEST_HOOKS
/* The test hook of the `test-hooks` feature: panics inside the library's boundary. */
mp_status mp_debug_panic(void);
#endif

void test_status(void) {
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
void test_invalid(void) {
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

void test_lock(void) {
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
void test_lock_threads(void) {
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

void test_named(void) {
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

void test_rlock(void) {
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

void test_semaphore(void) {
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

void test_event(void) {
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

void test_condition(void) {
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

void test_barrier(void) {
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
