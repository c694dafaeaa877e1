//! Rows of the pool layer.
//!
//! * `pool.map.trivial`: `Pool::new(cpu_count)` maps a trivial function over a batch of
//!   integers with a large chunksize (the best one here; see BENCHMARKS.md for the sweep),
//!   tasks/s, baseline `python.pool.map.trivial` (CPython's `Pool.map` of the same work, in the
//!   same run: `python.rs`).
//! * `pool.map.chunk1`: the same with `chunksize = 1` (one message per task each way).
//! * `pool.apply_async.rt`: submit → result of one task on a one-worker pool, baseline
//!   `pipe.rt.64B` at the same placement (target ≤ 3×). The worker pins itself from the
//!   pool's initializer (CPU 0 for `same`, CPU 1 for `cross`).
//! * `pool.start` (fork), `pool.start.spawn`, `pool.start.forkserver`: `Pool(2)` under that
//!   start method + `close` + `join`.

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::CpuMask;
use multiproc::{Pool, PoolOptions};
use std::io;
use std::time::Duration;

pub(crate) fn rows() -> Vec<Row> {
    let row = Row::new;
    vec![
        Row {
            // Batches of at least 60 ms, mapped in calls of at most `MAP_CALL_MAX` items, as
            // Python's row does.
            min_batch: Duration::from_millis(60),
            ..row(
                "pool.map.trivial",
                Unit::TasksPerSec,
                &[Placement::Free],
                Some("python.pool.map.trivial"),
                map_trivial,
            )
        },
        Row {
            min_batch: Duration::from_millis(20),
            ..row("pool.map.chunk1", Unit::TasksPerSec, &[Placement::Free], None, map_chunk1)
        },
        row("pool.apply_async.rt", Unit::Ns, &[Placement::Same, Placement::Cross], Some("pipe.rt.64B"), apply_rt),
        row("pool.start", Unit::Us, &[Placement::Free], None, start),
        row("pool.start.spawn", Unit::Us, &[Placement::Free], Some("pool.start"), start_spawn),
        row("pool.start.forkserver", Unit::Us, &[Placement::Free], Some("pool.start"), start_forkserver),
    ]
}

fn trivial(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

/// The chunksize `pool.map.trivial` (and its Python baseline, `python.rs`) uses for a batch
/// of `n` items on `procs` workers: four chunks per worker, at most 10,000 items each.
pub(crate) fn map_chunksize(n: u64, procs: usize) -> usize {
    (n as usize / (4 * procs)).clamp(1, 10_000)
}

/// The most items one `map` call of `pool.map.trivial` (and of its Python baseline) covers: a
/// batch is mapped in calls of this size, so that both rows map lists of the same size
/// whatever their speeds. Each row sizes its batch by time, and this one is ten times faster:
/// unsplit, its calls would cover 3–6 M items against Python's 0.3 M, and results of more than
/// 32 MB, which glibc maps afresh for each call (its largest reused size), would make it a
/// measure of page faults (BENCHMARKS.md has both figures).
pub(crate) const MAP_CALL_MAX: u64 = 1 << 20;

/// `n` items from `start` as the `(start, len)` of calls of at most [`MAP_CALL_MAX`] items.
pub(crate) fn map_calls(start: u64, n: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..n.div_ceil(MAP_CALL_MAX)).map(move |i| {
        let from = i * MAP_CALL_MAX;
        (start.wrapping_add(from), MAP_CALL_MAX.min(n - from))
    })
}

fn pool_err(e: multiproc::PoolError) -> io::Error {
    io::Error::other(e)
}

/// Maps batches of integers; `chunk` of `None` picks a large chunksize for the batch.
struct MapDriver {
    pool: Pool,
    chunk: Option<usize>,
    next: u64,
}

impl Driver for MapDriver {
    fn run(&mut self, n: u64) -> io::Result<()> {
        let procs = self.pool.processes();
        let start = self.next;
        self.next = self.next.wrapping_add(n);
        for (start, n) in map_calls(start, n) {
            let cs = self.chunk.unwrap_or_else(|| map_chunksize(n, procs));
            let items = start..start.wrapping_add(n);
            let out = self.pool.map_with(trivial, items, PoolOptions::new().chunksize(cs)).map_err(pool_err)?;
            if out.len() as u64 != n || out.first().is_some_and(|&v| v != trivial(start)) {
                return Err(io::Error::other("pool.map returned a wrong result"));
            }
        }
        Ok(())
    }
}

fn map_trivial(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(MapDriver { pool: Pool::builder().build().map_err(pool_err)?, chunk: None, next: 0 }))
}

fn map_chunk1(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(MapDriver { pool: Pool::builder().build().map_err(pool_err)?, chunk: Some(1), next: 0 }))
}

/// One task at a time through a one-worker pool.
struct ApplyRt {
    pool: Pool,
}

impl Driver for ApplyRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for i in 0..n {
            let r = self.pool.apply_async(trivial, i).map_err(pool_err)?;
            if r.get().map_err(pool_err)? != trivial(i) {
                return Err(io::Error::other("pool.apply_async returned a wrong result"));
            }
        }
        Ok(())
    }
}

fn apply_rt(_: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let cpu = if p == Placement::Cross { 1 } else { 0 };
    let pool =
        Pool::builder().processes(1).initializer(move || CpuMask::single(cpu).apply()).build().map_err(pool_err)?;
    Ok(Box::new(ApplyRt { pool }))
}

struct Start(multiproc::StartMethod);

impl Driver for Start {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            let pool = Pool::builder().processes(2).start_method(self.0).build().map_err(pool_err)?;
            pool.close();
            pool.join();
        }
        Ok(())
    }
}

fn start(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(Start(multiproc::StartMethod::Fork)))
}

fn start_spawn(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(Start(multiproc::StartMethod::Spawn)))
}

fn start_forkserver(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    multiproc::ForkServer::global().map_err(io::Error::other)?;
    Ok(Box::new(Start(multiproc::StartMethod::ForkServer)))
}
