/*
 * The C side of a mixed program (see capi/lib/examples/rust_peer.rs, which starts it):
 * opens the Rust program's named queue, lock and broadcast, and answers it.
 *
 *   cc -std=c11 -Iinclude examples/c/peer.c target/release/libmultiproc.a \
 *      -lpthread -ldl -lm -lrt -lutil -o peer
 *   ./peer PREFIX
 */
#include "multiproc.h"

#include <stdio.h>
#include <string.h>

#define SECONDS(n) ((uint64_t)(n) * 1000000000u)

/* Prints the failure and exits 1 when a call fails. */
#define TRY(call)                                                                        \
    do {                                                                                 \
        mp_status st_ = (call);                                                          \
        if (st_ != MP_OK) {                                                              \
            fprintf(stderr, "peer: %s: %s (%s)\n", #call, mp_status_name(st_), mp_last_error()); \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: peer PREFIX\n");
        return 2;
    }
    char name[256];
    mp_queue *to_peer, *to_rust;
    mp_lock *lock;
    mp_broadcast *news;
    snprintf(name, sizeof name, "%s-to-peer", argv[1]);
    TRY(mp_queue_open(name, SECONDS(10), &to_peer));
    snprintf(name, sizeof name, "%s-to-rust", argv[1]);
    TRY(mp_queue_open(name, SECONDS(10), &to_rust));
    snprintf(name, sizeof name, "%s-lock", argv[1]);
    TRY(mp_lock_open(name, SECONDS(10), &lock));
    snprintf(name, sizeof name, "%s-news", argv[1]);
    TRY(mp_broadcast_open(name, SECONDS(10), &news));

    mp_subscriber *sub;
    TRY(mp_broadcast_subscribe(news, true, &sub));
    TRY(mp_lock_acquire(lock, SECONDS(10)));
    const char *hello = "peer has the lock";
    TRY(mp_queue_put(to_rust, hello, strlen(hello), SECONDS(10)));

    char buf[256];
    size_t len = 0;
    TRY(mp_queue_get(to_peer, buf, sizeof buf, &len, SECONDS(10)));
    if (len != 7 || memcmp(buf, "release", 7) != 0) {
        fprintf(stderr, "peer: expected release, got %.*s\n", (int)len, buf);
        return 1;
    }
    TRY(mp_lock_release(lock));

    TRY(mp_subscriber_recv(sub, buf, sizeof buf, &len, SECONDS(10)));
    if (len != 14 || memcmp(buf, "news from rust", 14) != 0) {
        fprintf(stderr, "peer: expected the news from rust, got %.*s\n", (int)len, buf);
        return 1;
    }
    const char *mine = "news from peer";
    TRY(mp_broadcast_publish(news, mine, strlen(mine), SECONDS(10), NULL));
    TRY(mp_queue_put(to_rust, "bye", 3, SECONDS(10)));

    mp_subscriber_free(sub);
    mp_broadcast_free(news);
    mp_lock_free(lock);
    mp_queue_free(to_rust);
    mp_queue_free(to_peer);
    return 0;
}
