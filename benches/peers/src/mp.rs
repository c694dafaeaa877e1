//! multiproc, measured as `multiproc bench` measures it (cli/src/bench/queue.rs and
//! sync.rs), so that the figures are comparable:
//!
//! * `multiproc.pipe.rt.64B` (`WaitStrategy::Park`) and `.spin` (`WaitStrategy::Spin`, cross
//!   only): 64 B to the child and back over a duplex `Pipe` (`send_bytes` / `recv_bytes_into`).
//! * `multiproc.queue.rt.64B`: two `Queue<Vec<u8>>` through the byte path (`put_bytes` /
//!   `get_bytes_into`, the same wire format as `put`/`get` without serde), 64-byte messages.
//! * `multiproc.pipe.stream.*`: duplex `Pipe` with 1 MiB rings; a count message, `n` messages,
//!   an acknowledgement. `.64KiB.loan`: the same written and read in place (`send_loan` filled
//!   from the parent's buffer, `recv_loan`), baseline iceoryx2's 64 KiB stream.
//! * `multiproc.queue.stream.*`: `Queue<Vec<u8>>` (4 MiB, byte path); an empty message ends a batch, the
//!   child acknowledges on a `Queue<u64>`. `.64KiB.loan`: written and read in place (`put_loan`
//!   filled from the parent's buffer, `get_loan`), baseline iceoryx2's 64 KiB stream.
//! * `multiproc.event.rt`: `ping.set()` / `pong.wait(); pong.clear()` against a child doing
//!   `ping.wait(); ping.clear(); pong.set()` (the `raw_sync` rows' counterpart).

use crate::sys::Child;
use crate::{err, row, Driver, Kind, Placement, Row, BOTH, CROSS};
use multiproc::{Connection, Event, Pipe, Queue, WaitStrategy};
use std::io;

pub fn rows() -> Vec<Row> {
    let base = Some("pipe2.rt.64B");
    vec![
        row("multiproc.pipe.rt.64B", Kind::RoundTrip, BOTH, base, |p| pipe_rt(p, WaitStrategy::Park)),
        row("multiproc.pipe.rt.64B.spin", Kind::RoundTrip, &[CROSS], None, |p| pipe_rt(p, WaitStrategy::Spin)),
        row("multiproc.queue.rt.64B", Kind::RoundTrip, BOTH, base, queue_rt),
        row("multiproc.event.rt", Kind::RoundTrip, BOTH, None, event_rt),
        row("multiproc.pipe.stream.64B", Kind::Stream(64), BOTH, Some("pipe2.stream.64B"), |p| pipe_stream(p, 64)),
        row("multiproc.pipe.stream.64KiB.loan", Kind::Stream(64 << 10), BOTH, Some("iceoryx2.stream.64KiB"), |p| {
            pipe_stream_with(p, 64 << 10, true)
        }),
        row("multiproc.pipe.stream.64KiB", Kind::Stream(64 << 10), BOTH, Some("pipe2.stream.64KiB"), |p| {
            pipe_stream(p, 64 << 10)
        }),
        row("multiproc.queue.stream.64B", Kind::Stream(64), BOTH, Some("pipe2.stream.64B"), |p| {
            queue_stream(p, 64, false)
        }),
        row("multiproc.queue.stream.64KiB", Kind::Stream(64 << 10), BOTH, Some("pipe2.stream.64KiB"), |p| {
            queue_stream(p, 64 << 10, false)
        }),
        row("multiproc.queue.stream.64KiB.loan", Kind::Stream(64 << 10), BOTH, Some("iceoryx2.stream.64KiB"), |p| {
            queue_stream(p, 64 << 10, true)
        }),
    ]
}

struct PipeRt {
    conn: Connection,
    buf: [u8; 64],
    _child: Child,
}

