//! `Condition` (Python's `multiprocessing.Condition`) over a [`Lock`](crate::Lock) or an [`RLock`](crate::RLock).
//!
//! The algorithm is Python's: three counting semaphores in shared memory (`sleeping`, `woken`,
//! `wait_sem`). A waiter announces itself on `sleeping`, releases its lock (every level of an
//! `RLock`, COND-8), sleeps on `wait_sem`, and acknowledges on `woken`. `notify(n)` first
//! discounts the waiters that timed out since the last notify, then hands out up to `n` tokens
//! on `wait_sem` and waits for each woken waiter's acknowledgement, so each notify wakes exactly
//! the waiters it counted (COND-1, COND-4), and a token can never be taken by a later waiter.
//! Every semaphore operation is our futex state machine, checked by loom.
//!
//! Misuse Python reports at run time is mostly impossible here: `wait` takes the lock's guard
//! and `notify` a reference to it, so neither can run without holding *a* lock; holding the
//! wrong lock is refused with the guard given back (COND-7).
//!
//! A waiter that is notified and dies before acknowledging makes its notifier wait
//! [`ACK_TIMEOUT`] for the acknowledgement, then go on (at most that long per notify, however
//! many died); `notify_protocol` says what that costs a waiter that was only slow.

mod error;
mod lock;
#[cfg(all(test, loom))]
mod tests;

#[allow(deprecated)]
pub use error::ConditionError;
pub use error::{ConditionWaitError, ConditionWaitTimeoutError, NotifyError};
pub use lock::ConditionLock;

use super::mutex::{OwnerDied, RLock};
use super::raw::semaphore::RawSemaphore;
use crate::shm::{self, Segment, ShmError, ShmObject, ShmRef};
use crate::sys::pthread::Locked;
use crate::wait::Limit;
use lock::sealed;
use std::fmt;
use std::time::{Duration, Instant};

/// How long `notify` waits for a woken waiter to acknowledge before assuming it died.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(1);

#[repr(C)]
#[derive(Debug)]
struct CondState {
    sleeping: RawSemaphore,
    woken: RawSemaphore,
    wait_sem: RawSemaphore,
}

// SAFETY: three raw semaphores, each a valid ShmObject (all-zero valid, atomics only).
unsafe impl ShmObject for CondState {}

impl CondState {
    #[cfg(all(test, loom))]
    fn new() -> CondState {
        let zero = || RawSemaphore::new(0);
        CondState { sleeping: zero(), woken: zero(), wait_sem: zero() }
    }

    /// The waiter's half of the protocol, independent of the lock: announce, give the lock up
    /// (`release`), sleep for a token, acknowledge, take the lock back (`reacquire`).
    fn wait_protocol<G, H>(
        &self,
        guard: G,
        release: impl FnOnce(G),
        reacquire: impl FnOnce() -> H,
        limit: Limit,
    ) -> (H, bool) {
        self.sleeping.release(1);
        release(guard);
        let notified = self.wait_sem.acquire(limit, None);
        self.woken.release(1);
        (reacquire(), notified)
    }

    /// The notifier's half (the caller holds the lock): discount timed-out waiters, hand out up
    /// to `n` tokens, wait (until `ack_limit`, one limit for them all, so that dead waiters
    /// cost one `ACK_TIMEOUT` per notify, not one each) for the woken to acknowledge, and drop
    /// tokens nobody took. Returns how many waiters were woken.
    ///
    /// A woken waiter that does not acknowledge in time is taken for dead and its token
    /// dropped. One that was only slow (stopped, throttled past `ACK_TIMEOUT`) then finds no
    /// token and sleeps on uncounted until its own time-out; leaving the token instead lets a
    /// dead waiter's token and acknowledgement bookkeeping drift (a phantom waiter that every
    /// later notify waits `ACK_TIMEOUT` for). Telling the two apart needs each waiter on record
    /// (pid and start time), which this protocol does not keep.
    fn notify_protocol(&self, n: usize, ack_limit: impl FnOnce() -> Limit) -> usize {
        while self.woken.try_acquire() {
            let _ = self.sleeping.try_acquire();
        }
        let mut sleepers = 0;
        while sleepers < n && self.sleeping.try_acquire() {
            self.wait_sem.release(1);
            sleepers += 1;
        }
        let limit = ack_limit();
        for _ in 0..sleepers {
            let _ = self.woken.acquire(limit, None);
        }
        while self.wait_sem.try_acquire() {}
        sleepers
    }
}

