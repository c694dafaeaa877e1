//! A robust, process-shared pthread mutex living in shared memory: the one building block for
//! every lock whose holder may die (Lock, RLock, Value's lock, Queue's reader/writer locks).
//!
//! The pthread object must be initialized with `pthread_mutex_init` before use; a zeroed one is
//! not a robust mutex. `init_state` records whether that happened, so a handle built over a
//! zeroed or foreign object reports an error instead of calling pthread on garbage.

// The pthread object is only ever touched by glibc through a raw pointer, never by our code,
// so loom has nothing to model in it: it sits in a plain `core` cell, not the shim's.
#![allow(clippy::disallowed_types)]

use crate::loom::atomic::{
    AtomicU32,
    Ordering::{Acquire, Release},
};
use crate::shm::ShmObject;
use crate::sys::clock::Deadline;
use crate::sys::pthread::{self, Locked, MutexKind};
use core::cell::UnsafeCell;
use std::io;

const INITIALIZED: u32 = 0x4d55_5458; // "MUTX"

/// A robust pshared pthread mutex plus an initialized marker.
#[repr(C)]
pub(crate) struct RawRobustMutex {
    init_state: AtomicU32,
    /// Recursion depth of the current owner (RLock only; written only by the owner while it
    /// holds the mutex, reset to 1 by a new owner after an owner death).
    pub(crate) depth: AtomicU32,
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

impl RawRobustMutex {
    /// Initializes the mutex in place. Call once, before the object is shared.
    pub(crate) fn init(&self, kind: MutexKind) -> io::Result<()> {
        // SAFETY: the caller has not shared the object yet, so nobody uses the mutex during init.
        unsafe { pthread::mutex_init(self.mutex.get(), kind)? };
        // SYNC(release → check): the initialized mutex is visible before the marker.
        self.init_state.store(INITIALIZED, Release);
        Ok(())
    }

    /// Whether [`init`](Self::init) completed.
    #[inline]
    pub(crate) fn is_initialized(&self) -> bool {
        // SYNC(acquire ← init).
        self.init_state.load(Acquire) == INITIALIZED
    }

    #[inline]
    fn checked(&self) -> io::Result<*mut pthread::pthread_mutex_t> {
        if self.is_initialized() {
            Ok(self.mutex.get())
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidData, "mutex in shared memory was never initialized"))
        }
    }

    /// Locks, waiting until `deadline` or forever.
    #[inline]
    pub(crate) fn lock(&self, deadline: Option<Deadline>) -> io::Result<Locked> {
        let m = self.checked()?;
        // SAFETY: `m` points into this live object and was initialized (checked).
        unsafe { pthread::mutex_lock(m, deadline) }
    }

    /// Tries to lock without waiting.
    pub(crate) fn try_lock(&self) -> io::Result<Locked> {
        let m = self.checked()?;
        // SAFETY: as in `lock`.
        unsafe { pthread::mutex_trylock(m) }
    }

    /// Unlocks; `EPERM` if the calling thread is not the owner.
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        let m = self.checked()?;
        // SAFETY: as in `lock`; pthread checks ownership of robust mutexes.
        unsafe { pthread::mutex_unlock(m) }
    }

    /// Unlocks a mutex this thread holds through a guard.
    ///
    /// # Safety
    /// The calling thread locked this mutex (so `init` completed: no need to re-check the
    /// marker on the release path) and has not unlocked it since.
    #[inline]
    pub(crate) unsafe fn unlock_held(&self) {
        // SAFETY: initialized and held by us per the contract; unlocking a held mutex cannot
        // fail.
        unsafe {
            let _ = pthread::mutex_unlock(self.mutex.get());
        }
    }

    /// Marks the mutex consistent after an `OwnerDied` lock; the caller holds it.
    pub(crate) fn make_consistent(&self) -> io::Result<()> {
        let m = self.checked()?;
        // SAFETY: as in `lock`.
        unsafe { pthread::mutex_consistent(m) }
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
