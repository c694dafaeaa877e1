//! `mp_lock` and `mp_rlock`: robust process-shared locks, taken and released by the same
//! thread (the guard waits in `held` meanwhile).

use crate::handle::{get, give, handle, name, take, Handle, Wait};
use crate::held::{self, AnyGuard, Holds};
use crate::status::*;
use mp::{Lock, LockError, LockTimeoutError, RLock, TryLockError};
use std::ffi::c_char;
use std::fmt::Display;

/// A robust lock shared between processes (Python's `Lock`): see `mp_lock_new`.
#[allow(non_camel_case_types)]
pub struct mp_lock {
    t: crate::handle::Tagged<Held<Lock>>,
}
handle!(mp_lock, Held<Lock>, 0x6d70_6c6f_636b_0001);
/// A recursive robust lock (Python's `RLock`): see `mp_rlock_new`.
#[allow(non_camel_case_types)]
pub struct mp_rlock {
    t: crate::handle::Tagged<Held<RLock>>,
}
handle!(mp_rlock, Held<RLock>, 0x6d70_726c_636b_0002);

/// A lock and the count of holds C has through its handle.
pub(crate) struct Held<L> {
    pub(crate) lock: L,
    pub(crate) holds: Holds,
}

impl<L> Held<L> {
    pub(crate) fn new(lock: L) -> Held<L> {
        Held { lock, holds: Holds::default() }
    }
}

/// One attempt to take a lock, whatever its form.
pub(crate) enum Took<G> {
    Held(G),
    OwnerDied(G),
    Failed(Fail),
}

macro_rules! took_from {
    ($f:ident, $e:ident $(, $extra:ident => $st:expr)*) => {
        pub(crate) fn $f<G>(r: Result<G, $e<G>>) -> Took<G>
        where
            $e<G>: Display,
        {
            match r {
                Ok(g) => Took::Held(g),
                Err($e::OwnerDied(d)) => Took::OwnerDied(d.into_guard()),
                Err(e) => {
                    let st = match &e {
                        $($e::$extra => $st,)*
                        $e::WouldDeadlock => MP_INVALID,
                        $e::Corrupt | $e::Unrecoverable => MP_CORRUPT,
                        _ => MP_OS,
                    };
                    Took::Failed(Fail::new(st, e.to_string()))
                }
            }
        }
    };
}
took_from!(took_blocking, LockError);
took_from!(took_now, TryLockError, WouldBlock => MP_TIMEOUT);
took_from!(took_timed, LockTimeoutError, Timeout => MP_TIMEOUT);

/// A lock kind C can take: its three attempts (try, timed, blocking) as one, the guard as an
/// `AnyGuard`.
pub(crate) trait CLock {
    /// One attempt to take the lock, waiting per `wait`.
    fn attempt(&'static self, wait: Wait) -> Took<AnyGuard>;
}

/// The three forms of an attempt on a lock type with `try_lock`/`lock_timeout`/`lock`.
macro_rules! attempt {
    ($l:expr, $wait:expr, $guard:path) => {
        map(
            match $wait {
                Wait::Now => took_now($l.try_lock()),
                Wait::For(d) => took_timed($l.lock_timeout(d)),
                Wait::Forever => took_blocking($l.lock()),
            },
            $guard,
        )
    };
}

impl CLock for Lock {
    fn attempt(&'static self, wait: Wait) -> Took<AnyGuard> {
        attempt!(self, wait, AnyGuard::Lock)
    }
}

impl CLock for RLock {
    fn attempt(&'static self, wait: Wait) -> Took<AnyGuard> {
        attempt!(self, wait, AnyGuard::RLock)
    }
}

/// What a lock handle holds: the lock C takes, and its count of holds.
pub(crate) trait Lockable {
    type L: CLock + 'static;
    fn lock(&self) -> &Self::L;
    fn holds(&self) -> &Holds;
}

impl<L: CLock + 'static> Lockable for Held<L> {
    type L = L;
    fn lock(&self) -> &L {
        &self.lock
    }
    fn holds(&self) -> &Holds {
        &self.holds
    }
}

fn map<G>(t: Took<G>, f: impl FnOnce(G) -> AnyGuard) -> Took<AnyGuard> {
    match t {
        Took::Held(g) => Took::Held(f(g)),
        Took::OwnerDied(g) => Took::OwnerDied(f(g)),
        Took::Failed(e) => Took::Failed(e),
    }
}