/// A condition variable shared between processes.
///
/// # Examples
///
/// ```
/// use multiproc::{Condition, Process, RLock, Value};
///
/// let cond = Condition::new(RLock::new()?)?;
/// let ready = Value::new(0u32)?;
/// let child = Process::new({
///     let (cond, ready) = (cond.clone(), ready.clone());
///     move || {
///         let g = cond.lock().lock().unwrap();
///         ready.set(1).unwrap();
///         cond.notify_all(&g).unwrap();
///     }
/// });
/// let g = cond.lock().lock().unwrap();
/// child.start()?;
/// let g = cond.wait_for_timeout(g, || ready.get().unwrap() == 1, std::time::Duration::from_secs(10))?;
/// drop(g);
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Condition<L: ConditionLock = RLock> {
    lock: L,
    state: ShmRef<CondState>,
}

impl<L: ConditionLock> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").field("sleeping", &self.state.sleeping.value()).finish()
    }
}

/// The guard of a [`Condition`]'s lock `L` ([`LockGuard`](crate::LockGuard) or [`RLockGuard`](crate::RLockGuard)).
pub type Guard<'a, L> = <L as sealed::Sealed>::G<'a>;

impl<L: ConditionLock> Condition<L> {
    /// A condition over `lock` (Python's `Condition(lock)`; Python's default is an `RLock`).
    ///
    /// # Errors
    /// [`ShmError`] if its shared state cannot be allocated.
    pub fn new(lock: L) -> Result<Condition<L>, ShmError> {
        Ok(Condition { lock, state: shm::alloc_default()? })
    }

