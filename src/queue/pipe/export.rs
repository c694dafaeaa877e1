//! Handing a connection end to another process that was not forked with it: its descriptors
//! (the rings' segment, the liveness pipe ends, the descriptor-passing socket) and the words
//! that locate its rings in the segment. A `Listener` uses this to move a same-host connection
//! onto shared-memory rings; `Connection::send_object` to send an end over another connection.

use super::super::ring::{Consumer, Producer, Ring, RingCtl};
use super::conn::{Connection, Link};
use super::liveness::{Rx, Tx};
use super::WaitStrategy;
use crate::shm::{Segment, ShmError};
use std::os::fd::{AsFd, OwnedFd};

/// Words of an exported end.
pub(crate) const EXPORT_WORDS: usize = 8;

/// `flags` bits of an exported end.
const HAS_TX: u64 = 1;
const HAS_RX: u64 = 2;
const HAS_FD_SOCK: u64 = 4;

/// Why an end could not be exported or imported.
#[derive(Debug)]
pub(crate) enum ExportFail {
    /// The end was closed with `close`.
    Closed,
    /// A TCP connection has no shared memory to hand over.
    NotShared,
    /// The segment is invalid (an import from an untrusted peer).
    Shm(ShmError),
    /// Duplicating a descriptor failed.
    Os(std::io::Error),
    /// A side of the end is held by another end in this process (`held.rs`).
    AlreadyHeld,
}

impl std::fmt::Display for ExportFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportFail::Closed => f.write_str("the connection is closed"),
            ExportFail::NotShared => f.write_str("a TCP connection cannot be passed to another process"),
            ExportFail::Shm(e) => write!(f, "connection memory: {e}"),
            ExportFail::Os(e) => write!(f, "connection descriptors: {e}"),
            ExportFail::AlreadyHeld => f.write_str("this process already holds that connection end"),
        }
    }
}

impl std::error::Error for ExportFail {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportFail::Shm(e) => Some(e),
            ExportFail::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// A connection end taken apart: descriptors, in the order the words say, and the words.
#[derive(Debug)]
pub(crate) struct Exported {
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) words: [u64; EXPORT_WORDS],
}

impl Connection {
    /// This end's descriptors (duplicated: this handle stays usable, and the end is closed
    /// only when every copy in every process is) and the words that locate its rings.
    ///
    /// Words: `[flags, tx ctl, tx data, tx cap, rx ctl, rx data, rx cap, max_message]`; fds:
    /// the segment, then the tx liveness end, the rx liveness end and the fd socket, each if
    /// present.
    pub(crate) fn export(&self) -> Result<Exported, ExportFail> {
        let r = match &self.link {
            Link::Closed => return Err(ExportFail::Closed),
            Link::Stream(_) => return Err(ExportFail::NotShared),
            Link::Rings(r) => r,
        };
        let seg = &r.seg;
        let mut fds = vec![seg.fd().try_clone_to_owned().map_err(ExportFail::Os)?];
        let mut w = [0u64; EXPORT_WORDS];
        let locate = |ring: &Ring| -> Result<(u64, u64, u64), ExportFail> {
            let (ctl, data, cap) = ring.parts();
            let off = |p: *const u8| seg.offset_of(p).map(|o| o as u64);
            match (off(ctl.cast()), off(data)) {
                (Some(c), Some(d)) => Ok((c, d, cap)),
                _ => Err(ExportFail::Shm(ShmError::Corrupt { what: "ring outside its segment" })),
            }
        };
        if let Some(tx) = &r.tx {
            w[0] |= HAS_TX;
            (w[1], w[2], w[3]) = locate(tx.prod.ring())?;
            fds.push(tx.live_fd().try_clone_to_owned().map_err(ExportFail::Os)?);
        }
        if let Some(rx) = &r.rx {
            w[0] |= HAS_RX;
            (w[4], w[5], w[6]) = locate(rx.cons.ring())?;
            fds.push(rx.live_fd().try_clone_to_owned().map_err(ExportFail::Os)?);
        }
        if let Some(s) = &r.fd_sock {
            w[0] |= HAS_FD_SOCK;
            fds.push(s.as_fd().try_clone_to_owned().map_err(ExportFail::Os)?);
        }
        w[7] = self.max as u64;
        Ok(Exported { fds, words: w })
    }

