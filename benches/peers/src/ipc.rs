//! ipc-channel (servo), byte channels (`ipc::bytes_channel`: no serialization, Unix
//! SOCK_SEQPACKET sockets underneath on Linux). The channels are made before the fork and the
//! child inherits its ends.
//!
//! * `ipc-channel.rt.64B`: a 64-byte message to the child and back over two byte channels
//!   (each `recv` returns a fresh `Vec<u8>`, as the API has no receive-into-buffer).
//! * `ipc-channel.stream.*`: a count message, `n` messages, a one-byte acknowledgement on a
//!   second channel (the methodology of the `multiproc.pipe.stream.*` rows).

use crate::sys::Child;
use crate::{err, row, Driver, Kind, Placement, Row, BOTH};
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender};
use std::io;

pub fn rows() -> Vec<Row> {
    vec![
        row("ipc-channel.rt.64B", Kind::RoundTrip, BOTH, Some("pipe2.rt.64B"), rt),
        row("ipc-channel.stream.64B", Kind::Stream(64), BOTH, Some("pipe2.stream.64B"), |p| stream(p, 64)),
        row("ipc-channel.stream.64KiB", Kind::Stream(64 << 10), BOTH, Some("pipe2.stream.64KiB"), |p| {
            stream(p, 64 << 10)
        }),
    ]
}

/// Field order: the channels close before the child is reaped.
struct Rt {
    to: IpcBytesSender,
    from: IpcBytesReceiver,
    msg: Vec<u8>,
    _child: Child,
}

fn rt(p: Placement) -> io::Result<Box<dyn Driver>> {
    let (to, c_from) = ipc::bytes_channel()?;
    let (c_to, from) = ipc::bytes_channel()?;
    let child = Child::spawn(p.child_mask(), move || {
        while let Ok(m) = c_from.recv() {
            if c_to.send(&m).is_err() {
                return 1;
            }
        }
        0
    })?;
    Ok(Box::new(Rt { to, from, msg: vec![7; 64], _child: child }))
}

impl Driver for Rt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.to.send(&self.msg)?;
            self.msg = self.from.recv().map_err(err)?;
        }
        if self.msg.len() != 64 {
            return Err(io::Error::other("ipc-channel returned a message of the wrong length"));
        }
        Ok(())
    }
}

struct Stream {
    data: IpcBytesSender,
    ack: IpcBytesReceiver,
    msg: Vec<u8>,
    _child: Child,
}

fn stream(p: Placement, size: usize) -> io::Result<Box<dyn Driver>> {
    let (data, c_data) = ipc::bytes_channel()?;
    let (c_ack, ack) = ipc::bytes_channel()?;
    let child = Child::spawn(p.child_mask(), move || {
        while let Ok(m) = c_data.recv() {
            let n = u64::from_le_bytes(m[..8].try_into().unwrap_or([0; 8]));
            for _ in 0..n {
                match c_data.recv() {
                    Ok(m) if m.len() == size => {}
                    _ => return 1,
                }
            }
            if c_ack.send(&[1]).is_err() {
                return 1;
            }
        }
        0
    })?;
    Ok(Box::new(Stream { data, ack, msg: vec![5; size], _child: child }))
}

impl Driver for Stream {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.data.send(&n.to_le_bytes())?;
        for _ in 0..n {
            self.data.send(&self.msg)?;
        }
        self.ack.recv().map_err(err)?;
        Ok(())
    }
}
