//! A semaphore's shared state: the raw futex semaphore, its bound, and the holder slots that
//! say which processes hold guarded permits, so that a dead holder's permits are given back
//! (SEM-B1). A slot word is `owner | pins | held`: the owner's pid with three flag bits, how
//! many of its guards (taken or being taken) count on the slot, how many permits it holds.
//!
//! # A permit's journey has no window (SEM-B2)
//! The permit count lives in the semaphore word and the holder's record in its slot: two words,
//! which no CPU changes in one step. What makes a kill at any instruction safe is that the
//! semaphore word also says which slot a permit is travelling to or from: a *lane* of its high
//! half (see `sync::raw::semaphore`) holds the slot's tag while the permit is on its way, and
//! the slot's `ACK` bit says whether the slot's `held` already reflects it. A guarded take:
//!
//! 1. `MOVING` is set in the slot: the owner's threads move permits one at a time, so `ACK`
//!    belongs to one journey;
//! 2. one CAS on the semaphore word takes a permit and writes the slot's tag into a free lane;
//! 3. one CAS on the slot counts the permit (`held + 1`) and sets `ACK`;
//! 4. one CAS on the semaphore word frees the lane;
//! 5. one CAS on the slot clears `ACK` and `MOVING`.
//!
//! A give-back is the mirror image (the lane's tag carries `OUT`): claim a lane, uncount the
//! permit and set `ACK`, give the permit back *and* free the lane in one CAS, clear the flags.
//! A recoverer that finds the owner dead takes the slot over and, for a lane naming the slot,
//! reads the dead owner's `ACK`: a permit taken but not yet counted, or uncounted but not yet
//! given back, goes back to the count with the lane's release; otherwise the slot's `held` is
//! already right and the lane is just freed. Then it gives back `held` permits, each through the
//! same protocol under its own `BUSY` mark, so that a recoverer killed halfway leaves a state
//! the next one finishes exactly. Between steps 4 and 5 (lane free, `ACK` still up) `ACK` is
//! ignored, and no new journey of the slot can start before step 5 (`MOVING`).
//!
//! # Waits are bounded
//! Steps 1 and 2 wait for the slot's turn and for a free lane, which a running process holds
//! for a few instructions. They live in memory any peer can write, though, and four stopped
//! processes hold all four lanes: so each wait gives up after [`PATIENCE`] (at once when a
//! lane's tag could not have come from a journey, [`SemState::scribbled`]), and every caller
//! has a way out that neither loses nor duplicates a permit, at the price of tracking it:
//! `take_into` says [`Stuck`], `give_from` gives back without a lane, and the recovery stops.

use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::shm::ShmObject;
use crate::sync::raw::semaphore::{NoTake, RawSemaphore, MAX_PERMITS};
use crate::sys;
use crate::sys::process::{is_alive as alive, self_identity as me};
use std::time::{Duration, Instant};

/// Which slot a guard is counted in (`None`: untracked).
pub(super) type SlotIndex = Option<usize>;

/// Number of processes whose guarded permits are tracked at once.
pub const HOLDER_SLOTS: usize = 64;

/// How often a blocked `acquire` looks for permits held by dead processes.
pub const RECOVERY_SLICE: Duration = Duration::from_millis(50);

/// Marks the owner field of a slot that the process named by the pid bits is setting up or
/// recovering.
pub(super) const BUSY: u32 = 1 << 31;
/// In the owner field: one of the owner's threads is moving a permit into or out of the slot.
pub(super) const MOVING: u32 = 1 << 30;
/// In the owner field: the slot's `held` already reflects the permit in the lane naming it.
pub(super) const ACK: u32 = 1 << 29;
/// The owner field's flags that are not part of who owns it. (Pids are below 2^22 on Linux.)
pub(super) const FLAGS: u32 = MOVING | ACK;
/// With `BUSY`: the slot's `start` is the marking process's own start time, so a recovery
/// whose process died is told from a live process that got its pid since. Without it (the
/// few instructions of a claim, or of a take-over settling a lane) the pid alone is judged.
pub(super) const STAMPED: u32 = 1 << 28;

