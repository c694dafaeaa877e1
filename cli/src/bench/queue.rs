//! Rows of the queue layer (pipes and queues).
//!
//! * `pipe.rt.64B` (park), baseline `floor.futex.rt`; `pipe.rt.64B.spin`, baseline
//!   `floor.spin.rt`: 64 bytes to the child and back over a duplex `Pipe`.
//! * `pipe.stream.64B` / `pipe.stream.64KiB`: one-way messages (driver in `loan.rs`), baselines `os.pipe.stream.*`.
//!   Each batch starts with a count message and ends with the child's acknowledgement.
//! * `queue.rt.64B` (two `Queue<Vec<u8>>`s, byte fast path), baseline `floor.futex.rt`;
//!   `queue.rt.64B.adaptive`: the same with `WaitStrategy::Adaptive` gets, baseline the parking row;
//!   `queue.stream.64KiB`, baseline `os.pipe.stream.64KiB`.
//! * `arrayqueue.rt.u64.spin`: a `u64` to the child and back through two `ArrayQueue`s, both
//!   sides spinning on `try_pop`, baseline `floor.spin.rt`; `arrayqueue.stream.u64`: msg/s.

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::Child;
use multiproc::{ArrayQueue, Connection, Pipe, Queue, WaitStrategy};
use std::io;
use std::time::Duration;

const SAME: Placement = Placement::Same;
const CROSS: Placement = Placement::Cross;
const FREE: Placement = Placement::Free;
const STREAM_BATCH: Duration = Duration::from_millis(5);

pub(crate) fn rows() -> Vec<Row> {
    let row = Row::new;
    vec![
        row("pipe.rt.64B", Unit::Ns, &[SAME, CROSS], Some("floor.futex.rt"), pipe_rt_park),
        row("pipe.rt.64B.spin", Unit::Ns, &[CROSS, FREE], Some("floor.spin.rt"), pipe_rt_spin),
        row("wait.rt.64B", Unit::Ns, &[SAME, CROSS], Some("pipe.rt.64B"), wait_rt),
        Row {
            min_batch: STREAM_BATCH,
            ..row("pipe.stream.64B", Unit::MsgPerSec, &[CROSS, SAME], Some("os.pipe.stream.64B"), pipe_stream_64)
        },
        Row {
            min_batch: STREAM_BATCH,
            bytes_per_op: 64 * 1024,
            ..row("pipe.stream.64KiB", Unit::GbPerSec, &[CROSS, SAME], Some("os.pipe.stream.64KiB"), pipe_stream_64k)
        },
        row("queue.rt.64B", Unit::Ns, &[SAME, CROSS], Some("floor.futex.rt"), queue_rt),
        row("queue.rt.64B.adaptive", Unit::Ns, &[CROSS, SAME], Some("queue.rt.64B"), queue_rt_adaptive),
        row("arrayqueue.rt.u64.spin", Unit::Ns, &[CROSS, FREE], Some("floor.spin.rt"), aq_rt),
        Row {
            min_batch: STREAM_BATCH,
            ..row("arrayqueue.stream.u64", Unit::MsgPerSec, &[CROSS, SAME], None, aq_stream)
        },
        Row {
            min_batch: STREAM_BATCH,
            bytes_per_op: 64 * 1024,
            ..row("queue.stream.64KiB", Unit::GbPerSec, &[CROSS, SAME], Some("os.pipe.stream.64KiB"), queue_stream_64k)
        },
    ]
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct PipeRt {
    conn: Connection,
    buf: [u8; 64],
    _child: Child,
}

fn pipe_rt(ctx: &Ctx, p: Placement, w: WaitStrategy) -> io::Result<Box<dyn Driver>> {
    let (parent, child_end) = Pipe::builder().wait(w).duplex().map_err(err)?;
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let mut c = child_end;
        let mut buf = [0u8; 64];
        loop {
            match c.recv_bytes_into(&mut buf, 0) {
                Ok(_) => {
                    if c.send_bytes(&buf).is_err() {
                        return 1;
                    }
                }
                Err(_) => return 0,
            }
        }
    })?;
    Ok(Box::new(PipeRt { conn: parent, buf: [7; 64], _child: child }))
}

fn pipe_rt_park(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    pipe_rt(ctx, p, WaitStrategy::Park)
}

fn pipe_rt_spin(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    pipe_rt(ctx, p, WaitStrategy::Spin)
}

impl Driver for PipeRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.conn.send_bytes(&self.buf).map_err(err)?;
            self.conn.recv_bytes_into(&mut self.buf, 0).map_err(err)?;
        }
        Ok(())
    }
}

