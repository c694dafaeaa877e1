//! `broadcast.fanout.64B`: 1 writer, 4 reader processes, 64 B messages; messages per
//! second *per reader* (each reader receives every message), beside `pipe.stream.64B` (one
//! reader). Readers are pinned as the placement says (cross: all four on the other core).
//!
//! Flow control keeps every reader within two chunks of the writer, well inside the ring, so
//! nothing lags and the figure is delivered messages, not the writer's publish rate alone:
//! every `CHUNK`-th message (and a batch's last) asks for an acknowledgement, and the writer
//! waits for the one before the last from *every* reader (one semaphore each: a shared one
//! would let a fast reader's acknowledgements stand in for a slow one's) before going on.

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::Child;
use multiproc::{Broadcast, BroadcastRecvError, Semaphore};
use std::io;
use std::time::Duration;

const READERS: usize = 4;
const SLOTS: usize = 8192;
const CHUNK: u64 = 2048;

pub(crate) fn rows() -> Vec<Row> {
    vec![Row {
        min_batch: Duration::from_millis(5),
        ..Row::new(
            "broadcast.fanout.64B",
            Unit::MsgPerSec,
            &[Placement::Cross, Placement::Same],
            Some("pipe.stream.64B"),
            fanout,
        )
    }]
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct Fanout {
    b: Broadcast<Vec<u8>>,
    acks: Vec<Semaphore>,
    msg: [u8; 64],
    _readers: Vec<Child>,
}

fn fanout(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let b = Broadcast::<Vec<u8>>::new(SLOTS, 64).map_err(err)?;
    let acks = (0..READERS).map(|_| Semaphore::new(0)).collect::<Result<Vec<_>, _>>().map_err(err)?;
    let mut readers = Vec::new();
    for ack in &acks {
        let mut sub = b.subscribe();
        let ack = ack.clone();
        readers.push(Child::spawn(super::child_mask(p, ctx), move || {
            let mut buf = Vec::with_capacity(64);
            loop {
                match sub.recv_bytes_into(&mut buf) {
                    Ok(_) if buf.first() == Some(&1) => ack.release(),
                    Ok(_) => {}
                    Err(BroadcastRecvError::Lagged(_)) => return 2, // flow control failed
                    Err(_) => return 1,
                }
            }
        })?);
    }
    Ok(Box::new(Fanout { b, acks, msg: [0; 64], _readers: readers }))
}

impl Fanout {
    fn await_chunk(&self) {
        for ack in &self.acks {
            ack.acquire();
        }
    }
}

impl Driver for Fanout {
    fn run(&mut self, n: u64) -> io::Result<()> {
        let mut outstanding = 0;
        for i in 0..n {
            let flagged = (i + 1) % CHUNK == 0 || i + 1 == n;
            self.msg[0] = u8::from(flagged);
            self.b.publish_bytes(&self.msg).map_err(err)?;
            if flagged {
                outstanding += 1;
                if outstanding > 1 {
                    self.await_chunk();
                    outstanding -= 1;
                }
            }
        }
        for _ in 0..outstanding {
            self.await_chunk();
        }
        Ok(())
    }
}
