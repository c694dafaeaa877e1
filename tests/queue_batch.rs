//! Queue batches (QUE-B7 in `docs/BEHAVIOURS.md`): `put_many` / `get_many_into` take the
//! lock once per batch, with the guarantees of single puts and gets, among real processes.
#![cfg(feature = "serde")]

mod common;

use common::{chaos_secs, guard_for, Rng};
use multiproc::{GetError, Process, PutError, Queue, TryGetError, TryPutError};
use std::time::{Duration, Instant};

#[test]
fn que_b7_batches_between_producers_and_consumers_lose_and_duplicate_nothing() {
    let _g = guard_for(Duration::from_secs(60));
    const PER: u32 = 20_000;
    // A small ring: batches never fit at once, so producers wait for room between parts.
    let q = Queue::<(u32, u32)>::builder().capacity_bytes(4096).build().unwrap();
    let producers: Vec<Process> = (0..2u32)
        .map(|p| {
            let q = q.clone();
            let pr = Process::new(move || {
                let mut i = 0;
                while i < PER {
                    let batch: Vec<(u32, u32)> = (i..(i + 100).min(PER)).map(|k| (p, k)).collect();
                    i += q.put_many(&batch).unwrap() as u32;
                }
            });
            pr.start().unwrap();
            pr
        })
        .collect();
    // Two consumers: one in another process (reporting what it got through a second queue),
    // one here; together they see every item once, each producer's in order.
    let report = Queue::<Vec<(u32, u32)>>::new().unwrap();
    let consumer = Process::new({
        let (q, report) = (q.clone(), report.clone());
        move || {
            let mut mine = Vec::new();
            while let Ok(n) = q.get_many_into_timeout(&mut mine, 64, Duration::from_millis(500)) {
                assert!(n >= 1);
            }
            report.put(&mine).unwrap();
        }
    });
    consumer.start().unwrap();
    let mut here = Vec::new();
    while q.get_many_into_timeout(&mut here, 37, Duration::from_millis(500)).is_ok() {}
    for p in producers {
        p.join().unwrap().exit_ok().unwrap();
    }
    consumer.join().unwrap().exit_ok().unwrap();
    let theirs = report.get().unwrap();
    let mut seen = vec![vec![false; PER as usize]; 2];
    for part in [&here, &theirs] {
        let mut last = [None::<u32>; 2];
        for &(p, k) in part.iter() {
            assert!(!seen[p as usize][k as usize], "({p}, {k}) twice");
            seen[p as usize][k as usize] = true;
            assert!(last[p as usize].is_none_or(|l| l < k), "producer {p} out of order in one consumer");
            last[p as usize] = Some(k);
        }
    }
    assert!(seen.iter().all(|s| s.iter().all(|&x| x)), "items lost");
}

#[test]
fn que_b7_forms_limits_and_errors() {
    let q = Queue::<u8>::with_maxsize(3).unwrap();
    let mut out = Vec::new();
    assert!(matches!(q.try_get_many_into(&mut out, 5), Err(TryGetError::Empty)));
    assert_eq!(q.get_many_into(&mut out, 0).unwrap(), 0);
    assert_eq!(q.try_put_many(&[1, 2, 3, 4]).unwrap(), 3, "maxsize bounds a batch");
    assert!(matches!(q.try_put_many(&[9]), Err(TryPutError::Full)));
    let t = Instant::now();
    assert!(q.put_many_timeout(&[9], Duration::from_millis(20)).unwrap_err().is_timeout());
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(q.get_many_into(&mut out, 2).unwrap(), 2);
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.put_many_timeout(&[4, 5, 6], Duration::from_millis(20)).unwrap(), 2);
    assert_eq!(q.get_many_into(&mut out, 10).unwrap(), 3);
    assert_eq!(out, [1, 2, 3, 4, 5]);
    // Too large for the ring: refused at once, nothing put.
    let small = Queue::<Vec<u8>>::builder().capacity_bytes(256).build().unwrap();
    assert!(matches!(small.put_many(&[vec![0u8; 1000]]), Err(PutError::TooLarge { .. })));
    // A later too-large item ends the batch before it: the ones before are put.
    assert_eq!(small.put_many(&[vec![1u8; 8], vec![0u8; 1000]]).unwrap(), 1);
    assert!(small.put_many(&[vec![0u8; 1000]]).is_err());
    // Closed handles refuse.
    small.close();
    assert!(matches!(small.put_many(&[vec![]]), Err(PutError::Closed)));
    assert!(matches!(small.get_many_into(&mut Vec::new(), 1), Err(GetError::Closed)));
}

#[test]
fn que_b7_a_consumer_killed_inside_get_many_loses_at_most_its_batch_and_wedges_nobody() {
    let _g = guard_for(Duration::from_secs(60));
    let mut rng = Rng::new("que_b7_kill");
    let q = Queue::<Vec<u8>>::new().unwrap();
    let (started, budget) = (Instant::now(), chaos_secs(1));
    let mut round = 0u8;
    while round < 5 || started.elapsed() < budget {
        round = round.wrapping_add(1);
        let items: Vec<Vec<u8>> = (0..200).map(|_| vec![round; 4096]).collect();
        assert_eq!(q.put_many(&items).unwrap(), 200);
        let consumer = Process::new({
            let q = q.clone();
            move || -> () {
                let mut out = Vec::new();
                loop {
                    out.clear();
                    let _ = q.get_many_into(&mut out, 16);
                }
            }
        });
        consumer.start().unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(20, 2000)));
        consumer.kill().unwrap();
        consumer.join().unwrap();
        // Whatever is left is whole, and the queue still works.
        q.put(&vec![0xEE; 10]).unwrap();
        let mut out = Vec::new();
        loop {
            q.get_many_into_timeout(&mut out, 50, Duration::from_secs(5)).expect("queue wedged after a consumer died");
            if out.last() == Some(&vec![0xEE; 10]) {
                break;
            }
        }
        out.pop();
        assert!(out.iter().all(|it| it.len() == 4096 && it.iter().all(|&b| b == round)), "torn item");
        assert!(q.empty());
    }
}

#[test]
fn que_b7_byte_batches_cross_processes_in_order_and_mix_with_typed_items() {
    let _g = guard_for(Duration::from_secs(60));
    const N: u32 = 30_000;
    let q = Queue::<Vec<u8>>::builder().capacity_bytes(8192).build().unwrap();
    let producer = Process::new({
        let q = q.clone();
        move || {
            let mut i = 0;
            while i < N {
                let batch: Vec<Vec<u8>> =
                    (i..(i + 64).min(N)).map(|k| k.to_le_bytes().repeat(1 + k as usize % 5)).collect();
                i += q.put_bytes_many(&batch).unwrap() as u32;
            }
        }
    });
    producer.start().unwrap();
    let mut next = 0u32;
    while next < N {
        q.get_bytes_many(100, |b| {
            assert_eq!(b, next.to_le_bytes().repeat(1 + next as usize % 5), "item {next}");
            next += 1;
        })
        .unwrap();
    }
    producer.join().unwrap().exit_ok().unwrap();
    // Items put by the typed path are byte strings to the byte path too.
    let raw = Queue::<Vec<u8>>::new().unwrap();
    raw.put_bytes(b"a").unwrap();
    raw.put(&vec![0u8; 0]).unwrap(); // an empty byte string is one
    let mut seen = Vec::new();
    assert_eq!(raw.get_bytes_many(8, |b| seen.push(b.to_vec())).unwrap(), 2);
    assert_eq!(seen, [b"a".to_vec(), vec![]]);
}