/// `pipe.rt.64B` where both sides first block in `multiproc::wait` over two connections (the
/// one that will receive and an idle one), then receive: the cost of waking through `wait`.
struct WaitRt {
    conn: Connection,
    idle: Connection,
    buf: [u8; 64],
    _keep: [Connection; 2],
    _child: Child,
}

fn wait_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let (parent, child_end) = Pipe::duplex().map_err(err)?;
    let (idle_parent, idle_child) = Pipe::duplex().map_err(err)?;
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let (mut c, idle) = (child_end, idle_child);
        let mut buf = [0u8; 64];
        loop {
            if multiproc::wait(&[&idle, &c], None).is_empty() {
                return 1;
            }
            match c.recv_bytes_into(&mut buf, 0) {
                Ok(_) => {
                    if c.send_bytes(&buf).is_err() {
                        return 1;
                    }
                }
                Err(_) => return 0,
            }
        }
    })?;
    // Idle ends stay open (held here), so they never become ready by end of file.
    let (idle, keep) = Pipe::duplex().map_err(err)?;
    Ok(Box::new(WaitRt { conn: parent, idle, buf: [7; 64], _keep: [keep, idle_parent], _child: child }))
}

impl Driver for WaitRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.conn.send_bytes(&self.buf).map_err(err)?;
            if multiproc::wait(&[&self.idle, &self.conn], None).is_empty() {
                return Err(io::Error::other("wait returned nothing without a timeout"));
            }
            self.conn.recv_bytes_into(&mut self.buf, 0).map_err(err)?;
        }
        Ok(())
    }
}

fn pipe_stream_64(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::loan::pipe_stream(ctx, p, 64, 1 << 20, false, false)
}

fn pipe_stream_64k(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::loan::pipe_stream(ctx, p, 64 * 1024, 1 << 20, false, false)
}

struct QueueRt {
    to: Queue<Vec<u8>>,
    from: Queue<Vec<u8>>,
    msg: Vec<u8>,
    _child: Child,
}

fn queue_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    queue_rt_with(ctx, p, WaitStrategy::Park)
}

fn queue_rt_adaptive(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    queue_rt_with(ctx, p, WaitStrategy::Adaptive)
}

/// 64 bytes to the child and back through two `Queue<Vec<u8>>`s whose gets wait with `w`.
fn queue_rt_with(ctx: &Ctx, p: Placement, w: WaitStrategy) -> io::Result<Box<dyn Driver>> {
    let to = Queue::<Vec<u8>>::builder().capacity_bytes(1 << 20).wait(w).build().map_err(err)?;
    let from = Queue::<Vec<u8>>::builder().capacity_bytes(1 << 20).wait(w).build().map_err(err)?;
    let child = {
        let (to, from) = (to.clone(), from.clone());
        Child::spawn(super::child_mask(p, ctx), move || {
            let mut m = Vec::with_capacity(64);
            loop {
                match to.get_bytes_into(&mut m) {
                    Ok(_) => {
                        if from.put_bytes(&m).is_err() {
                            return 1;
                        }
                    }
                    Err(_) => return 1,
                }
            }
        })?
    };
    Ok(Box::new(QueueRt { to, from, msg: vec![3; 64], _child: child }))
}

impl Driver for QueueRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.to.put_bytes(&self.msg).map_err(err)?;
            self.from.get_bytes_into(&mut self.msg).map_err(err)?;
        }
        Ok(())
    }
}

struct QueueStream {
    data: Queue<Vec<u8>>,
    ack: Queue<u64>,
    msg: Vec<u8>,
    loan: bool,
    _child: Child,
}

fn queue_stream_64k(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    queue_stream_big(ctx, p, false, false)
}

