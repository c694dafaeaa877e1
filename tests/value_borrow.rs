//! VAL-B2: no sequence of safe calls gives two live mutable views of one `Value` or `Array`,
//! although their lock is re-entrant (Python's `RLock`). Every way in is tried: nested guards,
//! nested `update`, a guard inside `update` and the reverse, clones, a second handle opened by
//! name (the same cell at another address), a `Condition` that would release the lock under a
//! live guard, and a dead holder's leftover borrow (which must not refuse the next owner).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{
    Array, Condition, ConditionWaitTimeoutError, Event, LockError, LockTimeoutError, Process, RLock, TryLockError,
    Value, ValueError,
};
use std::time::Duration;

#[test]
fn val_b2_nested_value_lock_is_refused() {
    let v = Value::new(1u64).unwrap();
    let mut a = v.lock().unwrap();
    assert!(matches!(v.lock(), Err(LockError::WouldDeadlock)));
    assert!(matches!(v.try_lock(), Err(TryLockError::WouldDeadlock)));
    assert!(matches!(v.lock_timeout(Duration::from_millis(10)), Err(LockTimeoutError::WouldDeadlock)));
    assert!(matches!(v.lock_deadline(std::time::Instant::now()), Err(LockTimeoutError::WouldDeadlock)));
    *a += 1; // the first guard is still the only view, and still usable
    drop(a);
    // Refusals gave their lock level back: the lock is free for another thread now.
    let other = std::thread::spawn({
        let v = v.clone();
        move || v.lock_timeout(Duration::from_secs(5)).map(|g| *g).map_err(|e| e.to_string())
    });
    assert_eq!(other.join().unwrap(), Ok(2));
}

#[test]
fn val_b2_nested_value_update_is_refused() {
    let v = Value::new(5i32).unwrap();
    let inner = v.update(|x| {
        *x += 1;
        v.update(|y| *y += 100)
    });
    assert!(matches!(inner, Ok(Err(ValueError::WouldDeadlock))), "{inner:?}");
    assert_eq!(v.get().unwrap(), 6);
    // Every one-shot form is an update: none may run inside one.
    v.update(|_| {
        assert!(matches!(v.get(), Err(ValueError::WouldDeadlock)));
        assert!(matches!(v.set(0), Err(ValueError::WouldDeadlock)));
        assert!(matches!(v.fetch_add(1), Err(ValueError::WouldDeadlock)));
    })
    .unwrap();
    assert_eq!(v.get().unwrap(), 6);
}

#[test]
fn val_b2_lock_inside_update_and_update_inside_lock_are_refused() {
    let v = Value::new(0u8).unwrap();
    let refused = v.update(|_| matches!(v.lock(), Err(LockError::WouldDeadlock))).unwrap();
    assert!(refused);
    let g = v.lock().unwrap();
    assert!(matches!(v.update(|x| *x = 9), Err(ValueError::WouldDeadlock)));
    assert!(matches!(v.get(), Err(ValueError::WouldDeadlock)));
    drop(g);
    assert_eq!(v.get().unwrap(), 0);
}

#[test]
fn val_b2_a_clone_is_the_same_cell() {
    let v = Value::new(0u32).unwrap();
    let c = v.clone();
    let _g = v.lock().unwrap();
    assert!(matches!(c.lock(), Err(LockError::WouldDeadlock)));
    assert!(matches!(c.update(|x| *x = 1), Err(ValueError::WouldDeadlock)));
}

