//! Batches: many messages sent with one publication, received with one release.
//!
//! A batch costs the ring what one message costs in synchronisation: the sender stages its
//! records and publishes them with one header store, one `tail` store, one fence and at most
//! one wake-up; the receiver reads them in place and hands their space back with one `head`
//! store. What is left is the copy into the ring (and, for the receiver, whatever its
//! callback does with each message in place).

use super::super::ring::{Pushed, KIND_FULL};
use super::conn::{Link, Msg};
use super::send::{push_wait, send_framed};
use super::{Connection, RecvFail, SendFail};
use super::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::wait::Limit;
use std::time::{Duration, Instant};

impl Connection {
    /// Sends every message of `msgs`, in order, publishing them to the reader in batches:
    /// all that fit in the ring go out with one publication and at most one wake-up, then the
    /// call waits for room for the rest. Returns how many were sent: all of them, or, when a
    /// failure stopped it after some were sent, those (the next call reports the failure).
    /// Each message is received on its own, as if sent with [`send_bytes`](Self::send_bytes).
    ///
    /// # Errors
    /// As [`send_bytes`](Self::send_bytes), when not one message could be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// let words = ["one", "two", "three"];
    /// assert_eq!(a.send_bytes_many(&words)?, 3);
    /// let mut got = Vec::new();
    /// b.recv_bytes_many(10, |m| got.push(String::from_utf8_lossy(m).into_owned()))?;
    /// assert_eq!(got, words);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "send_many")]
    pub fn send_bytes_many<B: AsRef<[u8]>>(&mut self, msgs: &[B]) -> Result<usize, SendError> {
        self.send_many_inner(msgs, Limit::Forever).map_err(SendFail::send)
    }

