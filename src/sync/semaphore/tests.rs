//! The holder table's busy marks: a process that dies while setting a slot up or while giving
//! a dead holder's permits back leaves nothing stuck.

use super::holders::{pack, tag, unpack, BUSY, FLAGS, MOVING, STAMPED};
use super::*;
use crate::loom::atomic::Ordering::{Acquire, Release};
use crate::sys;
use crate::watchdog::watchdog;

/// The pid of a child that has exited and been reaped.
fn dead_pid() -> u32 {
    // SAFETY: the child only calls `_exit`.
    match unsafe { sys::process::fork() }.unwrap() {
        sys::process::Fork::Child => sys::process::exit_now(0),
        sys::process::Fork::Parent(pid) => {
            sys::process::waitpid_blocking(pid).unwrap();
            pid as u32
        }
    }
}

#[test]
fn a_recovery_left_halfway_by_a_dead_recoverer_is_finished() {
    let sem = Semaphore::new(2).unwrap();
    // The dead recoverer had uncounted nothing yet of the one permit it was giving back.
    assert!(sem.try_acquire().is_ok());
    sem.state.holders[5].word.store(pack(BUSY | dead_pid(), 0, 1), Release);
    assert!(sem.try_acquire().is_ok());
    assert!(sem.acquire_timeout(Duration::from_secs(10)).is_ok(), "the half-done recovery was not finished");
    assert_eq!(sem.state.holders[5].word.load(Acquire), 0, "the slot is free again");
    assert!(sem.try_acquire().is_err(), "a permit was given back twice");
}

#[test]
fn a_slot_left_busy_by_a_dead_claimer_is_freed() {
    let sem = Semaphore::new(0).unwrap();
    sem.state.holders[0].word.store(pack(BUSY | dead_pid(), 0, 0), Release);
    assert!(sem.acquire_timeout(RECOVERY_SLICE * 3).is_err(), "a claim holds no permit");
    assert_eq!(sem.state.holders[0].word.load(Acquire), 0);
}

#[test]
fn a_live_processs_busy_slot_is_left_alone() {
    let sem = Semaphore::new(0).unwrap();
    let alive = sys::process::getppid() as u32;
    let word = pack(BUSY | alive, 0, 1);
    sem.state.holders[3].word.store(word, Release);
    assert!(sem.acquire_timeout(RECOVERY_SLICE * 3).is_err());
    assert_eq!(sem.state.holders[3].word.load(Acquire), word, "a live recoverer's slot was taken");
}

/// One step of a journey; the argument is the lane it holds.
type Step<'a> = &'a dyn Fn(&mut Option<usize>);

/// What a process killed inside a journey leaves: slot `i`'s owner becomes `dead` (a reaped
/// child's pid), keeping the flags and the `BUSY` mark as they were.
fn die(sem: &Semaphore, i: usize, dead: u32) {
    let s = &sem.state.holders[i];
    let (owner, pins, held) = unpack(s.word.load(Acquire));
    s.word.store(pack((owner & (BUSY | STAMPED | FLAGS)) | dead, pins, held), Release);
}

/// Runs a guarded take (`out = false`) or a guard's give-back (`out = true`) on a semaphore of
/// two permits, stops it after each of its steps in turn, kills its owner there, recovers, and
/// checks that both permits are back exactly once and that nothing stays claimed.
fn journey_killed_after_each_step(out: bool) {
    for bounded in [false, true] {
        for stop in 0..=5 {
            let b = BoundedSemaphore::new(2).unwrap();
            let p = Semaphore::new(2).unwrap();
            let sem: &Semaphore = if bounded { &b } else { &p };
            let st = &sem.state;
            let i = st.claim_slot().unwrap();
            if out {
                assert_eq!(st.take_into(i), Ok(true));
            }
            let t = tag(i, out);
            let mut lane = None;
            let steps: [Step<'_>; 5] = [
                &|_| assert!(st.begin_move(i)),
                &|l| *l = Some(if out { st.raw.claim_lane(t) } else { st.raw.try_acquire_lane(t) }.unwrap()),
                &|_| st.count_and_ack(i, !out),
                &|l| assert!(st.raw.clear_lane(l.unwrap(), t, out.then(|| st.bound()))),
                &|_| st.end_move(i, out),
            ];
            for step in &steps[..stop] {
                step(&mut lane);
            }
            if out && stop == 5 {
                // The guard's whole drop ran: nothing is left to recover.
                assert_eq!(st.holders[i].word.load(Acquire), 0);
            } else {
                die(sem, i, dead_pid());
                st.recover_dead_holders();
            }
            assert_eq!(sem.get_value(), 2, "bounded={bounded}, out={out}: killed after step {stop}");
            assert_eq!(st.holders[i].word.load(Acquire), 0, "the slot is free again");
            assert_eq!(st.raw.lanes(), [0; 4], "every lane is free again");
        }
    }
}

