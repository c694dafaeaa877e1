//! `Barrier` (Python's `multiprocessing.Barrier`), with prompt breaking when a waiting party
//! dies (BAR-B1).
//!
//! # Dead parties (BAR-B1)
//! A party that waits records its pid and start time in the barrier's shared memory (the first
//! [`TRACKED_PARTIES`] arrivals of a generation). Waiters wake every [`LIVENESS_SLICE`] to check
//! the recorded parties; if one has died, the barrier breaks for everyone with
//! [`BarrierError::PartyDied`], well before any timeout. A party that dies *before* arriving
//! cannot be told from a slow one: the others wait for their timeout, as in Python.

use super::raw::barrier::{Hooks, RawBarrier, WaitFailed};

/// Parties whose liveness is tracked while they wait (the first arrivals of a generation).
pub const TRACKED_PARTIES: usize = super::raw::barrier::TRACKED_PARTIES;
use crate::loom::atomic::Ordering::{Acquire, Relaxed, Release};
use crate::shm::{self, Segment, ShmError, ShmRef};
use crate::sys::clock::Deadline;
use std::fmt;
use std::time::{Duration, Instant};

/// How often waiting parties check that the other waiting parties are alive.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// Why a barrier wait did not pass (Python's `BrokenBarrierError`, with the reason kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BarrierError {
    /// The barrier is broken: aborted, reset while waiting, or broken by another party's
    /// time-out, death or failing action. It stays broken until [`Barrier::reset`].
    Broken,
    /// This wait timed out; the barrier is now broken for everyone (BAR-8).
    Timeout,
    /// A waiting party died; the barrier is now broken for everyone (BAR-B1).
    PartyDied,
    /// The action panicked in this party; the barrier is now broken for everyone.
    ActionFailed,
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BarrierError::Broken => "the barrier is broken",
            BarrierError::Timeout => "barrier wait timed out (the barrier is now broken)",
            BarrierError::PartyDied => "a waiting party died (the barrier is now broken)",
            BarrierError::ActionFailed => "the barrier action panicked (the barrier is now broken)",
        })
    }
}

impl std::error::Error for BarrierError {}

/// A rendezvous point for a fixed number of processes.
///
/// Each [`wait`](Barrier::wait) returns a distinct index in `0..parties`; the optional action
/// runs exactly once per generation, in the last party to arrive, before anyone is released.
/// The action is a plain `fn`, valid in every forked process.
///
/// # Examples
///
/// ```
/// use multiproc::{Barrier, Process};
///
/// let barrier = Barrier::new(2)?;
/// let child = Process::new({
///     let b = barrier.clone();
///     move || b.wait().map(|_| ())
/// });
/// child.start()?;
/// let my_index = barrier.wait()?;
/// assert!(my_index < 2);
/// assert!(child.join()?.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    raw: ShmRef<RawBarrier>,
    action: Option<fn()>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` processes (at least 1) in the default shared arena.
    ///
    /// # Errors
    /// [`ShmError::TooSmall`] for 0 parties; [`ShmError`] if shared memory cannot be mapped.
    pub fn new(parties: u32) -> Result<Barrier, ShmError> {
        Barrier::build(shm::alloc_default()?, parties)
    }

    /// A barrier allocated in `segment`.
    pub fn new_in(segment: &Segment, parties: u32) -> Result<Barrier, ShmError> {
        Barrier::build(segment.alloc_object()?, parties)
    }

    fn build(raw: ShmRef<RawBarrier>, parties: u32) -> Result<Barrier, ShmError> {
        if parties == 0 {
            return Err(ShmError::TooSmall { len: 0, min: 1 });
        }
        raw.init(parties);
        Ok(Barrier { raw, action: None, timeout: None })
    }

    /// Runs `action` once per generation, in the last party to arrive, before the release
    /// (Python's `action=`, BAR-4). Set it before sharing the barrier (it is per handle).
    pub fn with_action(mut self, action: fn()) -> Barrier {
        self.action = Some(action);
        self
    }

    /// The timeout used by [`wait`](Barrier::wait) (Python's `timeout=`, BAR-8).
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    /// Number of parties.
    pub fn parties(&self) -> u32 {
        self.raw.parties()
    }

    /// Parties waiting now (BAR-6).
    pub fn n_waiting(&self) -> u32 {
        self.raw.n_waiting()
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.raw.is_broken()
    }

    /// Breaks the barrier: waiting and future parties get [`BarrierError::Broken`] (BAR-5).
    pub fn abort(&self) {
        self.raw.abort();
    }

    /// Returns the barrier to its initial state; current waiters get
    /// [`BarrierError::Broken`] (BAR-6, BAR-7).
    pub fn reset(&self) {
        self.raw.reset();
    }

    /// Waits for all parties, using the barrier's default timeout if it has one; returns this
    /// party's index in `0..parties`.
    ///
    /// # Errors
    /// See [`BarrierError`].
    pub fn wait(&self) -> Result<u32, BarrierError> {
        self.wait_until(self.timeout.and_then(Deadline::after))
    }

    /// Waits at most `timeout` (Python's `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, BarrierError> {
        self.wait_until(Deadline::after(timeout))
    }

    /// Waits until `deadline`.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<u32, BarrierError> {
        self.wait_until(Deadline::at(deadline))
    }

    fn wait_until(&self, deadline: Option<Deadline>) -> Result<u32, BarrierError> {
        let action_panicked = std::cell::Cell::new(false);
        let action = || match self.action {
            None => true,
            Some(f) => match std::panic::catch_unwind(f) {
                Ok(()) => true,
                Err(_) => {
                    action_panicked.set(true);
                    false
                }
            },
        };
        let slots = &self.raw.slots;
        let register = |idx: usize, gen: u32| {
            if let Some(s) = slots.get(idx) {
                let (pid, start) = crate::sys::process::self_identity();
                s.start.store(start, Relaxed);
                s.gen.store(gen, Relaxed);
                // SYNC(release → any_dead): start and gen are visible with the pid.
                s.pid.store(pid, Release);
            }
        };
        let any_dead = |gen: u32| {
            slots.iter().any(|s| {
                // SYNC(acquire ← register).
                let pid = s.pid.load(Acquire);
                pid != 0 && s.gen.load(Relaxed) == gen && !crate::sys::process::is_alive(pid, s.start.load(Relaxed))
            })
        };
        let hooks = Hooks { action: &action, register: &register, any_dead: &any_dead, slice: Some(LIVENESS_SLICE) };
        match self.raw.wait(deadline, &hooks) {
            Ok(i) => Ok(i),
            Err(_) if action_panicked.get() => Err(BarrierError::ActionFailed),
            Err(WaitFailed::Broken) => Err(BarrierError::Broken),
            Err(WaitFailed::TimedOut) => Err(BarrierError::Timeout),
            Err(WaitFailed::PartyDied) => Err(BarrierError::PartyDied),
        }
    }
}
