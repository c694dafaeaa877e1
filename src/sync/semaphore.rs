//! `Semaphore` and `BoundedSemaphore` (Python's `multiprocessing.Semaphore` and
//! `BoundedSemaphore`), with permits that a dead holder gives back (SEM-B1).
//!
//! # Dead holders (SEM-B1)
//! Permits taken through a guard ([`Semaphore::acquire_guard`] and its forms) are recorded in a
//! table of [`HOLDER_SLOTS`] slots in the semaphore's shared memory: the holder's pid, its
//! start time (so that a reused pid is never mistaken for it) and how many guarded permits it
//! holds. A process blocked in `acquire` wakes every [`RECOVERY_SLICE`] to look for slots whose
//! process is gone, and gives their permits back, so a holder killed at any instruction
//! delays the others by at most one slice. Plain `acquire`/`release` stay untracked, as in
//! Python (a permit may be released by another process). When the table is full, further
//! guards are untracked: they still work, but their permits are not recovered after a death.
//! A process claims its slot before it takes a permit and keeps it while it lives, so the only
//! windows in which a death loses a permit are the single instruction between taking a permit
//! and counting it (and between uncounting one and giving it back), and a recoverer that dies in
//! the middle of a recovery. A dead process's slot is freed by recovery.

use super::raw::semaphore::{RawSemaphore, Released, MAX_PERMITS};
use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::shm::{self, Segment, ShmError, ShmObject, ShmRef};
use crate::sys::clock::Deadline;
use std::fmt;
use std::time::{Duration, Instant};

/// Number of processes whose guarded permits are tracked at once.
pub const HOLDER_SLOTS: usize = 32;

/// How often a blocked `acquire` looks for permits held by dead processes.
pub const RECOVERY_SLICE: Duration = Duration::from_millis(50);

/// `pid` of a slot being recovered by some process.
const RECOVERING: u32 = u32::MAX;

#[repr(C)]
#[derive(Debug)]
struct HolderSlot {
    pid: AtomicU32,
    count: AtomicU32,
    start: AtomicU64,
}

#[repr(C)]
#[derive(Debug)]
struct SemState {
    raw: RawSemaphore,
    /// 0 for a plain semaphore, else 1 + the BoundedSemaphore's initial value.
    limit: AtomicU32,
    _pad: AtomicU32,
    holders: [HolderSlot; HOLDER_SLOTS],
}

// SAFETY: all-zero is a semaphore with no permits, no bound and empty holder slots; only atomics,
// no pointers; every value a peer can leave is checked where it is used (pids and start times
// are only compared, counts are clamped by the raw semaphore, the limit is clamped).
unsafe impl ShmObject for SemState {}

/// Why a semaphore could not be created or released.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SemaphoreError {
    /// The initial value is above the largest supported count (`i32::MAX`, as for POSIX
    /// semaphores). Negative values cannot be expressed (SEM-5).
    InvalidValue(u64),
    /// A `BoundedSemaphore` was released more times than it was acquired: the value is unchanged
    /// (Python's `ValueError: semaphore or lock released too many times`, SEM-3).
    ReleasedTooManyTimes,
    /// The shared memory could not be allocated.
    Shm(String),
}

impl fmt::Display for SemaphoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SemaphoreError::InvalidValue(v) => write!(f, "invalid semaphore value {v} (maximum {MAX_PERMITS})"),
            SemaphoreError::ReleasedTooManyTimes => f.write_str("semaphore or lock released too many times"),
            SemaphoreError::Shm(e) => write!(f, "semaphore shared memory: {e}"),
        }
    }
}

impl std::error::Error for SemaphoreError {}

impl From<ShmError> for SemaphoreError {
    fn from(e: ShmError) -> SemaphoreError {
        SemaphoreError::Shm(e.to_string())
    }
}

use crate::sys::process::{is_alive as alive, self_identity as me};

/// A counting semaphore in shared memory. Permits taken through a guard by a process that
/// then dies are given back (SEM-B1; see the repository's `docs/FAILURE.md`).
///
/// `acquire` and `release` cost one atomic operation and no system call when no process waits.
///
/// # Examples
///
/// ```
/// use multiproc::Semaphore;
///
/// let s = Semaphore::new(2)?;
/// assert_eq!(s.get_value(), 2);
/// s.acquire();
/// assert!(s.try_acquire());
/// assert!(!s.try_acquire());
/// s.release();
/// assert_eq!(s.get_value(), 1);
/// # Ok::<(), multiproc::SemaphoreError>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    state: ShmRef<SemState>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("value", &self.get_value()).finish()
    }
}

