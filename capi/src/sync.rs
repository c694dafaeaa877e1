//! `mp_semaphore` (plain and bounded), `mp_event` and `mp_barrier`.

use crate::handle::{get, give, handle, name, set, set_required, take, Wait};
use crate::status::*;
use mp::{Barrier, BoundedSemaphore, Event, Semaphore};
use std::ffi::c_char;

/// A semaphore as C sees it: plain, or bounded (a release past the initial value fails).
pub(crate) enum Sem {
    Plain(Semaphore),
    Bounded(BoundedSemaphore),
}

impl Sem {
    fn sem(&self) -> &Semaphore {
        match self {
            Sem::Plain(s) => s,
            Sem::Bounded(b) => b,
        }
    }
}

/// A counting semaphore shared between processes, plain (`mp_semaphore_new`) or bounded
/// (`mp_bounded_semaphore_new`).
#[allow(non_camel_case_types)]
pub struct mp_semaphore {
    t: crate::handle::Tagged<Sem>,
}
handle!(mp_semaphore, Sem, 0x6d70_7365_6d61_0004);
/// An event flag shared between processes (Python's `Event`): see `mp_event_new`.
#[allow(non_camel_case_types)]
pub struct mp_event {
    t: crate::handle::Tagged<Event>,
}
handle!(mp_event, Event, 0x6d70_6576_6e74_0005);
/// A barrier for a fixed number of parties (Python's `Barrier`): see `mp_barrier_new`.
#[allow(non_camel_case_types)]
pub struct mp_barrier {
    t: crate::handle::Tagged<Barrier>,
}
handle!(mp_barrier, Barrier, 0x6d70_6261_7272_0006);

/// Makes an anonymous semaphore with `value` permits (at most `INT32_MAX`), shared with
/// children forked after this call. Never blocks.
///
/// Errors: `MP_INVALID` (`value` over `INT32_MAX`, null `out`), `MP_OS`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_semaphore_new(value: u32, out: *mut *mut mp_semaphore) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_semaphore::boxed(Sem::Plain(Semaphore::new(value)?)))) })
}

/// Makes a bounded semaphore: `value` permits (at most `INT32_MAX`), and a release that would
/// pass `value` fails with `MP_INVALID` (Python's `BoundedSemaphore`). Never blocks.
///
/// Errors: `MP_INVALID` (`value` over `INT32_MAX`, null `out`), `MP_OS`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_bounded_semaphore_new(value: u32, out: *mut *mut mp_semaphore) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_semaphore::boxed(Sem::Bounded(BoundedSemaphore::new(value)?)))) })
}

/// Makes a semaphore with `value` permits (at most `INT32_MAX`) under `name`. Never blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID` (a bad name, `value` over `INT32_MAX`), `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_semaphore_create(
    name: *const c_char,
    value: u32,
    out: *mut *mut mp_semaphore,
) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_semaphore::boxed(Sem::Plain(Semaphore::create(self::name(name)?, value)?)))) })
}

/// Makes a bounded semaphore with `value` permits (at most `INT32_MAX`) under `name`. Never
/// blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID` (a bad name, `value` over `INT32_MAX`), `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_bounded_semaphore_create(
    name: *const c_char,
    value: u32,
    out: *mut *mut mp_semaphore,
) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe {
        give(out, || Ok(mp_semaphore::boxed(Sem::Bounded(BoundedSemaphore::create(self::name(name)?, value)?))))
    })
}

/// Opens the (plain) semaphore made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH` (another kind of object, a bounded semaphore
/// included), `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_semaphore_open(
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut mp_semaphore,
) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe {
        give(out, || Ok(mp_semaphore::boxed(Sem::Plain(Semaphore::open_timeout(self::name(name)?, d)?))))
    })
}

/// Opens the bounded semaphore made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH` (another kind of object, a plain semaphore
/// included), `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_bounded_semaphore_open(
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut mp_semaphore,
) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe {
        give(out, || Ok(mp_semaphore::boxed(Sem::Bounded(BoundedSemaphore::open_timeout(self::name(name)?, d)?))))
    })
}

