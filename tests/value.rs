//! Value, Array, RawValue, RawArray, VAL-* in `docs/BEHAVIOURS.md`, with real processes.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{Array, Process, RLock, RawArray, RawValue, Value, ValueError};
use std::time::Duration;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

fn run(f: impl FnOnce() + Send + 'static) {
    let p = Process::new(f);
    p.start().unwrap();
    assert!(p.join().unwrap().success());
}

#[test]
fn val_1_types_round_trip_through_a_child() {
    let _g = guard_for(Duration::from_secs(30));
    let i = Value::new(4343i32).unwrap();
    let d = Value::new(3.625f64).unwrap();
    let h = Value::new(-232i16).unwrap();
    let q = Value::new(1i64 << 33).unwrap();
    let c = Value::new(b'x').unwrap();
    let raw = RawValue::new(4343i32).unwrap();
    assert_eq!((i.get().unwrap(), d.get().unwrap(), h.get().unwrap()), (4343, 3.625, -232));
    run({
        let (i, d, h, q, c, raw) = (i.clone(), d.clone(), h.clone(), q.clone(), c.clone(), raw.clone());
        move || {
            i.set(24234).unwrap();
            d.set(-4.25).unwrap();
            h.set(234).unwrap();
            q.set(1 << 34).unwrap();
            c.set(b'y').unwrap();
            raw.set(24234);
        }
    });
    assert_eq!(i.get().unwrap(), 24234);
    assert_eq!(d.get().unwrap(), -4.25);
    assert_eq!(h.get().unwrap(), 234);
    assert_eq!(q.get().unwrap(), 1 << 34);
    assert_eq!(c.get().unwrap(), b'y');
    assert_eq!(raw.get(), 24234);
}

/// VAL-2: `Value::with_lock(v, L)` uses exactly `L`: while a child holds `a`'s lock, `b` (made
/// with the same lock) is busy for the parent and `c` (its own lock) is not.
#[test]
fn val_2_shared_lock() {
    let _g = common::guard();
    let lock = RLock::new().unwrap();
    let a = Value::with_lock(1u8, lock.clone()).unwrap();
    let b = Value::with_lock(2u8, lock).unwrap();
    let c = Value::new(3u8).unwrap();
    let holding = multiproc::Event::new().unwrap();
    let release = multiproc::Event::new().unwrap();
    let child = Process::new({
        let (a, holding, release) = (a.clone(), holding.clone(), release.clone());
        move || -> Result<(), Box<dyn std::error::Error>> {
            let _g = a.lock()?;
            holding.set();
            release.wait_timeout(Duration::from_secs(20))?;
            Ok(())
        }
    });
    child.start().unwrap();
    assert!(holding.wait_timeout(Duration::from_secs(10)).is_ok());
    assert!(b.lock_timeout(Duration::from_millis(50)).is_err_and(|e| e.is_timeout()), "b does not share a's lock");
    assert!(c.try_lock().is_ok(), "c shares a lock it should not");
    release.set();
    assert!(child.join().unwrap().success());
    // And in one thread the shared lock is recursive: holding it through `a`, `b` is usable.
    let _held = a.lock().unwrap();
    assert_eq!(b.get().unwrap(), 2);
}

#[test]
fn val_3_raw_values_have_no_lock() {
    // RawValue/RawArray expose no lock at all: there is no `get_lock` to call.
    let v = RawValue::new(5u32).unwrap();
    v.set(6);
    assert_eq!(v.get(), 6);
    let a = RawArray::<u32>::zeroed(2).unwrap();
    assert_eq!(a.to_vec(), vec![0, 0]);
}

#[test]
fn val_4_array_index_slice_and_child_prefix_sum() {
    let _g = guard_for(Duration::from_secs(30));
    let init = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
    let arr = Array::from_slice(&init).unwrap();
    assert_eq!(arr.len(), 10);
    assert_eq!(arr.get(3).unwrap(), 821);
    assert_eq!(&arr.to_vec().unwrap()[2..7], &init[2..7]);
    arr.update(|xs| xs[4..8].copy_from_slice(&[1, 2, 3, 4])).unwrap();
    let expected_after_assign = {
        let mut v = init.to_vec();
        v[4..8].copy_from_slice(&[1, 2, 3, 4]);
        v
    };
    assert_eq!(arr.to_vec().unwrap(), expected_after_assign);
    run({
        let arr = arr.clone();
        move || {
            arr.update(|xs| {
                for i in 1..xs.len() {
                    xs[i] += xs[i - 1];
                }
            })
            .unwrap();
        }
    });
    let mut prefix = expected_after_assign.clone();
    for i in 1..prefix.len() {
        prefix[i] += prefix[i - 1];
    }
    assert_eq!(arr.to_vec().unwrap(), prefix);
}

