//! The holder table's busy marks: a process that dies while setting a slot up or while giving
//! a dead holder's permits back leaves nothing stuck.

use super::holders::{pack, BUSY};
use super::*;
use crate::loom::atomic::Ordering::{Acquire, Release};
use crate::sys;

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
