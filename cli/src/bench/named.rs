//! Rows of processes that meet by name or address.
//!
//! * `named.pipe.rt.64B`: 64 B to the child and back over a connection made with
//!   `Listener`/`Client` on an abstract Unix address (so running on shared-memory rings),
//!   both ends parking as `pipe.rt.64B` does; baseline `pipe.rt.64B` (target ≤ 1.05×).
//! * `tcp.rt.64B`: the same over a TCP connection on 127.0.0.1 (the socket transport);
//!   baseline `os.tcp.rt.64B`, a raw `TcpStream` ping-pong (target ≤ 1.2×).
//! * `named.open`: `Queue::<u64>::open` of an existing named queue, and drop (µs).

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::Child;
use multiproc::{Address, Client, Listener};
use multiproc::{Connection, Queue, WaitStrategy};
use std::io::{self, Read, Write};

const SAME: Placement = Placement::Same;
const CROSS: Placement = Placement::Cross;

pub(crate) fn rows() -> Vec<Row> {
    let row = Row::new;
    vec![
        row("os.tcp.rt.64B", Unit::Ns, &[SAME, CROSS], None, os_tcp_rt),
        row("named.pipe.rt.64B", Unit::Ns, &[SAME, CROSS], Some("pipe.rt.64B"), named_rt),
        row("tcp.rt.64B", Unit::Ns, &[SAME, CROSS], Some("os.tcp.rt.64B"), tcp_rt),
        row("named.open", Unit::Us, &[SAME], None, named_open),
    ]
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct ConnRt {
    conn: Connection,
    buf: [u8; 64],
    _child: Child,
}

/// A connection by `address` to an echoing child pinned by `p`.
fn conn_rt(ctx: &Ctx, p: Placement, address: Address) -> io::Result<Box<dyn Driver>> {
    let listener = Listener::bind(address, None).map_err(err)?;
    let addr = listener.address().clone();
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let Ok(mut c) = Client::connect(&addr, None) else { return 2 };
        c.set_wait(WaitStrategy::Park);
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
    let mut conn = listener.accept().map_err(err)?;
    conn.set_wait(WaitStrategy::Park);
    Ok(Box::new(ConnRt { conn, buf: [7; 64], _child: child }))
}

fn named_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    conn_rt(ctx, p, Address::unique())
}

fn tcp_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    conn_rt(ctx, p, Address::Tcp("127.0.0.1:0".into()))
}

impl Driver for ConnRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.conn.send_bytes(&self.buf).map_err(err)?;
            self.conn.recv_bytes_into(&mut self.buf, 0).map_err(err)?;
        }
        Ok(())
    }
}

/// The OS baseline: 64 B there and back over a plain blocking TCP stream (Nagle off).
struct OsTcpRt {
    stream: std::net::TcpStream,
    buf: [u8; 64],
    _child: Child,
}

fn os_tcp_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else { return 2 };
        let _ = s.set_nodelay(true);
        let mut buf = [0u8; 64];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return 0;
            }
            if s.write_all(&buf).is_err() {
                return 1;
            }
        }
    })?;
    let (stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    Ok(Box::new(OsTcpRt { stream, buf: [7; 64], _child: child }))
}

impl Driver for OsTcpRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.stream.write_all(&self.buf)?;
            self.stream.read_exact(&mut self.buf)?;
        }
        Ok(())
    }
}

/// Opens (and drops) a named `Queue<u64>` that this process created.
struct NamedOpen {
    name: String,
    _queue: Queue<u64>,
}

fn named_open(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    let name = format!("multiproc-bench-open-{}", std::process::id());
    let _queue = Queue::<u64>::create(&name).map_err(err)?;
    Ok(Box::new(NamedOpen { name, _queue }))
}

impl Driver for NamedOpen {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            drop(Queue::<u64>::open(&self.name).map_err(err)?);
        }
        Ok(())
    }
}