    /// A condition and its lock (an `L`) under `name`, for processes that are not forked from
    /// this one: they call [`open`](Self::open) with the same lock type (another is
    /// [`ShmError::Mismatch`]). The name is removed when this handle's last clone drops, unless
    /// [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, and the errors of [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Condition, RLock};
    ///
    /// let name = format!("doc-condition-create-{}", std::process::id());
    /// let c = Condition::<RLock>::create(&name)?;
    /// let other = Condition::<RLock>::open(&name)?; // typically in another program
    /// let g = c.lock().lock()?;
    /// assert_eq!(c.notify_all(&g)?, 0); // nobody waits
    /// drop(g);
    /// drop(other.lock().lock()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<Condition<L>, ShmError> {
        shm::create_named(name, std::mem::size_of::<CondState>() + 256, |seg| {
            let lock = L::new_in(seg)?;
            let state = seg.alloc_object::<CondState>()?;
            Ok::<_, ShmError>([sealed::Sealed::offset(&lock) as u64, state.offset() as u64, 0, 0, 0, 0])
        })
    }

    crate::shm::named_methods!("```\nuse multiproc::{Condition, Lock};\nlet name = format!(\"doc-condition-{}\", std::process::id());\nlet created = Condition::<Lock>::create(&name)?;\nlet opened = Condition::<Lock>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nlet g = opened.lock().lock()?;\nassert!(opened.wait_timeout(g, std::time::Duration::from_millis(1)).unwrap_err().is_timeout());\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(Condition::<Lock>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// The condition's lock (Python's `acquire`/`release` go through it).
    pub fn lock(&self) -> &L {
        &self.lock
    }

    fn owns(&self, g: &<L as sealed::Sealed>::G<'_>) -> bool {
        std::ptr::eq(<L as sealed::Sealed>::guard_raw(g), sealed::Sealed::raw(&self.lock))
    }

    /// Releases the lock (every level of an `RLock`, COND-8), waits for a notify, and takes
    /// the lock back (Python's `wait()`).
    ///
    /// # Errors
    /// See [`ConditionWaitError`]: a guard of another lock, or one whose data is borrowed, is
    /// given back without waiting; an owner that died meanwhile is reported with the lock held.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Condition, Lock, Process};
    ///
    /// let cond = Condition::new(Lock::new()?)?;
    /// let g = cond.lock().lock()?;
    /// let child = Process::new({
    ///     let cond = cond.clone();
    ///     move || {
    ///         let g = cond.lock().lock().unwrap(); // waits until the parent's wait releases it
    ///         cond.notify_all(&g).unwrap();
    ///     }
    /// });
    /// child.start()?;
    /// let g = cond.wait(g)?; // notified, and holding the lock again
    /// drop(g);
    /// child.join()?.exit_ok()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait<'a>(&'a self, guard: Guard<'a, L>) -> Result<Guard<'a, L>, ConditionWaitError<Guard<'static, L>>> {
        self.wait_until(guard, Limit::Forever).map(|(g, _)| g)
    }

    /// [`wait`](Self::wait) for at most `timeout` (Python's `wait(timeout)`, COND-5;
    /// `Duration::MAX` waits forever).
    ///
    /// # Errors
    /// [`ConditionWaitTimeoutError::Timeout`] with the guard (the lock is held again) if no
    /// notify came in time, or [`ConditionWaitError`]'s reasons.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Condition, Lock};
    ///
    /// let cond = Condition::new(Lock::new()?)?;
    /// let g = cond.lock().lock()?;
    /// let timed_out = cond.wait_timeout(g, std::time::Duration::from_millis(5)).unwrap_err();
    /// assert!(timed_out.is_timeout());
    /// let g = timed_out.into_guard().unwrap(); // the lock is held again
    /// drop(g);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout<'a>(
        &'a self,
        guard: Guard<'a, L>,
        timeout: Duration,
    ) -> Result<Guard<'a, L>, ConditionWaitTimeoutError<Guard<'static, L>>> {
        self.timed(guard, Limit::timeout(timeout))
    }

    /// [`wait`](Self::wait) until `deadline`.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Condition, RLock};
    ///
    /// let cond = Condition::new(RLock::new()?)?;
    /// let g = cond.lock().lock()?;
    /// assert!(cond.wait_deadline(g, std::time::Instant::now()).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_deadline<'a>(
        &'a self,
        guard: Guard<'a, L>,
        deadline: Instant,
    ) -> Result<Guard<'a, L>, ConditionWaitTimeoutError<Guard<'static, L>>> {
        self.timed(guard, Limit::deadline(deadline))
    }

    /// Waits until `pred()` is true, checking it with the lock held before each wait (Python's
    /// `wait_for(predicate)`, COND-6).
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Condition, Process, RLock, Value};
    ///
    /// let cond = Condition::new(RLock::new()?)?;
    /// let ready = Value::new(0u32)?;
    /// let child = Process::new({
    ///     let (cond, ready) = (cond.clone(), ready.clone());
    ///     move || {
    ///         let g = cond.lock().lock().unwrap();
    ///         ready.set(1).unwrap();
    ///         cond.notify_all(&g).unwrap();
    ///     }
    /// });
    /// let g = cond.lock().lock()?;
    /// child.start()?;
    /// let g = cond.wait_for(g, || ready.get().unwrap() == 1)?;
    /// drop(g);
    /// child.join()?.exit_ok()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for<'a>(
        &'a self,
        mut guard: Guard<'a, L>,
        mut pred: impl FnMut() -> bool,
    ) -> Result<Guard<'a, L>, ConditionWaitError<Guard<'static, L>>> {
        loop {
            if pred() {
                return Ok(guard);
            }
            guard = self.wait_until(guard, Limit::Forever)?.0;
        }
    }

    /// [`wait_for`](Self::wait_for) for at most `timeout` in all (Python's
    /// `wait_for(predicate, timeout)`).
    ///
    /// # Errors
    /// [`ConditionWaitTimeoutError::Timeout`] with the guard if `pred()` was still false when
    /// the time ran out, or [`ConditionWaitError`]'s reasons.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Condition, Lock};
    ///
    /// let cond = Condition::new(Lock::new()?)?;
    /// let g = cond.lock().lock()?;
    /// let g = cond.wait_for_timeout(g, || true, std::time::Duration::ZERO)?; // true at once
    /// let e = cond.wait_for_timeout(g, || false, std::time::Duration::from_millis(5)).unwrap_err();
    /// assert!(e.is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_timeout<'a>(
        &'a self,
        guard: Guard<'a, L>,
        pred: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<Guard<'a, L>, ConditionWaitTimeoutError<Guard<'static, L>>> {
        self.wait_for_until(guard, pred, Limit::timeout(timeout))
    }

    /// [`wait_for`](Self::wait_for) until `deadline`.
    ///
    /// # Errors
    /// As [`wait_for_timeout`](Self::wait_for_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Condition, Lock};
    ///
    /// let cond = Condition::new(Lock::new()?)?;
    /// let g = cond.lock().lock()?;
    /// assert!(cond.wait_for_deadline(g, || false, std::time::Instant::now()).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_deadline<'a>(
        &'a self,
        guard: Guard<'a, L>,
        pred: impl FnMut() -> bool,
        deadline: Instant,
    ) -> Result<Guard<'a, L>, ConditionWaitTimeoutError<Guard<'static, L>>> {
        self.wait_for_until(guard, pred, Limit::deadline(deadline))
    }

    fn timed<'a>(
        &'a self,
        guard: Guard<'a, L>,
        limit: Limit,
    ) -> Result<Guard<'a, L>, ConditionWaitTimeoutError<Guard<'static, L>>> {
        match self.wait_until(guard, limit)? {
            (g, true) => Ok(g),
            (g, false) => Err(ConditionWaitTimeoutError::Timeout(L::own(g))),
        }
    }

    fn wait_for_until<'a>(
        &'a self,
        mut guard: Guard<'a, L>,
        mut pred: impl FnMut() -> bool,
        limit: Limit,
    ) -> Result<Guard<'a, L>, ConditionWaitTimeoutError<Guard<'static, L>>> {
        loop {
            if pred() {
                return Ok(guard);
            }
            if limit.passed() {
                return Err(ConditionWaitTimeoutError::Timeout(L::own(guard)));
            }
            guard = self.wait_until(guard, limit)?.0;
        }
    }

    /// One wait: the guard back (the lock held again) and whether a notify came.
    fn wait_until<'a>(
        &'a self,
        guard: Guard<'a, L>,
        limit: Limit,
    ) -> Result<(Guard<'a, L>, bool), ConditionWaitError<Guard<'static, L>>> {
        if !self.owns(&guard) {
            return Err(ConditionWaitError::NotOwner(L::own(guard)));
        }
        let raw = sealed::Sealed::raw(&self.lock);
        // Relaxed: an owner-only word, and we hold the lock. A live `Value`/`Array` guard under
        // this lock would outlive the release: another thread could take the lock and a second
        // `&mut` to the same data (see `sync::guarded`).
        if raw.data_guards.load(crate::loom::atomic::Ordering::Relaxed) > 0 {
            return Err(ConditionWaitError::DataBorrowed(L::own(guard)));
        }
        // Every level this thread holds is given up, as many as the mutex itself accepts: the
        // depth word lives in shared memory, which a peer can scribble high or low,
        // while the mutex refuses an unlock by a thread that no longer holds it (robust
        // mutexes check their owner; a recursive one counts its own levels). So the release
        // unlocks until the first refusal, and exactly that many levels are taken back. A
        // first unlock refused means the mutex is corrupt or unrecoverable: the wait fails
        // with that instead of sleeping on a lock it may still hold.
        let given_up = std::cell::Cell::new(0u32);
        let refused = std::cell::Cell::new(None::<std::io::Error>);
        let release = |guard| {
            // Give up every level by hand: the guard must not unlock again (disarmed, not
            // forgotten: a handle it owns is dropped).
            L::disarm(guard);
            sealed::Sealed::set_depth(&self.lock, 0);
            while given_up.get() < u32::MAX {
                match raw.unlock() {
                    Ok(()) => given_up.set(given_up.get() + 1),
                    Err(e) => {
                        if given_up.get() == 0 {
                            refused.set(Some(e));
                        }
                        break;
                    }
                }
            }
        };
        let reacquire = || {
            if let Some(e) = refused.take() {
                return Err(mutex_failure(e));
            }
            let mut outcome = Ok(false);
            for _ in 0..given_up.get() {
                match raw.lock(None) {
                    Ok(Locked::OwnerDied) => outcome = outcome.map(|_| true),
                    Ok(Locked::NotRecoverable) => outcome = Err(ConditionWaitError::Unrecoverable),
                    Err(e) => outcome = Err(mutex_failure(e)),
                    Ok(_) => {}
                }
            }
            outcome
        };
        let (relocked, notified) = self.state.wait_protocol(guard, release, reacquire, limit);
        let died = relocked?;
        sealed::Sealed::set_depth(&self.lock, given_up.get());
        raw.begin_ownership();
        if died {
            return Err(ConditionWaitError::OwnerDied(OwnerDied::new(sealed::Sealed::forge_owned(&self.lock))));
        }
        Ok((sealed::Sealed::forge(&self.lock), notified))
    }

    /// Wakes up to `n` waiters (Python's `notify(n)`), returning how many it woke. The caller
    /// must hold the lock: pass its guard.
    ///
    /// # Errors
    /// [`NotifyError::NotOwner`] for a guard of another lock.
    pub fn notify(&self, guard: &Guard<'_, L>, n: usize) -> Result<usize, NotifyError> {
        if !self.owns(guard) {
            return Err(NotifyError::NotOwner);
        }
        // A woken waiter acknowledges before re-taking the lock we hold; a dead one never
        // does: give up on it after ACK_TIMEOUT.
        let sleepers = self.state.notify_protocol(n, || Limit::timeout(ACK_TIMEOUT));
        Ok(sleepers)
    }

    /// Wakes every waiter (Python's `notify_all`).
    pub fn notify_all(&self, guard: &Guard<'_, L>) -> Result<usize, NotifyError> {
        self.notify(guard, usize::MAX)
    }
}

