//! `Barrier` (Python's `multiprocessing.Barrier`), with prompt breaking when a waiting party
//! dies (BAR-B1).
//!
//! # Dead parties (BAR-B1)
//! A party that calls `wait` records its pid, start time and generation in the barrier's shared
//! memory **before** it can be counted as arrived (up to [`TRACKED_PARTIES`] waiters at once).
//! Waiters wake every [`LIVENESS_SLICE`] to check the recorded parties of their generation; if
//! one has died (exited, reaped or not), the barrier breaks for everyone with
//! [`BarrierError::PartyDied`], well before any timeout. So a party killed anywhere inside
//! `wait`, even in the instant after it was counted, breaks the barrier. A party that dies
//! *before calling* `wait` cannot be told from a slow one: the others wait for their timeout, as
//! in Python.

use super::raw::barrier::{Hooks, RawBarrier, WaitFailed, MAX_PARTIES};

/// Parties whose liveness is tracked while they wait (the first arrivals of a generation).
pub const TRACKED_PARTIES: usize = super::raw::barrier::TRACKED_PARTIES;
use super::raw::barrier::WaiterSlot;
use crate::loom::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::shm::{self, Segment, ShmError, ShmRef};
use crate::wait::Limit;
use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

/// `pid` of a waiter slot being set up.
const CLAIMING: u32 = u32::MAX;
/// Generation numbers are 31 bits (the raw barrier's `GEN_MASK`).
const GEN_MASK: u32 = 0x7fff_ffff;

fn pack(pid: u32, gen: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(gen & GEN_MASK)
}

fn unpack(w: u64) -> (u32, u32) {
    ((w >> 32) as u32, w as u32 & GEN_MASK)
}

/// Claims a slot that is free or stale (recorded for another generation than `gen`) for this
/// process in generation `gen`; `None` when every slot holds a waiter of `gen`.
fn claim(slots: &[WaiterSlot], pid: u32, start: u64, gen: u32) -> Option<usize> {
    for (i, s) in slots.iter().enumerate() {
        // Relaxed: a hint; the CAS decides.
        let w = s.word.load(Relaxed);
        let (p, g) = unpack(w);
        if p != 0 && g == gen {
            continue; // a waiter of this generation (or one being set up for it)
        }
        if s.word.compare_exchange(w, pack(CLAIMING, gen), Acquire, Relaxed).is_ok() {
            s.start.store(start, Relaxed);
            // SYNC(release → any_dead's acquire load): `start` is visible with the pid.
            s.word.store(pack(pid, gen), Release);
            return Some(i);
        }
    }
    None
}

/// How often waiting parties check that the other waiting parties are alive.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(50);

crate::forms::error_forms! {
    /// Why a barrier wait did not pass (Python's `BrokenBarrierError`, with the reason kept).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Barrier, BarrierError};
    ///
    /// let b = Barrier::new(2)?;
    /// b.abort();
    /// assert_eq!(b.wait(), Err(BarrierError::Broken));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BarrierError;
    /// Why a timed barrier wait did not pass: [`BarrierError`]'s reasons, or the time ran out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BarrierTimeoutError {
        /// This wait timed out; the barrier is now broken for everyone (BAR-8).
        Timeout => "barrier wait timed out (the barrier is now broken)", is_timeout
    }
    {
        /// The barrier is broken: aborted, reset while waiting, or broken by another party's
        /// time-out, death or failing action. It stays broken until [`Barrier::reset`].
        Broken => ("the barrier is broken");
        /// A waiting party died; the barrier is now broken for everyone (BAR-B1).
        PartyDied => ("a waiting party died (the barrier is now broken)");
        /// The action panicked in this party; the barrier is now broken for everyone.
        ActionFailed => ("the barrier action panicked (the barrier is now broken)");
    }
}

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

/// A barrier has 1 to [`MAX_PARTIES`] parties (the arrival count's bits in its state word).
fn check_parties(parties: u32) -> Result<(), ShmError> {
    if parties == 0 || parties > MAX_PARTIES {
        let what = "barrier parties (1 to 2^31 - 1)";
        return Err(ShmError::InvalidArgument { what, value: u64::from(parties) });
    }
    Ok(())
}

