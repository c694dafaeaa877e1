//! Robust, process-shared pthread mutexes
//! ([pthread_mutexattr_setrobust(3)](https://man7.org/linux/man-pages/man3/pthread_mutexattr_setrobust.3.html)).
//!
//! glibc registers each thread's robust-list head with the kernel (`set_robust_list(2)`); when a
//! thread dies holding a robust mutex, the kernel marks the mutex `OWNER_DIED` and wakes a
//! waiter. Only pthread mutexes can join that list, which is why `Lock` is built on them.

use super::clock::Deadline;
use super::cvt_pthread;
use std::io;

pub(crate) use libc::pthread_mutex_t;

extern "C" {
    // glibc ≥ 2.30; the libc crate does not declare it yet.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// The pthread mutex type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexKind {
    /// Relocking by the owner is an error (`EDEADLK`), unlocking by a non-owner too (`EPERM`).
    ErrorCheck,
    /// The owner may relock; each lock needs its own unlock.
    Recursive,
}

/// The outcome of a lock attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Locked {
    /// We hold the mutex.
    Acquired,
    /// We hold the mutex, but its previous owner died holding it (`EOWNERDEAD`): the data it
    /// protects may be inconsistent until [`mutex_consistent`] is called.
    OwnerDied,
    /// A previous owner died and the mutex was unlocked without being made consistent
    /// (`ENOTRECOVERABLE`): it can never be locked again.
    NotRecoverable,
    /// `trylock` found it held, or the deadline passed.
    Busy,
    /// The calling thread already holds this error-checking mutex (`EDEADLK`).
    Deadlock,
}

#[inline]
fn locked(r: libc::c_int) -> io::Result<Locked> {
    match r {
        0 => Ok(Locked::Acquired),
        libc::EOWNERDEAD => Ok(Locked::OwnerDied),
        libc::ENOTRECOVERABLE => Ok(Locked::NotRecoverable),
        libc::EBUSY | libc::ETIMEDOUT => Ok(Locked::Busy),
        libc::EDEADLK => Ok(Locked::Deadlock),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Initializes a robust, process-shared mutex in place.
///
/// # Safety
/// `m` points to writable memory for a `pthread_mutex_t` that no thread is using (locking,
/// waiting on) during this call.
pub(crate) unsafe fn mutex_init(m: *mut pthread_mutex_t, kind: MutexKind) -> io::Result<()> {
    // SAFETY: an all-zero attr is valid storage for pthread_mutexattr_init to fill.
    let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is valid, writable storage.
    cvt_pthread(unsafe { libc::pthread_mutexattr_init(&mut attr) })?;
    let ty = match kind {
        MutexKind::ErrorCheck => libc::PTHREAD_MUTEX_ERRORCHECK,
        MutexKind::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
    };
    // SAFETY: `attr` was initialized above; each setter only writes into it.
    let r = unsafe {
        cvt_pthread(libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED))
            .and_then(|()| cvt_pthread(libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST)))
            .and_then(|()| cvt_pthread(libc::pthread_mutexattr_settype(&mut attr, ty)))
            // SAFETY (of the init): the caller guarantees `m` is writable and unused.
            .and_then(|()| cvt_pthread(libc::pthread_mutex_init(m, &attr)))
    };
    // SAFETY: `attr` was initialized and is destroyed once.
    unsafe { libc::pthread_mutexattr_destroy(&mut attr) };
    r
}

/// Locks `m`, waiting until `deadline` (CLOCK_MONOTONIC) or forever.
///
/// # Safety
/// `m` points to a mutex initialized by [`mutex_init`] that stays mapped during the call.
#[inline]
pub(crate) unsafe fn mutex_lock(m: *mut pthread_mutex_t, deadline: Option<Deadline>) -> io::Result<Locked> {
    let r = match deadline {
        // SAFETY: `m` is an initialized mutex per the contract.
        None => unsafe { libc::pthread_mutex_lock(m) },
        Some(d) => {
            let ts = d.as_timespec();
            // SAFETY: as above; `ts` lives across the call. clocklock retries EINTR itself.
            unsafe { pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &ts) }
        }
    };
    locked(r)
}

/// Tries to lock `m` without waiting.
///
/// # Safety
/// As for [`mutex_lock`].
pub(crate) unsafe fn mutex_trylock(m: *mut pthread_mutex_t) -> io::Result<Locked> {
    // SAFETY: `m` is an initialized mutex per the contract.
    locked(unsafe { libc::pthread_mutex_trylock(m) })
}

/// Unlocks `m`. Fails with `EPERM` when the calling thread does not own it.
///
/// # Safety
/// As for [`mutex_lock`].
#[inline]
pub(crate) unsafe fn mutex_unlock(m: *mut pthread_mutex_t) -> io::Result<()> {
    // SAFETY: `m` is an initialized mutex per the contract; robust mutexes check the owner.
    cvt_pthread(unsafe { libc::pthread_mutex_unlock(m) })
}

/// Marks a mutex whose owner died as consistent again; the caller must hold it after an
/// [`Locked::OwnerDied`] result.
///
/// # Safety
/// As for [`mutex_lock`].
pub(crate) unsafe fn mutex_consistent(m: *mut pthread_mutex_t) -> io::Result<()> {
    // SAFETY: `m` is an initialized mutex per the contract.
    cvt_pthread(unsafe { libc::pthread_mutex_consistent(m) })
}