impl<L: ConditionLock> shm::Named for Condition<L> {
    const KIND: shm::ObjectKind = shm::ObjectKind::Condition;

    fn type_info() -> shm::TypeInfo {
        let name = <L as sealed::Sealed>::NAME;
        shm::TypeInfo { fp: crate::codec::fingerprint_of_name(name), size: 0, align: 0, name }
    }

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        Ok(Condition { lock: L::at(seg, w[0])?, state: seg.object_at(shm::word_usize(w[1])?)? })
    }

    fn segment(&self) -> &Segment {
        self.state.segment()
    }

    fn words(&self) -> shm::Words {
        [sealed::Sealed::offset(&self.lock) as u64, self.state.offset() as u64, 0, 0, 0, 0]
    }

    fn parts(&self) -> shm::Parts {
        let mut p = shm::Parts { segs: Vec::new(), words: self.words(), seg_of: [shm::Parts::PARAM; shm::DIR_WORDS] };
        p.seg_of[0] = p.seg(sealed::Sealed::segment(&self.lock));
        p.seg_of[1] = p.seg(self.state.segment());
        p
    }

    fn from_parts(p: &shm::Parts) -> Result<Self, ShmError> {
        Ok(Condition {
            lock: L::at(p.seg_of(0)?, p.words[0])?,
            state: p.seg_of(1)?.object_at(shm::word_usize(p.words[1])?)?,
        })
    }
}

