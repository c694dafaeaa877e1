//! `Semaphore` and `BoundedSemaphore` (Python's `multiprocessing.Semaphore` and
//! `BoundedSemaphore`), with permits that a dead holder gives back (SEM-B1).
//!
//! # Dead holders (SEM-B1)
//! Permits taken through a guard ([`Semaphore::acquire_guard`] and its forms) are recorded in a
//! table of [`HOLDER_SLOTS`] slots in the semaphore's shared memory, one per process that holds
//! guards now: its pid, its start time (so that a reused pid is never mistaken for it) and how
//! many guards it has in flight and how many permits they hold. A process blocked in `acquire`
//! wakes every [`RECOVERY_SLICE`] to look for slots whose process is gone (exited, reaped or
//! not), and gives their permits back, so a holder killed at any instruction delays the others
//! by at most one slice. A slot is freed when its process's last guard is dropped, so any
//! number of processes can use the semaphore over its life.
//!
//! When every slot is held by a live process (more than [`HOLDER_SLOTS`] processes holding
//! guards at the same moment), further guards are **untracked**
//! ([`SemaphoreGuard::is_tracked`] says so): they work, but a permit they hold is lost if their
//! process dies. Plain `acquire`/`release` are untracked, as in Python (a permit may be
//! released by another process).
//!
//! A holder killed at *any* instruction gives its permits back, exactly once (SEM-B2): while a
//! permit moves between the count and a slot, the semaphore word itself names the slot (a
//! transit lane), and the slot says whether it has counted the permit yet, so a recoverer
//! always knows where the permit is. `holders`' module docs give the five steps.
//!
//! # The slot word
//! `owner (32 bits) | pins (16) | held (16)` in one atomic word, so that a thread of the owner
//! joining the slot, a guard leaving it (and freeing it), and a recoverer taking it over are
//! each one CAS and can never interleave wrongly. `pins` counts the owner's guards in flight
//! (claimed, acquiring or holding), `held` the permits they hold (`held ≤ pins`). The owner
//! field is the pid plus four flags: `MOVING` (one of the owner's threads is moving a permit),
//! `ACK` (the slot has counted the permit in transit), `BUSY` (the slot is being set up or
//! recovered: `held` then counts the permits still to give back) and `STAMPED` (with `BUSY`:
//! the slot's start time is the recoverer's). A slot left busy by a process that died is
//! taken over like any dead holder's, judged by pid and start time where the mark is stamped
//! (a recovery, which may wait), by pid alone in the few instructions of a claim. A recovery
//! that finds no free lane for `holders::PATIENCE` *parks* the slots it still has
//! (`BUSY | MOVING`, with its start time): its own process's next recovery takes them back,
//! anyone's once it is gone. (Pids are below 2^22 on Linux, so the flag bits never belong to
//! a pid.)

use super::raw::semaphore::MAX_PERMITS;
use crate::forms::{Timeout, WouldBlock};
use crate::loom::atomic::Ordering::Relaxed;
use crate::shm::{self, Segment, ShmError, ShmRef};
use crate::wait::Limit;
use std::fmt;
use std::time::{Duration, Instant};

mod bounded;
mod holders;
#[cfg(test)]
mod tests;

pub use bounded::{BoundedSemaphore, ReleaseError};
pub use holders::{HOLDER_SLOTS, RECOVERY_SLICE};

use holders::{SemState, SlotIndex, Stuck};
use std::cell::Cell;

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
/// s.try_acquire()?;
/// assert!(s.try_acquire().is_err()); // no permit left: `WouldBlock`
/// s.release();
/// assert_eq!(s.get_value(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    state: ShmRef<SemState>,
    /// When this handle last looked for dead holders outside a blocking acquire (coarse clock,
    /// ns): `try_acquire` and `wait` look now and then, so a caller that only polls still gets
    /// a dead holder's permit back.
    looked: Looked,
}

/// `Semaphore::looked`: a clone starts its own rate limit.
#[derive(Default)]
struct Looked(crate::loom::atomic::AtomicU64);

impl Clone for Looked {
    fn clone(&self) -> Looked {
        Looked::default()
    }
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
    /// [`ShmError::InvalidArgument`] above `i32::MAX`; other [`ShmError`]s if the memory cannot be
    /// mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::Semaphore::new(u32::MAX).is_err());
    /// assert_eq!(multiproc::Semaphore::new(0)?.get_value(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(value: u32) -> Result<Semaphore, ShmError> {
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
    pub fn new_in(segment: &Segment, value: u32) -> Result<Semaphore, ShmError> {
        Semaphore::build(segment.alloc_object()?, value, false)
    }