/// In a lane tag: the permit is on its way back to the count (else: on its way to the slot).
const OUT: u8 = 0x80;

/// The lane tag of slot `i` (`HOLDER_SLOTS` < `OUT`, so the index never reaches the flag).
pub(super) fn tag(i: usize, out: bool) -> u8 {
    (i as u8 + 1) | if out { OUT } else { 0 }
}

pub(super) fn pack(owner: u32, pins: u16, held: u16) -> u64 {
    (u64::from(owner) << 32) | (u64::from(pins) << 16) | u64::from(held)
}

pub(super) fn unpack(w: u64) -> (u32, u16, u16) {
    ((w >> 32) as u32, (w >> 16) as u16, w as u16)
}

/// How long a journey waits for a lane, or for its slot's turn (`MOVING`), before it gives up.
/// Both are held for a few instructions by a running process; a wait this long means four
/// processes stopped (or descheduled) in mid-journey, or a semaphore whose shared words a
/// peer scribbled, which no amount of waiting mends. What giving up does depends on the
/// journey: a take leaves the permit untracked, a guard's give-back gives it back untracked,
/// a recovery parks what it has left for the next one (see each).
pub(super) const PATIENCE: Duration = Duration::from_millis(50);

/// Why a guarded take took nothing: no lane or no turn on the slot came free within
/// [`PATIENCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stuck;

/// Waits a little at a time for a busy resource (a lane, the slot's `MOVING` bit): spins
/// first, then yields; `every` runs once in a while (to recover what a dead process left busy).
/// Bounded, because the resource lives in memory a peer can write: [`wait`](Self::wait) says
/// false once [`PATIENCE`] has passed.
struct Backoff {
    spins: u32,
    since: Option<Instant>,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { spins: 0, since: None }
    }

    /// One wait; false when out of patience (the clock starts at the first look at it, so
    /// the short waits of the common case never read it).
    fn wait(&mut self, every: impl FnOnce()) -> bool {
        self.spins += 1;
        if self.spins < 64 {
            crate::loom::hint::spin_loop();
            return true;
        }
        std::thread::yield_now();
        if self.spins % 256 != 0 {
            return true;
        }
        every();
        self.since.get_or_insert_with(Instant::now).elapsed() < PATIENCE
    }

    /// Whether the last [`wait`](Self::wait) was one of the rare ones that ran `every`: the
    /// moments for a costlier look at why the wait goes on.
    fn checkpoint(&self) -> bool {
        self.spins % 256 == 0
    }
}

