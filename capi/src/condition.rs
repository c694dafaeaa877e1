//! `mp_condition`: a condition variable with its own recursive lock (Python's default).

use crate::handle::{get, give, handle, name, set, Wait};
use crate::held::{self, AnyGuard};
use crate::locks::{self, Held, Lockable};
use crate::status::*;
use mp::{Condition, ConditionWaitTimeoutError, RLock};
use std::ffi::c_char;

/// A condition variable and its recursive lock, shared between processes: see
/// `mp_condition_new`.
#[allow(non_camel_case_types)]
pub struct mp_condition {
    t: crate::handle::Tagged<Held<Condition<RLock>>>,
}
handle!(mp_condition, Held<Condition<RLock>>, 0x6d70_636f_6e64_0003);

/// The condition's lock is what C takes through an `mp_condition`.
impl Lockable for Held<Condition<RLock>> {
    type L = RLock;
    fn lock(&self) -> &RLock {
        self.lock.lock()
    }
    fn holds(&self) -> &crate::held::Holds {
        &self.holds
    }
}

fn cond_of(h: &crate::handle::Tagged<Held<Condition<RLock>>>) -> &'static Condition<RLock> {
    // SAFETY: as `lock_of`.
    unsafe { &*(&h.h.lock as *const Condition<RLock>) }
}

/// Makes an anonymous condition (with its lock), shared with children forked after this call.
///
/// Errors: `MP_INVALID` (null `out`), `MP_OS`. Never blocks.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_new(out: *mut *mut mp_condition) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_condition::boxed(Held::new(Condition::new(RLock::new()?)?)))) })
}

/// Makes a condition and its lock under `name` (see `mp_lock_create`).
///
/// Errors: `MP_EXISTS`, `MP_INVALID`, `MP_OS`. Never blocks.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_create(name: *const c_char, out: *mut *mut mp_condition) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_condition::boxed(Held::new(Condition::create(self::name(name)?)?)))) })
}

/// Opens the condition made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH`, `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_open(
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut mp_condition,
) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_condition::boxed(Held::new(Condition::open_timeout(self::name(name)?, d)?)))) })
}

/// Takes the condition's (recursive) lock, waiting up to `timeout_ns`.
///
/// Errors: as `mp_rlock_acquire`: `MP_TIMEOUT`, `MP_OWNER_DIED` (held now),
/// `MP_CORRUPT`, `MP_OS`.
///
/// # Safety
/// `cond` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_acquire(cond: *const mp_condition, timeout_ns: u64) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { locks::acquire(cond, timeout_ns) }
}

/// Releases one hold of the condition's lock by this thread. Never blocks.
///
/// Errors: `MP_INVALID` (this thread does not hold it).
///
/// # Safety
/// `cond` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_release(cond: *const mp_condition) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { locks::release(cond, "condition's lock") }
}

/// After `MP_OWNER_DIED`: the data the condition's lock protects has been repaired (see
/// `mp_lock_make_consistent`). Never blocks.
///
/// Errors: `MP_INVALID` (this thread does not hold it).
///
/// # Safety
/// `cond` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_make_consistent(cond: *const mp_condition) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { locks::make_consistent(cond, "condition's lock") }
}

/// Waits for a notify: releases the condition's lock (held by this thread), sleeps up to
/// `timeout_ns`, and takes the lock back before it returns, in every outcome but `MP_CORRUPT`
/// and `MP_OS`. Taking the lock back waits for it as long as it takes, even after a timeout
/// (of 0 too: it then releases the lock, looks once, and re-takes it), as in Python.
/// Wake-ups can be spurious: re-check your predicate in a loop.
///
/// Errors: `MP_TIMEOUT` (no notify in time; the lock is held again), `MP_INVALID` (this
/// thread does not hold the lock), `MP_OWNER_DIED` (a notifier died holding the lock: held
/// now), `MP_CORRUPT`, `MP_OS`.
///
/// # Safety
/// `cond` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_wait(cond: *const mp_condition, timeout_ns: u64) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = unsafe { get(cond) }?;
        let (c, holds) = (cond_of(h), &h.h.holds);
        let key = cond as usize;
        let Some(AnyGuard::RLock(g)) = held::pop(key, holds) else {
            return Err(Fail::invalid("this thread does not hold the condition's lock"));
        };
        match c.wait_timeout(g, Wait::from_ns(timeout_ns).duration()) {
            Ok(g) => held::push(key, holds, AnyGuard::RLock(g)).map_err(Fail::invalid),
            Err(e) => {
                let st = match &e {
                    ConditionWaitTimeoutError::Timeout(_) => MP_TIMEOUT,
                    ConditionWaitTimeoutError::OwnerDied(_) => MP_OWNER_DIED,
                    ConditionWaitTimeoutError::NotOwner(_) | ConditionWaitTimeoutError::DataBorrowed(_) => MP_INVALID,
                    ConditionWaitTimeoutError::Corrupt | ConditionWaitTimeoutError::Unrecoverable => MP_CORRUPT,
                    _ => MP_OS,
                };
                let message = e.to_string();
                match e.into_guard() {
                    Some(g) => held::push(key, holds, AnyGuard::RLock(g)).map_err(Fail::invalid)?,
                    // The lock's state is unknown (corrupt, or the OS failed the re-take):
                    // this thread's other holds of it are forgotten, not released.
                    None => held::forget_all(key),
                }
                Err(Fail::new(st, message))
            }
        }
    })
}

/// Wakes up to `n` waiters of `cond`, whose lock this thread must hold.
///
/// # Safety
/// As `mp_condition_notify`.
unsafe fn notify(cond: *const mp_condition, n: usize, woken: *mut usize) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let c = cond_of(unsafe { get(cond) }?);
        let r = held::with_newest(cond as usize, |g| match g {
            AnyGuard::RLock(g) => c.notify(g, n).map_err(Fail::from),
            AnyGuard::Lock(_) => Err(Fail::new(MP_INTERNAL, "a condition held through a plain lock")),
        });
        let count = r.ok_or_else(|| Fail::invalid("this thread does not hold the condition's lock"))??;
        // SAFETY: the caller's contract.
        unsafe { set(woken, count) };
        Ok(())
    })
}

/// Wakes up to `n` waiters; `*woken` (if not null) gets how many were woken. This thread
/// must hold the condition's lock. Blocks briefly: each woken waiter acknowledges its
/// wake-up, and a waiter that does not (stopped, or killed) is given up on after 1 s.
///
/// Errors: `MP_INVALID` (this thread does not hold the lock).
///
/// # Safety
/// `cond` is null or a handle from this library; `woken` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_notify(cond: *const mp_condition, n: usize, woken: *mut usize) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { notify(cond, n, woken) }
}

/// Wakes every waiter (see `mp_condition_notify`, which says how long it may wait for
/// their acknowledgements).
///
/// Errors: `MP_INVALID` (this thread does not hold the lock).
///
/// # Safety
/// `cond` is null or a handle from this library; `woken` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_notify_all(cond: *const mp_condition, woken: *mut usize) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { notify(cond, usize::MAX, woken) }
}

/// Frees the handle (null: nothing), releasing this thread's holds of its lock first (see
/// `mp_lock_free`). Never blocks.
///
/// Errors: `MP_INVALID` (not a live condition handle).
///
/// # Safety
/// `cond` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_condition_free(cond: *mut mp_condition) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { locks::free(cond) }
}
