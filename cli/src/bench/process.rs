//! Rows of the process layer.
//!
//! * `process.start_join`: `Process::new(|| …).start()` + `join()` of a child that does
//!   nothing, compared with `os.fork.rt` (target ≤ 1.5 ×, docs/BENCHMARKS.md).
//! * `os.posix_spawn.rt`: `posix_spawn` of this executable, which exits at the top of `main`,
//!   and `waitpid`: exec, the loader and Rust's start-up, what any spawned child pays.
//! * `process.spawn.start_join`: a `StartMethod::Spawn` child with an empty entry, started and
//!   joined; baseline `os.posix_spawn.rt` (target ≤ 1.3 ×).
//! * `process.forkserver.start_join`: the same through the fork server; baseline `os.fork.rt`
//!   (target ≤ 2 ×).

use super::{Ctx, Driver, Placement, Row, Unit};
use std::io;
use std::time::Duration;

pub(crate) fn rows() -> Vec<Row> {
    let row = Row::new;
    const PLACES: &[Placement] = &[Placement::Same, Placement::Free];
    vec![
        Row {
            name: "process.start_join",
            unit: Unit::Us,
            placements: PLACES,
            baseline: Some("os.fork.rt"),
            bytes_per_op: 0,
            min_batch: Duration::ZERO,
            build: start_join,
        },
        row("os.posix_spawn.rt", Unit::Us, PLACES, None, posix_spawn_rt),
        row("process.spawn.start_join", Unit::Us, PLACES, Some("os.posix_spawn.rt"), spawn_start_join),
        row("process.forkserver.start_join", Unit::Us, PLACES, Some("os.fork.rt"), forkserver_start_join),
    ]
}

struct PosixSpawn;

fn posix_spawn_rt(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(PosixSpawn))
}

impl Driver for PosixSpawn {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            crate::raw::posix_spawn_self_noop()?;
        }
        Ok(())
    }
}

fn empty(_: ()) {}

/// Start + join of a child with an empty entry under `method`.
struct MethodStartJoin(multiproc::StartMethod);

fn spawn_start_join(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(MethodStartJoin(multiproc::StartMethod::Spawn)))
}

fn forkserver_start_join(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    // Started before measuring: its one-time start is not a child's start.
    multiproc::ForkServer::global().map_err(io::Error::other)?;
    Ok(Box::new(MethodStartJoin(multiproc::StartMethod::ForkServer)))
}

impl Driver for MethodStartJoin {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            let p = multiproc::Process::builder().start_method(self.0).spawn(empty, ()).map_err(io::Error::other)?;
            let status = p.join().map_err(io::Error::other)?;
            if !status.success() {
                return Err(io::Error::other(format!("child ended with {status}")));
            }
        }
        Ok(())
    }
}

/// Start + join of a do-nothing `Process`; the child inherits the parent's pinning.
struct StartJoin;

fn start_join(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(StartJoin))
}

impl Driver for StartJoin {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            let p = multiproc::Process::new(|| ());
            p.start().map_err(io::Error::other)?;
            let status = p.join().map_err(io::Error::other)?;
            if !status.success() {
                return Err(io::Error::other(format!("child ended with {status}")));
            }
        }
        Ok(())
    }
}