/// A holder killed after each step of a guarded take (SEM-B2): the permit it was taking is
/// given back exactly once, whatever the step.
#[test]
fn sem_b2_a_take_killed_at_every_step_gives_the_permit_back_once() {
    journey_killed_after_each_step(false);
}

/// A holder killed after each step of a guard's give-back (SEM-B2): its permit comes back
/// exactly once.
#[test]
fn sem_b2_a_give_back_killed_at_every_step_gives_the_permit_back_once() {
    journey_killed_after_each_step(true);
}

/// A recoverer killed after each step of giving a dead holder's permits back (SEM-B2): the
/// next recoverer finishes, and every permit comes back exactly once.
#[test]
fn sem_b2_a_recoverer_killed_at_every_step_leaves_nothing_lost() {
    for stop in 0..=4 {
        let sem = BoundedSemaphore::new(3).unwrap();
        let st = &sem.state;
        let i = st.claim_slot().unwrap();
        assert_eq!(st.take_into(i), Ok(true));
        assert_eq!(st.take_into(i), Ok(true));
        assert_eq!(sem.get_value(), 1);
        die(&sem, i, dead_pid());
        // This process takes the dead holder's slot over, as a recovery would …
        assert_eq!(st.take_over_dead(0), 1 << i);
        // … and dies partway through giving the first permit back.
        let t = tag(i, true);
        let mut lane = None;
        let steps: [Step<'_>; 4] = [
            &|l| *l = Some(st.raw.claim_lane(t).unwrap()),
            &|_| st.count_and_ack(i, false),
            &|l| assert!(st.raw.clear_lane(l.unwrap(), t, Some(st.bound()))),
            &|_| {
                let s = &st.holders[i];
                let (owner, pins, held) = unpack(s.word.load(Acquire));
                s.word.store(pack(owner & !FLAGS, pins, held), Release);
            },
        ];
        for step in &steps[..stop] {
            step(&mut lane);
        }
        die(&sem, i, dead_pid());
        st.recover_dead_holders();
        assert_eq!(sem.get_value(), 3, "recoverer killed after step {stop}");
        assert_eq!(st.holders[i].word.load(Acquire), 0);
        assert_eq!(st.raw.lanes(), [0; 4]);
    }
}

/// Threads of one process take turns on their shared slot, and a guard's journey never
/// leaves a flag behind.
#[test]
fn guards_on_many_threads_share_one_slot_and_leave_it_clean() {
    let sem = Semaphore::new(3).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2_000 {
                    let _g = sem.acquire_guard();
                }
            });
        }
    });
    assert_eq!(sem.get_value(), 3);
    assert!(sem.state.holders.iter().all(|h| h.word.load(Acquire) == 0), "a slot stayed claimed");
    assert_eq!(sem.state.raw.lanes(), [0; 4]);
}

/// Lanes a peer scribbled with tags that no journey will ever clear (SEM-B2 under a hostile
/// peer): a guard's take gives up on tracking and takes the permit untracked (at once when a
/// tag names no slot, after `PATIENCE` when the tags look like journeys'), and a tracked
/// guard's drop gives its permit back without a lane. Before, both spun for ever.
#[test]
fn sem_b2_scribbled_lanes_never_hold_a_guard_up() {
    use super::holders::PATIENCE;
    let _wd = watchdog(Duration::from_secs(20));
    // Tags naming slots that say a journey is on (a live process's, being set up), then tags
    // naming free slots or none: only the first are worth waiting for.
    let busy = pack(BUSY | sys::process::getppid() as u32, 0, 0);
    for (garbage, patient) in [([0x3f, 0xa0, 0x13, 0x22], true), ([0x7f, 0xc1, 0x80, 0x3f], false)] {
        let sem = Semaphore::new(2).unwrap();
        let st = &sem.state;
        let tracked = sem.try_acquire_guard().unwrap();
        assert!(tracked.is_tracked());
        for i in [62, 31, 18, 33] {
            st.holders[i].word.store(busy, Release); // a live process's, being set up
        }
        st.raw.scribble_lanes(garbage);
        let t = Instant::now();
        let untracked = sem.try_acquire_guard().expect("the free permit was not taken");
        assert!(!untracked.is_tracked(), "a permit taken without a lane cannot be on record");
        if patient {
            assert!(t.elapsed() >= PATIENCE, "{garbage:x?}: gave up after {:?}", t.elapsed());
        }
        assert_eq!(sem.get_value(), 0);
        drop(untracked);
        assert_eq!(sem.get_value(), 1);
        drop(tracked);
        assert_eq!(sem.get_value(), 2, "the tracked guard's permit did not come back");
        assert_eq!(st.holders.iter().filter(|h| h.word.load(Acquire) != 0).count(), 4, "a slot stayed claimed");
        assert_eq!(st.raw.lanes(), garbage, "the peer's lanes are left as they are");
    }
}

