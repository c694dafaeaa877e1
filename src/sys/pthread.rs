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

/// Decodes what a pthread lock call returned.
#[inline]
pub(crate) fn locked(r: libc::c_int) -> io::Result<Locked> {
    match r {
        0 => Ok(Locked::Acquired),
        libc::EOWNERDEAD => Ok(Locked::OwnerDied),
        libc::ENOTRECOVERABLE => Ok(Locked::NotRecoverable),
        libc::EBUSY | libc::ETIMEDOUT => Ok(Locked::Busy),
        libc::EDEADLK => Ok(Locked::Deadlock),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// glibc's `pthread_mutex_t` on 64-bit Linux: `__lock`, `__count`, `__owner`, `__nusers`, then
/// `__kind` at byte 16 (x86_64 and aarch64 alike), 40 bytes in all.
const KIND_OFFSET: usize = 16;
const _: () = assert!(std::mem::size_of::<pthread_mutex_t>() == 40);

/// `__kind` bits (glibc's `pthreadP.h`): the type in the low two bits, then these.
const KIND_TYPE_MASK: i32 = 3;
const KIND_ROBUST: i32 = 16;
const KIND_PRIO_INHERIT: i32 = 32;
const KIND_PRIO_PROTECT: i32 = 64;
const KIND_PSHARED: i32 = 128;

/// The `__kind` field of `m`: what glibc dispatches every operation on. A mutex of ours has
/// the robust and process-shared bits, an error-checking or recursive type, and no priority
/// bits; anything else is garbage that must never reach glibc (a priority-protect bit, for
/// one, sends it into an `assert` that aborts the process).
///
/// # Safety
/// `m` points to 40 readable bytes that stay mapped during the call.
pub(crate) unsafe fn mutex_kind(m: *const pthread_mutex_t) -> i32 {
    // SAFETY: `m` is valid for 40 bytes (contract) and offset 16 is 4-byte aligned in glibc's
    // 8-aligned mutex. A volatile read: other processes may write the mutex concurrently (glibc
    // never writes `__kind` after init; a corrupt peer may, and we read whatever is there).
    unsafe { std::ptr::read_volatile(m.cast::<u8>().add(KIND_OFFSET).cast::<i32>()) }
}

/// The thread id in `m`'s lock word (`__lock` & `FUTEX_TID_MASK`): its owner, 0 when free (or
/// when the kernel marked it owner-died, which clears the id).
///
/// # Safety
/// As for [`mutex_kind`].
pub(crate) unsafe fn mutex_owner_tid(m: *const pthread_mutex_t) -> i32 {
    // SAFETY: as in `mutex_kind`; `__lock` is at offset 0, aligned. glibc and the kernel update
    // it atomically; a volatile read sees one of their values (or a corrupt peer's).
    let word = unsafe { std::ptr::read_volatile(m.cast::<i32>()) };
    word & 0x3fff_ffff
}

/// Whether `kind` is a `__kind` this module's `mutex_init` can have written.
pub(crate) fn kind_is_ours(kind: i32) -> bool {
    let ty = kind & KIND_TYPE_MASK;
    kind & (KIND_ROBUST | KIND_PSHARED) == (KIND_ROBUST | KIND_PSHARED)
        && kind & (KIND_PRIO_INHERIT | KIND_PRIO_PROTECT) == 0
        && (ty == libc::PTHREAD_MUTEX_ERRORCHECK || ty == libc::PTHREAD_MUTEX_RECURSIVE)
        && kind & !(KIND_TYPE_MASK | KIND_ROBUST | KIND_PSHARED) == 0
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

/// `pthread_mutex_trylock` as glibc answers it: 0 when the lock was taken, an error number
/// otherwise (the uncontended path tests for 0 and leaves the decoding to its slow path).
///
/// # Safety
/// As for [`mutex_lock`].
#[inline(always)]
pub(crate) unsafe fn mutex_trylock_raw(m: *mut pthread_mutex_t) -> libc::c_int {
    // SAFETY: `m` is an initialized mutex per the contract.
    unsafe { libc::pthread_mutex_trylock(m) }
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

/// `pthread_mutex_unlock` for a mutex the caller holds (the answer cannot be an error).
///
/// # Safety
/// As for [`mutex_lock`], and the calling thread holds `m`.
#[inline(always)]
pub(crate) unsafe fn mutex_unlock_raw(m: *mut pthread_mutex_t) {
    // SAFETY: `m` is an initialized mutex the caller holds, per the contract.
    unsafe { libc::pthread_mutex_unlock(m) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_a_kind_we_recognise_and_garbage_is_refused() {
        for kind in [MutexKind::ErrorCheck, MutexKind::Recursive] {
            // SAFETY: an all-zero pthread_mutex_t is valid storage for init.
            let mut m: pthread_mutex_t = unsafe { std::mem::zeroed() };
            // SAFETY: `m` is writable and unused.
            unsafe { mutex_init(&mut m, kind).unwrap() };
            // SAFETY: `m` is a live mutex.
            let k = unsafe { mutex_kind(&m) };
            assert!(kind_is_ours(k), "{k:#x}");
        }
        for garbage in [0, 0x40 | 0x92, 0x20 | 0x91, 0x90, 0x93, 0x12, 0x82, -1, 0x192] {
            assert!(!kind_is_ours(garbage), "{garbage:#x}");
        }
    }
}
