//! `mp_broadcast` and `mp_subscriber`: one writer's byte messages to every reader (a Rust
//! `Broadcast<Vec<u8>>`, whose `publish_bytes`/`recv_bytes` speak the same bytes).

use crate::deliver::{Exclusive, Pending};
use crate::handle::{bytes, get, give, handle, name, set, set_required, take, Wait};
use crate::status::*;
use mp::{Broadcast, Subscriber};
use std::ffi::{c_char, c_void};

/// A broadcast ring: every subscriber sees every message (until it falls a lap behind).
/// See `mp_broadcast_new`.
#[allow(non_camel_case_types)]
pub struct mp_broadcast {
    t: crate::handle::Tagged<Broadcast<Vec<u8>>>,
}
handle!(mp_broadcast, Broadcast<Vec<u8>>, 0x6d70_6263_6173_000a);

/// A subscriber and the messages held back for buffers that were too small.
pub(crate) struct SubscriberH {
    sub: Exclusive<Subscriber<Vec<u8>>>,
    pending: Pending,
}

/// One reader's place in a broadcast: see `mp_broadcast_subscribe`.
#[allow(non_camel_case_types)]
pub struct mp_subscriber {
    t: crate::handle::Tagged<SubscriberH>,
}
handle!(mp_subscriber, SubscriberH, 0x6d70_7375_6273_000b);

/// A broadcast has at least one slot and room for at least one byte (the Rust API rounds 0
/// up; C gets told).
fn sizes(slots: usize, max_message: usize) -> Res {
    if slots == 0 || max_message == 0 {
        return Err(Fail::invalid(format!(
            "a broadcast of {slots} slots of {max_message} bytes: both must be at least 1"
        )));
    }
    Ok(())
}

/// Makes an anonymous broadcast of `slots` messages of up to `max_message` bytes each (rounded
/// up to a multiple of 8: a publish of up to that many bytes is taken), shared with children
/// forked after this call. Never blocks.
///
/// Errors: `MP_INVALID` (0 slots or size, null `out`), `MP_TOO_LARGE`, `MP_OS`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_broadcast_new(slots: usize, max_message: usize, out: *mut *mut mp_broadcast) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| {
        sizes(slots, max_message)?;
        // SAFETY: the caller's contract.
        unsafe { give(out, || Ok(mp_broadcast::boxed(Broadcast::new(slots, max_message)?))) }
    })
}

/// Makes a broadcast under `name` (see `mp_broadcast_new`). A Rust program opens it as
/// `Broadcast::<Vec<u8>>::open(name)`. Never blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID`, `MP_TOO_LARGE`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_broadcast_create(
    name: *const c_char,
    slots: usize,
    max_message: usize,
    out: *mut *mut mp_broadcast,
) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| {
        sizes(slots, max_message)?;
        // SAFETY: the caller's contract.
        unsafe { give(out, || Ok(mp_broadcast::boxed(Broadcast::create(self::name(name)?, slots, max_message)?))) }
    })
}

/// Opens the broadcast made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH`, `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_broadcast_open(
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut mp_broadcast,
) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_broadcast::boxed(Broadcast::open_timeout(self::name(name)?, d)?))) })
}

/// Publishes a copy of `len` bytes at `data`; `*seq` (if not null) gets its sequence number.
/// Writers take turns; a publish waits up to `timeout_ns` only for another writer, never for
/// readers (a slow reader loses old messages instead: `MP_LAGGED`).
///
/// Errors: `MP_TOO_LARGE` (over the broadcast's `max_message`), `MP_FULL` (another writer is
/// publishing now, for a timeout of 0), `MP_TIMEOUT`, `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `b` is null or a handle from this library; `data` is null or valid for `len` reads; `seq`
/// is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_broadcast_publish(
    b: *const mp_broadcast,
    data: *const c_void,
    len: usize,
    timeout_ns: u64,
    seq: *mut u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let b = &unsafe { get(b) }?.h;
        // SAFETY: the caller's contract.
        let m = unsafe { bytes(data, len) }?;
        let n = match Wait::from_ns(timeout_ns) {
            Wait::Now => b.try_publish_bytes(m)?,
            Wait::For(d) => b.publish_bytes_timeout(m, d)?,
            Wait::Forever => b.publish_bytes(m)?,
        };
        // SAFETY: the caller's contract.
        unsafe { set(seq, n) };
        Ok(())
    })
}