#[test]
fn val_5_zeroed_arrays_are_zero_every_time() {
    for _ in 0..3 {
        let a = Array::<i32>::zeroed(10).unwrap();
        assert_eq!(a.to_vec().unwrap(), vec![0; 10]);
        a.assign(&(0..10).collect::<Vec<_>>()).unwrap();
        assert_eq!(a.to_vec().unwrap(), (0..10).collect::<Vec<_>>());
    }
}

#[test]
fn val_6_wrong_length_and_out_of_range_are_errors() {
    let a = Array::<i32>::zeroed(3).unwrap();
    assert!(matches!(a.assign(&[1, 2]), Err(ValueError::LengthMismatch { expected: 3, found: 2 })));
    assert!(matches!(a.get(3), Err(ValueError::IndexOutOfRange { index: 3, len: 3 })));
    assert!(matches!(a.set(7, 1), Err(ValueError::IndexOutOfRange { index: 7, len: 3 })));
    assert_eq!(a.to_vec().unwrap(), vec![0, 0, 0], "a failed assignment changed the array");
    let r = RawArray::<u8>::zeroed(1).unwrap();
    assert!(r.get(1).is_err());
}

#[derive(Debug, Clone, Copy, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Foo {
    x: i64,
    y: f64,
}

#[test]
fn val_7_child_doubles_numbers_structs_and_arrays() {
    let _g = guard_for(Duration::from_secs(30));
    let x = Value::new(7i32).unwrap();
    let y = Value::new(1.0f64 / 3.0).unwrap();
    let z = Value::new(1i64 << 33).unwrap();
    let foo = Value::new(Foo { x: 3, y: 2.0 }).unwrap();
    let arr = Array::from_slice(&(0..10).map(f64::from).collect::<Vec<_>>()).unwrap();
    let text = Array::<u8>::zeroed(20).unwrap();
    text.update(|t| t[..5].copy_from_slice(b"hello")).unwrap();
    run({
        let (x, y, z, foo, arr, text) = (x.clone(), y.clone(), z.clone(), foo.clone(), arr.clone(), text.clone());
        move || {
            x.update(|v| *v *= 2).unwrap();
            y.update(|v| *v *= 2.0).unwrap();
            z.update(|v| *v *= 2).unwrap();
            foo.update(|f| {
                f.x *= 2;
                f.y *= 2.0;
            })
            .unwrap();
            arr.update(|a| a.iter_mut().for_each(|v| *v *= 2.0)).unwrap();
            text.update(|t| t.copy_within(0..5, 5)).unwrap();
        }
    });
    assert_eq!(x.get().unwrap(), 14);
    assert_eq!(y.get().unwrap(), 2.0 / 3.0);
    assert_eq!(z.get().unwrap(), 1 << 34);
    assert_eq!(foo.get().unwrap(), Foo { x: 6, y: 4.0 });
    assert_eq!(arr.to_vec().unwrap(), (0..10).map(|i| f64::from(i) * 2.0).collect::<Vec<_>>());
    assert_eq!(&text.to_vec().unwrap()[..10], b"hellohello");
}

#[test]
fn val_8_scenario_c() {
    let _g = guard_for(Duration::from_secs(30));
    let v = Value::new(0i32).unwrap();
    let a = Array::from_slice(&[0.0f64, 100.0, 200.0]).unwrap();
    let ps: Vec<Process> = (0..2)
        .map(|_| {
            let (v, a) = (v.clone(), a.clone());
            let p = Process::new(move || {
                for _ in 0..100 {
                    v.update(|x| *x += 1).unwrap();
                    a.update(|xs| xs.iter_mut().for_each(|x| *x += 1.0)).unwrap();
                }
            });
            p.start().unwrap();
            p
        })
        .collect();
    for p in ps {
        assert!(p.join().unwrap().success());
    }
    assert_eq!(v.get().unwrap(), 200);
    assert_eq!(a.to_vec().unwrap(), vec![200.0, 300.0, 400.0]);
}

#[test]
fn val_b1_increments_are_never_lost() {
    let _g = guard_for(Duration::from_secs(30));
    let v = Value::new(0u64).unwrap();
    let w = Value::new(0u64).unwrap();
    let ps: Vec<Process> = (0..4)
        .map(|_| {
            let (v, w) = (v.clone(), w.clone());
            let p = Process::new(move || {
                for _ in 0..10_000 {
                    v.fetch_add(1).unwrap();
                    w.update(|x| *x += 1).unwrap();
                }
            });
            p.start().unwrap();
            p
        })
        .collect();
    for p in ps {
        assert!(p.join().unwrap().success());
    }
    assert_eq!(v.get().unwrap(), 40_000);
    assert_eq!(w.get().unwrap(), 40_000);
}