    /// Rebuilds an end from what [`export`](Self::export) gave another process. Everything in
    /// it is untrusted: the segment is validated, every ring offset and capacity is checked
    /// against it, and the descriptor count must match the flags.
    pub(crate) fn import(x: Exported) -> Result<Connection, ExportFail> {
        let w = x.words;
        let bad = |what| ExportFail::Shm(ShmError::Corrupt { what });
        let want = 1 + [HAS_TX, HAS_RX, HAS_FD_SOCK].iter().filter(|&&f| w[0] & f != 0).count();
        if w[0] & !(HAS_TX | HAS_RX | HAS_FD_SOCK) != 0 || x.fds.len() != want {
            return Err(bad("exported connection: descriptors do not match its flags"));
        }
        let mut fds = x.fds.into_iter();
        let seg = Segment::adopt_fd(fds.next().expect("counted"), None).map_err(ExportFail::Shm)?;
        let ring = |ctl: u64, data: u64, cap: u64| -> Result<Ring, ExportFail> {
            let cap = usize::try_from(cap).map_err(|_| bad("ring capacity"))?;
            if !cap.is_power_of_two() || !(64..=1 << 30).contains(&cap) {
                return Err(bad("ring capacity"));
            }
            let ctl = seg
                .object_at::<RingCtl>(usize::try_from(ctl).map_err(|_| bad("ring offset"))?)
                .map_err(ExportFail::Shm)?;
            let data_off = usize::try_from(data).map_err(|_| bad("ring offset"))?;
            if data_off % 8 != 0 {
                return Err(bad("misaligned ring"));
            }
            let data = seg.bytes_at(data_off, cap).map_err(ExportFail::Shm)?;
            // SAFETY: `ctl` and `data..data+cap` lie in `seg` (bounds- and alignment-checked
            // above), which the connection keeps mapped; `cap` is a power of two ≥ 64 and the
            // data 8-aligned. Within this process the side is claimed before it is used (below,
            // `held.rs`), so no other handle here produces or consumes on it; another process
            // that does is a faulty peer, which the ring's checks contain.
            Ok(unsafe { Ring::from_raw(std::ptr::NonNull::from(&*ctl), data, cap) })
        };
        // A side this process already holds (the end was sent to its own process, or the words
        // point at another of its rings) would be a second handle to it here: refused.
        let claim = |r: &Ring, producer| super::held::claim(&seg, r, producer).map_err(|_| ExportFail::AlreadyHeld);
        let tx = if w[0] & HAS_TX != 0 {
            let r = ring(w[1], w[2], w[3])?;
            let held = claim(&r, true)?;
            Some(Tx::new(Producer::new(r), fds.next().expect("counted"), held))
        } else {
            None
        };
        let rx = if w[0] & HAS_RX != 0 {
            let r = ring(w[4], w[5], w[6])?;
            let held = claim(&r, false)?;
            Some(Rx::new(Consumer::new(r), fds.next().expect("counted"), held))
        } else {
            None
        };
        let fd_sock = fds.next();
        let max = usize::try_from(w[7]).map_err(|_| bad("max_message"))?;
        Ok(Connection::from_parts(seg, tx, rx, fd_sock, WaitStrategy::default(), max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pipe;

    #[test]
    fn an_exported_end_works_when_imported_and_bad_words_are_refused() {
        let (mut a, b) = Pipe::builder().fd_passing(true).duplex().unwrap();
        let x = b.export().unwrap();
        drop(b);
        let mut b = Connection::import(x).unwrap();
        a.send_bytes(b"over").unwrap();
        assert_eq!(b.recv_bytes().unwrap(), b"over");
        b.send_bytes(b"back").unwrap();
        assert_eq!(a.recv_bytes().unwrap(), b"back");

        let mut x = b.export().unwrap();
        x.words[3] = 100; // not a power of two
        assert!(Connection::import(x).is_err());
        let mut x = b.export().unwrap();
        x.words[2] = u64::MAX - 7; // data outside the segment
        assert!(Connection::import(x).is_err());
        let mut x = b.export().unwrap();
        x.fds.pop(); // one descriptor short
        assert!(Connection::import(x).is_err());
    }
}
