//! Measures an operation of your own across processes, next to the physical floors, with the
//! harness `multiproc bench` is built on (`multiproc::Bench`, feature `bench`).
//!
//! ```text
//! cargo run --release --features plot --example bench_my_op
//! cargo run --release --features plot --example bench_my_op -- --quick --plot svgs --csv rows.csv
//! ```
//!
//! The operation here is a round trip of a `u64` through two `ArrayQueue`s (lock-free, in shared
//! memory): the parent pushes a number, a peer process pops it and pushes it back. The peer is
//! started per placement (same CPU, two CPUs, unpinned), pinned before it runs, and killed and
//! reaped when the row ends. The table gives each row's median and p99 and its ratio to the
//! floor measured in the same run: the spin round trip (one cache line each way) for the
//! spinning row, the futex round trip for the row that sleeps.

use multiproc::{ArrayQueue, Bench, BenchPeers, BenchResult, BenchRow, BenchUnit, Placement, FLOOR_FUTEX, FLOOR_SPIN};
use std::time::Duration;

/// The round trip; `spin`: both sides poll (`try_pop`), else they sleep in `pop_timeout`.
fn round_trip(peers: &mut BenchPeers, spin: bool) -> BenchResult<impl FnMut(u64) -> BenchResult> {
    let (to_peer, from_peer) = (ArrayQueue::<u64>::new(16)?, ArrayQueue::<u64>::new(16)?);
    let (inbox, outbox) = (to_peer.clone(), from_peer.clone());
    peers.spawn(move || -> Result<(), Box<dyn std::error::Error>> {
        loop {
            let v = if spin {
                loop {
                    if let Ok(v) = inbox.try_pop() {
                        break v;
                    }
                    std::hint::spin_loop();
                }
            } else {
                inbox.pop()?
            };
            outbox.push(v + 1)?;
        }
    })?;
    let mut next = 0u64;
    Ok(move |n: u64| -> BenchResult {
        for _ in 0..n {
            to_peer.push(next)?;
            // A bounded wait: a dead peer fails the row instead of hanging it.
            let back = if spin {
                let mut tries = 0u64;
                loop {
                    if let Ok(v) = from_peer.try_pop() {
                        break v;
                    }
                    tries += 1;
                    if tries > 1 << 32 {
                        return Err("the peer stopped answering".into());
                    }
                    std::hint::spin_loop();
                }
            } else {
                from_peer.pop_timeout(Duration::from_secs(10))?
            };
            assert_eq!(back, next + 1);
            next += 2;
        }
        Ok(())
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let mut bench = Bench::new()?;
    if args.iter().any(|a| a == "--quick") {
        bench = bench.quick();
    }
    println!("measuring on CPUs {:?} …", bench.cpus());
    bench.floors_only(&[FLOOR_SPIN, FLOOR_FUTEX])?;
    let spinning = BenchRow::new("my.arrayqueue.rt.spin")
        .unit(BenchUnit::Ns)
        .placements(&[Placement::Cross, Placement::Free])
        .baseline(FLOOR_SPIN);
    bench.measure(&spinning, |peers| round_trip(peers, true))?;
    let sleeping = BenchRow::new("my.arrayqueue.rt")
        .unit(BenchUnit::Ns)
        .placements(&[Placement::Same, Placement::Cross])
        .baseline(FLOOR_FUTEX);
    bench.measure(&sleeping, |peers| round_trip(peers, false))?;

    let report = bench.report();
    print!("{}", report.table());
    if let Some(path) = value("--csv") {
        std::fs::write(&path, report.to_csv())?;
        println!("wrote {path}");
    }
    if let Some(path) = value("--json") {
        std::fs::write(&path, report.to_json())?;
        println!("wrote {path}");
    }
    #[cfg(feature = "plot")]
    if let Some(dir) = value("--plot") {
        let files = report.write_svgs(&dir)?;
        println!("wrote {} SVG file(s) into {dir}", files.len());
    }
    Ok(())
}