impl Barrier {
    /// A barrier for `parties` processes (at least 1) in the default shared arena.
    ///
    /// # Errors
    /// [`ShmError::InvalidArgument`] for 0 parties or more than 2³¹ − 1; [`ShmError`] if
    /// shared memory cannot be mapped.
    pub fn new(parties: u32) -> Result<Barrier, ShmError> {
        Barrier::build(shm::alloc_default()?, parties)
    }

    /// A barrier allocated in `segment`.
    pub fn new_in(segment: &Segment, parties: u32) -> Result<Barrier, ShmError> {
        Barrier::build(segment.alloc_object()?, parties)
    }

    /// A barrier for `parties` processes under `name`, for processes that are not forked from
    /// this one: they call [`open`](Self::open) (the action and timeout are per handle: set
    /// them on each). The name is removed when this handle's last clone drops, unless
    /// [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::InvalidArgument`] for 0 parties or more than 2³¹ − 1,
    /// [`ShmError::Exists`] if the name is taken, and the errors of [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-barrier-create-{}", std::process::id());
    /// let b = multiproc::Barrier::create(&name, 3)?;
    /// assert_eq!(multiproc::Barrier::open(&name)?.parties(), 3);
    /// # drop(b);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, parties: u32) -> Result<Barrier, ShmError> {
        check_parties(parties)?;
        shm::create_named(name, std::mem::size_of::<RawBarrier>() + 64, |seg| {
            let raw = seg.alloc_object::<RawBarrier>()?;
            raw.init(parties);
            Ok::<_, ShmError>([raw.offset() as u64, 0, 0, 0, 0, 0])
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-barrier-{}\", std::process::id());\nlet created = multiproc::Barrier::create(&name, 2)?;\nlet opened = multiproc::Barrier::open_timeout(&name, std::time::Duration::from_secs(1))?;\nassert_eq!(opened.parties(), 2);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Barrier::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    fn build(raw: ShmRef<RawBarrier>, parties: u32) -> Result<Barrier, ShmError> {
        check_parties(parties)?;
        raw.init(parties);
        Ok(Barrier { raw, action: None, timeout: None })
    }

    /// Runs `action` once per generation, in the last party to arrive, before the release
    /// (Python's `action=`, BAR-4). Set it before sharing the barrier (it is per handle).
    pub fn with_action(mut self, action: fn()) -> Barrier {
        self.action = Some(action);
        self
    }

    /// The timeout used by [`wait`](Barrier::wait) (Python's `timeout=`, BAR-8): a `wait` that
    /// runs out of it breaks the barrier and returns [`BarrierError::Broken`], as Python's
    /// raises `BrokenBarrierError`.
    #[deprecated(
        since = "0.2.0",
        note = "use `wait_timeout(timeout)`: a timeout is a form of the call, not of the handle"
    )]
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

    /// Waits for all parties; returns this party's index in `0..parties`.
    ///
    /// # Errors
    /// See [`BarrierError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Barrier::new(1)?;
    /// assert_eq!(b.wait()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) -> Result<u32, BarrierError> {
        match self.timeout {
            None => self.wait_until(Limit::Forever).map_err(|e| match e {
                BarrierTimeoutError::Timeout => BarrierError::Broken, // cannot happen: no limit
                BarrierTimeoutError::Broken => BarrierError::Broken,
                BarrierTimeoutError::PartyDied => BarrierError::PartyDied,
                BarrierTimeoutError::ActionFailed => BarrierError::ActionFailed,
            }),
            // The deprecated handle-wide timeout: running out of it breaks the barrier.
            Some(t) => self.wait_until(Limit::timeout(t)).map_err(|e| match e {
                BarrierTimeoutError::Timeout | BarrierTimeoutError::Broken => BarrierError::Broken,
                BarrierTimeoutError::PartyDied => BarrierError::PartyDied,
                BarrierTimeoutError::ActionFailed => BarrierError::ActionFailed,
            }),
        }
    }

    /// Waits at most `timeout` (Python's `wait(timeout)`); `Duration::MAX` waits forever.
    ///
    /// # Errors
    /// [`BarrierTimeoutError::Timeout`] (the barrier is then broken for everyone, BAR-8), or
    /// [`BarrierError`]'s reasons.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Barrier, BarrierError, BarrierTimeoutError};
    /// use std::time::Duration;
    ///
    /// let b = Barrier::new(2)?;
    /// assert_eq!(b.wait_timeout(Duration::from_millis(5)), Err(BarrierTimeoutError::Timeout));
    /// assert_eq!(b.wait(), Err(BarrierError::Broken)); // until `reset`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, BarrierTimeoutError> {
        self.wait_until(Limit::timeout(timeout))
    }

    /// Waits until `deadline`.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Barrier::new(1)?;
    /// assert_eq!(b.wait_deadline(std::time::Instant::now())?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<u32, BarrierTimeoutError> {
        self.wait_until(Limit::deadline(deadline))
    }

    /// Test hook (hidden; not a stable API): runs `wait`'s real path up to the moment this
    /// party is counted as arrived, then leaves the process at once with `_exit(0)`, as a party
    /// SIGKILLed at that instruction would. Call it in a child process only.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn debug_wait_then_die_after_arrival(&self) -> ! {
        let die = || crate::sys::process::exit_now(0);
        let _ = self.wait_hooked(Limit::Forever, Some(&die));
        crate::sys::process::exit_now(1)
    }

    fn wait_until(&self, limit: Limit) -> Result<u32, BarrierTimeoutError> {
        self.wait_hooked(limit, None)
    }

    fn wait_hooked(&self, limit: Limit, after_arrival: Option<&dyn Fn()>) -> Result<u32, BarrierTimeoutError> {
        let action_panicked = Cell::new(false);
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
        let (pid, start) = crate::sys::process::self_identity();
        // The slot this wait recorded itself in, and for which generation.
        let mine: Cell<Option<(usize, u32)>> = Cell::new(None);
        let register = |gen: u32| {
            let gen = gen & GEN_MASK;
            if let Some((i, g)) = mine.get() {
                if g == gen {
                    return;
                }
                // Still ours only if nobody took it over as stale meanwhile.
                // Acquire/Release: as for a claim below.
                if slots[i].word.compare_exchange(pack(pid, g), pack(pid, gen), AcqRel, Relaxed).is_ok() {
                    mine.set(Some((i, gen)));
                    return;
                }
            }
            mine.set(claim(slots, pid, start, gen).map(|i| (i, gen)));
        };
        let any_dead = |gen: u32| {
            let gen = gen & GEN_MASK;
            slots.iter().any(|s| {
                // SYNC(acquire ← claim's Release store): `start` is the waiter's.
                let (p, g) = unpack(s.word.load(Acquire));
                p != 0 && p != CLAIMING && g == gen && !crate::sys::process::is_alive(p, s.start.load(Relaxed))
            })
        };
        let hooks = Hooks {
            action: &action,
            register: &register,
            any_dead: &any_dead,
            slice: Some(LIVENESS_SLICE),
            after_arrival,
        };
        match self.raw.wait(limit, &hooks) {
            Ok(i) => Ok(i),
            Err(_) if action_panicked.get() => Err(BarrierTimeoutError::ActionFailed),
            Err(WaitFailed::Broken) => Err(BarrierTimeoutError::Broken),
            Err(WaitFailed::TimedOut) => Err(BarrierTimeoutError::Timeout),
            Err(WaitFailed::PartyDied) => Err(BarrierTimeoutError::PartyDied),
        }
    }
}

impl shm::Named for Barrier {
    const KIND: shm::ObjectKind = shm::ObjectKind::Barrier;

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        Ok(Barrier { raw: seg.object_at(shm::word_usize(w[0])?)?, action: None, timeout: None })
    }

    fn segment(&self) -> &Segment {
        self.raw.segment()
    }

    fn words(&self) -> shm::Words {
        [self.raw.offset() as u64, 0, 0, 0, 0, 0]
    }
}