    /// A semaphore with `value` permits under `name`, for processes that are not forked from
    /// this one: they call [`open`](Self::open). The name is removed when this handle's last
    /// clone drops, unless [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::InvalidArgument`] above `i32::MAX`; [`ShmError::Exists`] if the name is
    /// taken, or another error of [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-semaphore-create-{}", std::process::id());
    /// let s = multiproc::Semaphore::create(&name, 2)?;
    /// let other = multiproc::Semaphore::open(&name)?; // typically in another program
    /// other.try_acquire()?;
    /// assert_eq!(s.get_value(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, value: u32) -> Result<Semaphore, ShmError> {
        Semaphore::create_kind(name, value, false)
    }

    pub(super) fn create_kind<N: shm::Named>(name: &str, value: u32, bounded: bool) -> Result<N, ShmError> {
        if value > MAX_PERMITS {
            return Err(ShmError::InvalidArgument { what: "semaphore value (at most i32::MAX)", value: value.into() });
        }
        shm::create_named(name, std::mem::size_of::<SemState>() + 64, |seg| {
            let state = seg.alloc_object::<SemState>()?;
            let off = state.offset() as u64;
            Semaphore::build(state, value, bounded)?;
            Ok::<_, ShmError>([off, 0, 0, 0, 0, 0])
        })
    }

    /// The semaphore found by an opener in the directory words `w` of `seg`.
    pub(super) fn from_words(seg: &Segment, w: &shm::Words) -> Result<Semaphore, ShmError> {
        Ok(Semaphore { state: seg.object_at(shm::word_usize(w[0])?)?, looked: Looked::default() })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-semaphore-{}\", std::process::id());\nlet created = multiproc::Semaphore::create(&name, 1)?;\nlet opened = multiproc::Semaphore::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.try_acquire()?;\nassert_eq!(created.get_value(), 0);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Semaphore::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    fn build(state: ShmRef<SemState>, value: u32, bounded: bool) -> Result<Semaphore, ShmError> {
        if value > MAX_PERMITS {
            return Err(ShmError::InvalidArgument { what: "semaphore value (at most i32::MAX)", value: value.into() });
        }
        state.raw.init(value);
        state.limit.store(if bounded { value + 1 } else { 0 }, Relaxed);
        Ok(Semaphore { state, looked: Looked::default() })
    }

    /// Current number of free permits (Python's `get_value()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// s.acquire();
    /// assert_eq!(s.get_value(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_value(&self) -> u32 {
        self.state.raw.value()
    }

    fn acquire_until(&self, limit: Limit) -> bool {
        self.take_until(limit, &Cell::new(None))
    }

    /// Takes a permit before `limit`, into this process's holder slot `slot` when there is one
    /// (the journey of `holders`' module docs), else untracked. A journey that gets no lane
    /// within `holders::PATIENCE` (four processes stopped in mid-journey, or lanes a peer
    /// scribbled) leaves the slot and takes the permit untracked: `slot` then says `None`.
    fn take_until(&self, limit: Limit, slot: &Cell<SlotIndex>) -> bool {
        let take = || match slot.get() {
            Some(i) => self.state.take_into(i).unwrap_or_else(|Stuck| {
                self.state.unclaim(Some(i));
                slot.set(None);
                self.state.raw.try_acquire()
            }),
            None => self.state.raw.try_acquire(),
        };
        if limit.is_now() {
            return take() || (self.recover_now_and_then() && take());
        }
        let recover = || {
            self.state.recover_dead_holders();
        };
        self.state.raw.acquire_with(limit, Some((RECOVERY_SLICE, &recover)), take)
    }

    /// Gives back dead holders' permits, at most once per [`RECOVERY_SLICE`] for this handle
    /// (a recovery reads `/proc` for each holder on record); true if it did give some back.
    /// For the callers that never sleep in `acquire`, where the recovery otherwise runs.
    fn recover_now_and_then(&self) -> bool {
        let now = crate::sys::clock::coarse_nanos();
        // Relaxed: a rate limit for this handle only; two threads may both look, harmlessly.
        let last = self.looked.0.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < RECOVERY_SLICE.as_nanos() as u64 {
            return false;
        }
        self.looked.0.store(now.max(1), Relaxed);
        self.state.recover_dead_holders() > 0
    }

    /// Takes a permit, blocking until one is free (Python's `acquire()`). The permit is held
    /// until [`release`](Self::release), by this or any process; use
    /// [`acquire_guard`](Self::acquire_guard) for a permit that comes back by itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// s.acquire();
    /// s.release();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) {
        while !self.acquire_until(Limit::Forever) {}
    }

    /// Takes a permit if one is free now (Python's `acquire(False)`). When none is, it also
    /// looks for permits of dead guard holders (SEM-B1), at most once per [`RECOVERY_SLICE`]
    /// for this handle: a look reads `/proc` for each holder on record, and on a semaphore
    /// whose transit lanes stay taken (four processes stopped in mid-journey, or a peer's
    /// scribbles) it gives up after 50 ms.
    ///
    /// # Errors
    /// [`WouldBlock`] if none is free.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Semaphore, WouldBlock};
    ///
    /// let s = Semaphore::new(1)?;
    /// s.try_acquire()?;
    /// assert_eq!(s.try_acquire(), Err(WouldBlock));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<(), WouldBlock> {
        if self.acquire_until(Limit::Now) {
            Ok(())
        } else {
            Err(WouldBlock)
        }
    }

    /// Takes a permit, waiting up to `timeout` (Python's `acquire(timeout=t)`; `Duration::MAX`
    /// waits forever).
    ///
    /// # Errors
    /// [`Timeout`] if none became free in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Semaphore, Timeout};
    ///
    /// let s = Semaphore::new(0)?;
    /// assert_eq!(s.acquire_timeout(std::time::Duration::from_millis(10)), Err(Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.timed(Limit::timeout(timeout))
    }

    /// Takes a permit, waiting until `deadline`.
    ///
    /// # Errors
    /// [`Timeout`] if none became free in time.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// s.acquire_deadline(std::time::Instant::now())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.timed(Limit::deadline(deadline))
    }

    /// A timed acquire (a zero timeout is a passed deadline, not the try path: it looks once
    /// and reports `Timeout`).
    fn timed(&self, limit: Limit) -> Result<(), Timeout> {
        if self.acquire_until(limit) {
            Ok(())
        } else {
            Err(Timeout)
        }
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) {
        self.state.give_back(1);
    }

    /// Takes a permit through a guard that gives it back on drop, and that the semaphore gives
    /// back if this process dies while holding it (SEM-B1): Python's `with s:`.
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_guard(&self) -> SemaphoreGuard<'_> {
        let slot = Cell::new(self.state.claim_slot());
        while !self.take_until(Limit::Forever, &slot) {}
        SemaphoreGuard { sem: self, slot: slot.get() }
    }

    /// [`acquire_guard`](Self::acquire_guard) without waiting.
    ///
    /// # Errors
    /// [`WouldBlock`] if no permit is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// let g = s.try_acquire_guard()?;
    /// assert!(s.try_acquire_guard().is_err());
    /// drop(g); // the permit is back
    /// assert!(s.try_acquire_guard().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire_guard(&self) -> Result<SemaphoreGuard<'_>, WouldBlock> {
        self.guard_until(Limit::Now).ok_or(WouldBlock)
    }

    /// [`acquire_guard`](Self::acquire_guard), waiting up to `timeout`.
    ///
    /// # Errors
    /// [`Timeout`] if no permit became free in time.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(0)?;
    /// assert!(s.acquire_guard_timeout(std::time::Duration::from_millis(5)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_guard_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>, Timeout> {
        self.guard_until(Limit::timeout(timeout)).ok_or(Timeout)
    }

    /// [`acquire_guard`](Self::acquire_guard), waiting until `deadline`.
    ///
    /// # Errors
    /// [`Timeout`] if no permit became free in time.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// let _g = s.acquire_guard_deadline(std::time::Instant::now())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_guard_deadline(&self, deadline: Instant) -> Result<SemaphoreGuard<'_>, Timeout> {
        self.guard_until(Limit::deadline(deadline)).ok_or(Timeout)
    }

    fn guard_until(&self, limit: Limit) -> Option<SemaphoreGuard<'_>> {
        let slot = Cell::new(self.state.claim_slot());
        if self.take_until(limit, &slot) {
            Some(SemaphoreGuard { sem: self, slot: slot.get() })
        } else {
            self.state.unclaim(slot.get());
            None
        }
    }
}

