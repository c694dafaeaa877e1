//! A robust, process-shared pthread mutex living in shared memory: the one building block for
//! every lock whose holder may die (Lock, RLock, Value's lock, Queue's reader/writer locks).
//!
//! The pthread object must be initialized with `pthread_mutex_init` before use; a zeroed one is
//! not a robust mutex. `init_state` records whether that happened, so a handle built over a
//! zeroed or foreign object reports an error instead of calling pthread on garbage. Before every
//! call into glibc, the mutex's `__kind` (what glibc dispatches on) is also checked against the
//! one `init` wrote: a corrupt segment is an error here, never a glibc `assert` that aborts the
//! process. What glibc acts on beyond the kind (the lock word and owner) cannot be checked
//! without reimplementing it: see `docs/FAILURE.md`.

// The pthread object is only ever touched by glibc through a raw pointer, never by our code,
// so loom has nothing to model in it: it sits in a plain `core` cell, not the shim's.
#![allow(clippy::disallowed_types)]

use crate::loom::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::shm::ShmObject;
use crate::sys::clock::Deadline;
use crate::sys::pthread::{self, Locked, MutexKind};
use core::cell::UnsafeCell;
use std::io;
use std::time::Duration;

// The states of `init_state`. Anything else (zero included) is a mutex that was never
// initialized, or a corrupt segment: refused without calling pthread.
/// Initialized and consistent.
const INITIALIZED: u32 = 0x4d55_5458; // "MUTX"
/// Held by a locker that got `EOWNERDEAD` and has not called `make_consistent` yet.
const INCONSISTENT: u32 = 0x4d55_5449; // "MUTI"
/// Released while inconsistent: glibc marked it not recoverable, and so do we.
const UNRECOVERABLE: u32 = 0x4d55_5444; // "MUTD"

/// What [`RawRobustMutex::lock_fast`] answers when its checks kept it from calling glibc (not
/// an error number glibc returns).
pub(crate) const NOT_TRIED: libc::c_int = -1;

/// How long one blocking wait inside glibc lasts before the locker looks again.
///
/// A robust mutex can lose a wake-up when a waiter is killed: the unlocker wakes exactly one
/// waiter (`FUTEX_WAKE` 1), and if that waiter is SIGKILLed before it re-takes the lock while a
/// third process takes it on the fast path (a plain CAS that does not set `FUTEX_WAITERS`), the
/// kernel's exit-time repair does nothing (the futex has an owner again) and the remaining
/// sleepers are never woken: nobody left knows they exist (the queue's kill-stress test shows
/// it: a consumer asleep in `pthread_mutex_lock` forever on an unlocked mutex).
/// So nobody sleeps in glibc for longer than this slice: a waiter whose wake-up was lost
/// re-reads the lock word after at most 50 ms, sets `FUTEX_WAITERS` again and carries on.
const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// A robust pshared pthread mutex plus a state word of our own.
#[repr(C)]
pub(crate) struct RawRobustMutex {
    /// `INITIALIZED`, `INCONSISTENT` or `UNRECOVERABLE` (see above). Besides refusing a zeroed
    /// object, it lets us avoid `pthread_mutex_trylock` on an unrecoverable mutex, which glibc
    /// 2.36 gets wrong: its trylock takes the lock word with a CAS, sees `NOTRECOVERABLE`, and
    /// returns `ENOTRECOVERABLE` *without* releasing the word, so the mutex would look held by
    /// the caller forever.
    init_state: AtomicU32,
    /// Recursion depth of the current owner (RLock only; written only by the owner while it
    /// holds the mutex, reset to 1 by a new owner after an owner death).
    pub(crate) depth: AtomicU32,
    /// The `__kind` glibc wrote at `init`, checked against the mutex before every call.
    kind: AtomicU32,
    /// How many data guards (`Value`/`Array` guards and one-shot updates) the current owner
    /// holds under this lock (RLock only; owner-only, reset by every new owner). A `Condition`
    /// refuses to release a lock that guards live data views: another thread would take it
    /// and get a second `&mut` to the same cell.
    pub(crate) data_guards: AtomicU32,
    /// Which ownership this is: bumped (never to 0) each time a thread takes the lock at
    /// depth 0, so that a data cell's borrow word written under an earlier ownership (a holder
    /// that died, or a guard that was forgotten) can be told from one of the current owner.
    pub(crate) epoch: AtomicU32,
    _pad: AtomicU32,
    mutex: UnsafeCell<pthread::pthread_mutex_t>,
}