fn pipe_rt(p: Placement, w: WaitStrategy) -> io::Result<Box<dyn Driver>> {
    let (parent, mut c) = Pipe::builder().wait(w).duplex().map_err(err)?;
    let child = Child::spawn(p.child_mask(), move || {
        let mut buf = [0u8; 64];
        while c.recv_bytes_into(&mut buf, 0).is_ok() {
            if c.send_bytes(&buf).is_err() {
                return 1;
            }
        }
        0
    })?;
    Ok(Box::new(PipeRt { conn: parent, buf: [7; 64], _child: child }))
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

struct PipeStream {
    conn: Connection,
    msg: Vec<u8>,
    loan: bool,
    _child: Child,
}

fn pipe_stream(p: Placement, size: usize) -> io::Result<Box<dyn Driver>> {
    pipe_stream_with(p, size, false)
}

/// With `loan`, the parent writes each message in place (`send_loan`, filled from its buffer as
/// iceoryx2's `write_from_slice` is) and the child reads it in place (`recv_loan`, looking at
/// its first and last byte) instead of copying it out.
fn pipe_stream_with(p: Placement, size: usize, loan: bool) -> io::Result<Box<dyn Driver>> {
    let (parent, mut c) = Pipe::builder().capacity(1 << 20).duplex().map_err(err)?;
    let child = Child::spawn(p.child_mask(), move || {
        let mut buf = vec![0u8; size.max(8)];
        while c.recv_bytes_into(&mut buf, 0).is_ok() {
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
        0
    })?;
    Ok(Box::new(PipeStream { conn: parent, msg: vec![5; size], loan, _child: child }))
}

impl Driver for PipeStream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.conn.send_bytes(&n.to_le_bytes()).map_err(err)?;
        for _ in 0..n {
            if self.loan {
                let mut l = self.conn.send_loan(self.msg.len()).map_err(err)?;
                l.copy_from_slice(&self.msg);
                l.commit().map_err(err)?;
            } else {
                self.conn.send_bytes(&self.msg).map_err(err)?;
            }
        }
        let mut ack = [0u8; 8];
        self.conn.recv_bytes_into(&mut ack, 0).map_err(err)?;
        Ok(())
    }
}

struct QueueRt {
    to: Queue<Vec<u8>>,
    from: Queue<Vec<u8>>,
    msg: Vec<u8>,
    _child: Child,
}

fn queue_rt(p: Placement) -> io::Result<Box<dyn Driver>> {
    let to = Queue::<Vec<u8>>::builder().capacity_bytes(1 << 20).build().map_err(err)?;
    let from = Queue::<Vec<u8>>::builder().capacity_bytes(1 << 20).build().map_err(err)?;
    let child = {
        let (to, from) = (to.clone(), from.clone());
        Child::spawn(p.child_mask(), move || {
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

fn queue_stream(p: Placement, size: usize, loan: bool) -> io::Result<Box<dyn Driver>> {
    let data = Queue::<Vec<u8>>::builder().capacity_bytes(4 << 20).build().map_err(err)?;
    let ack = Queue::<u64>::new().map_err(err)?;
    let child = {
        let (data, ack) = (data.clone(), ack.clone());
        Child::spawn(p.child_mask(), move || loop {
            let mut got = 0u64;
            let mut m = Vec::with_capacity(size);
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
    Ok(Box::new(QueueStream { data, ack, msg: vec![9; size], loan, _child: child }))
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

struct EventRt {
    ping: Event,
    pong: Event,
    _child: Child,
}

fn event_rt(p: Placement) -> io::Result<Box<dyn Driver>> {
    let ping = Event::new().map_err(err)?;
    let pong = Event::new().map_err(err)?;
    let child = {
        let (ping, pong) = (ping.clone(), pong.clone());
        Child::spawn(p.child_mask(), move || loop {
            ping.wait();
            ping.clear();
            pong.set();
        })?
    };
    Ok(Box::new(EventRt { ping, pong, _child: child }))
}

impl Driver for EventRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.ping.set();
            self.pong.wait();
            self.pong.clear();
        }
        Ok(())
    }
}
