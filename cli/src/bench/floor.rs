//! The floors and the OS baselines: what the kernel and the hardware allow, measured raw
//! (direct `libc` calls, no library code), so that library rows can be compared with them.
//!
//! | row | what one operation is |
//! |---|---|
//! | `floor.spin.rt` | a round trip of a busy-spun value through one shared cache line |
//! | `floor.futex.rt` | a round trip of raw `FUTEX_WAKE` / `FUTEX_WAIT` on one shared word |
//! | `os.pipe.rt.64B` | 64 B there and back over two pipe(2)s |
//! | `os.pipe.stream.64B` / `.64KiB` | one message written by the parent and read by the child |
//! | `os.fork.rt` | fork + `_exit(0)` in the child + waitpid |
//! | `os.pthread_robust.uncontended` | lock + unlock of a robust pshared pthread mutex, one process |
#![allow(clippy::disallowed_types)] // the command uses std atomics over its own raw mapping

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::{self, Child, RobustMutex, SharedMap};
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::Duration;

const SAME: Placement = Placement::Same;
const CROSS: Placement = Placement::Cross;
const FREE: Placement = Placement::Free;
/// How long a spinning parent waits for a silent child before giving up.
const PEER_LIMIT: Duration = Duration::from_secs(10);
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
        row("floor.spin.rt", Unit::Ns, &[CROSS, FREE], spin),
        row("floor.futex.rt", Unit::Ns, &[SAME, CROSS], futex),
        row("os.pipe.rt.64B", Unit::Ns, &[SAME, CROSS, FREE], pipe_rt),
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

/// The parent writes an odd value, the child answers with the next (even) one.
struct Spin {
    map: SharedMap,
    next: u32,
    _child: Child,
}

fn spin(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let map = SharedMap::new(4096)?;
    let w = map.word(0);
    let child = Child::spawn(p.child_mask(ctx), || {
        let mut last = 0;
        loop {
            let v = w.load(Acquire); // SYNC: pairs with the parent's Release store of `v`
            if v != last {
                w.store(v.wrapping_add(1), Release); // SYNC: pairs with the parent's Acquire load
                last = v.wrapping_add(1);
            } else {
                std::hint::spin_loop();
            }
        }
    })?;
    Ok(Box::new(Spin { map, next: 1, _child: child }))
}

impl Driver for Spin {
    fn run(&mut self, n: u64) -> io::Result<()> {
        let w = self.map.word(0);
        for _ in 0..n {
            let v = self.next;
            w.store(v, Release); // SYNC: pairs with the child's Acquire load
            raw::spin_until(PEER_LIMIT, || w.load(Acquire) == v.wrapping_add(1))?; // SYNC: child's store
            self.next = v.wrapping_add(2);
        }
        Ok(())
    }
}

/// As [`Spin`], but each side sleeps in FUTEX_WAIT and is woken by the other's FUTEX_WAKE.
struct Futex {
    map: SharedMap,
    next: u32,
    _child: Child,
}

fn futex(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let map = SharedMap::new(4096)?;
    let w = map.word(0);
    let child = Child::spawn(p.child_mask(ctx), || {
        let mut last = 0;
        loop {
            let v = w.load(Acquire); // SYNC: pairs with the parent's Release store
            if v == last {
                raw::futex_wait(w, last);
                continue;
            }
            w.store(v.wrapping_add(1), Release); // SYNC: pairs with the parent's Acquire load
            raw::futex_wake(w, 1);
            last = v.wrapping_add(1);
        }
    })?;
    Ok(Box::new(Futex { map, next: 1, _child: child }))
}

impl Driver for Futex {
    fn run(&mut self, n: u64) -> io::Result<()> {
        let w = self.map.word(0);
        for _ in 0..n {
            let v = self.next;
            w.store(v, Release); // SYNC: pairs with the child's Acquire load
            raw::futex_wake(w, 1);
            // SYNC: pairs with the child's Release store of v + 1.
            while w.load(Acquire) != v.wrapping_add(1) {
                raw::futex_wait(w, v); // a dead child is caught by the alarm (bench/mod.rs)
            }
            self.next = v.wrapping_add(2);
        }
        Ok(())
    }
}

/// 64 bytes to the child and back over two pipes. Field order matters: the pipes close before
/// the child is killed and reaped.
struct PipeRt {
    to_child: std::fs::File,
    from_child: std::fs::File,
    buf: [u8; 64],
    _child: Child,
}

fn pipe_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let (mut c_in, to_child) = raw::pipe()?;
    let (from_child, mut c_out) = raw::pipe()?;
    let child = Child::spawn(p.child_mask(ctx), move || {
        let mut buf = [0u8; 64];
        while c_in.read_exact(&mut buf).is_ok() {
            if c_out.write_all(&buf).is_err() {
                return 1;
            }
        }
        0
    })?;
    Ok(Box::new(PipeRt { to_child, from_child, buf: [7; 64], _child: child }))
}

impl Driver for PipeRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.to_child.write_all(&self.buf)?;
            self.from_child.read_exact(&mut self.buf)?;
        }
        Ok(())
    }
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
    let child = Child::spawn(p.child_mask(ctx), move || {
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