/// A slot whose `MOVING` bit a peer set: a guard's drop, which cannot take its turn, gives the
/// permit back all the same.
#[test]
fn sem_b2_a_turn_that_never_comes_does_not_hold_a_drop_up() {
    let _wd = watchdog(Duration::from_secs(20));
    let sem = Semaphore::new(1).unwrap();
    let st = &sem.state;
    let guard = sem.acquire_guard();
    let i = st.holders.iter().position(|h| h.word.load(Acquire) != 0).unwrap();
    let (owner, pins, held) = unpack(st.holders[i].word.load(Acquire));
    st.holders[i].word.store(pack(owner | FLAGS, pins, held), Release);
    drop(guard);
    assert_eq!(sem.get_value(), 1);
    assert_eq!(st.holders[i].word.load(Acquire), 0, "the slot's last guard is gone");
}

/// What `scribbled` calls a lane no journey will clear: a tag naming no slot, or a slot that
/// no journey is on (neither `MOVING` nor `BUSY`); a tag naming a slot in mid-journey is worth
/// waiting for.
#[test]
fn lanes_no_journey_wrote_are_told_from_journeys() {
    let sem = Semaphore::new(1).unwrap();
    let st = &sem.state;
    let alive = sys::process::getppid() as u32;
    st.holders[4].word.store(pack(alive | MOVING, 1, 0), Release); // a journey under way
    st.holders[9].word.store(pack(BUSY | alive, 0, 1), Release); // a recovery under way
    st.holders[12].word.store(pack(alive, 1, 1), Release); // a holder, between journeys
    for (lanes, scribbled) in [
        ([0; 4], false),
        ([tag(4, false), tag(9, true), 0, 0], false),
        ([tag(4, false), 0x80, 0, 0], true), // OUT with no slot
        ([0, 0, 0x41, 0], true),             // slot 65 of 64
        ([0, tag(12, true), 0, 0], true),    // a slot no journey is on
        ([0, 0, 0, tag(20, false)], true),   // a free slot
    ] {
        st.raw.scribble_lanes(lanes);
        assert_eq!(st.scribbled(), scribbled, "{lanes:x?}");
    }
}

/// A dead holder's slot while every lane is scribbled: the recovery returns instead of
/// spinning, and parks the permits it could not give back (`BUSY | MOVING`, with this
/// process's start time); once lanes free up, this process's next recovery takes them back
/// and gives them: none lost, none given twice.
#[test]
fn sem_b2_a_recovery_without_lanes_parks_what_it_could_not_give() {
    let _wd = watchdog(Duration::from_secs(20));
    let sem = Semaphore::new(1).unwrap();
    let st = &sem.state;
    st.holders[7].word.store(pack(dead_pid(), 1, 1), Release);
    st.holders[8].word.store(pack(dead_pid(), 1, 2), Release);
    st.raw.scribble_lanes([tag(3, false); 4]);
    st.holders[3].word.store(pack(BUSY | sys::process::getppid() as u32, 0, 0), Release);
    assert_eq!(st.recover_dead_holders(), 0);
    assert_eq!(sem.get_value(), 1);
    let (me, start) = sys::process::self_identity();
    for (i, held) in [(7, 1), (8, 2)] {
        assert_eq!(st.holders[i].word.load(Acquire), pack(BUSY | MOVING | me, 0, held), "slot {i} not parked");
        assert_eq!(st.holders[i].start.load(Acquire), start);
    }
    st.raw.scribble_lanes([0; 4]);
    assert_eq!(st.recover_dead_holders(), 3, "this process's next recovery takes its parked slots back");
    assert_eq!(sem.get_value(), 4);
    // A slot parked by a process that is gone is anyone's.
    st.holders[7].word.store(pack(BUSY | MOVING | dead_pid(), 0, 1), Release);
    assert_eq!(st.recover_dead_holders(), 1);
    assert_eq!(sem.get_value(), 5);
    assert_eq!(st.holders[7].word.load(Acquire), 0);
}

/// Four takers killed between taking their permits into lanes and counting them (step 2 of
/// the journey) hold every lane: a live guard's take finds none free, recovers them from its
/// backoff (without holding its own slot's turn), and then takes its permit, tracked.
#[test]
fn sem_b2_four_takers_killed_in_mid_journey_do_not_hold_a_live_take_up() {
    let _wd = watchdog(Duration::from_secs(20));
    let sem = Semaphore::new(1).unwrap();
    let st = &sem.state;
    let dead = dead_pid();
    for i in 10..14 {
        st.holders[i].word.store(pack(dead | MOVING, 1, 0), Release);
    }
    st.raw.scribble_lanes([tag(10, false), tag(11, false), tag(12, false), tag(13, false)]);
    let g = sem.try_acquire_guard().expect("the free permit was not taken");
    assert!(g.is_tracked(), "the take gave up instead of recovering the lanes");
    assert_eq!(sem.get_value(), 4, "the four permits in the lanes came back");
    drop(g);
    assert_eq!(sem.get_value(), 5);
    assert_eq!(st.raw.lanes(), [0; 4]);
    assert!(st.holders.iter().all(|h| h.word.load(Acquire) == 0), "a slot stayed claimed");
}