/// `v.get()?`, `v.set(x)?`, `v.update(..)?` and `l.lock()?` compile in a function returning
/// `Box<dyn Error>` (every error is `'static`), and an owner-died guard still comes back.
#[test]
fn val_errors_are_static_and_question_mark_works() -> Result<(), Box<dyn std::error::Error>> {
    let v = Value::new(1u32)?;
    v.set(v.get()? + 1)?;
    v.update(|x| *x *= 10)?;
    assert_eq!(v.fetch_add(1)?, 20);
    let l = multiproc::Lock::new()?;
    let g = l.lock()?;
    drop(g);
    let a = Array::from_slice(&[1u8])?;
    a.set(0, a.get(0)? + 1)?;
    let g = a.lock()?;
    assert_eq!(g[0], 2);
    Ok(())
}

/// Owner died: the one-shot operations repair the lock and go on; `lock()` reports it with an
/// owned guard (a `'static` error), which makes the lock consistent again.
#[test]
fn val_owner_died_one_shot_ops_repair_and_lock_reports() {
    let _g = common::guard();
    let v = Value::new(5u64).unwrap();
    let die_holding = |v: &Value<u64>| {
        let pid = common::fork_child({
            let v = v.clone();
            move || {
                std::mem::forget(v.lock().unwrap());
                0
            }
        });
        assert_eq!(common::wait_child(pid), common::Ended::Code(0));
    };
    die_holding(&v);
    assert_eq!(v.fetch_add(1).unwrap(), 5, "fetch_add repairs and goes on");
    die_holding(&v);
    match v.lock() {
        Err(multiproc::LockError::OwnerDied(d)) => {
            let mut g = d.into_guard();
            assert_eq!(*g, 6);
            g.make_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(v.get().unwrap(), 6);
}

/// Corrupt lock words never panic or abort: each public operation returns (an error or a
/// value) or, for garbage that makes the lock look held by a thread that does not exist, waits
/// (named in docs/FAILURE.md). Each round runs in a child with an alarm, so a wait is counted,
/// not hung on; a panic (exit 101) or an abort (SIGABRT, glibc's asserts) fails the test.
#[test]
fn val_corrupt_lock_words_give_errors_not_panics_or_aborts() {
    let _g = common::guard_for(Duration::from_secs(300));
    let mut rng = common::Rng::new("val_corrupt_lock_words");
    let rounds = std::env::var("MULTIPROC_CORRUPT_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100u32);
    let (mut fine, mut waited) = (0, 0);
    for round in 0..rounds {
        let a = Array::from_slice(&[1u32, 2, 3]).unwrap();
        let v = Value::with_lock(7u64, a.get_lock().clone()).unwrap();
        let n = rng.range(1, 9) as usize;
        let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        let offset = rng.range(0, 56) as usize;
        let pid = common::fork_child(move || {
            a.get_lock().debug_corrupt(offset, &bytes);
            // SAFETY: alarm has no memory effects; its default action ends the child.
            unsafe { libc::alarm(1) };
            let _ = a.get(0);
            let _ = a.set(1, 9);
            let _ = a.to_vec();
            let _ = v.get();
            let _ = v.fetch_add(1);
            let _ = a.lock().map(drop);
            let _ = v.lock_timeout(Duration::from_millis(20)).map(drop);
            0
        });
        match common::wait_child(pid) {
            common::Ended::Code(0) => fine += 1,
            common::Ended::Signal(libc::SIGALRM) => waited += 1,
            other => panic!("round {round}: corrupt lock words ended the process with {other:?}"),
        }
    }
    eprintln!("corrupt lock words: {rounds} rounds: {fine} returned, {waited} waited (held by a garbage owner)");
}

/// A length whose bytes overflow the address space, or whose room does once the header is
/// added, is a clear error, not a panic (in debug builds the addition used to overflow).
#[test]
fn val_an_array_too_large_for_memory_is_an_error_not_a_panic() {
    for len in [usize::MAX, usize::MAX - 10, usize::MAX / 2] {
        assert!(matches!(multiproc::Array::<u8>::zeroed(len), Err(multiproc::ShmError::TooLarge { .. })), "{len}");
        assert!(matches!(multiproc::RawArray::<u8>::zeroed(len), Err(multiproc::ShmError::TooLarge { .. })), "{len}");
    }
}