/// 64 KiB items through a `Queue<Vec<u8>>`, with or without the integrity mode; copied
/// (`put_bytes` / `get_bytes_into`) or, with `loan`, written in place (`put_loan`, filled from
/// the producer's buffer) and read in place (`get_loan`: the consumer looks at the first and
/// last byte).
pub(crate) fn queue_stream_big(ctx: &Ctx, p: Placement, integrity: bool, loan: bool) -> io::Result<Box<dyn Driver>> {
    let data = Queue::<Vec<u8>>::builder().capacity_bytes(4 << 20).integrity(integrity).build().map_err(err)?;
    let ack = Queue::<u64>::new().map_err(err)?;
    let child = {
        let (data, ack) = (data.clone(), ack.clone());
        Child::spawn(super::child_mask(p, ctx), move || loop {
            // An empty message ends a batch.
            let mut got = 0u64;
            let mut m = Vec::with_capacity(64 * 1024);
            loop {
                let len = if loan {
                    match data.get_loan() {
                        Ok(l) => {
                            std::hint::black_box((l.first().copied(), l.last().copied()));
                            l.len()
                        }
                        Err(_) => return 1,
                    }
                } else {
                    match data.get_bytes_into(&mut m) {
                        Ok(n) => n,
                        Err(_) => return 1,
                    }
                };
                if len == 0 {
                    break;
                }
                got += 1;
            }
            if ack.put(&got).is_err() {
                return 1;
            }
        })?
    };
    Ok(Box::new(QueueStream { data, ack, msg: vec![9; 64 * 1024], loan, _child: child }))
}

impl Driver for QueueStream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            if self.loan {
                let mut l = self.data.put_loan(self.msg.len()).map_err(err)?;
                l.copy_from_slice(&self.msg);
                l.commit().map_err(err)?;
            } else {
                self.data.put_bytes(&self.msg).map_err(err)?;
            }
        }
        self.data.put_bytes(&[]).map_err(err)?;
        let got = self.ack.get().map_err(err)?;
        if got != n {
            return Err(io::Error::other(format!("queue stream lost messages: {got} of {n}")));
        }
        Ok(())
    }
}

struct AqRt {
    to: ArrayQueue<u64>,
    from: ArrayQueue<u64>,
    _child: Child,
}

fn aq_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let to = ArrayQueue::<u64>::new(16).map_err(err)?;
    let from = ArrayQueue::<u64>::new(16).map_err(err)?;
    let child = {
        let (to, from) = (to.clone(), from.clone());
        Child::spawn(super::child_mask(p, ctx), move || loop {
            if let Ok(v) = to.try_pop() {
                while from.try_push(v + 1).is_err() {
                    std::hint::spin_loop();
                }
            } else {
                std::hint::spin_loop();
            }
        })?
    };
    Ok(Box::new(AqRt { to, from, _child: child }))
}

impl Driver for AqRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for i in 0..n {
            while self.to.try_push(i).is_err() {
                std::hint::spin_loop();
            }
            let mut waiting_since = None;
            let mut spins = 0u32;
            loop {
                if let Ok(v) = self.from.try_pop() {
                    if v != i + 1 {
                        return Err(io::Error::other("arrayqueue round trip returned a wrong value"));
                    }
                    break;
                }
                // The clock every 4096th spin only, as `floor.spin.rt` does: a clock read per
                // spin (or per message) would be measured as part of the round trip.
                spins = spins.wrapping_add(1);
                if spins % 4096 == 0
                    && waiting_since.get_or_insert_with(std::time::Instant::now).elapsed() > Duration::from_secs(10)
                {
                    return Err(io::Error::other("arrayqueue peer stopped answering"));
                }
                std::hint::spin_loop();
            }
        }
        Ok(())
    }
}

struct AqStream {
    data: ArrayQueue<u64>,
    ack: ArrayQueue<u64>,
    _child: Child,
}

fn aq_stream(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    aq_stream_with(ctx, p, false)
}

/// `u64`s through an `ArrayQueue` of 4096, with or without the integrity mode.
pub(crate) fn aq_stream_with(ctx: &Ctx, p: Placement, integrity: bool) -> io::Result<Box<dyn Driver>> {
    let data = ArrayQueue::<u64>::builder().capacity(4096).integrity(integrity).build().map_err(err)?;
    let ack = ArrayQueue::<u64>::new(4).map_err(err)?;
    let child = {
        let (data, ack) = (data.clone(), ack.clone());
        Child::spawn(super::child_mask(p, ctx), move || {
            let mut got = 0u64;
            loop {
                // u64::MAX ends a batch.
                let Ok(v) = data.pop() else { return 1 };
                if v == u64::MAX {
                    if ack.push(got).is_err() {
                        return 1;
                    }
                    got = 0;
                } else {
                    got += 1;
                }
            }
        })?
    };
    Ok(Box::new(AqStream { data, ack, _child: child }))
}

impl Driver for AqStream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for i in 0..n {
            self.data.push(i).map_err(|_| io::Error::other("arrayqueue push failed"))?;
        }
        self.data.push(u64::MAX).map_err(|_| io::Error::other("arrayqueue push failed"))?;
        if self.ack.pop().ok() != Some(n) {
            return Err(io::Error::other("arrayqueue stream lost messages"));
        }
        Ok(())
    }
}
