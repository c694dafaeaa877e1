//! Rows of the batch forms.
//!
//! * `pipe.stream.64B.batch`: one-way 64-byte messages sent with `send_bytes_many` (64 a
//!   call) and received with `recv_bytes_many` (in place, released once a call), baseline
//!   `os.pipe.stream.64B` (target ≥ 50×, cross). Each sample starts with a count message and
//!   ends with the child's acknowledgement, as `pipe.stream.64B`.
//! * `queue.stream.64B` / `queue.stream.64B.batch`: the same through a `Queue<Vec<u8>>`, one
//!   item a call or 64 a `put_bytes_many` (see `queue_rows`).

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::Child;
use multiproc::{Connection, Pipe, Queue};
use std::io;
use std::time::Duration;

/// Messages per `send_bytes_many` call.
const BATCH: usize = 64;

pub(crate) fn rows() -> Vec<Row> {
    vec![Row {
        min_batch: Duration::from_millis(5),
        ..Row::new(
            "pipe.stream.64B.batch",
            Unit::MsgPerSec,
            &[Placement::Cross, Placement::Same],
            Some("os.pipe.stream.64B"),
            pipe_stream_batch,
        )
    }]
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct PipeStreamBatch {
    conn: Connection,
    msgs: Vec<[u8; 64]>,
    _child: Child,
}

fn pipe_stream_batch(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let (parent, child_end) = Pipe::builder().capacity(1 << 20).duplex().map_err(err)?;
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let mut c = child_end;
        let mut count = [0u8; 8];
        loop {
            let Ok(_) = c.recv_bytes_into(&mut count, 0) else { return 0 };
            let n = u64::from_le_bytes(count);
            let mut got = 0u64;
            let mut sum = 0u64;
            while got < n {
                match c.recv_bytes_many(usize::MAX, |m| sum = sum.wrapping_add(u64::from(m[0]))) {
                    Ok(k) => got += k as u64,
                    Err(_) => return 1,
                }
            }
            std::hint::black_box(sum);
            if got != n || c.send_bytes(&[1]).is_err() {
                return 1;
            }
        }
    })?;
    Ok(Box::new(PipeStreamBatch { conn: parent, msgs: vec![[5; 64]; BATCH], _child: child }))
}

impl Driver for PipeStreamBatch {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.conn.send_bytes(&n.to_le_bytes()).map_err(err)?;
        let mut left = n as usize;
        while left > 0 {
            let part = &self.msgs[..left.min(BATCH)];
            left -= self.conn.send_bytes_many(part).map_err(err)?;
        }
        let mut ack = [0u8; 8];
        self.conn.recv_bytes_into(&mut ack, 0).map_err(err)?;
        Ok(())
    }
}

/// `queue.stream.64B` and `queue.stream.64B.batch`: one-way 64-byte items through a
/// `Queue<Vec<u8>>` (byte path, 4 MiB), one `put_bytes`/`get_bytes_into` per item or
/// `put_bytes_many` (64 a call) / `get_bytes_many`; baseline `os.pipe.stream.64B`. A count
/// item starts each sample, the child acknowledges on a `Queue<u64>`.
pub(crate) fn queue_rows() -> Vec<Row> {
    let row = |name, build| Row {
        min_batch: Duration::from_millis(5),
        ..Row::new(name, Unit::MsgPerSec, &[Placement::Cross, Placement::Same], Some("os.pipe.stream.64B"), build)
    };
    vec![row("queue.stream.64B", queue_single as fn(&Ctx, Placement) -> _), row("queue.stream.64B.batch", queue_batch)]
}

struct QueueStream {
    data: Queue<Vec<u8>>,
    ack: Queue<u64>,
    msgs: Vec<[u8; 64]>,
    batch: bool,
    _child: Child,
}

fn queue_single(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    queue_stream(ctx, p, false, false)
}

fn queue_batch(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    queue_stream(ctx, p, true, false)
}

/// 64-byte items through a `Queue<Vec<u8>>`, one at a time or in batches, with or without the
/// integrity mode.
pub(crate) fn queue_stream(ctx: &Ctx, p: Placement, batch: bool, integrity: bool) -> io::Result<Box<dyn Driver>> {
    let data = Queue::<Vec<u8>>::builder().capacity_bytes(4 << 20).integrity(integrity).build().map_err(err)?;
    let ack = Queue::<u64>::new().map_err(err)?;
    let child = {
        let (data, ack) = (data.clone(), ack.clone());
        Child::spawn(super::child_mask(p, ctx), move || {
            let mut m = Vec::with_capacity(64);
            loop {
                if data.get_bytes_into(&mut m).is_err() || m.len() != 8 {
                    return 1;
                }
                let n = u64::from_le_bytes(m[..8].try_into().unwrap_or([0; 8]));
                let mut got = 0u64;
                while got < n {
                    let r = if batch {
                        data.get_bytes_many(usize::MAX, |b| {
                            std::hint::black_box(b);
                        })
                    } else {
                        data.get_bytes_into(&mut m)
                    };
                    match r {
                        Ok(k) if batch => got += k as u64,
                        Ok(_) => got += 1,
                        Err(_) => return 1,
                    }
                }
                if ack.put(&got).is_err() {
                    return 1;
                }
            }
        })?
    };
    Ok(Box::new(QueueStream { data, ack, msgs: vec![[6; 64]; BATCH], batch, _child: child }))
}

impl Driver for QueueStream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.data.put_bytes(&n.to_le_bytes()).map_err(err)?;
        let mut left = n as usize;
        while left > 0 {
            if self.batch {
                left -= self.data.put_bytes_many(&self.msgs[..left.min(BATCH)]).map_err(err)?;
            } else {
                self.data.put_bytes(&self.msgs[0]).map_err(err)?;
                left -= 1;
            }
        }
        if self.ack.get().map_err(err)? != n {
            return Err(io::Error::other("queue stream lost messages"));
        }
        Ok(())
    }
}
