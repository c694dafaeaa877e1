//! Event, EVT-* in `docs/BEHAVIOURS.md`, with real processes.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{fork_lock, Watchdog};
use multiproc::{Event, Process};
use std::time::{Duration, Instant};

#[test]
fn evt_1_new_is_unset_and_waits_time_out() {
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    let t = Instant::now();
    assert!(e.wait_timeout(Duration::ZERO).is_err());
    assert!(t.elapsed() < Duration::from_millis(50));
    let t = Instant::now();
    assert!(e.wait_timeout(Duration::from_millis(100)).is_err());
    let el = t.elapsed();
    assert!(el >= Duration::from_millis(90) && el < Duration::from_secs(2), "{el:?}");
}

#[test]
fn evt_2_set_releases_waits_at_once() {
    let e = Event::new().unwrap();
    e.set();
    assert!(e.is_set());
    let t = Instant::now();
    e.wait();
    assert!(e.wait_timeout(Duration::from_millis(100)).is_ok());
    assert!(t.elapsed() < Duration::from_millis(50));
}

#[test]
fn evt_3_clear_and_debug() {
    let e = Event::new().unwrap();
    assert_eq!(format!("{e:?}"), "Event(unset)");
    e.set();
    assert_eq!(format!("{e:?}"), "Event(set)");
    e.clear();
    assert!(!e.is_set());
    assert_eq!(format!("{e:?}"), "Event(unset)");
}

#[test]
fn evt_4_child_set_wakes_every_waiter() {
    let _f = fork_lock();
    let _w = Watchdog::new("evt_4", Duration::from_secs(30));
    let e = Event::new().unwrap();
    let woken = Event::new().unwrap();
    // Two waiting processes and this one.
    let waiters: Vec<Process> = (0..2)
        .map(|_| {
            let e = e.clone();
            let p = Process::new(move || if e.wait_timeout(Duration::from_secs(20)).is_ok() { 0 } else { 3 });
            p.start().unwrap();
            p
        })
        .collect();
    let setter = Process::new({
        let (e, woken) = (e.clone(), woken.clone());
        move || {
            std::thread::sleep(Duration::from_millis(100));
            e.set();
            woken.set();
        }
    });
    setter.start().unwrap();
    e.wait();
    assert!(e.is_set());
    assert!(woken.wait_timeout(Duration::from_secs(10)).is_ok());
    for w in waiters {
        assert_eq!(w.join().unwrap().code(), Some(0));
    }
    assert!(setter.join().unwrap().success());
}

#[test]
fn evt_waiter_killed_does_not_disturb_others() {
    let _f = fork_lock();
    let _w = Watchdog::new("evt_killed", Duration::from_secs(30));
    let e = Event::new().unwrap();
    let p = Process::new({
        let e = e.clone();
        move || {
            e.wait();
        }
    });
    p.start().unwrap();
    common::until_in_futex(p.pid().unwrap()); // killed while asleep in `wait`
    p.kill().unwrap();
    p.join().unwrap();
    e.set();
    assert!(e.wait_timeout(Duration::from_millis(10)).is_ok());
    e.clear();
    assert!(e.wait_timeout(Duration::from_millis(10)).is_err());
}

/// `Duration::MAX` means "no deadline" for `Event::wait_timeout`, `Lock::lock_timeout` and
/// `Condition::wait_timeout`.
#[test]
fn evt_lock_condition_max_timeouts_wait() {
    let _g = common::guard();
    let e = multiproc::Event::new().unwrap();
    let setter = multiproc::Process::new({
        let e = e.clone();
        move || {
            std::thread::sleep(Duration::from_millis(30));
            e.set();
        }
    });
    setter.start().unwrap();
    assert!(e.wait_timeout(Duration::MAX).is_ok());
    assert!(setter.join().unwrap().success());
    let l = multiproc::Lock::new().unwrap();
    assert!(l.lock_timeout(Duration::MAX).is_ok());
    let c = multiproc::Condition::new(multiproc::Lock::new().unwrap()).unwrap();
    let notifier = multiproc::Process::new({
        let c = c.clone();
        move || -> Result<(), Box<dyn std::error::Error>> {
            std::thread::sleep(Duration::from_millis(30));
            let g = c.lock().lock()?;
            c.notify_all(&g)?;
            Ok(())
        }
    });
    let g = c.lock().lock().unwrap();
    notifier.start().unwrap();
    let _g = c.wait_timeout(g, Duration::MAX).expect("notified");
    assert!(notifier.join().unwrap().success());
}
