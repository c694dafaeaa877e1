//! The floors and the OS baselines: what the kernel and the hardware allow, so that library
//! rows can be compared with them.
//!
//! | row | what one operation is |
//! |---|---|
//! | `floor.spin.rt` | a round trip of a busy-spun value through one shared cache line (the library's `Bench::floors`) |
//! | `floor.futex.rt` | a round trip of raw `FUTEX_WAKE` / `FUTEX_WAIT` on one shared word (the library's) |
//! | `os.pipe.rt.64B` | 64 B there and back over two pipe(2)s (the library's) |
//! | `os.pipe.stream.64B` / `.64KiB` | one message written by the parent and read by the child |
//! | `os.fork.rt` | fork + `_exit(0)` in the child + waitpid |
//! | `os.pthread_robust.uncontended` | lock + unlock of a robust pshared pthread mutex, one process |
//!
//! The first three are the floors `multiproc::Bench` measures for any user (`Bench::floors`):
//! the command lists them here (for `FILTER` and as baselines) and takes their figures from
//! the library; the rest are measured raw here (direct `libc` calls, no library code).
#![allow(clippy::disallowed_types)] // the command uses std atomics over its own raw mapping

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::{self, Child, RobustMutex};
use std::io::{self, Read, Write};
use std::time::Duration;

const SAME: Placement = Placement::Same;
const CROSS: Placement = Placement::Cross;
const FREE: Placement = Placement::Free;
/// Streams end each batch with an acknowledgement round trip: batches last ≥ this to amortize it.
const STREAM_BATCH: Duration = Duration::from_millis(5);

pub(crate) fn rows() -> Vec<Row> {
    let row = |name, unit, placements, build| Row {
        name,
        unit,
        placements,
        baseline: None,
        bytes_per_op: 0,
        min_batch: Duration::ZERO,
        build,
    };
    vec![
        // Busy spinning on one CPU would hand over only at the end of a time slice: no `same`.
        row(multiproc::FLOOR_SPIN, Unit::Ns, &[CROSS, FREE], library_floor),
        row(multiproc::FLOOR_FUTEX, Unit::Ns, &[SAME, CROSS], library_floor),
        row(multiproc::FLOOR_PIPE, Unit::Ns, &[SAME, CROSS, FREE], library_floor),
        Row { min_batch: STREAM_BATCH, ..row("os.pipe.stream.64B", Unit::MsgPerSec, &[CROSS, SAME], pipe_stream_64) },
        Row {
            min_batch: STREAM_BATCH,
            bytes_per_op: 64 * 1024,
            ..row("os.pipe.stream.64KiB", Unit::GbPerSec, &[CROSS, SAME], pipe_stream_64k)
        },
        row("os.fork.rt", Unit::Us, &[SAME, FREE], fork),
        row("os.pthread_robust.uncontended", Unit::Ns, &[SAME], pthread_robust),
    ]
}

/// The library's floors are measured by the library (`bench/mod.rs` takes them from
/// `Bench::floors_only`), never through a driver of the command's.
fn library_floor(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Err(io::Error::other("measured by multiproc::Bench::floors_only"))
}

/// The parent streams `n` messages of `size` bytes (one write each); the child reads them one
/// by one and acknowledges the batch with one byte. The batch size travels on a control pipe.
struct PipeStream {
    control: std::fs::File,
    data: std::fs::File,
    ack: std::fs::File,
    msg: Vec<u8>,
    _child: Child,
}

fn pipe_stream(ctx: &Ctx, p: Placement, size: usize) -> io::Result<Box<dyn Driver>> {
    let (mut c_control, control) = raw::pipe()?;
    let (mut c_data, data) = raw::pipe()?;
    let (ack, mut c_ack) = raw::pipe()?;
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let mut buf = vec![0u8; size];
        let mut n = [0u8; 8];
        while c_control.read_exact(&mut n).is_ok() {
            for _ in 0..u64::from_le_bytes(n) {
                if c_data.read_exact(&mut buf).is_err() {
                    return 1;
                }
            }
            if c_ack.write_all(&[1]).is_err() {
                return 1;
            }
        }
        0
    })?;
    Ok(Box::new(PipeStream { control, data, ack, msg: vec![7; size], _child: child }))
}

fn pipe_stream_64(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    pipe_stream(ctx, p, 64)
}

fn pipe_stream_64k(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    pipe_stream(ctx, p, 64 * 1024)
}

impl Driver for PipeStream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.control.write_all(&n.to_le_bytes())?;
        for _ in 0..n {
            self.data.write_all(&self.msg)?;
        }
        let mut a = [0u8; 1];
        self.ack.read_exact(&mut a)
    }
}

/// fork + `_exit(0)` + waitpid; the child inherits the parent's pinning.
struct Fork;

fn fork(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(Fork))
}

impl Driver for Fork {
    fn run(&mut self, n: u64) -> io::Result<()> {
        (0..n).try_for_each(|_| raw::fork_exit_wait())
    }
}

struct Pthread(RobustMutex);

fn pthread_robust(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(Pthread(RobustMutex::new()?)))
}

impl Driver for Pthread {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.0.lock_unlock(n)
    }
}
