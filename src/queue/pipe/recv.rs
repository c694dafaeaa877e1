//! Receiving: waiting for records, reassembling fragmented messages, copying out.

use super::super::ring::{Record, KIND_FD, KIND_FIRST, KIND_FULL, KIND_LAST};
use super::conn::{Assembly, Link, Msg, Rings};
use super::{Connection, RecvFail, WaitStrategy, CHECK_EVERY, SLICE};
use super::{RecvError, RecvTimeoutError, TryRecvError};
use crate::loom::hint::spin_loop;
use crate::wait::Limit;
use std::time::{Duration, Instant};

impl Rings {
    /// Waits for the next record (not released) until `limit`.
    #[inline]
    pub(super) fn next_record(&mut self, wait: WaitStrategy, limit: Limit) -> Result<Record, RecvFail> {
        // How long `Adaptive` spins this time (not at all after a run of failed spin phases).
        let budget = self.rx_spin.budget();
        let rx = self.rx.as_mut().ok_or(RecvFail::NotReadable)?;
        let mut spins = 0u32;
        let mut parked = false;
        let mut waited = false;
        let r = loop {
            match rx.cons.peek() {
                Ok(Some(rec)) => break Ok(rec),
                Ok(None) => {}
                Err(e) => break Err(e.into()),
            }
            waited = true;
            // Every iteration once parking, every CHECK_EVERY-th while spinning.
            let check = spins % CHECK_EVERY == 0 || (spins >= budget && wait == WaitStrategy::Adaptive);
            if check && rx.writer_gone(false) {
                // The writer's last publish happened before its descriptors closed: re-check.
                break rx.cons.peek().map_err(RecvFail::from).and_then(|r| r.ok_or(RecvFail::Eof));
            }
            if check && limit.passed() {
                break Err(if limit.is_now() { RecvFail::Empty } else { RecvFail::Timeout });
            }
            let park = match wait {
                WaitStrategy::Park => true,
                WaitStrategy::Spin => false,
                WaitStrategy::Adaptive => spins >= budget,
            };
            if !park {
                spins = spins.wrapping_add(1);
                rx.cons.prefetch_next_line();
                spin_loop();
                continue;
            }
            parked = true;
            match rx.cons.prepare_sleep() {
                Ok(true) => rx.cons.sleep(limit.slice(SLICE)),
                Ok(false) => {}
                Err(e) => break Err(e.into()),
            }
        };
        if waited && wait == WaitStrategy::Adaptive {
            self.rx_spin.record(parked, budget);
        }
        r
    }