/// A wait's failure for the error of a lock or unlock of its mutex: a mutex that cannot be
/// recovered, one that is corrupt (unusable state, or an unlock refused to the thread that
/// held it), or the system's error.
fn mutex_failure<G>(e: std::io::Error) -> ConditionWaitError<G> {
    match e.raw_os_error() {
        Some(libc::ENOTRECOVERABLE) => ConditionWaitError::Unrecoverable,
        Some(libc::EPERM) => ConditionWaitError::Corrupt,
        _ if e.kind() == std::io::ErrorKind::InvalidData => ConditionWaitError::Corrupt,
        _ => ConditionWaitError::Os(e),
    }
}

#[cfg(all(test, not(loom)))]
mod depth_tests {
    use crate::loom::atomic::Ordering::Relaxed;
    use crate::sync::{Condition, RLock};
    use std::time::Duration;

    /// An `RLock`'s depth word scribbled by a peer, high (`u32::MAX`) and low (1), while this
    /// thread holds it twice: a wait gives up the two levels the mutex really has (another
    /// thread can take the lock meanwhile) and takes back those two. Before, the high word made
    /// it call `unlock` four billion times and the low one made it sleep holding a level.
    #[test]
    fn a_scribbled_rlock_depth_neither_stalls_a_wait_nor_keeps_a_level() {
        let _wd = crate::watchdog::watchdog(Duration::from_secs(20));
        for scribbled in [u32::MAX, 1] {
            let cond = Condition::new(RLock::new().unwrap()).unwrap();
            let outer = cond.lock().lock().unwrap();
            let inner = cond.lock().lock().unwrap();
            cond.lock().raw().depth.store(scribbled, Relaxed);
            let taken_meanwhile = std::thread::scope(|s| {
                // Takes the lock during the wait (only possible if every level was given up)
                // and ends the wait with a notify.
                let other = s.spawn(|| match cond.lock().lock_timeout(Duration::from_secs(2)) {
                    Ok(g) => cond.notify_all(&g).is_ok(),
                    Err(_) => false,
                });
                let inner = match cond.wait_timeout(inner, Duration::from_secs(4)) {
                    Ok(g) => g,
                    Err(e) => e.into_guard().unwrap(),
                };
                assert_eq!(cond.lock().raw().depth.load(Relaxed), 2, "depth {scribbled}: the real depth is back");
                drop(inner);
                drop(outer);
                other.join().unwrap()
            });
            assert!(taken_meanwhile, "depth {scribbled}: a level stayed held through the wait");
            std::thread::scope(|s| {
                s.spawn(|| assert!(cond.lock().try_lock().is_ok(), "depth {scribbled}: a level stayed held"));
            });
        }
    }
}