/// Takes a permit, waiting up to `timeout_ns` for one (`MP_FOREVER`: as long as it takes; 0:
/// only if one is there now).
///
/// Errors: `MP_TIMEOUT` (none in time, or none now), `MP_INVALID`.
///
/// # Safety
/// `sem` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_semaphore_acquire(sem: *const mp_semaphore, timeout_ns: u64) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { get(sem) }?.h.sem();
        match Wait::from_ns(timeout_ns) {
            Wait::Now => s.try_acquire()?,
            Wait::For(d) => s.acquire_timeout(d)?,
            Wait::Forever => s.acquire(),
        }
        Ok(())
    })
}

/// Gives a permit back (any thread or process may). Never blocks.
///
/// Errors: `MP_INVALID` (a bounded semaphore already at its initial value).
///
/// # Safety
/// `sem` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_semaphore_release(sem: *const mp_semaphore) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        match &unsafe { get(sem) }?.h {
            Sem::Plain(s) => s.release(),
            Sem::Bounded(b) => b.release()?,
        }
        Ok(())
    })
}

/// Writes the number of permits there now to `*value`. Never blocks.
///
/// Errors: `MP_INVALID` (null `value`).
///
/// # Safety
/// `sem` is null or a handle from this library; `value` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_semaphore_value(sem: *const mp_semaphore, value: *mut u32) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let v = unsafe { get(sem) }?.h.sem().get_value();
        // SAFETY: the caller's contract.
        unsafe { set_required(value, v, "the value") }
    })
}

/// Frees the handle (null: nothing). Permits taken through it stay taken. Never blocks.
///
/// Errors: `MP_INVALID` (not a live semaphore handle).
///
/// # Safety
/// `sem` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_semaphore_free(sem: *mut mp_semaphore) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(sem) }.map(drop))
}

/// Makes an anonymous event, not set, shared with children forked after this call. Never
/// blocks.
///
/// Errors: `MP_INVALID` (null `out`), `MP_OS`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_event_new(out: *mut *mut mp_event) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_event::boxed(Event::new()?))) })
}

/// Makes an event under `name`. Never blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_event_create(name: *const c_char, out: *mut *mut mp_event) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_event::boxed(Event::create(self::name(name)?)?))) })
}

/// Opens the event made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH`, `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_event_open(name: *const c_char, timeout_ns: u64, out: *mut *mut mp_event) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_event::boxed(Event::open_timeout(self::name(name)?, d)?))) })
}

/// Sets the event and wakes every waiter. Never blocks.
///
/// Errors: `MP_INVALID` (not a live event handle).
///
/// # Safety
/// `event` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_event_set(event: *const mp_event) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { get(event) }.map(|e| e.h.set()))
}

/// Clears the event. Never blocks.
///
/// Errors: `MP_INVALID` (not a live event handle).
///
/// # Safety
/// `event` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_event_clear(event: *const mp_event) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { get(event) }.map(|e| e.h.clear()))
}

/// Writes whether the event is set to `*is_set`. Never blocks.
///
/// Errors: `MP_INVALID` (null `is_set`).
///
/// # Safety
/// `event` is null or a handle from this library; `is_set` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_event_is_set(event: *const mp_event, is_set: *mut bool) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let v = unsafe { get(event) }?.h.is_set();
        // SAFETY: the caller's contract.
        unsafe { set_required(is_set, v, "is_set") }
    })
}

/// Waits up to `timeout_ns` for the event to be set (returns at once if it is).
///
/// Errors: `MP_TIMEOUT` (not set in time, or not set now for a timeout of 0), `MP_INVALID`.
///
/// # Safety
/// `event` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_event_wait(event: *const mp_event, timeout_ns: u64) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let e = &unsafe { get(event) }?.h;
        match Wait::from_ns(timeout_ns) {
            Wait::Now => e.try_wait()?,
            Wait::For(d) => e.wait_timeout(d)?,
            Wait::Forever => e.wait(),
        }
        Ok(())
    })
}