    /// The next whole message, honouring `maxlen` (longer ones are dropped with `TooLong`),
    /// waiting until `limit`. With `expect = Some((fingerprint, name))`, a message announced as
    /// another type is refused with `WrongType` and left where it is.
    pub(super) fn next_message(
        &mut self,
        (wait, max): (WaitStrategy, usize),
        limit: Limit,
        maxlen: usize,
        expect: Option<(u64, &'static str)>,
    ) -> Result<Msg, RecvFail> {
        loop {
            let rec = match self.next_record(wait, limit) {
                Err(RecvFail::Eof) => {
                    self.asm = None; // a dead writer's partial message is never returned
                    return Err(RecvFail::Eof);
                }
                r => r?,
            };
            let rx = self.rx.as_mut().expect("checked by next_record");
            if let Some((fp, expected)) = expect {
                let seen = rx.cons.type_seen();
                let starts = matches!(rec.kind, KIND_FULL | KIND_FIRST);
                if starts && seen != 0 && seen != fp {
                    self.asm = None;
                    return Err(RecvFail::WrongType { expected });
                }
            }
            match rec.kind {
                KIND_FD => {
                    self.asm = None; // as for KIND_FULL
                    return Ok(Msg::Fd);
                }
                KIND_FULL => {
                    self.asm = None; // a partial message from a writer that died: drop it
                    if rec.len > maxlen {
                        rx.cons.release(&rec);
                        return Err(RecvFail::TooLong { len: rec.len, max: maxlen });
                    }
                    return Ok(Msg::Inline(rec));
                }
                KIND_FIRST => {
                    let total = rx.cons.read_prefix(&rec).ok_or(RecvFail::Corrupt("short first fragment"))?;
                    if total > max as u64 || total < rec.len as u64 - 8 {
                        return Err(RecvFail::Corrupt("fragmented message length out of range"));
                    }
                    let total = total as usize;
                    let discard = total > maxlen;
                    let mut buf = Vec::new();
                    if !discard {
                        buf.resize(rec.len - 8, 0);
                        rx.cons.copy_out(&rec, 8, &mut buf);
                        // Grow as fragments arrive (up to 16 MiB reserved now): `total` is untrusted.
                        buf.reserve_exact((total - buf.len()).min(1 << 24));
                    }
                    rx.cons.release(&rec);
                    self.asm = Some(Assembly { total, buf, discard });
                }
                _ => {
                    let Some(a) = self.asm.as_mut() else {
                        return Err(RecvFail::Corrupt("fragment without a first fragment"));
                    };
                    if !a.discard {
                        let at = a.buf.len();
                        if at + rec.len > a.total {
                            return Err(RecvFail::Corrupt("fragments longer than announced"));
                        }
                        a.buf.resize(at + rec.len, 0);
                        rx.cons.copy_out(&rec, 0, &mut a.buf[at..]);
                    }
                    rx.cons.release(&rec);
                    if rec.kind == KIND_LAST {
                        let a = self.asm.take().expect("present");
                        if a.discard {
                            return Err(RecvFail::TooLong { len: a.total, max: maxlen });
                        }
                        if a.buf.len() != a.total {
                            return Err(RecvFail::Corrupt("fragments shorter than announced"));
                        }
                        return Ok(Msg::Whole(a.buf));
                    }
                }
            }
        }
    }
}

impl Connection {
    /// The next message as a vector (see [`Rings::next_message`]).
    pub(super) fn recv_vec(
        &mut self,
        limit: Limit,
        maxlen: usize,
        expect: Option<(u64, &'static str)>,
    ) -> Result<Vec<u8>, RecvFail> {
        let how = (self.wait, self.max);
        match &mut self.link {
            Link::Closed => Err(RecvFail::HandleClosed),
            Link::Stream(s) => s.recv(limit, maxlen, how.1, expect),
            Link::Rings(r) => match r.next_message(how, limit, maxlen, expect)? {
                Msg::Fd => Err(RecvFail::FdPending),
                Msg::Whole(v) => Ok(v),
                Msg::Inline(rec) => {
                    let rx = r.rx.as_mut().expect("checked");
                    let mut v = vec![0u8; rec.len];
                    rx.cons.copy_out(&rec, 0, &mut v);
                    rx.cons.release(&rec);
                    Ok(v)
                }
            },
        }
    }

    /// Receives the next message, blocking; `Disconnected` once the writer is gone and all is drained.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`], `NotReadable`, `Closed`, `Corrupt`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"x")?;
    /// assert_eq!(b.recv_bytes()?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Limit::Forever, usize::MAX, None).map_err(RecvFail::recv)
    }

    /// `recv_bytes` without blocking ([`TryRecvError::Empty`]).
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.try_recv_bytes(), Err(multiproc::TryRecvError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, TryRecvError> {
        self.recv_vec(Limit::Now, usize::MAX, None).map_err(RecvFail::try_recv)
    }

    /// `recv_bytes` waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.recv_bytes_timeout(Duration::from_millis(5)), Err(multiproc::RecvTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_vec(Limit::timeout(timeout), usize::MAX, None).map_err(RecvFail::recv_timeout)
    }

    /// `recv_bytes` waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// let r = b.recv_bytes_deadline(Instant::now() + Duration::from_millis(5));
    /// assert!(matches!(r, Err(multiproc::RecvTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_deadline(&mut self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_vec(Limit::deadline(deadline), usize::MAX, None).map_err(RecvFail::recv_timeout)
    }