impl Semaphore {
    /// A semaphore with `value` permits in this process's default shared arena.
    ///
    /// # Errors
    /// [`SemaphoreError::InvalidValue`] above `i32::MAX`; [`SemaphoreError::Shm`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::Semaphore::new(u32::MAX).is_err());
    /// assert_eq!(multiproc::Semaphore::new(0)?.get_value(), 0);
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn new(value: u32) -> Result<Semaphore, SemaphoreError> {
        Semaphore::build(shm::alloc_default()?, value, false)
    }

    /// A semaphore with `value` permits allocated in `segment`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// let s = multiproc::Semaphore::new_in(&seg, 3)?;
    /// assert_eq!(s.get_value(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_in(segment: &Segment, value: u32) -> Result<Semaphore, SemaphoreError> {
        Semaphore::build(segment.alloc_object()?, value, false)
    }

    fn build(state: ShmRef<SemState>, value: u32, bounded: bool) -> Result<Semaphore, SemaphoreError> {
        if value > MAX_PERMITS {
            return Err(SemaphoreError::InvalidValue(value.into()));
        }
        state.raw.init(value);
        state.limit.store(if bounded { value + 1 } else { 0 }, Relaxed);
        Ok(Semaphore { state })
    }

    /// Current number of free permits (Python's `get_value()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// s.acquire();
    /// assert_eq!(s.get_value(), 0);
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn get_value(&self) -> u32 {
        self.state.raw.value()
    }

    fn acquire_until(&self, deadline: Option<Deadline>) -> bool {
        let recover = || {
            self.recover_dead_holders();
        };
        self.state.raw.acquire(deadline, Some((RECOVERY_SLICE, &recover)))
    }

    /// Takes a permit, blocking until one is free (Python's `acquire()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// s.acquire();
    /// s.release();
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn acquire(&self) {
        while !self.acquire_until(None) {}
    }

    /// Takes a permit if one is free now (Python's `acquire(False)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(0)?;
    /// assert!(!s.try_acquire());
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.state.raw.try_acquire()
    }

    /// Takes a permit, waiting up to `timeout`; returns whether it did (Python's
    /// `acquire(timeout=t)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(0)?;
    /// assert!(!s.acquire_timeout(std::time::Duration::from_millis(10)));
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        match Deadline::after(timeout) {
            Some(d) => self.acquire_until(Some(d)),
            None => {
                self.acquire();
                true
            }
        }
    }

    /// Takes a permit, waiting until `deadline`; returns whether it did.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// assert!(s.acquire_deadline(std::time::Instant::now()));
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.acquire_until(Deadline::at(deadline))
    }

    /// Gives a permit back; unbounded, like Python's `Semaphore.release()`. Any process may
    /// release.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(0)?;
    /// s.release();
    /// s.release();
    /// assert_eq!(s.get_value(), 2);
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn release(&self) {
        self.give_back(1);
    }

    /// The bound of a BoundedSemaphore (`None` for a plain one). Read from shared memory:
    /// clamped by the raw semaphore.
    fn limit(&self) -> Option<u32> {
        self.state.limit.load(Relaxed).checked_sub(1)
    }

    fn give_back(&self, n: u32) {
        match self.limit() {
            None => self.state.raw.release(n),
            Some(limit) => {
                for _ in 0..n {
                    let _ = self.state.raw.release_bounded(limit);
                }
            }
        }
    }

    /// Takes a permit through a guard that gives it back on drop, and that the semaphore gives
    /// back if this process dies while holding it (SEM-B1).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// {
    ///     let _permit = s.acquire_guard();
    ///     assert_eq!(s.get_value(), 0);
    /// }
    /// assert_eq!(s.get_value(), 1);
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn acquire_guard(&self) -> SemaphoreGuard<'_> {
        let slot = self.claim_slot();
        self.acquire();
        self.guard(slot)
    }

    /// [`acquire_guard`](Self::acquire_guard) without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// let g = s.try_acquire_guard();
    /// assert!(g.is_some());
    /// assert!(s.try_acquire_guard().is_none());
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn try_acquire_guard(&self) -> Option<SemaphoreGuard<'_>> {
        let slot = self.claim_slot();
        if self.try_acquire() {
            Some(self.guard(slot))
        } else {
            self.unclaim(slot);
            None
        }
    }

    /// [`acquire_guard`](Self::acquire_guard) waiting up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(0)?;
    /// assert!(s.acquire_guard_timeout(std::time::Duration::from_millis(5)).is_none());
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn acquire_guard_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        let slot = self.claim_slot();
        if self.acquire_timeout(timeout) {
            Some(self.guard(slot))
        } else {
            self.unclaim(slot);
            None
        }
    }

    /// Finds (or claims) this process's holder slot before a permit is taken, so that the
    /// only untracked window is the one instruction between taking the permit and counting it.
    fn claim_slot(&self) -> Option<usize> {
        let (pid, start) = me();
        let slots = &self.state.holders;
        for (i, s) in slots.iter().enumerate() {
            // SYNC(acquire ← claim): the slot's start was written before its pid was published.
            if s.pid.load(Acquire) == pid && s.start.load(Relaxed) == start {
                return Some(i);
            }
        }
        for (i, s) in slots.iter().enumerate() {
            if s.pid.load(Relaxed) == 0 && s.pid.compare_exchange(0, RECOVERING, Acquire, Relaxed).is_ok() {
                s.start.store(start, Relaxed);
                // SYNC(release → claim/recover): `start` is visible before the slot names us.
                s.pid.store(pid, Release);
                return Some(i);
            }
        }
        None
    }

    /// Releases a claimed slot that holds nothing (a guard attempt that got no permit).
    fn unclaim(&self, slot: Option<usize>) {
        if let Some(i) = slot {
            let s = &self.state.holders[i];
            if s.count.load(Acquire) == 0 {
                let (pid, _) = me();
                let _ = s.pid.compare_exchange(pid, 0, Release, Relaxed);
            }
        }
    }

    /// Counts the permit just taken in the claimed slot.
    fn guard(&self, slot: Option<usize>) -> SemaphoreGuard<'_> {
        if let Some(i) = slot {
            // SYNC(release → recover): the count is what recovery gives back.
            self.state.holders[i].count.fetch_add(1, Release);
        }
        SemaphoreGuard { sem: self, slot }
    }

    /// Gives back the permits of holders that have died; returns how many.
    fn recover_dead_holders(&self) -> u32 {
        let mut total = 0;
        for s in &self.state.holders {
            let pid = s.pid.load(Acquire);
            if pid == 0 || pid == RECOVERING {
                continue;
            }
            // SYNC(acquire ← claim): a published pid means `start` is valid.
            if alive(pid, s.start.load(Relaxed)) {
                continue;
            }
            if s.pid.compare_exchange(pid, RECOVERING, Acquire, Relaxed).is_err() {
                continue;
            }
            let n = s.count.swap(0, Acquire).min(MAX_PERMITS);
            s.start.store(0, Relaxed);
            // SYNC(release → guard): the slot is free only after it is fully reset.
            s.pid.store(0, Release);
            self.give_back(n);
            total += n;
        }
        total
    }
}