/// Frees the handle (null: nothing). Never blocks.
///
/// Errors: `MP_INVALID` (not a live event handle).
///
/// # Safety
/// `event` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_event_free(event: *mut mp_event) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(event) }.map(drop))
}

/// Makes an anonymous barrier for `parties` parties, shared with children forked after this
/// call. Never blocks.
///
/// Errors: `MP_INVALID` (`parties` is 0 or more than 2^31 - 1, null `out`), `MP_OS`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_new(parties: u32, out: *mut *mut mp_barrier) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_barrier::boxed(Barrier::new(parties)?))) })
}

/// Makes a barrier for `parties` parties under `name`. Never blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID` (`parties` is 0 or more than 2^31 - 1, a bad name), `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_create(name: *const c_char, parties: u32, out: *mut *mut mp_barrier) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_barrier::boxed(Barrier::create(self::name(name)?, parties)?))) })
}

/// Opens the barrier made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH`, `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_open(name: *const c_char, timeout_ns: u64, out: *mut *mut mp_barrier) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_barrier::boxed(Barrier::open_timeout(self::name(name)?, d)?))) })
}

/// Waits up to `timeout_ns` for all parties to arrive; `*index` (if not null) gets this
/// party's place, 0 to parties − 1, distinct for each party of one round. A party that dies
/// while it waits in this round breaks it at once (`MP_BROKEN` for the others); one that dies
/// before it calls wait (or after its round completed, on its way out) cannot be told from a
/// slow party, so a round that waits for it lasts until the timeout: give one.
///
/// Errors: `MP_TIMEOUT` (not all arrived in time: the barrier is now broken for every
/// party), `MP_BROKEN` (aborted, reset while waiting, or a waiting party died), `MP_INVALID`.
///
/// # Safety
/// `barrier` is null or a handle from this library; `index` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_wait(barrier: *const mp_barrier, timeout_ns: u64, index: *mut u32) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let b = &unsafe { get(barrier) }?.h;
        let i = match Wait::from_ns(timeout_ns) {
            Wait::Forever => b.wait()?,
            w => b.wait_timeout(w.duration())?,
        };
        // SAFETY: the caller's contract.
        unsafe { set(index, i) };
        Ok(())
    })
}

/// Puts the barrier back to its empty, unbroken state; parties waiting now get `MP_BROKEN`.
/// Never blocks.
///
/// Errors: `MP_INVALID` (not a live barrier handle).
///
/// # Safety
/// `barrier` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_reset(barrier: *const mp_barrier) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { get(barrier) }.map(|b| b.h.reset()))
}

/// Breaks the barrier: parties waiting now and later get `MP_BROKEN` until a reset. Never
/// blocks.
///
/// Errors: `MP_INVALID` (not a live barrier handle).
///
/// # Safety
/// `barrier` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_abort(barrier: *const mp_barrier) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { get(barrier) }.map(|b| b.h.abort()))
}

/// Writes the barrier's state: `*parties` (its size), `*waiting` (parties waiting now) and
/// `*broken`; each may be null. Never blocks.
///
/// Errors: `MP_INVALID` (not a live barrier handle).
///
/// # Safety
/// `barrier` is null or a handle from this library; each out-pointer is null or valid for one
/// write.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_state(
    barrier: *const mp_barrier,
    parties: *mut u32,
    waiting: *mut u32,
    broken: *mut bool,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let b = &unsafe { get(barrier) }?.h;
        // SAFETY: the caller's contract.
        unsafe {
            set(parties, b.parties());
            set(waiting, b.n_waiting());
            set(broken, b.broken());
        }
        Ok(())
    })
}

/// Frees the handle (null: nothing). Never blocks.
///
/// Errors: `MP_INVALID` (not a live barrier handle).
///
/// # Safety
/// `barrier` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_barrier_free(barrier: *mut mp_barrier) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(barrier) }.map(drop))
}