/// The body of `mp_X_acquire`: one attempt per `timeout_ns`, the guard kept for this thread
/// (`MP_OWNER_DIED` keeps it too).
///
/// # Safety
/// `p` is null or a handle from this library.
pub(crate) unsafe fn acquire<H: Handle>(p: *const H, timeout_ns: u64) -> mp_status
where
    H::Inner: Lockable,
{
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(p) }?.h;
        // SAFETY: see `pinned`; `free` below frees only a handle no guard still uses.
        let l = unsafe { pinned(h.lock()) };
        match l.attempt(Wait::from_ns(timeout_ns)) {
            Took::Held(g) => held::push(p as usize, h.holds(), g).map_err(Fail::invalid),
            Took::OwnerDied(g) => {
                held::push(p as usize, h.holds(), g).map_err(Fail::invalid)?;
                Err(Fail::new(MP_OWNER_DIED, "the previous owner died holding the lock: it is held now; repair the data, make it consistent, release it"))
            }
            Took::Failed(f) => Err(f),
        }
    })
}

/// The body of `mp_X_release`: releases this thread's newest hold.
///
/// # Safety
/// `p` is null or a handle from this library.
pub(crate) unsafe fn release<H: Handle>(p: *const H, what: &str) -> mp_status
where
    H::Inner: Lockable,
{
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(p) }?.h;
        match held::pop(p as usize, h.holds()) {
            Some(g) => {
                drop(g);
                Ok(())
            }
            None => Err(Fail::invalid(format!("this thread does not hold this {what}"))),
        }
    })
}

/// The body of `mp_X_make_consistent`: marks this thread's newest hold consistent.
///
/// # Safety
/// `p` is null or a handle from this library.
pub(crate) unsafe fn make_consistent<H: Handle>(p: *const H, what: &str) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        unsafe { get(p) }?;
        held::with_newest(p as usize, AnyGuard::make_consistent)
            .ok_or_else(|| Fail::invalid(format!("this thread does not hold this {what}")))
    })
}

/// The body of `mp_X_free`: refused while another thread holds the lock through the handle
/// (see `held::release_all_for_free`); this thread's holds are released first.
///
/// # Safety
/// `p` is null or a handle from this library, not used by any thread after this call.
pub(crate) unsafe fn free<H: Handle>(p: *mut H) -> mp_status
where
    H::Inner: Lockable,
{
    call(|| {
        if p.is_null() {
            return Ok(());
        }
        // SAFETY: the caller's contract.
        held::release_all_for_free(p as usize, unsafe { get(p) }?.h.holds()).map_err(Fail::invalid)?;
        // SAFETY: the caller's contract.
        drop(unsafe { take(p) }?);
        Ok(())
    })
}

/// A lock with the lifetime of its boxed handle.
///
/// # Safety
/// The handle is never moved (it is boxed), and it is freed only when no other thread holds
/// the lock through it and after this thread's holds are released (`held::release_all_for_free`),
/// so no guard made from the returned reference outlives it.
unsafe fn pinned<T>(t: &T) -> &'static T {
    // SAFETY: the caller's contract above.
    unsafe { &*(t as *const T) }
}

/// Makes an anonymous lock, shared with children forked after this call.
///
/// Errors: `MP_INVALID` (null `out`), `MP_OS`. Never blocks.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_lock_new(out: *mut *mut mp_lock) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_lock::boxed(Held::new(Lock::new()?)))) })
}

/// Makes a lock under `name` for other programs to open with `mp_lock_open`. The name is
/// removed when this handle is freed.
///
/// Errors: `MP_EXISTS` (the name is taken by a live creator), `MP_INVALID` (a bad name, null
/// `out`), `MP_OS`. Never blocks.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_lock_create(name: *const c_char, out: *mut *mut mp_lock) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_lock::boxed(Held::new(Lock::create(self::name(name)?)?)))) })
}

/// Opens the lock made under `name`, waiting up to `timeout_ns` for it to appear
/// (`MP_FOREVER`: as long as it takes; 0: look once).
///
/// Errors: `MP_NOT_FOUND` (no such name, or not in time), `MP_MISMATCH` (the name is another
/// kind of object), `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_lock_open(name: *const c_char, timeout_ns: u64, out: *mut *mut mp_lock) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe {
        give(out, || {
            Ok(mp_lock::boxed(Held::new(Lock::open_timeout(self::name(name)?, Wait::from_ns(timeout_ns).duration())?)))
        })
    })
}