/// A permit taken with [`Semaphore::acquire_guard`]; gives it back on drop.
#[must_use = "dropping the guard gives the permit back at once"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
    slot: Option<usize>,
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").field("tracked", &self.slot.is_some()).finish()
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let s = &self.sem.state.holders[i];
            // Release: the decrement precedes the permit's release below. The slot stays ours
            // (recovery skips slots of live processes, and frees ours once we are gone).
            s.count.fetch_sub(1, Release);
        }
        self.sem.give_back(1);
    }
}

/// A semaphore whose `release` fails instead of raising the value above its initial value
/// (Python's `BoundedSemaphore`).
///
/// # Examples
///
/// ```
/// use multiproc::{BoundedSemaphore, SemaphoreError};
///
/// let s = BoundedSemaphore::new(2)?;
/// s.acquire();
/// s.release()?;
/// assert_eq!(s.release(), Err(SemaphoreError::ReleasedTooManyTimes));
/// assert_eq!(s.get_value(), 2);
/// # Ok::<(), multiproc::SemaphoreError>(())
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore").field("value", &self.get_value()).finish()
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits (also its bound) in the default arena.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::BoundedSemaphore::new(1)?;
    /// assert_eq!(s.get_value(), 1);
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore, SemaphoreError> {
        Ok(BoundedSemaphore { inner: Semaphore::build(shm::alloc_default()?, value, true)? })
    }

    /// A bounded semaphore allocated in `segment`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// let s = multiproc::BoundedSemaphore::new_in(&seg, 1)?;
    /// assert!(s.try_acquire());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_in(segment: &Segment, value: u32) -> Result<BoundedSemaphore, SemaphoreError> {
        Ok(BoundedSemaphore { inner: Semaphore::build(segment.alloc_object()?, value, true)? })
    }

    /// Gives a permit back.
    ///
    /// # Errors
    /// [`SemaphoreError::ReleasedTooManyTimes`] if the value is already at its bound; the value
    /// is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::BoundedSemaphore::new(1)?;
    /// assert!(s.release().is_err());
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn release(&self) -> Result<(), SemaphoreError> {
        match self.inner.state.raw.release_bounded(self.inner.limit().unwrap_or(MAX_PERMITS)) {
            Released::Ok => Ok(()),
            Released::AtLimit => Err(SemaphoreError::ReleasedTooManyTimes),
        }
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;

    /// Everything but `release` is the same as [`Semaphore`]'s.
    fn deref(&self) -> &Semaphore {
        &self.inner
    }
}
