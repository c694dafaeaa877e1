//! Sending: framing into records, fragmenting large messages, waiting for room.

use super::super::ring::{Pushed, KIND_FIRST, KIND_FULL, KIND_LAST, KIND_MORE};
use super::conn::Link;
use super::liveness::Tx;
use super::{Connection, SendFail, WaitStrategy, CHECK_EVERY, SLICE};
use super::{SendError, SendTimeoutError, TrySendError};
use crate::loom::hint::spin_loop;
use crate::wait::Limit;
use std::time::{Duration, Instant};

impl Connection {
    /// The one sending implementation: `buf` as one message of type `type_fp` (0: bytes),
    /// fragmented when it is larger than a record, waiting for room until `limit`.
    #[inline]
    pub(super) fn send_inner(&mut self, buf: &[u8], type_fp: u64, limit: Limit) -> Result<(), SendFail> {
        let (wait, max) = (self.wait, self.max);
        match &mut self.link {
            Link::Closed => Err(SendFail::HandleClosed),
            Link::Stream(s) => s.send(buf, type_fp, max, limit),
            Link::Rings(r) => {
                let tx = r.tx.as_mut().ok_or(SendFail::NotWritable)?;
                send_framed(tx, wait, max, buf, type_fp, limit)
            }
        }
    }

    /// Sends `buf` as one message, blocking while the ring is full.
    ///
    /// # Errors
    /// [`SendError::Disconnected`] when the reader is gone (closed in every process: at once; died:
    /// within one coarse clock tick, see the module docs), `NotWritable`, `Closed`,
    /// `TooLarge`, `Corrupt`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"hello world")?;
    /// assert_eq!(b.recv_bytes()?, b"hello world");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn send_bytes(&mut self, buf: &[u8]) -> Result<(), SendError> {
        self.send_inner(buf, 0, Limit::Forever).map_err(SendFail::send)
    }

    /// `send_bytes` without blocking: [`TrySendError::Full`] when it does not fit now.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus `Full`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::builder().capacity(64).duplex()?;
    /// a.try_send_bytes(b"0123456789")?; // 24 bytes with header and padding
    /// a.try_send_bytes(b"0123456789")?;
    /// assert!(matches!(a.try_send_bytes(b"0123456789"), Err(multiproc::TrySendError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send_bytes(&mut self, buf: &[u8]) -> Result<(), TrySendError> {
        self.send_inner(buf, 0, Limit::Now).map_err(SendFail::try_send)
    }

    /// `send_bytes` waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes_timeout(b"x", Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_timeout(&mut self, buf: &[u8], timeout: Duration) -> Result<(), SendTimeoutError> {
        self.send_inner(buf, 0, Limit::timeout(timeout)).map_err(SendFail::send_timeout)
    }

    /// `send_bytes` waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes_deadline(b"x", Instant::now() + Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_deadline(&mut self, buf: &[u8], deadline: Instant) -> Result<(), SendTimeoutError> {
        self.send_inner(buf, 0, Limit::deadline(deadline)).map_err(SendFail::send_timeout)
    }

    /// Python's `send_bytes(buf, offset, size)`: sends `buf[offset..offset + size]` (`size`
    /// `None`: to the end). A bad range sends nothing (PIPE-7, PIPE-8).
    ///
    /// # Errors
    /// [`SendError::BadRange`], or as [`Connection::send_bytes`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// let msg: Vec<u8> = (b'a'..=b'z').collect();
    /// a.send_bytes_range(&msg, 7, Some(8))?;
    /// assert_eq!(b.recv_bytes()?, &msg[7..15]);
    /// assert!(a.send_bytes_range(&msg, 26, Some(1)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_range(&mut self, buf: &[u8], offset: usize, size: Option<usize>) -> Result<(), SendError> {
        let bad = SendError::BadRange { offset, size, len: buf.len() };
        if offset > buf.len() {
            return Err(bad);
        }
        let size = size.unwrap_or(buf.len() - offset);
        if size > buf.len() - offset {
            return Err(bad);
        }
        self.send_bytes(&buf[offset..offset + size])
    }
}
/// `buf` into the rings as one message: one record, or fragments when it is larger than a
/// record, each waiting for room until `limit`.
#[inline]
pub(super) fn send_framed(
    tx: &mut Tx,
    wait: WaitStrategy,
    max: usize,
    buf: &[u8],
    type_fp: u64,
    limit: Limit,
) -> Result<(), SendFail> {
    if buf.len() > max {
        return Err(SendFail::TooLarge { len: buf.len(), max });
    }
    // A reader that closed is seen here, before anything goes into its ring (one shared
    // memory load; see `Tx::reader_gone`).
    if tx.reader_gone(false) {
        return Err(SendFail::Closed);
    }
    let rec_max = tx.prod.ring().max_record();
    if buf.len() <= rec_max {
        return push_wait(tx, wait, KIND_FULL, Some(type_fp), None, buf, limit);
    }
    let (first, mut rest) = buf.split_at(rec_max - 8);
    push_wait(tx, wait, KIND_FIRST, Some(type_fp), Some(buf.len() as u64), first, limit)?;
    while !rest.is_empty() {
        let n = rest.len().min(rec_max);
        let kind = if n == rest.len() { KIND_LAST } else { KIND_MORE };
        push_wait(tx, wait, kind, None, None, &rest[..n], limit)?;
        rest = &rest[n..];
    }
    Ok(())
}

