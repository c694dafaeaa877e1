//! The measurement harness as a library (`multiproc::Bench`, feature `bench`): placements that
//! this machine cannot give are skipped with a note; a peer that dies or goes silent fails its
//! row instead of hanging it; peers are reaped; the floors serve as baselines; the report's
//! outputs (table, JSON, CSV, SVG) carry every measurement. The statistics themselves are unit
//! tests of `src/bench/stats.rs` and `report.rs`.
#![cfg(feature = "bench")]
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code: raw libc is fine here

mod common;

use common::guard_for;
use multiproc::{
    Bench, BenchBudget, BenchError, BenchResult, BenchRow, BenchUnit, PinnedPeer, Pipe, Placement, Process, FLOOR_FUTEX,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn small() -> BenchBudget {
    BenchBudget { warmup: Duration::from_millis(10), measure: Duration::from_millis(60), max_samples: 1000 }
}

/// A pipe round trip with an echoing peer; the peer's pid goes into `pid`.
fn echo(peers: &mut multiproc::BenchPeers, pid: &AtomicU32) -> BenchResult<impl FnMut(u64) -> BenchResult> {
    let (mut mine, mut theirs) = Pipe::duplex()?;
    let p = peers.spawn(move || -> Result<(), Box<dyn std::error::Error>> {
        loop {
            let m = theirs.recv_bytes()?;
            theirs.send_bytes(&m)?;
        }
    })?;
    pid.store(p, Ordering::SeqCst);
    Ok(move |n: u64| -> BenchResult {
        for _ in 0..n {
            mine.send_bytes(&[1u8; 16])?;
            mine.recv_bytes()?;
        }
        Ok(())
    })
}

fn is_gone(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pid != 0 && unsafe { libc::kill(pid as i32, 0) } != 0
}

#[test]
fn bench_placement_cross_is_skipped_with_a_note_where_one_cpu_is_all_there_is() {
    let _g = guard_for(Duration::from_secs(60));
    // In a child confined to one CPU: `cross` cannot be given, `same` and `free` can.
    let child = Process::new(|| -> Result<(), String> {
        // SAFETY: a zeroed cpu_set_t is valid; we set one bit and apply it to this thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err("sched_setaffinity".into());
            }
        }
        let mut bench = Bench::new().map_err(|e| e.to_string())?.budget(small());
        let pid = AtomicU32::new(0);
        let row = BenchRow::new("echo").placements(&[Placement::Cross, Placement::Same, Placement::Free]);
        bench.measure(&row, |peers| echo(peers, &pid)).map_err(|e| e.to_string())?;
        let r = bench.report();
        let places: Vec<Placement> = r.measurements.iter().map(|m| m.placement).collect();
        if places != [Placement::Same, Placement::Free] {
            return Err(format!("measured at {places:?}"));
        }
        if !(r.notes.len() == 1 && r.notes[0].contains("echo [cross] skipped") && r.notes[0].contains("1 usable")) {
            return Err(format!("notes {:?}", r.notes));
        }
        Ok(())
    });
    child.start().unwrap();
    let status = child.join().unwrap();
    assert!(status.success(), "{:?}", status.message());
}

#[test]
fn bench_a_peer_killed_during_the_row_fails_it_with_peer_died() {
    let _g = guard_for(Duration::from_secs(60));
    let mut bench = Bench::new().unwrap().budget(BenchBudget {
        measure: Duration::from_secs(20),
        max_samples: usize::MAX,
        ..small()
    });
    let pid = Arc::new(AtomicU32::new(0));
    let killer = {
        let pid = pid.clone();
        std::thread::spawn(move || {
            while pid.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(150));
            common::sigkill(pid.load(Ordering::SeqCst) as i32);
        })
    };
    let row = BenchRow::new("echo").placements(&[Placement::Free]);
    let e = bench.measure(&row, |peers| echo(peers, &pid)).map(|_| ()).unwrap_err();
    killer.join().unwrap();
    match e {
        BenchError::PeerDied { pid: p, status } => {
            assert_eq!(p, pid.load(Ordering::SeqCst));
            assert_eq!(status.signal(), Some(libc::SIGKILL));
        }
        other => panic!("{other:?}"),
    }
    assert!(bench.report().notes[0].contains("echo [free] FAILED"));
    assert!(bench.report().measurements.is_empty());
}

#[test]
fn bench_a_silent_peer_fails_the_row_after_the_limit_and_is_reaped() {
    let _g = guard_for(Duration::from_secs(60));
    let mut bench = Bench::new().unwrap().budget(small()).peer_limit(Duration::from_millis(300));
    let pid = AtomicU32::new(0);
    let row = BenchRow::new("silent").placements(&[Placement::Free]);
    let e = bench
        .measure(&row, |peers| {
            let (mut mine, mut theirs) = Pipe::duplex()?;
            // Answers 100 messages (the warm-up's first batches), then reads and never answers.
            pid.store(
                peers.spawn(move || -> Result<(), Box<dyn std::error::Error>> {
                    for _ in 0..100 {
                        let m = theirs.recv_bytes()?;
                        theirs.send_bytes(&m)?;
                    }
                    loop {
                        let _ = theirs.recv_bytes()?;
                    }
                })?,
                Ordering::SeqCst,
            );
            Ok(move |n: u64| -> BenchResult {
                for _ in 0..n {
                    mine.send_bytes(b"x")?;
                    mine.recv_bytes()?;
                }
                Ok(())
            })
        })
        .unwrap_err();
    assert!(matches!(e, BenchError::PeerSilent { limit } if limit == Duration::from_millis(300)), "{e:?}");
    assert!(is_gone(pid.load(Ordering::SeqCst)), "the silent peer was not reaped");
}

