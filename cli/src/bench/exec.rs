//! Rows for fuzzing harnesses: executions per second, the figure fuzzers compare.
//!
//! * `exec.persistent`: a trivial target run once per input through
//!   `Pool::imap_unordered_outcomes` (chunks of one input, one outcome each), on
//!   `Pool(cpu_count)`, execs/s.
//! * `exec.persistent.crash1pct`: the same where 1 % of inputs kill their worker with SIGSEGV
//!   (the default disposition, as a C target's invalid access): each crash costs a worker's
//!   replacement. Baseline `exec.persistent`; the cost of one crash is
//!   `(1 / crash1pct − 1 / persistent) × 100` seconds, to compare with `os.fork.rt`.
//! * `exec.persistent.crash1pct.forkserver`: the same with workers started by the fork server
//!   (a replacement is forked from the small server process, not from this one: no page-table
//!   copy of the harness and no copy-on-write faults in it afterwards). Baseline
//!   `exec.persistent.crash1pct`.
//! * `exec.persistent.reset_signals`: `exec.persistent` with `PoolBuilder::reset_signals`
//!   (each worker puts its signal state back after every input). Baseline `exec.persistent`:
//!   what that costs per input.
//! * `exec.fork`: a fresh child per input from a fork server (`ForkServer::run_input`, the
//!   input in an `InputArea`), µs per input, baseline `os.fork.rt` (a bare fork + exit + wait
//!   of this process).

use super::{Ctx, Driver, Placement, Row, Unit};
use multiproc::{ExecOutcome, ForkServer, FuzzInput, InputArea, Pool, PoolBuilder, PoolError};
use std::io;
use std::time::Duration;

pub(crate) fn rows() -> Vec<Row> {
    let row = |name, base, build| Row {
        min_batch: Duration::from_millis(20),
        ..Row::new(name, Unit::TasksPerSec, &[Placement::Free], base, build)
    };
    vec![
        row("exec.persistent", None, persistent as fn(&Ctx, Placement) -> _),
        row("exec.persistent.crash1pct", Some("exec.persistent"), crash1pct),
        row("exec.persistent.reset_signals", Some("exec.persistent"), reset_signals),
        row("exec.persistent.crash1pct.forkserver", Some("exec.persistent.crash1pct"), crash1pct_forkserver),
        Row::new("exec.fork", Unit::Us, &[Placement::Free], Some("os.fork.rt"), fork_per_input),
    ]
}

fn target(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

fn crashing_target(x: u64) -> u64 {
    if x % 100 == 99 {
        // SAFETY: restoring SIGSEGV's default disposition and raising it touches no memory of
        // ours; the process dies of SIGSEGV (std's stack-overflow handler would otherwise take
        // a raised SIGSEGV and return).
        unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        }
    }
    target(x)
}

struct Exec {
    pool: Pool,
    crashing: bool,
    next: u64,
}

impl Driver for Exec {
    fn run(&mut self, n: u64) -> io::Result<()> {
        let start = self.next;
        self.next = self.next.wrapping_add(n);
        let f = if self.crashing { crashing_target } else { target };
        let (mut ok, mut crashed) = (0u64, 0u64);
        for o in self.pool.imap_unordered_outcomes(f, start..start + n).map_err(io::Error::other)? {
            match o.result {
                Ok(_) => ok += 1,
                Err(PoolError::WorkerDied { signal: Some(libc::SIGSEGV), .. }) => crashed += 1,
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        let want_crashes = if self.crashing { (start..start + n).filter(|x| x % 100 == 99).count() as u64 } else { 0 };
        if ok + crashed != n || crashed != want_crashes {
            return Err(io::Error::other(format!("{ok} values and {crashed} crashes for {n} inputs")));
        }
        Ok(())
    }
}

/// An `Exec` driver over the pool `builder` makes, its target crashing on 1 % of inputs or not.
fn exec(builder: PoolBuilder, crashing: bool) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(Exec { pool: builder.build().map_err(io::Error::other)?, crashing, next: 0 }))
}

fn persistent(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    exec(Pool::builder(), false)
}

fn reset_signals(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    exec(Pool::builder().reset_signals(true), false)
}

fn crash1pct(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    exec(Pool::builder(), true)
}

fn crash1pct_forkserver(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    exec(Pool::builder().start_method(multiproc::StartMethod::ForkServer), true)
}

fn fork_target(input: FuzzInput) -> i32 {
    i32::from(input.bytes().first().copied().unwrap_or(0) == b'x')
}

struct ForkExec {
    server: ForkServer,
    area: InputArea,
}

impl Driver for ForkExec {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for i in 0..n {
            self.area.set(&i.to_le_bytes()).map_err(io::Error::other)?;
            match self.server.run_input(fork_target, &self.area, Duration::from_secs(10)).map_err(io::Error::other)? {
                ExecOutcome::Exited(0) => {}
                other => return Err(io::Error::other(format!("input {i}: {other:?}"))),
            }
        }
        Ok(())
    }
}

fn fork_per_input(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    let server = ForkServer::builder().start().map_err(io::Error::other)?;
    Ok(Box::new(ForkExec { server, area: InputArea::new(4096).map_err(io::Error::other)? }))
}