/// Pushes one record, waiting for room per `wait` until `limit` (`Full` for [`Limit::Now`],
/// `Timeout` otherwise).
pub(super) fn push_wait(
    tx: &mut Tx,
    wait: WaitStrategy,
    kind: u32,
    type_fp: Option<u64>,
    prefix: Option<u64>,
    body: &[u8],
    limit: Limit,
) -> Result<(), SendFail> {
    // The common case first, with no waiting machinery around it: room at once.
    if tx.prod.try_push(kind, type_fp, prefix, body)? == Pushed::Done {
        return Ok(());
    }
    until_room(tx, wait, limit, |tx| Ok(tx.prod.try_push(kind, type_fp, prefix, body)? == Pushed::Done))
}

/// Waits per `wait` until `limit` for room for a descriptor marker (an empty record), pushing
/// nothing.
pub(super) fn wait_room(tx: &mut Tx, wait: WaitStrategy, limit: Limit) -> Result<(), SendFail> {
    until_room(tx, wait, limit, |tx| Ok(tx.prod.has_room(0)?))
}

/// Runs `attempt` until it succeeds, waiting for room per `wait` until `limit` between tries.
pub(super) fn until_room(
    tx: &mut Tx,
    wait: WaitStrategy,
    limit: Limit,
    mut attempt: impl FnMut(&mut Tx) -> Result<bool, SendFail>,
) -> Result<(), SendFail> {
    if attempt(tx)? {
        return Ok(());
    }
    // The ring is full. As in `recv`: `Adaptive` stops spinning after a run of spin phases
    // that all ended parked (the reader cannot drain while we spin on its CPU).
    let budget = tx.spin.budget();
    let mut spins = 0u32;
    let mut parked = false;
    let r = loop {
        // While spinning, the peer and the limit are looked at every CHECK_EVERY-th round only
        // (a clock read per spin would cost more than the spin).
        let spinning = wait == WaitStrategy::Spin || (wait == WaitStrategy::Adaptive && spins < budget);
        if !spinning || spins % CHECK_EVERY == 0 {
            if tx.reader_gone(!spinning) {
                break Err(SendFail::Closed);
            }
            if limit.passed() {
                break Err(if limit.is_now() { SendFail::Full } else { SendFail::Timeout });
            }
        }
        if spinning {
            spins = spins.saturating_add(1);
            spin_loop();
        } else {
            parked = true;
            match tx.prod.prepare_sleep() {
                Ok(true) => tx.prod.sleep(limit.slice(SLICE)),
                Ok(false) => {}
                Err(e) => break Err(e.into()),
            }
        }
        match attempt(tx) {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(e) => break Err(e),
        }
    };
    if wait == WaitStrategy::Adaptive {
        tx.spin.record(parked, budget);
    }
    r
}