    /// `send_bytes_many` without waiting: sends the messages that fit now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when not even the first fits, or as
    /// [`send_bytes_many`](Self::send_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::builder().capacity(64).duplex()?;
    /// // 16 bytes each with the header: four fit in 64.
    /// assert_eq!(a.try_send_bytes_many(&[[1u8; 8]; 6])?, 4);
    /// assert!(matches!(a.try_send_bytes_many(&[[1u8; 8]]), Err(multiproc::TrySendError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send_bytes_many<B: AsRef<[u8]>>(&mut self, msgs: &[B]) -> Result<usize, TrySendError> {
        self.send_many_inner(msgs, Limit::Now).map_err(SendFail::try_send)
    }

    /// `send_bytes_many` waiting at most `timeout` for room in all: returns how many were
    /// sent by then.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] when not one message could be sent in time, or as
    /// [`send_bytes_many`](Self::send_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, _b) = multiproc::Pipe::builder().capacity(64).duplex()?;
    /// assert_eq!(a.send_bytes_many_timeout(&[[1u8; 8]; 6], Duration::from_millis(10))?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_many_timeout<B: AsRef<[u8]>>(
        &mut self,
        msgs: &[B],
        timeout: Duration,
    ) -> Result<usize, SendTimeoutError> {
        self.send_many_inner(msgs, Limit::timeout(timeout)).map_err(SendFail::send_timeout)
    }

    /// `send_bytes_many` waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`send_bytes_many_timeout`](Self::send_bytes_many_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// let soon = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(a.send_bytes_many_deadline(&[b"x", b"y"], soon)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_many_deadline<B: AsRef<[u8]>>(
        &mut self,
        msgs: &[B],
        deadline: Instant,
    ) -> Result<usize, SendTimeoutError> {
        self.send_many_inner(msgs, Limit::deadline(deadline)).map_err(SendFail::send_timeout)
    }

    fn send_many_inner<B: AsRef<[u8]>>(&mut self, msgs: &[B], limit: Limit) -> Result<usize, SendFail> {
        let (wait, max) = (self.wait, self.max);
        let mut sent = 0;
        let outcome = match &mut self.link {
            Link::Closed => Err(SendFail::HandleClosed),
            // A stream has no batch to publish: one message after another.
            Link::Stream(s) => msgs.iter().try_for_each(|m| {
                s.send(m.as_ref(), 0, max, limit)?;
                sent += 1;
                Ok(())
            }),
            Link::Rings(r) => {
                let tx = r.tx.as_mut().ok_or(SendFail::NotWritable)?;
                // As in `send_bytes`: a closed reader is seen before anything is staged.
                if tx.reader_gone(false) {
                    return Err(SendFail::Closed);
                }
                let rec_max = tx.prod.ring().max_record();
                let r = msgs.iter().try_for_each(|m| {
                    let m = m.as_ref();
                    if m.len() > max {
                        return Err(SendFail::TooLarge { len: m.len(), max });
                    }
                    if m.len() > rec_max {
                        // Fragments are published one by one (the reader may be waiting for
                        // the first to make room for the rest).
                        tx.prod.commit();
                        send_framed(tx, wait, max, m, 0, limit)?;
                    } else if tx.prod.try_stage(KIND_FULL, Some(0), None, m)? == Pushed::Full {
                        // The ring is full: out with what is staged, then wait for room
                        // (`push_wait` publishes each record itself).
                        tx.prod.commit();
                        push_wait(tx, wait, KIND_FULL, Some(0), None, m, limit)?;
                    }
                    sent += 1;
                    Ok(())
                });
                tx.prod.commit();
                r
            }
        };
        match outcome {
            Ok(()) => Ok(sent),
            Err(_) if sent > 0 => Ok(sent),
            Err(e) => Err(e),
        }
    }

    /// Receives up to `max` messages, waiting for the first: calls `f` with each, in order,
    /// where it lies in the ring (no copy, no allocation for a message that fits one record),
    /// and hands their space back to the sender at once at the end. Returns how many `f` was
    /// given (≥ 1 unless `max` is 0). It stops early at a message that is not plain bytes in
    /// one record (a fragmented one after the first, a descriptor): the next call takes it.
    ///
    /// If `f` panics, nothing of this batch is consumed: the next receive starts with its
    /// first message again.
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes) (a descriptor waiting first is `FdPending`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// for i in 0..5u8 {
    ///     a.send_bytes(&[i; 3])?;
    /// }
    /// let mut sum = 0u32;
    /// assert_eq!(b.recv_bytes_many(4, |m| sum += u32::from(m[0]))?, 4);
    /// assert_eq!(sum, 0 + 1 + 2 + 3);
    /// assert_eq!(b.recv_bytes_many(4, |m| assert_eq!(m, [4; 3]))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "recv_many")]
    pub fn recv_bytes_many(&mut self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, RecvError> {
        self.recv_many_inner(max, f, Limit::Forever).map_err(RecvFail::recv)
    }

    /// `recv_bytes_many` without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when no message is there, or as
    /// [`recv_bytes_many`](Self::recv_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.try_recv_bytes_many(8, |_| {}), Err(multiproc::TryRecvError::Empty)));
    /// a.send_bytes_many(&[b"a", b"b"])?;
    /// assert_eq!(b.try_recv_bytes_many(8, |_| {})?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_bytes_many(&mut self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, TryRecvError> {
        self.recv_many_inner(max, f, Limit::Now).map_err(RecvFail::try_recv)
    }

    /// `recv_bytes_many` waiting at most `timeout` for the first message.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or as [`recv_bytes_many`](Self::recv_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// let r = b.recv_bytes_many_timeout(8, |_| {}, Duration::from_millis(5));
    /// assert!(matches!(r, Err(multiproc::RecvTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_many_timeout(
        &mut self,
        max: usize,
        f: impl FnMut(&[u8]),
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_many_inner(max, f, Limit::timeout(timeout)).map_err(RecvFail::recv_timeout)
    }

    /// `recv_bytes_many` waiting until `deadline` for the first message.
    ///
    /// # Errors
    /// As [`recv_bytes_many_timeout`](Self::recv_bytes_many_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"x")?;
    /// let soon = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(b.recv_bytes_many_deadline(8, |m| assert_eq!(m, b"x"), soon)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_many_deadline(
        &mut self,
        max: usize,
        f: impl FnMut(&[u8]),
        deadline: Instant,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_many_inner(max, f, Limit::deadline(deadline)).map_err(RecvFail::recv_timeout)
    }

    fn recv_many_inner(&mut self, max: usize, mut f: impl FnMut(&[u8]), limit: Limit) -> Result<usize, RecvFail> {
        if max == 0 {
            return Ok(0);
        }
        let how = (self.wait, self.max);
        let r = match &mut self.link {
            Link::Closed => return Err(RecvFail::HandleClosed),
            Link::Stream(s) => {
                // No ring to read in place: whole messages, the first waited for.
                let mut n = 0;
                while n < max {
                    let lim = if n == 0 { limit } else { Limit::Now };
                    match s.recv(lim, usize::MAX, how.1, None) {
                        Ok(m) => f(&m),
                        Err(_) if n > 0 => break,
                        Err(e) => return Err(e),
                    }
                    n += 1;
                }
                return Ok(n);
            }
            Link::Rings(r) => r,
        };
        let first = r.next_message(how, limit, usize::MAX, None)?;
        let rx = r.rx.as_mut().ok_or(RecvFail::NotReadable)?;
        let mut pos = match first {
            Msg::Fd => return Err(RecvFail::FdPending),
            Msg::Whole(v) => {
                f(&v);
                rx.cons.position()?
            }
            Msg::Inline(rec) => {
                f(rx.cons.payload(&rec));
                rec.next_pos()
            }
        };
        let mut n = 1;
        while n < max {
            // Anything but plain bytes in one record (or a corrupt header) ends the batch and
            // is left for the next call, which reports or reassembles it.
            match rx.cons.scan(pos, false) {
                Ok(Some(rec)) if rec.kind == KIND_FULL => {
                    f(rx.cons.payload(&rec));
                    pos = rec.next_pos();
                    n += 1;
                }
                _ => break,
            }
        }
        rx.cons.release_to(pos);
        Ok(n)
    }
}
