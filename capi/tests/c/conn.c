/* The C suite: pipes, listeners and clients, fork. */
#include "check.h"

/* Receives one message on `arg` (an mp_conn), waiting up to 5 s: (void *)1 if it came. */
static void *recv_in_thread(void *arg) {
    char m[16];
    size_t n = 0;
    mp_status st;
    /* A poll from the main thread may hold the connection for a moment: try again then. */
    while ((st = mp_conn_recv((mp_conn *)arg, m, sizeof m, &n, MS(5000))) == MP_INVALID) {
    }
    return (void *)(uintptr_t)(st == MP_OK && n == 4);
}

void test_pipe(void) {
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

    /* Freeing an end while another thread is inside a call on it is refused (that call would
     * run on freed memory); once the call is over, the free goes through. */
    OK(mp_pipe_new(true, &a, &b));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, recv_in_thread, b) == 0);
    /* Until a poll of `b` finds it in use, the thread is not yet inside its receive (which then
     * lasts until the message below: nothing else is sent to `b`). */
    struct timespec pause = {0, 1000 * 1000};
    int tries = 0;
    while (mp_conn_poll(b, 0) != MP_INVALID && tries++ < 5000) nanosleep(&pause, NULL);
    CHECK(tries < 5000);
    EXPECT(mp_conn_free(b), MP_INVALID);
    OK(mp_conn_send(a, "wake", 4, MS(5000)));
    void *got = NULL;
    CHECK(pthread_join(t, &got) == 0);
    CHECK(got == (void *)1);
    OK(mp_conn_free(b));
    OK(mp_conn_free(a));
}

void test_listener(void) {
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
void test_fork(void) {
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