/// Makes a subscriber that reads from the next message published (`oldest` false) or from
/// the oldest message still in the ring (`oldest` true). Never blocks.
///
/// Errors: `MP_INVALID` (null `out`).
///
/// # Safety
/// `b` is null or a handle from this library; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_broadcast_subscribe(
    b: *const mp_broadcast,
    oldest: bool,
    out: *mut *mut mp_subscriber,
) -> mp_status {
    call(|| {
        // Made only once `out` is known good (`give` checks it first): no object appears
        // and vanishes, no client is accepted and dropped, for a null `out`.
        let make = || {
            // SAFETY: the caller's contract.
            let b = &unsafe { get(b) }?.h;
            let sub = if oldest { b.subscribe_oldest() } else { b.subscribe() };
            let h = SubscriberH { sub: Exclusive::new(sub), pending: Pending::default() };
            Ok(mp_subscriber::boxed(h))
        };
        // SAFETY: the caller's contract.
        unsafe { give(out, make) }
    })
}

/// Frees the broadcast handle (null: nothing). Subscribers made from it keep working. Never
/// blocks.
///
/// Errors: `MP_INVALID` (not a live broadcast handle).
///
/// # Safety
/// `b` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_broadcast_free(b: *mut mp_broadcast) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(b) }.map(drop))
}

/// Reads the subscriber's next message into `buf` (`cap` bytes), waiting up to `timeout_ns`
/// for one; `*len` gets its length. One thread at a time per subscriber.
///
/// Errors: `MP_EMPTY` (none now, for a timeout of 0), `MP_TIMEOUT`, `MP_LAGGED` (the writer
/// overwrote messages this subscriber had not read: it now stands at the oldest one left;
/// call again), `MP_TOO_LARGE` (longer than `cap`: `*len` says how long, and it is kept for
/// the next read), `MP_CORRUPT`, `MP_INVALID` (another thread is reading it now).
///
/// # Safety
/// `sub` is null or a handle from this library; `buf` is null or valid for `cap` writes;
/// `len` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_subscriber_recv(
    sub: *const mp_subscriber,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ns: u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(sub) }?.h;
        // SAFETY: the caller's contract.
        unsafe {
            h.pending.receive(buf, cap, len, |v| {
                h.sub.with("subscriber", |s| {
                    match Wait::from_ns(timeout_ns) {
                        Wait::Now => s.try_recv_bytes_into(v)?,
                        Wait::For(d) => s.recv_bytes_into_timeout(v, d)?,
                        Wait::Forever => s.recv_bytes_into(v)?,
                    };
                    Ok(())
                })
            })
        }
    })
}

/// Writes how many messages this subscriber has lost by lagging (`*missed`, in all). Never
/// blocks.
///
/// Errors: `MP_INVALID` (null `missed`, or another thread is reading it now).
///
/// # Safety
/// `sub` is null or a handle from this library; `missed` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_subscriber_missed(sub: *const mp_subscriber, missed: *mut u64) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let n = unsafe { get(sub) }?.h.sub.with("subscriber", |s| Ok(s.missed()))?;
        // SAFETY: the caller's contract.
        unsafe { set_required(missed, n, "the count missed") }
    })
}

/// Frees the subscriber (null: nothing). A message kept for it after `MP_TOO_LARGE` is
/// dropped with it. Never blocks.
///
/// Errors: `MP_INVALID` (not a live subscriber handle, or another thread is inside a call on
/// it: nothing is freed then).
///
/// # Safety
/// `sub` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_subscriber_free(sub: *mut mp_subscriber) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { crate::deliver::free_exclusive(sub, |h| &h.sub, "subscriber") })
}