#[test]
fn bench_rows_read_against_the_floor_and_every_output_carries_them() {
    let _g = guard_for(Duration::from_secs(120));
    let mut bench = Bench::new().unwrap().budget(small());
    bench.floors_only(&[FLOOR_FUTEX]).unwrap();
    let pid = AtomicU32::new(0);
    let row = BenchRow::new("echo.rt")
        .unit(BenchUnit::Us)
        .placements(&[Placement::Same, Placement::Free])
        .baseline(FLOOR_FUTEX);
    bench.measure(&row, |peers| echo(peers, &pid)).unwrap();
    assert!(is_gone(pid.load(Ordering::SeqCst)), "the row's peer outlived it");
    let r = bench.report();
    let same = r.measurements.iter().find(|m| m.name == "echo.rt" && m.placement == Placement::Same).unwrap();
    let ratio = same.ratio.expect("ratio to the futex floor at `same`");
    assert!(ratio.is_finite() && ratio > 0.0);
    let free = r.measurements.iter().find(|m| m.name == "echo.rt" && m.placement == Placement::Free).unwrap();
    assert_eq!(free.ratio, None, "the floor has no `free` placement");
    for m in &r.measurements {
        let (p25, p75, p99) = (m.p25.unwrap(), m.p75.unwrap(), m.p99.unwrap());
        assert!(
            m.min.unwrap() <= p25
                && p25 <= m.median
                && m.median <= p75
                && p75 <= m.max.unwrap()
                && p99 <= m.max.unwrap()
        );
        assert_eq!(m.values.len(), m.samples);
    }
    let (table, json, csv) = (r.table(), r.to_json(), r.to_csv());
    assert!(table.contains("echo.rt") && table.contains(FLOOR_FUTEX));
    assert_eq!(json.matches("\"name\"").count(), r.measurements.len());
    assert_eq!(csv.lines().count(), r.measurements.len() + 1);
    #[cfg(feature = "plot")]
    {
        let dir = std::env::temp_dir().join(format!("mp-bench-svg-{}", std::process::id()));
        let files = r.write_svgs(&dir).unwrap();
        assert_eq!(files.len(), r.measurements.len());
        let svg = std::fs::read_to_string(dir.join("echo.rt.same.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("echo.rt [same]") && svg.trim_end().ends_with("</svg>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn bench_pinned_peer_times_batches_and_takes_its_peer_along_when_dropped() {
    let _g = guard_for(Duration::from_secs(60));
    let pid = AtomicU32::new(0);
    let mut peer = PinnedPeer::start(Placement::Free, |peers| echo(peers, &pid)).unwrap();
    let one = peer.time(10);
    let many = peer.time(1000);
    assert!(one > Duration::ZERO && many > one);
    common::sigkill(pid.load(Ordering::SeqCst) as i32);
    assert!(peer.try_time(10).is_err(), "a dead peer's batch succeeded");
    drop(peer);
    assert!(is_gone(pid.load(Ordering::SeqCst)));
}

#[test]
fn bench_a_panicking_setup_or_operation_reaps_its_peers_and_unpins_the_thread() {
    let _g = guard_for(Duration::from_secs(60));
    for in_operation in [false, true] {
        // On a thread named `multiproc-…`, which the tests' panic hook leaves alone: the peer
        // must be reaped by the harness itself, not by the hook that kills a failed test's
        // children.
        let t = std::thread::Builder::new()
            .name("multiproc-test-bench-panic".into())
            .spawn(move || {
                let mask = || {
                    // SAFETY: a zeroed cpu_set_t is valid; the call fills it for this thread.
                    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                    let size = std::mem::size_of::<libc::cpu_set_t>();
                    // SAFETY: `set` is writable and of the size passed.
                    let r = unsafe { libc::sched_getaffinity(0, size, &mut set) };
                    assert_eq!(r, 0);
                    // SAFETY: every index is below CPU_SETSIZE.
                    (0..64).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect::<Vec<usize>>()
                };
                let before = mask();
                let pid = AtomicU32::new(0);
                let mut bench = Bench::new().unwrap().budget(small());
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let row = BenchRow::new("panics").placements(&[Placement::Same]);
                    let _ = bench.measure(&row, |peers| {
                        let mut op = echo(peers, &pid)?;
                        if !in_operation {
                            panic!("set-up panics after starting its peer");
                        }
                        Ok(move |n: u64| -> BenchResult {
                            op(n)?;
                            panic!("the operation panics");
                        })
                    });
                }));
                assert!(r.is_err(), "no panic came through");
                assert_eq!(mask(), before, "the thread stayed pinned after a panic ({in_operation})");
                pid.load(Ordering::SeqCst)
            })
            .unwrap();
        let pid = t.join().unwrap();
        assert!(is_gone(pid), "a peer outlived a panic ({in_operation})");
    }
}
