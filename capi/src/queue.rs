//! `mp_queue`: a multi-producer, multi-consumer queue of byte messages (a Rust
//! `Queue<Vec<u8>>`, so Rust programs open the same name and use `put_bytes`/`get_bytes_into`).

use crate::deliver::Pending;
use crate::handle::{bytes, get, give, handle, name, set_required, take, Wait};
use crate::status::*;
use mp::Queue;
use std::ffi::{c_char, c_void};

/// A byte queue and the messages held back for buffers that were too small.
pub(crate) struct QueueH {
    q: Queue<Vec<u8>>,
    pending: Pending,
}

/// A queue of byte messages shared between processes (Python's `Queue`): see
/// `mp_queue_new`.
#[allow(non_camel_case_types)]
pub struct mp_queue {
    t: crate::handle::Tagged<QueueH>,
}
handle!(mp_queue, QueueH, 0x6d70_7175_6575_0008);

fn boxed(q: Queue<Vec<u8>>) -> Box<mp_queue> {
    mp_queue::boxed(QueueH { q, pending: Pending::default() })
}

fn builder(maxsize: usize, capacity_bytes: usize) -> mp::QueueBuilder<Vec<u8>> {
    let mut b = Queue::<Vec<u8>>::builder();
    if maxsize > 0 {
        b = b.maxsize(maxsize);
    }
    if capacity_bytes > 0 {
        b = b.capacity_bytes(capacity_bytes);
    }
    b
}

/// Makes an anonymous queue, shared with children forked after this call. `maxsize` bounds
/// the number of messages (0: no bound but the ring), `capacity_bytes` sizes the ring (0: the
/// default, 1 MiB). Never blocks.
///
/// Errors: `MP_INVALID` (null `out`), `MP_TOO_LARGE` (a ring too large to map), `MP_OS`. A
/// ring too small for a message is not an error here: that message's put fails with
/// `MP_TOO_LARGE`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_new(maxsize: usize, capacity_bytes: usize, out: *mut *mut mp_queue) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(boxed(builder(maxsize, capacity_bytes).build()?))) })
}

/// Makes a queue under `name` (see `mp_queue_new` for the sizes). A Rust program opens it as
/// `Queue::<Vec<u8>>::open(name)`. The name is removed when this handle is freed. Never
/// blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID`, `MP_TOO_LARGE`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_create(
    name: *const c_char,
    maxsize: usize,
    capacity_bytes: usize,
    out: *mut *mut mp_queue,
) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(boxed(builder(maxsize, capacity_bytes).create(self::name(name)?)?))) })
}

/// Opens the queue made under `name` (by C, or by Rust as a `Queue<Vec<u8>>`), waiting up to
/// `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH` (another kind of object, or a queue of another
/// element type), `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_open(name: *const c_char, timeout_ns: u64, out: *mut *mut mp_queue) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(boxed(Queue::open_timeout(self::name(name)?, d)?))) })
}

/// Puts a copy of `len` bytes at `data` (null if `len` is 0) as one message, waiting up to
/// `timeout_ns` for room.
///
/// Errors: `MP_FULL` (no room now, for a timeout of 0), `MP_TIMEOUT` (no room in time),
/// `MP_TOO_LARGE` (can never fit the ring), `MP_CLOSED` (closed, shut down, or every consumer
/// is gone), `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `queue` is null or a handle from this library; `data` is null or valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_put(
    queue: *const mp_queue,
    data: *const c_void,
    len: usize,
    timeout_ns: u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let q = &unsafe { get(queue) }?.h.q;
        // SAFETY: the caller's contract.
        let m = unsafe { bytes(data, len) }?;
        match Wait::from_ns(timeout_ns) {
            Wait::Now => q.try_put_bytes(m)?,
            Wait::For(d) => q.put_bytes_timeout(m, d)?,
            Wait::Forever => q.put_bytes(m)?,
        }
        Ok(())
    })
}

/// Takes the oldest message into `buf` (`cap` bytes), waiting up to `timeout_ns` for one;
/// `*len` gets its length.
///
/// Errors: `MP_EMPTY` (none now, for a timeout of 0), `MP_TIMEOUT` (none in time),
/// `MP_TOO_LARGE` (the message is longer than `cap`: `*len` says how long, and it stays
/// first in line for this handle's next get), `MP_CLOSED` (closed, shut down, or every
/// producer gone and nothing left), `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `queue` is null or a handle from this library; `buf` is null or valid for `cap` writes;
/// `len` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_get(
    queue: *const mp_queue,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ns: u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(queue) }?.h;
        // SAFETY: the caller's contract.
        unsafe {
            h.pending.receive(buf, cap, len, |s| {
                match Wait::from_ns(timeout_ns) {
                    Wait::Now => h.q.try_get_bytes_into(s)?,
                    Wait::For(d) => h.q.get_bytes_into_timeout(s, d)?,
                    Wait::Forever => h.q.get_bytes_into(s)?,
                };
                Ok(())
            })
        }
    })
}

/// Writes the number of messages in the queue now to `*count` (a snapshot: other processes
/// move it at any time). Never blocks.
///
/// Errors: `MP_INVALID` (null `count`).
///
/// # Safety
/// `queue` is null or a handle from this library; `count` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_qsize(queue: *const mp_queue, count: *mut usize) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let n = unsafe { get(queue) }?.h.q.qsize();
        // SAFETY: the caller's contract.
        unsafe { set_required(count, n, "the count") }
    })
}

/// Shuts the queue down for every process (Python 3.13's `shutdown`): puts fail with
/// `MP_CLOSED` at once; gets take what is left, then fail with `MP_CLOSED`. Never blocks.
///
/// Errors: `MP_INVALID` (not a live queue handle).
///
/// # Safety
/// `queue` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_shutdown(queue: *const mp_queue) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { get(queue) }.map(|q| q.h.q.shutdown()))
}

/// Frees the handle (null: nothing). Messages held back for it (`MP_TOO_LARGE`) are dropped
/// with it. Never blocks.
///
/// Errors: `MP_INVALID` (not a live queue handle).
///
/// # Safety
/// `queue` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_queue_free(queue: *mut mp_queue) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(queue) }.map(drop))
}
