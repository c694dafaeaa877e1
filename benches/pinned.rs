//! A cross-process row inside criterion (`cargo bench --features bench --bench pinned`): a
//! 64-byte round trip through a `Pipe` to a peer process, pinned on another CPU where there is
//! one, timed by `multiproc::PinnedPeer::time` in `iter_custom`. Criterion keeps its reports;
//! the peer is started once and reaped when the bench ends.

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::{criterion_group, criterion_main, Criterion};
use multiproc::{BenchResult, PinnedPeer, Pipe, Placement};

fn pipe_round_trip(c: &mut Criterion) {
    let two_cpus = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let placement = if two_cpus { Placement::Cross } else { Placement::Free };
    let mut peer = PinnedPeer::start(placement, |peers| {
        let (mut mine, mut theirs) = Pipe::duplex()?;
        peers.spawn(move || -> Result<(), Box<dyn std::error::Error>> {
            loop {
                let m = theirs.recv_bytes()?;
                theirs.send_bytes(&m)?;
            }
        })?;
        Ok(move |n: u64| -> BenchResult {
            for _ in 0..n {
                mine.send_bytes(&[7u8; 64])?;
                mine.recv_bytes()?;
            }
            Ok(())
        })
    })
    .expect("start the peer");
    c.bench_function(&format!("pipe_round_trip_64B_{}", placement.as_str()), |b| {
        b.iter_custom(|iters| peer.time(iters))
    });
}

criterion_group!(benches, pipe_round_trip);
criterion_main!(benches);