/// A permit taken with [`Semaphore::acquire_guard`]; gives it back on drop.
#[must_use = "dropping the guard gives the permit back at once"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
    slot: SlotIndex,
}

impl SemaphoreGuard<'_> {
    /// Whether the permit is recorded in the semaphore's holder table, so that it comes back
    /// if this process dies while holding it. `false` only when [`HOLDER_SLOTS`] other
    /// processes hold guards at the same moment (see the module docs).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::Semaphore::new(1)?;
    /// assert!(s.acquire_guard().is_tracked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_tracked(&self) -> bool {
        self.slot.is_some()
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").field("tracked", &self.slot.is_some()).finish()
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        match self.slot {
            // Through a lane, so that a death at any instruction neither loses nor duplicates
            // the permit; the slot is freed with this process's last guard.
            Some(i) => self.sem.state.give_from(i),
            None => self.sem.state.give_back(1),
        }
    }
}

impl shm::Named for Semaphore {
    const KIND: shm::ObjectKind = shm::ObjectKind::Semaphore;

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        Semaphore::from_words(seg, w)
    }

    fn segment(&self) -> &Segment {
        self.state.segment()
    }

    fn words(&self) -> shm::Words {
        [self.state.offset() as u64, 0, 0, 0, 0, 0]
    }
}

/// Ready when a permit is free (checked between sleeps: a release wakes one sleeper, which must
/// be an `acquire`, not a `wait`). `wait` takes nothing: another process may take the permit
/// before the caller's `try_acquire`.
impl crate::wait::Waitable for Semaphore {
    fn is_ready(&self) -> bool {
        // A dead holder's permit is given back here too (now and then): a caller that waits
        // with `wait` and takes with `try_acquire` never sleeps in `acquire`, where the
        // recovery otherwise runs.
        self.get_value() > 0 || self.recover_now_and_then()
    }
}
