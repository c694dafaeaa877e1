//! The baseline: plain pipe(2)s, exactly as `multiproc bench`'s `os.pipe.*` rows (floor.rs).
//!
//! * `pipe2.rt.64B`: 64 B to the child and back over two pipes (`read_exact`/`write_all`).
//! * `pipe2.stream.{64B,64KiB}`: the batch size on a control pipe, then `n` writes of the
//!   message on a data pipe, read one by one by the child, then a one-byte acknowledgement.

use crate::sys::{self, Child};
use crate::{row, Driver, Kind, Placement, Row, BOTH};
use std::fs::File;
use std::io::{self, Read, Write};

pub fn rows() -> Vec<Row> {
    vec![
        row("pipe2.rt.64B", Kind::RoundTrip, BOTH, None, rt),
        row("pipe2.stream.64B", Kind::Stream(64), BOTH, None, |p| stream(p, 64)),
        row("pipe2.stream.64KiB", Kind::Stream(64 << 10), BOTH, None, |p| stream(p, 64 << 10)),
    ]
}

/// Field order matters: the pipes close before the child is reaped.
struct Rt {
    to_child: File,
    from_child: File,
    buf: [u8; 64],
    _child: Child,
}

fn rt(p: Placement) -> io::Result<Box<dyn Driver>> {
    let (mut c_in, to_child) = sys::pipe()?;
    let (from_child, mut c_out) = sys::pipe()?;
    let child = Child::spawn(p.child_mask(), move || {
        let mut buf = [0u8; 64];
        while c_in.read_exact(&mut buf).is_ok() {
            if c_out.write_all(&buf).is_err() {
                return 1;
            }
        }
        0
    })?;
    Ok(Box::new(Rt { to_child, from_child, buf: [7; 64], _child: child }))
}

impl Driver for Rt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.to_child.write_all(&self.buf)?;
            self.from_child.read_exact(&mut self.buf)?;
        }
        Ok(())
    }
}

struct Stream {
    control: File,
    data: File,
    ack: File,
    msg: Vec<u8>,
    _child: Child,
}

fn stream(p: Placement, size: usize) -> io::Result<Box<dyn Driver>> {
    let (mut c_control, control) = sys::pipe()?;
    let (mut c_data, data) = sys::pipe()?;
    let (ack, mut c_ack) = sys::pipe()?;
    let child = Child::spawn(p.child_mask(), move || {
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
    Ok(Box::new(Stream { control, data, ack, msg: vec![7; size], _child: child }))
}

impl Driver for Stream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.control.write_all(&n.to_le_bytes())?;
        for _ in 0..n {
            self.data.write_all(&self.msg)?;
        }
        let mut a = [0u8; 1];
        self.ack.read_exact(&mut a)
    }
}