    /// Python's `recv_bytes(maxlength)`: a longer message is consumed and reported as
    /// [`RecvError::TooLong`] (PIPE-12).
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `TooLong`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"too long")?;
    /// assert!(matches!(b.recv_bytes_max(3), Err(multiproc::RecvError::TooLong { len: 8, max: 3 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Limit::Forever, maxlength, None).map_err(RecvFail::recv)
    }

    /// Python's `recv_bytes_into(buf, offset)`: writes the next message at `buf[offset..]` and
    /// returns its length. Allocation-free for messages that fit one record. A buffer too short
    /// gives [`RecvError::BufferTooShort`] carrying the whole (consumed) message (PIPE-3).
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `BufferTooShort` (also for `offset > buf.len()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(&[1, 2, 3, 4])?;
    /// let mut buf = [0u8; 10];
    /// assert_eq!(b.recv_bytes_into(&mut buf, 3)?, 4);
    /// assert_eq!(buf, [0, 0, 0, 1, 2, 3, 4, 0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn recv_bytes_into(&mut self, buf: &mut [u8], offset: usize) -> Result<usize, RecvError> {
        self.recv_into_inner(buf, offset, Limit::Forever).map_err(RecvFail::recv)
    }

    /// `recv_bytes_into` waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes_into`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"ab")?;
    /// let mut buf = [0u8; 2];
    /// assert_eq!(b.recv_bytes_into_timeout(&mut buf, 0, Duration::from_secs(1))?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into_timeout(
        &mut self,
        buf: &mut [u8],
        offset: usize,
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_into_inner(buf, offset, Limit::timeout(timeout)).map_err(RecvFail::recv_timeout)
    }

    /// `recv_bytes_into` without blocking ([`TryRecvError::Empty`]).
    ///
    /// # Errors
    /// As [`Connection::recv_bytes_into`], plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// let mut buf = [0u8; 4];
    /// assert!(b.try_recv_bytes_into(&mut buf, 0).unwrap_err().is_empty());
    /// a.send_bytes(b"ab")?;
    /// assert_eq!(b.try_recv_bytes_into(&mut buf, 1)?, 2);
    /// assert_eq!(&buf, b"\0ab\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_bytes_into(&mut self, buf: &mut [u8], offset: usize) -> Result<usize, TryRecvError> {
        self.recv_into_inner(buf, offset, Limit::Now).map_err(RecvFail::try_recv)
    }

    /// `recv_bytes_into` waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes_into`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// let mut buf = [0u8; 4];
    /// let r = b.recv_bytes_into_deadline(&mut buf, 0, std::time::Instant::now());
    /// assert!(r.unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into_deadline(
        &mut self,
        buf: &mut [u8],
        offset: usize,
        deadline: Instant,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_into_inner(buf, offset, Limit::deadline(deadline)).map_err(RecvFail::recv_timeout)
    }

    #[inline]
    fn recv_into_inner(&mut self, buf: &mut [u8], offset: usize, limit: Limit) -> Result<usize, RecvFail> {
        let room = buf.len().saturating_sub(offset);
        let how = (self.wait, self.max);
        let r = match &mut self.link {
            Link::Closed => return Err(RecvFail::HandleClosed),
            Link::Stream(s) => return s.recv_into(limit, how.1, buf, offset),
            Link::Rings(r) => r,
        };
        match r.next_message(how, limit, usize::MAX, None)? {
            Msg::Fd => Err(RecvFail::FdPending),
            Msg::Inline(rec) => {
                let rx = r.rx.as_mut().expect("checked");
                if rec.len > room || offset > buf.len() {
                    let mut v = vec![0u8; rec.len];
                    rx.cons.copy_out(&rec, 0, &mut v);
                    rx.cons.release(&rec);
                    return Err(RecvFail::BufferTooShort(v));
                }
                rx.cons.copy_out(&rec, 0, &mut buf[offset..offset + rec.len]);
                rx.cons.release(&rec);
                Ok(rec.len)
            }
            Msg::Whole(v) => {
                if v.len() > room || offset > buf.len() {
                    return Err(RecvFail::BufferTooShort(v));
                }
                buf[offset..offset + v.len()].copy_from_slice(&v);
                Ok(v.len())
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::wait::{SPIN_FAILS_TO_STOP, SPIN_PROBE_EVERY};
    use crate::Pipe;

    #[test]
    fn adaptive_stops_spinning_after_failed_spin_phases_and_probes_again() {
        let (mut a, mut b) = Pipe::duplex().unwrap();
        assert_eq!(b.wait, WaitStrategy::Adaptive);
        // Waits that spin, then park until their deadline: each is a failed spin phase.
        for n in 1..=SPIN_FAILS_TO_STOP {
            assert!(matches!(b.recv_bytes_timeout(Duration::from_millis(20)), Err(crate::RecvTimeoutError::Timeout)));
            assert_eq!(b.rings_mut().unwrap().rx_spin.fails, n);
        }
        // Now waits park at once (budget 0) and do not count, except the periodic probe.
        let before = b.rings_mut().unwrap().rx_spin.waits;
        for _ in 0..SPIN_PROBE_EVERY {
            let _ = b.recv_bytes_timeout(Duration::from_millis(20));
        }
        assert_eq!(b.rings_mut().unwrap().rx_spin.waits, before.wrapping_add(SPIN_PROBE_EVERY));
        // Exactly one of those 16 waits was a probe that spun (and failed again).
        assert_eq!(b.rings_mut().unwrap().rx_spin.fails, SPIN_FAILS_TO_STOP + 1);
        // A message that is already there costs no wait and changes nothing.
        a.send_bytes(b"x").unwrap();
        let w = b.rings_mut().unwrap().rx_spin.waits;
        assert_eq!(b.recv_bytes().unwrap(), b"x");
        assert_eq!(b.rings_mut().unwrap().rx_spin.waits, w);
    }
}