#[test]
fn val_b2_a_second_mapping_by_name_is_the_same_cell() {
    let name = format!("val-b2-{}", std::process::id());
    let created = Value::create(&name, 0u64).unwrap();
    let opened = Value::<u64>::open(&name).unwrap(); // a second mapping: another address
    let mut g = created.lock().unwrap();
    assert!(matches!(opened.lock(), Err(LockError::WouldDeadlock)));
    assert!(matches!(opened.get(), Err(ValueError::WouldDeadlock)));
    *g = 3;
    drop(g);
    assert_eq!(opened.get().unwrap(), 3);

    let aname = format!("arr-b2-{}", std::process::id());
    let created = Array::create(&aname, &[0u8; 4]).unwrap();
    let opened = Array::<u8>::open(&aname).unwrap();
    let _g = opened.lock().unwrap();
    assert!(matches!(created.lock(), Err(LockError::WouldDeadlock)));
    assert!(matches!(created.to_vec(), Err(ValueError::WouldDeadlock)));
}

#[test]
fn val_b2_nested_array_guards_and_updates_are_refused() {
    let a = Array::from_slice(&[1u16, 2, 3]).unwrap();
    let mut g = a.lock().unwrap();
    assert!(matches!(a.lock(), Err(LockError::WouldDeadlock)));
    assert!(matches!(a.try_lock(), Err(TryLockError::WouldDeadlock)));
    assert!(matches!(a.lock_timeout(Duration::from_millis(10)), Err(LockTimeoutError::WouldDeadlock)));
    assert!(matches!(a.clone().lock(), Err(LockError::WouldDeadlock)));
    assert!(matches!(a.get(0), Err(ValueError::WouldDeadlock)));
    g[0] = 10;
    drop(g);

    let inner = a.update(|xs| {
        xs[1] = 20;
        a.update(|ys| ys[2] = 30)
    });
    assert!(matches!(inner, Ok(Err(ValueError::WouldDeadlock))), "{inner:?}");
    let refused = a.update(|_| matches!(a.lock(), Err(LockError::WouldDeadlock))).unwrap();
    assert!(refused);
    assert!(a.update(|_| matches!(a.set(0, 1), Err(ValueError::WouldDeadlock))).unwrap());
    assert_eq!(a.to_vec().unwrap(), [10, 20, 3]);
}

#[test]
fn val_b2_values_sharing_one_lock_are_separate_cells() {
    // Python's `Value(t, v, lock=L)` for two values: holding one's guard, the other is usable
    // (the lock is re-entrant; the cells are different).
    let lock = RLock::new().unwrap();
    let a = Value::with_lock(1i32, lock.clone()).unwrap();
    let b = Value::with_lock(2i32, lock).unwrap();
    let mut ga = a.lock().unwrap();
    let mut gb = b.lock().unwrap();
    *ga += *gb;
    *gb = 0;
    assert!(matches!(b.get(), Err(ValueError::WouldDeadlock)));
    drop(gb);
    assert_eq!(b.get().unwrap(), 0);
    drop(ga);
    assert_eq!(a.get().unwrap(), 3);
}

#[test]
fn val_b2_pythons_recursive_get_lock_still_works() {
    // `with v.get_lock(): v.value += 1`: the raw lock's guard gives no access to the data, so
    // the value's own operations may run under it.
    let v = Value::new(1u32).unwrap();
    let outer = v.get_lock().lock().unwrap();
    v.set(v.get().unwrap() + 1).unwrap();
    *v.lock().unwrap() += 1;
    let again = v.get_lock().lock().unwrap();
    drop(again);
    drop(outer);
    assert_eq!(v.get().unwrap(), 3);
}

#[test]
fn val_b2_condition_will_not_release_the_lock_under_a_live_guard() {
    let v = Value::new(0u64).unwrap();
    let cond = Condition::new(v.get_lock().clone()).unwrap();
    let g = v.lock().unwrap();
    let held = cond.lock().lock().unwrap();
    let r = cond.wait_timeout(held, Duration::from_millis(10));
    let Err(ConditionWaitTimeoutError::DataBorrowed(held)) = r else { panic!("{r:?}") };
    drop(held); // the lock came back with the refusal, still held once
    drop(g);
    // Without a data guard the same wait is an ordinary timed wait.
    let held = cond.lock().lock().unwrap();
    let r = cond.wait_timeout(held, Duration::from_millis(10));
    assert!(matches!(r, Err(ConditionWaitTimeoutError::Timeout(_))), "{r:?}");
    drop(r);
    *v.lock().unwrap() = 7; // and the value's guard is available again
    assert_eq!(v.get().unwrap(), 7);
}

