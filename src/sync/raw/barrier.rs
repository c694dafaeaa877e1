//! The barrier state machine: one 64-bit state word, a futex "epoch" word, and a word of
//! recent generations' outcomes.
//!
//! | `state` bits | meaning                                                                   |
//! |--------------|---------------------------------------------------------------------------|
//! | 0..31        | parties arrived in this generation; `parties` while the last one releases |
//! | 31           | the generation before this one ended in a release (not a reset)            |
//! | 32..63       | generation number (wraps)                                                 |
//! | 63           | broken (abort, time-out, dead party, panicking action)                    |
//!
//! Every change that waiters must notice (release, break, reset) updates `state` first, then
//! bumps `epoch` (by 2; bit 0 says someone may be asleep) and wakes all sleepers on it if the
//! flag was up. A waiter reads `epoch` before `state` and sleeps
//! only while `epoch` is unchanged, so no change can slip between its check and its sleep.
//! A waiter whose generation ended reads how from the state that ended it: bit 31 is set by
//! the release's compare-and-swap and not by a reset's, so whichever of a release and a reset
//! racing for one generation wins it decides for every party, the last one included
//! (BAR-B3). A waiter that slept through later generations too (more processes than parties,
//! one descheduled long enough) reads `history` instead: bit `g % 32` says whether generation
//! `g` ended in a release, for about the last 30 generations (whoever starts a generation
//! clears its bit first; its last party sets it just before its release's compare-and-swap,
//! and clears it again if a reset won that). Anything else is a reset (BrokenBarrier, as in
//! Python).
//!
//! # Memory ordering
//! SYNC: the releaser's `history` and `state` stores (Release) → the waiter's `state` load
//! (Acquire) and then `history` load; `epoch` increments are Release and its loads Acquire, so
//! a waiter that sees a new epoch also sees the state that preceded it.

use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::loom::futex;
use crate::shm::ShmObject;
use crate::sys::clock::Deadline;
use crate::wait::Limit;

const COUNT: u64 = 0x7fff_ffff;
/// In `state`: the generation before the current one ended in a release.
const PREV_RELEASED: u64 = 1 << 31;
/// The most parties a barrier can have (the arrival count's bits).
pub(crate) const MAX_PARTIES: u32 = COUNT as u32;
const GEN_SHIFT: u32 = 32;
const GEN_MASK: u64 = 0x7fff_ffff;
const BROKEN: u64 = 1 << 63;

/// Parties whose liveness is tracked while they wait (BAR-B1); more waiters at once are not
/// tracked.
pub(crate) const TRACKED_PARTIES: usize = 64;

fn gen_of(s: u64) -> u32 {
    ((s >> GEN_SHIFT) & GEN_MASK) as u32
}

/// `gen`'s bit in `RawBarrier::history`.
fn history_bit(gen: u32) -> u32 {
    1 << (gen % 32)
}

fn pack(gen: u32, count: u64) -> u64 {
    ((gen as u64 & GEN_MASK) << GEN_SHIFT) | (count & COUNT)
}

/// One tracked waiter: `word` is `pid << 32 | generation` (0: never used); `start` is the
/// waiter's start time, written while `pid` reads `CLAIMING`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct WaiterSlot {
    pub(crate) word: AtomicU64,
    pub(crate) start: AtomicU64,
}

/// A barrier in shared memory. All-zero bytes are an unusable barrier until `init` sets the
/// number of parties.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawBarrier {
    state: AtomicU64,
    epoch: AtomicU32,
    /// Unused (was the number of the last generation released; `state` bit 31 says it now).
    _released: AtomicU32,
    parties: AtomicU32,
    /// Bit `g % 32`: generation `g` ended in a release (see the module docs). All-zero (a
    /// barrier from before this field, which was padding) reads as "reset" for a waiter that
    /// slept through a whole later generation, as before.
    history: AtomicU32,
    pub(crate) slots: [WaiterSlot; TRACKED_PARTIES],
}

