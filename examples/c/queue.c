/* A producer and a consumer in two processes, sharing a queue, a lock and a counter in
 * shared memory through libmultiproc. Build and run (from the repository root):
 *
 *   cargo build --release -p multiproc-c
 *   cc -std=c11 -Wall -Iinclude examples/c/queue.c target/release/libmultiproc.a \
 *      -lpthread -ldl -lm -lrt -lutil -o queue && ./queue
 */
#include "multiproc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS(n) ((uint64_t)(n) * 1000000u)

/* Every call returns a status; on failure, mp_last_error() says what happened. */
static void check(mp_status st, const char *what) {
    if (st != MP_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, mp_status_name(st), mp_last_error());
        exit(1);
    }
}

int main(void) {
    mp_queue *q;
    mp_lock *lock;
    mp_shm *counter;
    check(mp_queue_new(0, 0, &q), "queue");
    check(mp_lock_new(&lock), "lock");
    check(mp_shm_new(sizeof(long), &counter), "shared memory");
    long *total;
    check(mp_shm_data(counter, (void **)&total, NULL), "shared memory address");

    /* Objects made before fork() work in the child. */
    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 1; i <= 10; i++) {
            char msg[32];
            int n = snprintf(msg, sizeof msg, "item %ld", i);
            check(mp_queue_put(q, msg, (size_t)n, MP_FOREVER), "put");
            check(mp_lock_acquire(lock, MS(1000)), "acquire");
            *total += i; /* under the lock */
            check(mp_lock_release(lock), "release");
        }
        check(mp_queue_put(q, "done", 4, MP_FOREVER), "put");
        _exit(0);
    }

    char buf[64];
    size_t len;
    for (;;) {
        mp_status st = mp_queue_get(q, buf, sizeof buf, &len, MS(5000));
        if (st == MP_TIMEOUT) {
            fprintf(stderr, "nothing came for 5 s\n");
            return 1;
        }
        check(st, "get");
        if (len == 4 && memcmp(buf, "done", 4) == 0) break;
        printf("got %.*s\n", (int)len, buf);
    }
    int status;
    waitpid(pid, &status, 0);
    check(mp_lock_acquire(lock, MP_FOREVER), "acquire");
    long sum = *total;
    check(mp_lock_release(lock), "release");
    printf("total %ld\n", sum);

    /* A timeout of 0 never waits: an empty queue says MP_EMPTY. */
    if (mp_queue_get(q, buf, sizeof buf, &len, 0) != MP_EMPTY) return 1;

    mp_shm_free(counter);
    mp_lock_free(lock);
    mp_queue_free(q);
    return sum == 55 ? 0 : 1;
}