#[test]
fn val_b2_another_thread_waits_instead_of_borrowing() {
    let v = Value::new(0u8).unwrap();
    let g = v.lock().unwrap();
    let other = std::thread::spawn({
        let v = v.clone();
        move || matches!(v.lock_timeout(Duration::from_millis(50)), Err(LockTimeoutError::Timeout))
    });
    assert!(other.join().unwrap(), "another thread must wait for the lock, not be refused or let in");
    drop(g);
}

#[test]
fn val_b2_a_dead_holders_borrow_does_not_refuse_the_next_owner() {
    let _g = guard_for(Duration::from_secs(30));
    let v = Value::new(1u64).unwrap();
    let a = Array::from_slice(&[1u8, 2]).unwrap();
    let holding = Event::new().unwrap();
    let child = Process::new({
        let (v, a, holding) = (v.clone(), a.clone(), holding.clone());
        move || -> () {
            let mut g = v.lock().unwrap();
            let mut h = a.lock().unwrap();
            *g = 2;
            h[0] = 9;
            holding.set();
            loop {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    child.start().unwrap();
    assert!(holding.wait_timeout(Duration::from_secs(10)).is_ok());
    child.kill().unwrap();
    child.join().unwrap();
    // The dead holder left both borrow words set: the next owner is a new ownership.
    match v.lock() {
        Err(LockError::OwnerDied(d)) => {
            let mut g = d.into_guard();
            assert_eq!(*g, 2);
            *g = 3;
            g.make_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(v.get().unwrap(), 3);
    assert_eq!(a.to_vec().unwrap(), [9, 2]); // one-shot operations repair and go on
    assert!(a.lock().is_ok());
}

#[test]
fn val_b2_a_leaked_guard_keeps_refusing_in_its_thread() {
    // `mem::forget` of a guard is safe Rust: the lock stays held (as for std's Mutex) and the
    // borrow stays live, so this thread is refused, never given a second view.
    let v = Value::new(0u8).unwrap();
    std::mem::forget(v.lock().unwrap());
    assert!(matches!(v.lock(), Err(LockError::WouldDeadlock)));
    assert!(matches!(v.get(), Err(ValueError::WouldDeadlock)));
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<multiproc::ValueGuard<'static, u64>>> = const { std::cell::RefCell::new(None) };
}

/// A guard kept in memory that a fork copies (a thread-local here) is the parent's alone:
/// dropping the child's copy leaves the parent's borrow and lock depth as they were. Before, the child's drop cleared the parent's borrow word and took the
/// lock's depth to 0 (so the parent's next level started a new ownership, making any borrow
/// word stale): the parent could then take a second `&mut` to the value beside the first.
/// Either half of the fix alone (the data guard's, the lock guard's) fails this test.
#[test]
fn val_b2_a_guard_copied_by_fork_is_not_a_borrow_in_the_child() {
    let _g = common::guard();
    let v: &'static Value<u64> = Box::leak(Box::new(Value::new(7).unwrap()));
    KEPT.with(|k| *k.borrow_mut() = Some(v.lock().unwrap()));
    let child = common::fork_child(|| {
        drop(KEPT.with(|k| k.borrow_mut().take()).expect("copied by the fork"));
        0
    });
    assert!(matches!(common::wait_child(child), common::Ended::Code(0)));
    // The parent's guard is still the only view: a second one is refused.
    assert!(matches!(v.try_lock(), Err(TryLockError::WouldDeadlock)));
    KEPT.with(|k| {
        let mut k = k.borrow_mut();
        let g = k.as_mut().expect("still here");
        **g += 1;
        assert_eq!(**g, 8);
        k.take();
    });
    assert_eq!(v.get().unwrap(), 8);
}