// SAFETY: all-zero is a barrier with 0 parties (rejected by `wait` until `init`); atomics only,
// no pointers; every value a peer can leave is checked: the party count is validated against
// the arrival count, slot pids are only compared and checked for liveness.
unsafe impl ShmObject for RawBarrier {}

/// How a wait ended without passing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFailed {
    /// The barrier is or became broken (abort, reset, another party's time-out or death).
    Broken,
    /// This wait's deadline passed; the barrier is now broken for everyone.
    TimedOut,
    /// A party that was waiting died; the barrier is now broken for everyone.
    PartyDied,
}

/// What a waiter needs from its caller during a wait.
pub(crate) struct Hooks<'a> {
    /// Runs once, in the last party to arrive, before anyone is released. Returning `false`
    /// (the action failed) breaks the barrier instead of releasing it.
    pub(crate) action: &'a dyn Fn() -> bool,
    /// Records this waiter as a party of generation `gen`: called before each attempt to be
    /// counted as arrived, so that a party killed right after it is counted is on record.
    pub(crate) register: &'a dyn Fn(u32),
    /// Whether some waiter registered for generation `gen` has died (checked every slice).
    pub(crate) any_dead: &'a dyn Fn(u32) -> bool,
    /// How long one sleep lasts before `any_dead` runs again (`None`: sleep until woken).
    pub(crate) slice: Option<std::time::Duration>,
    /// Runs right after this party is counted as arrived (tests stage a death there).
    pub(crate) after_arrival: Option<&'a dyn Fn()>,
}

impl RawBarrier {
    #[cfg(all(test, loom))]
    pub(crate) fn new(parties: u32) -> RawBarrier {
        RawBarrier {
            state: AtomicU64::new(0),
            epoch: AtomicU32::new(0),
            _released: AtomicU32::new(u32::MAX),
            parties: AtomicU32::new(parties),
            history: AtomicU32::new(0),
            slots: std::array::from_fn(|_| WaiterSlot { word: AtomicU64::new(0), start: AtomicU64::new(0) }),
        }
    }

    /// Sets the number of parties; only before the object is shared.
    pub(crate) fn init(&self, parties: u32) {
        self.parties.store(parties, Relaxed);
    }

    pub(crate) fn parties(&self) -> u32 {
        self.parties.load(Relaxed)
    }