/// A guard's drop that finds every lane busy runs the dead-holder recovery from its backoff
/// without holding its slot's turn (as a take does), so that the process's other threads are
/// not kept from their turns while that recovery waits for lanes itself; then, out of
/// patience, it gives its permit back in two steps. The lanes here belong to a live peer's
/// journey (the parent's pid, `BUSY`), which no recovery can free.
#[test]
fn sem_b2_a_drop_lets_its_turn_go_while_it_recovers() {
    let _wd = watchdog(Duration::from_secs(20));
    let sem = Semaphore::new(1).unwrap();
    let st = &sem.state;
    let g = sem.try_acquire_guard().expect("the free permit was not taken");
    let mine = (0..st.holders.len()).find(|&i| st.holders[i].word.load(Acquire) != 0).expect("a tracked slot");
    st.holders[3].word.store(pack(BUSY | sys::process::getppid() as u32, 0, 0), Release);
    st.raw.scribble_lanes([tag(3, false); 4]);
    super::holders::RECOVERY_SAW.with(|s| s.borrow_mut().clear());
    drop(g);
    let seen = super::holders::RECOVERY_SAW.with(|s| s.take());
    assert!(!seen.is_empty(), "the drop never ran the recovery");
    for words in &seen {
        assert_eq!(unpack(words[mine]).0 & MOVING, 0, "the drop's recovery ran holding its slot's turn");
    }
    assert_eq!(sem.get_value(), 1, "the permit came back once");
    assert_eq!(st.holders[mine].word.load(Acquire), 0, "the slot was left");
    st.raw.scribble_lanes([0; 4]);
    st.holders[3].word.store(0, Release);
}

/// A recoverer killed in the middle of giving a dead holder's permits back, whose pid a live
/// process has been given since (staged: its mark gets the parent's pid): the mark carries the
/// recoverer's start time, so the next recovery sees through the reused pid and gives the
/// permits back. Before, a recovery's mark held the pid alone, and a live pid there kept the
/// permits for ever.
#[test]
fn sem_b2_a_dead_recoverers_reused_pid_does_not_keep_the_permits() {
    let _wd = watchdog(Duration::from_secs(20));
    let sem = Semaphore::new(3).unwrap();
    let st = &sem.state;
    let i = st.claim_slot().unwrap();
    assert_eq!(st.take_into(i), Ok(true));
    assert_eq!(st.take_into(i), Ok(true));
    die(&sem, i, dead_pid());
    // This process takes the dead holder's slot over, as a recovery would, and is killed
    // before giving anything back; its pid now names a live process.
    assert_eq!(st.take_over_dead(0), 1 << i);
    let live = sys::process::getppid();
    die(&sem, i, live as u32);
    // The stamp is the dead recoverer's start time, which is not the live pid's (staged, so
    // that a parent started in the same clock tick as this test cannot make it match).
    let theirs = sys::process::process_start_time(live).expect("the parent's start time");
    st.holders[i].start.store(theirs + 1, Release);
    assert_eq!(st.recover_dead_holders(), 2);
    assert_eq!(sem.get_value(), 3);
    assert_eq!(st.holders[i].word.load(Acquire), 0);
}

/// A recovery's mark with this process's pid is this process's own (another of its threads
/// recovering) unless both start times are known and differ (an earlier process with the same
/// pid): a start time of 0, stamped while `/proc` could not be read, never makes this process
/// take over its own live recovery (which would give its permits back twice).
#[test]
fn sem_b2_an_own_recovery_mark_is_only_taken_over_from_an_earlier_process() {
    let _wd = watchdog(Duration::from_secs(20));
    let sem = Semaphore::new(1).unwrap();
    let st = &sem.state;
    let (me, start) = sys::process::self_identity();
    let mark = pack(BUSY | STAMPED | me, 0, 2);
    st.holders[5].word.store(mark, Release);
    assert_eq!(st.take_over_dead(0), 0, "unknown start time: ours");
    assert_eq!(st.holders[5].word.load(Acquire), mark);
    st.holders[5].start.store(start, Release);
    assert_eq!(st.take_over_dead(0), 0, "our own start time: ours");
    st.holders[5].start.store(start + 1, Release);
    assert_eq!(st.recover_dead_holders(), 2, "an earlier process with our pid: dead");
    assert_eq!(sem.get_value(), 3);
}