// SAFETY: all-zero bytes are a valid (uninitialized, `init_state == 0`) value; no pointers (a
// glibc pthread_mutex_t holds only integers: lock word, owner tid, counters, list links that are
// *offsets* relative to the robust-list head); shared mutation goes through pthread calls, which
// are designed for process-shared use, and `init_state` is atomic.
unsafe impl ShmObject for RawRobustMutex {}
// SAFETY: the pthread mutex is built for concurrent use from many threads and processes.
unsafe impl Sync for RawRobustMutex {}
// SAFETY: as above; it holds no thread-local state.
unsafe impl Send for RawRobustMutex {}

impl std::fmt::Debug for RawRobustMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRobustMutex").field("initialized", &self.is_initialized()).finish()
    }
}

/// What `init_state` says before we call pthread.
enum Usable {
    Yes(*mut pthread::pthread_mutex_t),
    Unrecoverable,
}

impl RawRobustMutex {
    /// Initializes the mutex in place. Call once, before the object is shared.
    pub(crate) fn init(&self, kind: MutexKind) -> io::Result<()> {
        // SAFETY: the caller has not shared the object yet, so nobody uses the mutex during init.
        unsafe { pthread::mutex_init(self.mutex.get(), kind)? };
        // SAFETY: just initialized, in this live object.
        let k = unsafe { pthread::mutex_kind(self.mutex.get()) };
        if !pthread::kind_is_ours(k) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "this glibc writes an unknown mutex kind"));
        }
        // Relaxed: published with the Release store of `init_state` below.
        self.kind.store(k as u32, Relaxed);
        // SYNC(release → check): the initialized mutex is visible before the marker.
        self.init_state.store(INITIALIZED, Release);
        Ok(())
    }

    /// Whether [`init`](Self::init) completed.
    #[inline]
    pub(crate) fn is_initialized(&self) -> bool {
        // SYNC(acquire ← init).
        matches!(self.init_state.load(Acquire), INITIALIZED | INCONSISTENT | UNRECOVERABLE)
    }

    #[inline]
    fn checked(&self) -> io::Result<Usable> {
        // SYNC(acquire ← init, and ← the Release store of UNRECOVERABLE in `release`).
        match self.init_state.load(Acquire) {
            INITIALIZED | INCONSISTENT => {
                self.kind_intact()?;
                Ok(Usable::Yes(self.mutex.get()))
            }
            UNRECOVERABLE => Ok(Usable::Unrecoverable),
            _ => Err(io::Error::new(io::ErrorKind::InvalidData, "mutex in shared memory was never initialized")),
        }
    }

    /// Whether the mutex's `__kind` is still the one `init` wrote (and one of ours).
    #[inline]
    fn kind_intact(&self) -> io::Result<()> {
        if self.kind_ok() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt mutex in shared memory (its kind changed)"))
        }
    }

    /// [`kind_intact`](Self::kind_intact) as a bool (the fast paths build no error value).
    #[inline(always)]
    fn kind_ok(&self) -> bool {
        // SAFETY: the pthread object lives in this object, which is mapped while `self` is.
        let k = unsafe { pthread::mutex_kind(self.mutex.get()) };
        // Relaxed: written before `init_state` was published (and never after).
        k as u32 == self.kind.load(Relaxed) && pthread::kind_is_ours(k)
    }

    /// Records what a lock attempt returned in `init_state` (we hold the mutex for
    /// `OwnerDied`; `NotRecoverable` is permanent).
    #[inline]
    fn note(&self, r: Locked) -> Locked {
        match r {
            // Relaxed: only the holder writes INCONSISTENT/INITIALIZED, under the mutex.
            Locked::OwnerDied => self.init_state.store(INCONSISTENT, Relaxed),
            // SYNC(release → checked).
            Locked::NotRecoverable => self.init_state.store(UNRECOVERABLE, Release),
            _ => {}
        }
        r
    }

    /// Locks, waiting until `deadline` or forever (in [`LIVENESS_SLICE`]s, so a lost wake-up
    /// costs at most one slice instead of a hang).
    #[inline]
    pub(crate) fn lock(&self, deadline: Option<Deadline>) -> io::Result<Locked> {
        match self.lock_fast() {
            0 => Ok(Locked::Acquired),
            first => self.lock_after(first, deadline),
        }
    }

    /// As [`lock`](Self::lock), but a busy mutex is first watched, for up to `spins` rounds of
    /// a read of its lock word (no write, so the holder keeps its line), before the thread
    /// sleeps in the kernel. For locks held only for a short copy, across CPUs: glibc's robust
    /// mutexes never spin, so every meeting of two lockers there cost a `futex` sleep and a
    /// wake-up, each longer than the wait itself.
    #[inline]
    pub(crate) fn lock_spinning(&self, deadline: Option<Deadline>, spins: u32) -> io::Result<Locked> {
        let mut r = self.lock_fast();
        if r == libc::EBUSY {
            let m = self.mutex.get();
            for _ in 0..spins {
                crate::loom::hint::spin_loop();
                // SAFETY: `m` is this live object's mutex, initialized (`lock_fast` tried it).
                if unsafe { pthread::mutex_owner_tid(m) } == 0 {
                    r = self.lock_fast();
                    if r != libc::EBUSY {
                        break;
                    }
                }
            }
        }
        match r {
            0 => Ok(Locked::Acquired),
            first => self.lock_after(first, deadline),
        }
    }

    /// The uncontended half of [`lock`](Self::lock): one `trylock` on a consistent mutex with
    /// an intact kind, and glibc's answer as it gave it (0: taken), or [`NOT_TRIED`] when the
    /// checks kept it from trying. No clock reading and no error value: the checks ride on
    /// loads of the line glibc is about to touch anyway, and everything else (an inconsistent
    /// or unrecoverable state, a corrupt kind, a busy mutex) is sorted out by
    /// [`lock_after`](Self::lock_after), which must be given any non-zero answer (an
    /// `EOWNERDEAD` one means the lock is held).
    #[inline(always)]
    pub(crate) fn lock_fast(&self) -> libc::c_int {
        // SYNC(acquire ← init).
        if self.init_state.load(Acquire) != INITIALIZED || !self.kind_ok() {
            return NOT_TRIED;
        }
        // SAFETY: the mutex lives in this object, was initialized (the marker says so) and has
        // the kind `init` wrote; the state is not UNRECOVERABLE, so glibc's trylock bug (see
        // `init_state`) cannot bite unless the mutex became unrecoverable just now, which
        // `lock_after`'s `note` then records for everyone.
        unsafe { pthread::mutex_trylock_raw(self.mutex.get()) }
    }

    /// The rest of [`lock`](Self::lock) after [`lock_fast`](Self::lock_fast) answered `first`:
    /// checks the object in full, tries (if not tried yet) and then waits (kept out of line so
    /// the uncontended path stays small enough to inline).
    #[cold]
    #[inline(never)]
    pub(crate) fn lock_after(&self, first: libc::c_int, deadline: Option<Deadline>) -> io::Result<Locked> {
        if first == 0 {
            return Ok(Locked::Acquired);
        }
        let m = match self.checked()? {
            Usable::Yes(m) => m,
            Usable::Unrecoverable if first == NOT_TRIED => return Ok(Locked::NotRecoverable),
            Usable::Unrecoverable => self.mutex.get(),
        };
        let first = if first == NOT_TRIED {
            // SAFETY: checked just above: initialized, intact, not unrecoverable.
            unsafe { pthread::mutex_trylock(m)? }
        } else {
            pthread::locked(first)?
        };
        if first != Locked::Busy {
            return Ok(self.note(first));
        }
        loop {
            let until = crate::wait::earliest(deadline, Deadline::after(LIVENESS_SLICE));
            // SAFETY: `m` points into this live object and was checked initialized above (an
            // UNRECOVERABLE state, re-checked below, never uninitializes it).
            let r = unsafe { pthread::mutex_lock(m, until)? };
            if r != Locked::Busy {
                return Ok(self.note(r));
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return Ok(Locked::Busy);
            }
            if let Usable::Unrecoverable = self.checked()? {
                return Ok(Locked::NotRecoverable);
            }
            self.owner_exists(m)?;
        }
    }

    /// After a slice spent waiting: a lock word that names a thread that does not exist is
    /// garbage (had its owner died holding it, the kernel would have cleared the id and set
    /// `OWNER_DIED`), so waiting longer would be waiting forever. Threads of another pid
    /// namespace are invisible here: processes sharing a lock share a pid namespace (the kernel's
    /// owner-death marking assumes it too).
    #[cold]
    fn owner_exists(&self, m: *mut pthread::pthread_mutex_t) -> io::Result<()> {
        // SAFETY: `m` is this live object's mutex.
        let owner = unsafe { pthread::mutex_owner_tid(m) };
        if owner == 0 || crate::sys::process::thread_exists(owner) {
            return Ok(());
        }
        // The owner may have unlocked, and another taken it, between the two reads.
        // SAFETY: as above.
        if unsafe { pthread::mutex_owner_tid(m) } != owner {
            return Ok(());
        }
        Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt mutex: held by a thread that does not exist"))
    }

    /// Tries to lock without waiting.
    pub(crate) fn try_lock(&self) -> io::Result<Locked> {
        match self.checked()? {
            // SAFETY: as in `lock`.
            Usable::Yes(m) => Ok(self.note(unsafe { pthread::mutex_trylock(m)? })),
            Usable::Unrecoverable => Ok(Locked::NotRecoverable),
        }
    }

    /// Unlocks; `EPERM` if the calling thread is not the owner.
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        match self.checked()? {
            Usable::Yes(m) => {
                // SAFETY: as in `lock`; pthread checks ownership of robust mutexes.
                unsafe { self.release(m) }
            }
            Usable::Unrecoverable => Err(io::Error::from_raw_os_error(libc::ENOTRECOVERABLE)),
        }
    }

    /// Unlocks a mutex this thread holds through a guard.
    ///
    /// # Safety
    /// The calling thread locked this mutex (so `init` completed: no need to re-check the
    /// marker on the release path) and has not unlocked it since.
    #[inline(always)]
    pub(crate) unsafe fn unlock_held(&self) {
        if !self.kind_ok() {
            return; // corrupted while held: never hand glibc garbage (the lock is lost)
        }
        // Relaxed: INCONSISTENT was written by this thread (the holder), if at all.
        if self.init_state.load(Relaxed) == INCONSISTENT {
            self.mark_unrecoverable();
        }
        // SAFETY: initialized and held by us per the contract; unlocking a held mutex cannot
        // fail, so there is no answer to look at (and no error value to build).
        unsafe { pthread::mutex_unlock_raw(self.mutex.get()) };
    }

    /// A mutex released while inconsistent: glibc makes it not recoverable; say so first, so
    /// nobody calls the buggy trylock on it (see `init_state`).
    #[cold]
    fn mark_unrecoverable(&self) {
        // SYNC(release → checked).
        self.init_state.store(UNRECOVERABLE, Release);
    }

    /// # Safety
    /// `m` is this object's initialized mutex.
    #[inline]
    unsafe fn release(&self, m: *mut pthread::pthread_mutex_t) -> io::Result<()> {
        // Relaxed: INCONSISTENT was written by this thread (the holder), if at all.
        if self.init_state.load(Relaxed) == INCONSISTENT {
            self.mark_unrecoverable();
        }
        // SAFETY: per the contract; pthread checks ownership of robust mutexes.
        unsafe { pthread::mutex_unlock(m) }
    }

    /// Overwrites bytes of this object, as a corrupt peer could (tests). Out-of-range parts are
    /// ignored.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn debug_corrupt(&self, offset: usize, bytes: &[u8]) {
        let size = std::mem::size_of::<Self>();
        let base = self as *const Self as *mut u8;
        for (i, &b) in bytes.iter().enumerate() {
            if offset + i < size {
                // SAFETY: in bounds of this live object; shared memory, which peers may write
                // at any time anyway (every reader of these bytes tolerates any value).
                unsafe { base.add(offset + i).write_volatile(b) };
            }
        }
    }

    /// Starts a new ownership: called by a thread that has just taken the lock at depth 0
    /// (or over a dead owner). The data guards of earlier owners are gone, and the new epoch
    /// makes every borrow word they left behind stale (see `sync::guarded`).
    #[inline]
    pub(crate) fn begin_ownership(&self) {
        // Relaxed: owner-only words, ordered by the mutex itself (its lock and unlock).
        let e = self.epoch.load(Relaxed).wrapping_add(1);
        self.epoch.store(e.max(1), Relaxed);
        self.data_guards.store(0, Relaxed);
    }

    /// Marks the mutex consistent after an `OwnerDied` lock; the caller holds it.
    pub(crate) fn make_consistent(&self) -> io::Result<()> {
        let Usable::Yes(m) = self.checked()? else {
            return Err(io::Error::from_raw_os_error(libc::ENOTRECOVERABLE));
        };
        // SAFETY: as in `lock`.
        unsafe { pthread::mutex_consistent(m)? };
        // Relaxed: we hold the mutex; the unlock publishes it.
        self.init_state.store(INITIALIZED, Relaxed);
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::Segment;

    #[test]
    fn zeroed_mutex_is_refused_not_used() {
        let seg = Segment::anonymous(4096).unwrap();
        let m = seg.alloc_object::<RawRobustMutex>().unwrap();
        assert!(m.lock(None).is_err());
        m.init(MutexKind::ErrorCheck).unwrap();
        assert_eq!(m.lock(None).unwrap(), Locked::Acquired);
        assert_eq!(m.try_lock().unwrap(), Locked::Deadlock);
        m.unlock().unwrap();
        assert!(m.unlock().is_err());
    }

    #[test]
    fn a_corrupt_kind_is_an_error_not_a_glibc_abort() {
        let seg = Segment::anonymous(4096).unwrap();
        let m = seg.alloc_object::<RawRobustMutex>().unwrap();
        m.init(MutexKind::ErrorCheck).unwrap();
        // Play a corrupt peer: a priority-protect kind sends glibc into an assert (tpp.c).
        // SAFETY: the mutex is unused; writing 4 bytes inside it.
        unsafe { m.mutex.get().cast::<u8>().add(16).cast::<i32>().write_volatile(0x40 | 0x92) };
        assert_eq!(m.lock(None).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(m.try_lock().unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(m.unlock().is_err());
    }

    #[test]
    fn owner_death_is_reported_to_the_next_locker() {
        let seg = Segment::anonymous(4096).unwrap();
        let m = seg.alloc_object::<RawRobustMutex>().unwrap();
        m.init(MutexKind::ErrorCheck).unwrap();
        let m2 = m.clone();
        // A thread that exits holding a robust mutex is an owner death too (robust list is per thread).
        std::thread::spawn(move || assert_eq!(m2.lock(None).unwrap(), Locked::Acquired)).join().unwrap();
        assert_eq!(m.lock(None).unwrap(), Locked::OwnerDied);
        m.make_consistent().unwrap();
        m.unlock().unwrap();
        assert_eq!(m.lock(None).unwrap(), Locked::Acquired);
        m.unlock().unwrap();
    }
}