    /// Parties waiting now (0 when broken or releasing).
    pub(crate) fn n_waiting(&self) -> u32 {
        let s = self.state.load(Acquire);
        let c = (s & COUNT) as u32;
        if s & BROKEN != 0 || c >= self.parties() {
            0
        } else {
            c
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.state.load(Acquire) & BROKEN != 0
    }

    /// Bumps the epoch (by 2: bit 0 is the "someone may be asleep" flag) and wakes sleepers
    /// only if the flag was up, so a generation with nobody asleep makes no system call.
    fn announce(&self) {
        // Relaxed: a hint for the CAS.
        let mut e = self.epoch.load(Relaxed);
        loop {
            // SYNC(release → waiter's acquire load of epoch): the state change above is visible
            // to whoever sees the new epoch.
            match self.epoch.compare_exchange_weak(e, (e.wrapping_add(2)) & !1, Release, Relaxed) {
                Ok(_) => break,
                Err(now) => e = now,
            }
        }
        if e & 1 != 0 {
            futex::wake(&self.epoch, u32::MAX);
        }
    }

    /// Sleeps while the epoch is still `e` (raising the sleepers flag first), until `until`.
    /// Returns `Err` on time-out; `Ok` when woken, when the epoch moved, or spuriously.
    fn sleep(&self, e: u32, until: Option<Deadline>) -> Result<(), futex::TimedOut> {
        // Relaxed: the flag only decides whether `announce` wakes; the futex compares the word.
        if e & 1 == 0 && self.epoch.compare_exchange(e, e | 1, Relaxed, Relaxed).is_err() {
            return Ok(());
        }
        futex::wait(&self.epoch, e | 1, until)
    }

    /// Breaks the barrier for every current and future waiter until `reset` (Python's `abort`).
    pub(crate) fn abort(&self) {
        let was = self.state.fetch_or(BROKEN, Release);
        self.not_released(gen_of(was));
        self.announce();
    }

    /// Clears generation `gen`'s history bit, once it has ended (or can no longer end) without
    /// a release: every way a generation ends but the release calls it, so that a bit its last
    /// party set and could not take back (killed between setting it and its release's swap)
    /// does not read as a release to a party that slept through the generations after.
    fn not_released(&self, gen: u32) {
        // Release: as the bit's other writers (see `ended_in_release`).
        self.history.fetch_and(!history_bit(gen), Release);
    }

    /// Breaks the barrier if generation `gen` is still the current one; returns whether it did.
    fn break_generation(&self, gen: u32) -> bool {
        // Relaxed: a hint for the CAS.
        let mut s = self.state.load(Relaxed);
        loop {
            if gen_of(s) != gen {
                return false;
            }
            // SYNC(release → waiter's acquire load of state), as `abort`.
            match self.state.compare_exchange_weak(s, s | BROKEN, Release, Relaxed) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.not_released(gen);
        self.announce();
        true
    }

    /// Starts a new generation: current waiters fail with Broken, the barrier is usable again.
    pub(crate) fn reset(&self) {
        // Relaxed: a hint for the CAS.
        let mut s = self.state.load(Relaxed);
        loop {
            // The new generation's outcome is not known yet. Release: a reader that sees this
            // bit's new value sees the state before it too (see `ended_in_release`).
            self.history.fetch_and(!history_bit(gen_of(s).wrapping_add(1)), Release);
            let next = pack(gen_of(s).wrapping_add(1), 0);
            // SYNC(release → waiter): the new generation (without a `released` mark) is what
            // tells current waiters that they were reset.
            match self.state.compare_exchange_weak(s, next, Release, Relaxed) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.not_released(gen_of(s));
        self.announce();
    }

    /// Whether generation `gen`, which a waiter has just seen end (`s`, from an Acquire load of
    /// `state`, is a later one), ended in a release rather than a reset.
    fn ended_in_release(&self, gen: u32, s: u64) -> bool {
        if gen_of(s) == gen.wrapping_add(1) & GEN_MASK as u32 {
            // The state that ended `gen` says how (its compare-and-swap's winner wrote it).
            return s & PREV_RELEASED != 0;
        }
        // Later generations ended too. Acquire (pairs with the Release of the bit's writer): the
        // `state` read next is at least the one that writer saw.
        let released = self.history.load(Acquire) & history_bit(gen) != 0;
        // The bit is still `gen`'s own while fewer than 32 generations have passed since (the
        // one that starts generation `gen + 32` clears it; the release of `gen + 31` clears it
        // just before that state is visible, so in practice about 30 are covered).
        let since = gen_of(self.state.load(Acquire)).wrapping_sub(gen) & GEN_MASK as u32;
        released && since < 32
    }

    /// Waits for the other parties until `limit`; returns this party's arrival index
    /// (0..parties).
    pub(crate) fn wait(&self, limit: Limit, hooks: &Hooks<'_>) -> Result<u32, WaitFailed> {
        let parties = self.parties();
        if parties == 0 || parties > MAX_PARTIES {
            // Never initialised, or a count a peer scribbled (arrivals would reach bit 31).
            return Err(WaitFailed::Broken);
        }
        // Arrive: take an index in the current generation.
        let (gen, idx) = loop {
            let e = self.epoch.load(Acquire);
            let s = self.state.load(Acquire);
            if s & BROKEN != 0 {
                return Err(WaitFailed::Broken);
            }
            let count = s & COUNT;
            if count >= parties as u64 {
                // The last party of this generation is running the action: wait for it, making
                // sure, each slice, that it lives (if it dies inside the action, nobody else
                // would ever release or break this generation).
                let wake_at = match hooks.slice {
                    Some(d) => limit.slice(d),
                    None => limit.deadline_opt(),
                };
                if self.sleep(e, wake_at).is_err() {
                    if hooks.slice.is_none() || limit.passed() {
                        // Not yet a party of any generation: its time-out breaks nothing (the
                        // parties of this one all arrived). Python's newcomers wait here
                        // without a limit.
                        return Err(WaitFailed::TimedOut);
                    }
                    if (hooks.any_dead)(gen_of(s)) {
                        // The next look finds it broken.
                        self.break_generation(gen_of(s));
                    }
                }
                continue;
            }
            // On record before we can be counted: a death right after the CAS is seen.
            (hooks.register)(gen_of(s));
            // Acquire: pairs with the previous generation's release, so its data is visible.
            if self.state.compare_exchange_weak(s, s + 1, Acquire, Relaxed).is_ok() {
                break (gen_of(s), count as u32);
            }
        };
        if let Some(f) = hooks.after_arrival {
            f();
        }
        if idx + 1 == parties {
            // Last to arrive: the state already says "releasing" (count == parties).
            let ok = (hooks.action)();
            if !ok {
                self.abort();
                return Err(WaitFailed::Broken);
            }
            // A reset or an abort while the action ran: this generation is over without a
            // release, and its history bit, or the next one's, may already belong to the
            // generations after it (a long action): touch nothing, and report it as the others
            // see it.
            let s = self.state.load(Relaxed);
            if gen_of(s) != gen || s & BROKEN != 0 {
                self.announce();
                return Err(WaitFailed::Broken);
            }
            // For waiters that will find later generations gone too: set before the release is
            // visible. Release: a reader that sees these bits sees the state they were written
            // in (this generation's arrivals), so it can tell a bit of a generation 32 later
            // from ours.
            self.history.fetch_and(!history_bit(gen.wrapping_add(1)), Release);
            self.history.fetch_or(history_bit(gen), Release);
            // SYNC(release → waiters): the history bit and everything before the action's end
            // are visible to the waiters that see the new generation.
            let mut s = s;
            loop {
                if gen_of(s) != gen || s & BROKEN != 0 {
                    // Reset or aborted just before our swap: the state that ended this
                    // generation carries no release mark, so every party reads Broken; take
                    // back the history bit set above.
                    self.not_released(gen);
                    self.announce();
                    return Err(WaitFailed::Broken);
                }
                let next = pack(gen.wrapping_add(1), 0) | PREV_RELEASED;
                match self.state.compare_exchange_weak(s, next, Release, Relaxed) {
                    Ok(_) => break,
                    Err(now) => s = now,
                }
            }
            self.announce();
            return Ok(idx);
        }
        loop {
            let e = self.epoch.load(Acquire);
            let s = self.state.load(Acquire);
            if gen_of(s) != gen {
                return if self.ended_in_release(gen, s) { Ok(idx) } else { Err(WaitFailed::Broken) };
            }
            if s & BROKEN != 0 {
                return Err(WaitFailed::Broken);
            }
            // Sleep until the limit, or one liveness slice if that comes first.
            let wake_at = match hooks.slice {
                Some(d) => limit.slice(d),
                None => limit.deadline_opt(),
            };
            if self.sleep(e, wake_at).is_err() {
                // Without a slice the sleep ended at the limit itself (also under loom, whose
                // clock does not move).
                if hooks.slice.is_none() || limit.passed() {
                    // Only this generation breaks, and only if it is still the current one: if
                    // it was released (or reset) just as the time ran out, that outcome stands
                    // (Python's `wait_for` re-checks its predicate), and the next generation's
                    // parties are not this wait's to break.
                    if self.break_generation(gen) {
                        return Err(WaitFailed::TimedOut);
                    }
                    continue;
                }
                // A party of this generation is dead: it breaks the barrier, unless it was the
                // last to arrive and released everyone before it died (then the generation has
                // moved on, and the next loop returns the release).
                if (hooks.any_dead)(gen) && self.break_generation(gen) {
                    return Err(WaitFailed::PartyDied);
                }
            }
        }
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn hooks<'a>(action: &'a dyn Fn() -> bool) -> Hooks<'a> {
        Hooks { action, register: &|_| {}, any_dead: &|_| false, slice: None, after_arrival: None }
    }

    /// A reset racing the last party's release: the two parties get one outcome, both
    /// passing or neither (before, the waiter could see the release's mark, written before
    /// the release's CAS, while the last party lost that CAS to the reset and said Broken).
    /// Timed waits, so that a party left alone in the generation after a reset ends.
    #[test]
    fn loom_bar_b3_reset_racing_the_release_gives_both_parties_one_outcome() {
        loom::model(|| {
            let b = Arc::new(RawBarrier::new(2));
            let limit = || Limit::timeout(std::time::Duration::from_secs(1));
            let t = {
                let b = b.clone();
                thread::spawn(move || b.wait(limit(), &hooks(&|| true)))
            };
            let r = {
                let b = b.clone();
                thread::spawn(move || b.reset())
            };
            let mine = b.wait(limit(), &hooks(&|| true));
            let theirs = t.join().unwrap();
            r.join().unwrap();
            assert_eq!(mine.is_ok(), theirs.is_ok(), "{mine:?} / {theirs:?}");
        });
    }

    /// The last party killed between setting its generation's history bit and its release's
    /// swap: the others see it dead and break the generation, which clears the bit again, so a
    /// party that slept through the next generation too reads Broken, not a release.
    #[test]
    fn loom_bar_b2_a_last_party_killed_mid_release_leaves_no_release_in_the_history() {
        loom::model(|| {
            let b = RawBarrier::new(1);
            // What the dead last party of generation 0 left: arrived, and its bit set.
            b.state.store(pack(0, 1), Relaxed);
            b.history.fetch_or(history_bit(0), Release);
            assert!(b.break_generation(0));
            b.reset();
            assert_eq!(b.wait(Limit::Forever, &hooks(&|| true)), Ok(0), "generation 1 passes");
            let s = b.state.load(Acquire);
            assert_eq!(gen_of(s), 2);
            assert!(!b.ended_in_release(0, s), "generation 0 read as released");
        });
    }

    #[test]
    fn loom_barrier_two_parties_pass_with_distinct_indices() {
        loom::model(|| {
            let b = Arc::new(RawBarrier::new(2));
            let t = {
                let b = b.clone();
                thread::spawn(move || b.wait(Limit::Forever, &hooks(&|| true)))
            };
            let mine = b.wait(Limit::Forever, &hooks(&|| true)).unwrap();
            let theirs = t.join().unwrap().unwrap();
            assert_ne!(mine, theirs);
            assert_eq!(mine + theirs, 1);
        });
    }

    #[test]
    fn loom_barrier_abort_releases_a_waiter() {
        loom::model(|| {
            let b = Arc::new(RawBarrier::new(2));
            let t = {
                let b = b.clone();
                thread::spawn(move || b.wait(Limit::Forever, &hooks(&|| true)))
            };
            b.abort();
            assert_eq!(t.join().unwrap(), Err(WaitFailed::Broken));
            assert!(b.is_broken());
        });
    }

    #[test]
    fn loom_barrier_reset_after_abort_is_usable_again() {
        loom::model(|| {
            let b = Arc::new(RawBarrier::new(2));
            b.abort();
            b.reset();
            assert!(!b.is_broken());
            let t = {
                let b = b.clone();
                thread::spawn(move || b.wait(Limit::Forever, &hooks(&|| true)))
            };
            assert!(b.wait(Limit::Forever, &hooks(&|| true)).is_ok());
            assert!(t.join().unwrap().is_ok());
        });
    }

    #[test]
    fn loom_barrier_timed_wait_breaks_for_everyone() {
        loom::model(|| {
            let b = Arc::new(RawBarrier::new(3));
            let t = {
                let b = b.clone();
                thread::spawn(move || b.wait(Limit::Forever, &hooks(&|| true)))
            };
            let d = Limit::timeout(std::time::Duration::from_secs(1));
            let mine = b.wait(d, &hooks(&|| true));
            assert_eq!(mine, Err(WaitFailed::TimedOut));
            assert_eq!(t.join().unwrap(), Err(WaitFailed::Broken));
        });
    }
}