#[cfg(test)]
std::thread_local! {
    /// Every slot's word as each recovery on this thread began (tests: who held a turn then).
    pub(super) static RECOVERY_SAW: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[repr(C)]
#[derive(Debug)]
pub(super) struct HolderSlot {
    /// `owner | pins | held` (see the module docs); 0 is a free slot.
    pub(super) word: AtomicU64,
    /// The owner's start time (written only while the word says `BUSY`).
    pub(super) start: AtomicU64,
}

#[repr(C)]
#[derive(Debug)]
pub(super) struct SemState {
    pub(super) raw: RawSemaphore,
    /// 0 for a plain semaphore, else 1 + the BoundedSemaphore's initial value.
    pub(super) limit: AtomicU32,
    _pad: AtomicU32,
    pub(super) holders: [HolderSlot; HOLDER_SLOTS],
}

// SAFETY: all-zero is a semaphore with no permits, no bound and empty holder slots; only atomics,
// no pointers; every value a peer can leave is checked where it is used (pids and start times
// are only compared, counts are clamped by the raw semaphore, the limit is clamped, lane tags
// name a slot index below `HOLDER_SLOTS` or nothing).
unsafe impl ShmObject for SemState {}

impl SemState {
    /// The bound of a BoundedSemaphore (`None` for a plain one). Read from shared memory:
    /// clamped by the raw semaphore.
    pub(super) fn limit(&self) -> Option<u32> {
        self.limit.load(Relaxed).checked_sub(1)
    }

    pub(super) fn give_back(&self, n: u32) {
        match self.limit() {
            None => self.raw.release(n),
            Some(limit) => {
                for _ in 0..n {
                    let _ = self.raw.release_bounded(limit);
                }
            }
        }
    }

    /// Whether some lane holds a tag that no journey wrote, so that no journey will clear it
    /// (a peer scribbled the word) and waiting for a lane is pointless: a tag that names no
    /// slot, or one whose slot is marked neither `MOVING` nor `BUSY` (a journey sets one of
    /// them before it takes a lane and clears it only after freeing the lane; a dead
    /// journey's slot keeps it until a recoverer settles the lane) and that is still there
    /// when looked at again. A journey that ended and began again in that lane between the
    /// two looks makes this say yes wrongly, which costs only the tracking of one permit (see
    /// the callers: an untracked permit, a give-back in two steps, or a recovery parked until
    /// the next one). Looked at only now and then ([`Backoff::checkpoint`]), not on every spin.
    pub(super) fn scribbled(&self) -> bool {
        let lanes = self.raw.lanes();
        lanes.iter().enumerate().any(|(lane, &t)| {
            let slot = usize::from(t & !OUT);
            t != 0
                && match slot.checked_sub(1).and_then(|i| self.holders.get(i)) {
                    None => true,
                    // Relaxed: a hint; the lane's second look decides.
                    Some(s) => unpack(s.word.load(Relaxed)).0 & (MOVING | BUSY) == 0 && self.raw.lanes()[lane] == t,
                }
        })
    }

    /// Joins (or claims) this process's holder slot before a permit is taken.
    pub(super) fn claim_slot(&self) -> SlotIndex {
        let (pid, start) = me();
        if pid & (BUSY | STAMPED | FLAGS) != 0 {
            return None; // not a Linux pid (they are below 2^22): leave the guard untracked
        }
        let slots = &self.holders;
        // A slot this process already holds (another of its threads has guards).
        for (i, s) in slots.iter().enumerate() {
            // SYNC(acquire ← the Release store that published the slot): `start` is the owner's.
            let mut w = s.word.load(Acquire);
            while unpack(w).0 & !FLAGS == pid && s.start.load(Relaxed) == start {
                let (owner, pins, held) = unpack(w);
                if pins == u16::MAX {
                    break; // full: look for another slot
                }
                match s.word.compare_exchange_weak(w, pack(owner, pins + 1, held), Acquire, Acquire) {
                    Ok(_) => return Some(i),
                    Err(now) => w = now,
                }
            }
        }
        // A free slot.
        for (i, s) in slots.iter().enumerate() {
            // Relaxed: a hint; the CAS decides.
            if s.word.load(Relaxed) == 0 && s.word.compare_exchange(0, pack(BUSY | pid, 0, 0), Acquire, Relaxed).is_ok()
            {
                s.start.store(start, Relaxed);
                // SYNC(release → claim/recover): `start` is visible before the slot names us.
                s.word.store(pack(pid, 1, 0), Release);
                return Some(i);
            }
        }
        None
    }

    /// Updates slot `i` with `f(owner, pins, held)`; a slot left with no pins is freed.
    fn update_slot(&self, i: usize, f: impl Fn(u32, u16, u16) -> (u32, u16, u16)) {
        let s = &self.holders[i];
        // Relaxed: a hint; the CAS decides.
        let mut w = s.word.load(Relaxed);
        loop {
            let (owner, pins, held) = unpack(w);
            let (owner, pins, held) = f(owner, pins, held);
            let new = if pins == 0 && owner & BUSY == 0 { 0 } else { pack(owner, pins, held) };
            // SYNC(release → recover's acquire load): the count is what recovery gives back.
            match s.word.compare_exchange_weak(w, new, Release, Relaxed) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// Leaves a claimed slot after an attempt that got no permit.
    pub(super) fn unclaim(&self, slot: SlotIndex) {
        if let Some(i) = slot {
            self.update_slot(i, |owner, pins, held| (owner, pins.saturating_sub(1), held));
        }
    }

    /// Takes this thread's turn to move permits in or out of this process's slot `i`; false if
    /// the turn did not come within [`PATIENCE`] (another of this process's threads holds it,
    /// stopped, or a peer set the bit).
    #[must_use]
    pub(super) fn begin_move(&self, i: usize) -> bool {
        let s = &self.holders[i];
        let mut backoff = Backoff::new();
        loop {
            // Relaxed: a hint; the CAS decides.
            let w = s.word.load(Relaxed);
            if (w >> 32) as u32 & MOVING == 0
                // Acquire: the previous mover's clearing of `ACK` is seen before our journey.
                && s.word.compare_exchange_weak(w, w | u64::from(MOVING) << 32, Acquire, Relaxed).is_ok()
            {
                return true;
            }
            if !backoff.wait(|| {}) {
                return false;
            }
        }
    }

    /// Ends this thread's turn on slot `i` (clears `ACK` and `MOVING`); with `unpin`, the
    /// guard leaves the slot too (freeing it if it was the last).
    pub(super) fn end_move(&self, i: usize, unpin: bool) {
        self.update_slot(i, |owner, pins, held| {
            (owner & !FLAGS, if unpin { pins.saturating_sub(1) } else { pins }, held)
        });
    }

    /// Step 3 of a journey: `held` changes by one and `ACK` goes up, in one CAS.
    pub(super) fn count_and_ack(&self, i: usize, up: bool) {
        self.update_slot(i, |owner, pins, held| {
            (owner | ACK, pins, if up { held.saturating_add(1) } else { held.saturating_sub(1) })
        });
    }

    /// The bound a permit given back may not exceed.
    pub(super) fn bound(&self) -> u32 {
        self.limit().unwrap_or(MAX_PERMITS)
    }

    /// Takes a permit into this process's slot `i` (steps 1–5 of the module docs): `Ok(false)`
    /// if none was free, [`Stuck`] (nothing taken, the slot as it was) if no turn or no lane
    /// came free within [`PATIENCE`].
    pub(super) fn take_into(&self, i: usize) -> Result<bool, Stuck> {
        if self.raw.value() == 0 {
            return Ok(false);
        }
        if !self.begin_move(i) {
            return Err(Stuck);
        }
        let t = tag(i, false);
        let mut backoff = Backoff::new();
        let taken = loop {
            match self.raw.try_acquire_lane(t) {
                Ok(lane) => {
                    self.count_and_ack(i, true);
                    self.raw.clear_lane(lane, t, None);
                    break Ok(true);
                }
                Err(NoTake::NoPermit) => break Ok(false),
                Err(NoTake::NoLane) => {
                    if !backoff.wait(|| {}) {
                        break Err(Stuck);
                    }
                    if backoff.checkpoint() {
                        if self.scribbled() {
                            break Err(Stuck);
                        }
                        // Free what dead journeys hold, without holding this slot's turn: a
                        // recovery can itself wait for lanes, and this process's other threads
                        // would wait for the turn meanwhile. Nothing is in flight now (no lane
                        // taken, `ACK` down), so the turn can be let go and taken again.
                        self.end_move(i, false);
                        self.recover_dead_holders();
                        if !self.begin_move(i) {
                            return Err(Stuck);
                        }
                    }
                }
            }
        };
        self.end_move(i, false);
        taken
    }

    /// Gives one permit of this process's slot `i` back and leaves the slot (a guard's drop).
    ///
    /// When no turn or no lane comes within [`PATIENCE`], the permit is uncounted from the slot
    /// and given back in two steps instead of through a lane: a kill between the two loses
    /// that one permit (never gives it twice). A drop must end, and waiting on would not.
    pub(super) fn give_from(&self, i: usize) {
        let mut turn = self.begin_move(i);
        let given = turn
            && self.give_counted(i, || {
                // Free what dead journeys hold without holding this slot's turn, as a take
                // does: the recovery can itself wait for lanes, and this process's other
                // threads would wait for the turn meanwhile. Nothing is in flight here (no
                // lane claimed, `ACK` down), so the turn can be let go and taken again.
                self.end_move(i, false);
                self.recover_dead_holders();
                turn = self.begin_move(i);
                turn
            });
        if given {
            self.end_move(i, true);
            return;
        }
        // Without the turn, the flags are another journey's (or a peer's): leave them.
        let keep = if turn { !FLAGS } else { u32::MAX };
        self.update_slot(i, |owner, pins, held| (owner & keep, pins.saturating_sub(1), held.saturating_sub(1)));
        self.give_back(1);
    }

    /// Moves one permit from slot `i` back to the count through a lane, leaving `ACK` up;
    /// `stuck` runs now and then while every lane is busy, and ends the wait by returning
    /// false. False (nothing changed) if no lane came free within [`PATIENCE`] or `stuck`
    /// said to stop.
    #[must_use]
    pub(super) fn give_counted(&self, i: usize, mut stuck: impl FnMut() -> bool) -> bool {
        let t = tag(i, true);
        let mut backoff = Backoff::new();
        let lane = loop {
            match self.raw.claim_lane(t) {
                Ok(lane) => break lane,
                Err(_) => {
                    let mut go_on = true;
                    if !backoff.wait(|| go_on = stuck()) || !go_on || (backoff.checkpoint() && self.scribbled()) {
                        return false;
                    }
                }
            }
        };
        self.count_and_ack(i, false);
        self.raw.clear_lane(lane, t, Some(self.bound()));
        true
    }

    /// Gives back the permits of holders that have died (exited, reaped or not), and finishes
    /// recoveries whose recoverer died; returns how many permits it gave back.
    pub(super) fn recover_dead_holders(&self) -> u32 {
        #[cfg(test)]
        RECOVERY_SAW.with(|saw| saw.borrow_mut().push(self.holders.iter().map(|h| h.word.load(Relaxed)).collect()));
        let mut mine = self.take_over_dead(0);
        let mut total = 0;
        while mine != 0 {
            let i = mine.trailing_zeros() as usize;
            let s = &self.holders[i];
            // Only this call touches a slot it took over: the word is ours.
            let (owner, _, held) = unpack(s.word.load(Relaxed));
            for _ in 0..held {
                if !self.give_counted(i, || {
                    mine = self.take_over_dead(mine);
                    true
                }) {
                    // No lane for that long: what is left waits, parked, for the next recovery
                    // (this process's or, if it ends first, anyone's). Nothing is given twice
                    // or lost.
                    self.park(mine);
                    return total;
                }
                // Release: pairs with a taker-over's Acquire load.
                s.word.store(pack(owner & !FLAGS, 0, unpack(s.word.load(Relaxed)).2), Release);
                total += 1;
            }
            s.start.store(0, Relaxed);
            // SYNC(release → claim): the slot is free only after it is fully reset.
            s.word.store(0, Release);
            mine &= !(1 << i);
        }
        total
    }

    /// Marks the slots of `mine` (taken over by this process, with the permits still to give
    /// back in `held`) as *parked*: `BUSY | MOVING | pid`, with this process's start time, so
    /// that its later recoveries take them back (a plain `BUSY` mark of its own is another
    /// thread's recovery in progress, which they leave alone) and anyone's takes them over
    /// once this process is gone, by pid and start time (a parked slot may wait long, a reused
    /// pid must not keep it).
    fn park(&self, mut mine: u64) {
        let (me_pid, me_start) = me();
        while mine != 0 {
            let i = mine.trailing_zeros() as usize;
            let s = &self.holders[i];
            // Only this process touches a slot it took over: the word is ours.
            let (_, _, held) = unpack(s.word.load(Relaxed));
            s.start.store(me_start, Relaxed);
            // SYNC(release → take_over_dead's acquire load): `start` is visible with the mark.
            s.word.store(pack(BUSY | MOVING | me_pid, 0, held), Release);
            mine &= !(1 << i);
        }
    }

    /// Takes over every slot whose owner (or recoverer) is dead and settles the journey it left
    /// in a lane; returns `mine` plus the slots taken over, each now `BUSY | STAMPED | this
    /// process` (with this process's start time) and the permits still to give back. Needs no
    /// lane, so it can run while waiting for one.
    pub(super) fn take_over_dead(&self, mut mine: u64) -> u64 {
        let (me_pid, me_start) = me();
        for (i, s) in self.holders.iter().enumerate() {
            // SYNC(acquire ← claim's publication, `park`, and every journey's slot update).
            let w = s.word.load(Acquire);
            let (owner, _, held) = unpack(w);
            let pid = owner & !FLAGS;
            let start = s.start.load(Relaxed);
            let dead = match pid {
                0 => false,
                // Parked by a recovery that ran out of lanes: ours to take back, or a dead
                // parker's.
                p if owner & (BUSY | MOVING) == BUSY | MOVING => {
                    (p == BUSY | me_pid && start == me_start) || !alive(p & !BUSY, start)
                }
                // Being recovered, with the recoverer's start time: by a live process (or by
                // us, on another thread or in this call), leave it; a recoverer that died is
                // dead even where its pid has been given to another process since.
                p if p & (BUSY | STAMPED) == BUSY | STAMPED => {
                    let who = p & !(BUSY | STAMPED);
                    if who == me_pid {
                        // An earlier process with our pid, if both start times are known (0:
                        // `/proc` could not be read, at the stamp or now); else it is us.
                        start != 0 && me_start != 0 && start != me_start
                    } else {
                        !alive(who, start)
                    }
                }
                // Being set up or settled (a few instructions, no wait): by pid alone.
                p if p & BUSY != 0 => p != BUSY | me_pid && !sys::process::pid_alive(p & !BUSY),
                p => !alive(p, start),
            };
            if !dead {
                continue;
            }
            // Take the slot over: its `held` permits are now ours to give back.
            if s.word.compare_exchange(w, pack(BUSY | me_pid | (owner & ACK), 0, held), Acquire, Relaxed).is_err() {
                continue;
            }
            if (pid & BUSY == 0 || owner & STAMPED != 0) && s.start.load(Relaxed) != start {
                // Freed and claimed (or taken over) again meanwhile by a process with the same
                // pid and counts: not the one judged dead. Release: as when it was published.
                s.word.store(w, Release);
                continue;
            }
            // The journey the dead process left in a lane, if any (one at most: `MOVING`).
            let acked = owner & ACK != 0;
            for (lane, t) in self.raw.lanes().into_iter().enumerate() {
                if t & !OUT == tag(i, false) {
                    // Taken but not counted, or uncounted but not given back: the permit goes
                    // back to the count as the lane is freed. Otherwise `held` is right.
                    let give = (t & OUT != 0) == acked;
                    self.raw.clear_lane(lane, t, give.then(|| self.bound()));
                }
            }
            // Ours while we give its permits back (which may wait for lanes): stamped with our
            // start time, so that our death is seen for what it is even after our pid is reused.
            // Relaxed: published by the Release store below.
            s.start.store(me_start, Relaxed);
            // Release: `ACK` is settled, and `start` is ours, before anyone sees the mark.
            s.word.store(pack(BUSY | STAMPED | me_pid, 0, held), Release);
            mine |= 1 << i;
        }
        mine
    }
}
