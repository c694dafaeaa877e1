//! Rows of the loan (zero-copy) forms, beside the copying rows.
//!
//! * `pipe.stream.64KiB.loan`, `pipe.stream.1MiB.loan`: one-way messages written in place with
//!   `send_loan` (filled from a source buffer, as iceoryx2's `write_from_slice` in
//!   benches/peers does: a producer that builds its data in place would skip even that copy)
//!   and read in place with `recv_loan` (the reader looks at the first and last byte and
//!   releases: the copy out that `recv_bytes_into` makes is what the loan saves). Baselines:
//!   the copying rows `pipe.stream.64KiB` and `pipe.stream.1MiB`.
//! * `queue.stream.64KiB.loan`: the same through a `Queue<Vec<u8>>` (`put_loan` / `get_loan`,
//!   driver in `queue.rs`), baseline the copying `queue.stream.64KiB`.
//! * `pipe.stream.1MiB`: the copying row at 1 MiB (`send_bytes` / `recv_bytes_into`), baseline
//!   `os.pipe.stream.64KiB` (GB/s, so the sizes compare).
//!
//! Each sample starts with a count message and ends with the child's acknowledgement. The
//! rings are 4 MiB, so that a 1 MiB message is one record (a loan is at most half the ring).

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::Child;
use multiproc::{Connection, Pipe};
use std::io;
use std::time::Duration;

const RING: usize = 4 << 20;

pub(crate) fn rows() -> Vec<Row> {
    let both: &'static [Placement] = &[Placement::Cross, Placement::Same];
    let row = |name, size: u64, base, build| Row {
        min_batch: Duration::from_millis(5),
        bytes_per_op: size,
        ..Row::new(name, Unit::GbPerSec, both, Some(base), build)
    };
    vec![
        row("pipe.stream.64KiB.loan", 64 << 10, "pipe.stream.64KiB", loan_64k),
        row("pipe.stream.1MiB", 1 << 20, "os.pipe.stream.64KiB", copy_1m),
        row("pipe.stream.1MiB.loan", 1 << 20, "pipe.stream.1MiB", loan_1m),
        row("queue.stream.64KiB.loan", 64 << 10, "queue.stream.64KiB", queue_loan_64k),
    ]
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct Stream {
    conn: Connection,
    src: Vec<u8>,
    loan: bool,
    _child: Child,
}

fn loan_64k(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    pipe_stream(ctx, p, 64 << 10, RING, true, false)
}

fn loan_1m(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    pipe_stream(ctx, p, 1 << 20, RING, true, false)
}

fn queue_loan_64k(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::queue::queue_stream_big(ctx, p, false, true)
}

fn copy_1m(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    pipe_stream(ctx, p, 1 << 20, RING, false, false)
}

/// One-way messages of `size` bytes over a `ring`-byte pipe, copied (`send_bytes` /
/// `recv_bytes_into`) or, with `loan`, written and read in place, with or without the
/// integrity mode (a CRC32C per record): the driver of every `pipe.stream.*` row.
pub(crate) fn pipe_stream(
    ctx: &Ctx,
    p: Placement,
    size: usize,
    ring: usize,
    loan: bool,
    integrity: bool,
) -> io::Result<Box<dyn Driver>> {
    let (parent, child_end) =
        Pipe::builder().capacity(ring).max_message(ring.max(size)).integrity(integrity).duplex().map_err(err)?;
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let mut c = child_end;
        let mut buf = vec![0u8; size.max(8)];
        loop {
            let Ok(_) = c.recv_bytes_into(&mut buf, 0) else { return 0 };
            let n = u64::from_le_bytes(buf[..8].try_into().unwrap_or([0; 8]));
            for _ in 0..n {
                if loan {
                    let Ok(m) = c.recv_loan() else { return 1 };
                    std::hint::black_box((m.first().copied(), m.last().copied()));
                } else if c.recv_bytes_into(&mut buf, 0).is_err() {
                    return 1;
                }
            }
            if c.send_bytes(&[1]).is_err() {
                return 1;
            }
        }
    })?;
    Ok(Box::new(Stream { conn: parent, src: vec![5; size], loan, _child: child }))
}

impl Driver for Stream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.conn.send_bytes(&n.to_le_bytes()).map_err(err)?;
        for _ in 0..n {
            if self.loan {
                let mut l = self.conn.send_loan(self.src.len()).map_err(err)?;
                l.copy_from_slice(&self.src);
                l.commit().map_err(err)?;
            } else {
                self.conn.send_bytes(&self.src).map_err(err)?;
            }
        }
        let mut ack = [0u8; 8];
        self.conn.recv_bytes_into(&mut ack, 0).map_err(err)?;
        Ok(())
    }
}
