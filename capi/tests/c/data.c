/* The C suite: shared memory, queues, array queues, broadcasts. */
#include "check.h"

void test_shm(void) {
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

void test_queue(void) {
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
void test_corrupt(void) {
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

void test_arrayqueue(void) {
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

void test_broadcast(void) {
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
