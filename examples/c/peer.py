"""The Python side of a mixed program, through ctypes (see capi/lib/examples/rust_peer.rs).

Does what examples/c/peer.c does: opens the Rust program's named queue, lock and broadcast
through libmultiproc.so and answers it. Run it through the Rust side:

    cargo build --release -p multiproc-c --lib --example rust_peer
    MULTIPROC_LIB=target/release/libmultiproc.so \
        target/release/examples/rust_peer -- python3 examples/c/peer.py
"""
import ctypes
import os
import sys

lib = ctypes.CDLL(os.environ.get("MULTIPROC_LIB", "libmultiproc.so"))

SECOND = 1_000_000_000
MP_OK = 0

handle = ctypes.c_void_p
lib.mp_last_error.restype = ctypes.c_char_p
lib.mp_status_name.restype = ctypes.c_char_p
lib.mp_status_name.argtypes = [ctypes.c_int]
for f in ("mp_queue_open", "mp_lock_open", "mp_broadcast_open"):
    getattr(lib, f).argtypes = [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(handle)]
lib.mp_queue_put.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
lib.mp_queue_get.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), ctypes.c_uint64]
lib.mp_lock_acquire.argtypes = [handle, ctypes.c_uint64]
lib.mp_lock_release.argtypes = [handle]
lib.mp_broadcast_subscribe.argtypes = [handle, ctypes.c_bool, ctypes.POINTER(handle)]
lib.mp_broadcast_publish.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_void_p]
lib.mp_subscriber_recv.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), ctypes.c_uint64]
for f in ("mp_queue_free", "mp_lock_free", "mp_broadcast_free", "mp_subscriber_free"):
    getattr(lib, f).argtypes = [handle]


def check(status, what):
    """Raises with the library's own message when a call did not return MP_OK."""
    if status != MP_OK:
        raise RuntimeError(f"{what}: {lib.mp_status_name(status).decode()} ({lib.mp_last_error().decode()})")


def opened(fn, name):
    h = handle()
    check(fn(name.encode(), 10 * SECOND, ctypes.byref(h)), f"opening {name}")
    return h


def get(queue):
    buf = ctypes.create_string_buffer(256)
    n = ctypes.c_size_t()
    check(lib.mp_queue_get(queue, buf, len(buf), ctypes.byref(n), 10 * SECOND), "get")
    return buf.raw[: n.value]


def main(prefix):
    to_peer = opened(lib.mp_queue_open, f"{prefix}-to-peer")
    to_rust = opened(lib.mp_queue_open, f"{prefix}-to-rust")
    lock = opened(lib.mp_lock_open, f"{prefix}-lock")
    news = opened(lib.mp_broadcast_open, f"{prefix}-news")
    sub = handle()
    check(lib.mp_broadcast_subscribe(news, True, ctypes.byref(sub)), "subscribe")

    check(lib.mp_lock_acquire(lock, 10 * SECOND), "acquire")
    hello = b"peer has the lock"
    check(lib.mp_queue_put(to_rust, hello, len(hello), 10 * SECOND), "put")
    assert get(to_peer) == b"release"
    check(lib.mp_lock_release(lock), "release")

    buf = ctypes.create_string_buffer(256)
    n = ctypes.c_size_t()
    check(lib.mp_subscriber_recv(sub, buf, len(buf), ctypes.byref(n), 10 * SECOND), "recv")
    assert buf.raw[: n.value] == b"news from rust", buf.raw[: n.value]
    mine = b"news from peer"
    check(lib.mp_broadcast_publish(news, mine, len(mine), 10 * SECOND, None), "publish")
    check(lib.mp_queue_put(to_rust, b"bye", 3, 10 * SECOND), "put")

    for h, free in ((sub, lib.mp_subscriber_free), (news, lib.mp_broadcast_free), (lock, lib.mp_lock_free),
                    (to_rust, lib.mp_queue_free), (to_peer, lib.mp_queue_free)):
        check(free(h), "free")


if __name__ == "__main__":
    main(sys.argv[1])