/// Takes the lock, waiting up to `timeout_ns` (`MP_FOREVER`: as long as it takes; 0: only if
/// it is free now). The calling thread then holds it until `mp_lock_release`.
///
/// Errors: `MP_TIMEOUT` (held by another thread or process all that time), `MP_OWNER_DIED`
/// (taken, but its previous owner died holding it: the lock IS held; see
/// `mp_lock_make_consistent`), `MP_INVALID` (this thread holds it already: that would
/// deadlock), `MP_CORRUPT` (the lock's memory was scribbled over, or it was left
/// inconsistent), `MP_OS`.
///
/// # Safety
/// `lock` is null or a handle from this library (or readable memory: it is refused).
#[no_mangle]
pub unsafe extern "C" fn mp_lock_acquire(lock: *const mp_lock, timeout_ns: u64) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { acquire(lock, timeout_ns) }
}

/// Releases the lock this thread took with `mp_lock_acquire`. Never blocks.
///
/// Errors: `MP_INVALID` (this thread does not hold it through this handle).
///
/// # Safety
/// `lock` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_lock_release(lock: *const mp_lock) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { release(lock, "lock") }
}

/// After `MP_OWNER_DIED`: says the data the lock protects has been repaired. Without it, the
/// release leaves the lock unusable (every later acquire fails with `MP_CORRUPT`). Never
/// blocks.
///
/// Errors: `MP_INVALID` (this thread does not hold it).
///
/// # Safety
/// `lock` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_lock_make_consistent(lock: *const mp_lock) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { make_consistent(lock, "lock") }
}

/// Frees the handle (null: nothing). If this thread holds the lock it is released first.
/// Other threads must not hold it or use the handle any more. A named lock's name goes with
/// its creator's handle. Never blocks.
///
/// Errors: `MP_INVALID` (not a live lock handle).
///
/// # Safety
/// `lock` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_lock_free(lock: *mut mp_lock) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { free(lock) }
}

/// Makes an anonymous recursive lock: the thread that holds it may take it again, and holds
/// it until it has released it as many times.
///
/// Errors: `MP_INVALID` (null `out`), `MP_OS`. Never blocks.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_rlock_new(out: *mut *mut mp_rlock) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_rlock::boxed(Held::new(RLock::new()?)))) })
}

/// Makes a recursive lock under `name` (see `mp_lock_create`).
///
/// Errors: `MP_EXISTS`, `MP_INVALID`, `MP_OS`. Never blocks.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_rlock_create(name: *const c_char, out: *mut *mut mp_rlock) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_rlock::boxed(Held::new(RLock::create(self::name(name)?)?)))) })
}

/// Opens the recursive lock made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH` (another kind of object), `MP_CORRUPT`,
/// `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_rlock_open(name: *const c_char, timeout_ns: u64, out: *mut *mut mp_rlock) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe {
        give(out, || {
            Ok(mp_rlock::boxed(Held::new(RLock::open_timeout(
                self::name(name)?,
                Wait::from_ns(timeout_ns).duration(),
            )?)))
        })
    })
}

/// Takes the recursive lock (again, if this thread holds it), waiting up to `timeout_ns`.
///
/// Errors: `MP_TIMEOUT`, `MP_OWNER_DIED` (held now; see `mp_rlock_make_consistent`),
/// `MP_CORRUPT`, `MP_OS`.
///
/// # Safety
/// `lock` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_rlock_acquire(lock: *const mp_rlock, timeout_ns: u64) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { acquire(lock, timeout_ns) }
}

/// Releases one hold of the recursive lock by this thread. Never blocks.
///
/// Errors: `MP_INVALID` (this thread does not hold it).
///
/// # Safety
/// `lock` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_rlock_release(lock: *const mp_rlock) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { release(lock, "rlock") }
}

/// After `MP_OWNER_DIED` from `mp_rlock_acquire`: the data has been repaired (see
/// `mp_lock_make_consistent`). Never blocks.
///
/// Errors: `MP_INVALID` (this thread does not hold it).
///
/// # Safety
/// `lock` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_rlock_make_consistent(lock: *const mp_rlock) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { make_consistent(lock, "rlock") }
}

/// Frees the handle (null: nothing), releasing this thread's holds first (see
/// `mp_lock_free`). Never blocks.
///
/// Errors: `MP_INVALID` (not a live rlock handle).
///
/// # Safety
/// `lock` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_rlock_free(lock: *mut mp_rlock) -> mp_status {
    // SAFETY: the caller's contract.
    unsafe { free(lock) }
}
