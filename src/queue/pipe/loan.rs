//! Loans: a message written or read where it lies in the ring, with no copy in between.
//!
//! A [`SendLoan`] is room for one message reserved in the ring: the sender writes the payload
//! in place and [`commit`](SendLoan::commit)s it (one header store publishes it, as for any
//! message); dropping the loan abandons it, and nothing of it ever reaches the reader. A
//! [`RecvLoan`] is the next message, borrowed where it lies: its space goes back to the sender
//! when the loan is dropped. Both are for messages that fit one record of the ring (half the
//! ring, less 16 bytes, or 24 in the integrity mode: [`Connection::max_loan`]); larger ones are refused with `TooLarge`.
//!
//! What dies with a loan: a sender killed with a loan open never published it (its header is
//! the publication), so the reader never sees it; a reader killed while borrowing a message
//! never released it, so the next reader of that end (another copy of it, in another process)
//! gets the same message again, whole.

use super::super::ring::{Consumer, Producer, Record, Reservation};
use super::conn::{ByteStream, Link, Msg};
use super::send::until_room;
use super::{Connection, RecvFail, SendFail};
use super::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::wait::Limit;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Room for one message in a [`Connection`]'s ring, written in place
/// ([`Connection::send_loan`]). Derefs to the payload (`&mut [u8]`, zeroed or not: whatever
/// the ring held, so write all of it). [`commit`](Self::commit) sends it; dropping it sends
/// nothing.
///
/// # Examples
///
/// ```
/// let (mut a, mut b) = multiproc::Pipe::duplex()?;
/// let mut loan = a.send_loan(5)?;
/// loan.copy_from_slice(b"hello");
/// loan.commit()?;
/// drop(a.send_loan(3)?); // abandoned: never seen
/// assert_eq!(&*b.recv_loan()?, b"hello");
/// assert!(b.try_recv_loan().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SendLoan<'a> {
    inner: SendInner<'a>,
}

enum SendInner<'a> {
    /// Reserved in the ring: `ptr..ptr + len` is the payload, the producer's alone until it is
    /// published (see `Producer::reserved`).
    Ring { prod: &'a mut Producer, res: Reservation, ptr: NonNull<u8>, len: usize },
    /// A stream connection (TCP) has no ring: the message is built here and sent at commit.
    Stream { stream: &'a dyn ByteStream, buf: Vec<u8>, max: usize },
}

impl fmt::Debug for SendLoan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendLoan").field("len", &self.len()).finish_non_exhaustive()
    }
}

// SAFETY: the loan is a `&mut` to this end's producer plus a pointer into the ring that only
// this loan uses (the reservation's payload): moving it to another thread moves that
// exclusive access with it, as moving a `&mut [u8]` would.
unsafe impl Send for SendLoan<'_> {}

impl SendLoan<'_> {
    /// Sends the message: the reader sees it whole, as if sent with
    /// [`send_bytes`](Connection::send_bytes).
    ///
    /// # Errors
    /// Only on a stream (TCP) connection, whose message is sent now: as
    /// [`send_bytes`](Connection::send_bytes). A ring loan cannot fail here (its room was
    /// taken when it was made).
    pub fn commit(self) -> Result<(), SendError> {
        match self.inner {
            SendInner::Ring { prod, res, .. } => {
                prod.publish_reserved(res);
                Ok(())
            }
            SendInner::Stream { stream, buf, max } => stream.send(&buf, 0, max, Limit::Forever).map_err(SendFail::send),
        }
    }

    /// The payload as a `T` (a `zerocopy` record), to be filled in place; `None` when the
    /// loan's length is not `T`'s size (or the payload is not aligned for it: ring payloads
    /// are 8-aligned).
    ///
    /// # Examples
    ///
    /// ```
    /// use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    ///
    /// #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
    /// #[repr(C)]
    /// struct Tick {
    ///     seq: u64,
    ///     price: f64,
    /// }
    ///
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// let mut loan = a.send_loan(size_of::<Tick>())?;
    /// *loan.record_mut::<Tick>().unwrap() = Tick { seq: 1, price: 2.5 };
    /// loan.commit()?;
    /// let got = b.recv_loan()?;
    /// assert_eq!(got.record::<Tick>().unwrap().price, 2.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_mut<T: FromBytes + IntoBytes + KnownLayout>(&mut self) -> Option<&mut T> {
        T::mut_from_bytes(self).ok()
    }
}

impl Deref for SendLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            // SAFETY: see `SendInner::Ring`: valid for `len` bytes while the loan (and the
            // borrow of the connection that keeps the ring mapped) lives.
            SendInner::Ring { ptr, len, .. } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
            SendInner::Stream { buf, .. } => buf,
        }
    }
}

impl DerefMut for SendLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.inner {
            // SAFETY: as in `deref`; `&mut self` makes this the only reference.
            SendInner::Ring { ptr, len, .. } => unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), *len) },
            SendInner::Stream { buf, .. } => buf,
        }
    }
}

/// The next message of a [`Connection`], borrowed where it lies in the ring
/// ([`Connection::recv_loan`]). Derefs to its bytes; dropping it hands its space back to the
/// sender. A message that did not fit one record (reassembled from fragments) is held in a
/// buffer of its own instead, and so is one from a stream (TCP) connection.
///
/// # Examples
///
/// ```
/// let (mut a, mut b) = multiproc::Pipe::duplex()?;
/// a.send_bytes(b"in place")?;
/// let msg = b.recv_loan()?;
/// assert!(msg.starts_with(b"in"));
/// drop(msg); // released: the sender may write there again
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RecvLoan<'a> {
    inner: RecvInner<'a>,
}

enum RecvInner<'a> {
    /// Peeked, not released: `ptr..ptr + len` is its payload, the consumer's alone until the
    /// release in `drop` (see `Consumer::payload`).
    Ring { cons: &'a mut Consumer, rec: Record, ptr: NonNull<u8>, len: usize },
    /// A reassembled message, or one from a stream.
    Owned(Vec<u8>),
}

impl fmt::Debug for RecvLoan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvLoan").field("len", &self.len()).finish_non_exhaustive()
    }
}

// SAFETY: as for `SendLoan`: a `&mut` to this end's consumer and a pointer to bytes that only
// this loan reads until it releases them.
unsafe impl Send for RecvLoan<'_> {}

impl RecvLoan<'_> {
    /// The message as a `T` (a `zerocopy` record), read in place; `None` when its length is
    /// not `T`'s size. See [`SendLoan::record_mut`] for an example.
    pub fn record<T: FromBytes + KnownLayout + Immutable>(&self) -> Option<&T> {
        T::ref_from_bytes(self).ok()
    }
}

impl Deref for RecvLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            // SAFETY: see `RecvInner::Ring`: valid for `len` bytes until the release in `drop`.
            RecvInner::Ring { ptr, len, .. } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
            RecvInner::Owned(v) => v,
        }
    }
}

impl Drop for RecvLoan<'_> {
    fn drop(&mut self) {
        if let RecvInner::Ring { cons, rec, .. } = &mut self.inner {
            cons.release(rec);
        }
    }
}

impl Connection {
    /// The largest loan this end can make: one record of its ring (half the ring, less 16
    /// bytes, 24 in the integrity mode), or the maximum message size if that is smaller. A
    /// stream (TCP) connection's loans are bounded by the maximum message size only.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = multiproc::Pipe::builder().capacity(1 << 16).duplex()?;
    /// assert_eq!(a.max_loan(), (1 << 15) - 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_loan(&self) -> usize {
        match &self.link {
            Link::Rings(r) => r.tx.as_ref().map_or(0, |tx| tx.prod.ring().max_record().min(self.max)),
            Link::Stream(_) => self.max,
            Link::Closed => 0,
        }
    }

    /// Reserves room for a message of `len` bytes in the ring, waiting for it: write the
    /// payload through the loan, then [`commit`](SendLoan::commit) it. No copy: the bytes go
    /// where the reader will read them.
    ///
    /// # Errors
    /// [`SendError::TooLarge`] above [`max_loan`](Self::max_loan) (send larger messages with
    /// [`send_bytes`](Self::send_bytes), which fragments them), or as
    /// [`send_bytes`](Self::send_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// let mut loan = a.send_loan(4)?;
    /// loan.fill(7);
    /// loan.commit()?;
    /// assert_eq!(b.recv_bytes()?, [7; 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_loan(&mut self, len: usize) -> Result<SendLoan<'_>, SendError> {
        self.send_loan_inner(len, Limit::Forever).map_err(SendFail::send)
    }

    /// `send_loan` without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when there is no room now, or as [`send_loan`](Self::send_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::builder().capacity(64).duplex()?;
    /// a.try_send_loan(8)?.commit()?;
    /// a.try_send_loan(8)?.commit()?;
    /// a.try_send_loan(8)?.commit()?;
    /// a.try_send_loan(8)?.commit()?; // 4 × 16 bytes: full
    /// assert!(matches!(a.try_send_loan(8), Err(multiproc::TrySendError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send_loan(&mut self, len: usize) -> Result<SendLoan<'_>, TrySendError> {
        self.send_loan_inner(len, Limit::Now).map_err(SendFail::try_send)
    }

    /// `send_loan` waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or as [`send_loan`](Self::send_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// a.send_loan_timeout(3, Duration::from_millis(10))?.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_loan_timeout(&mut self, len: usize, timeout: Duration) -> Result<SendLoan<'_>, SendTimeoutError> {
        self.send_loan_inner(len, Limit::timeout(timeout)).map_err(SendFail::send_timeout)
    }

    /// `send_loan` waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`send_loan_timeout`](Self::send_loan_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// a.send_loan_deadline(3, Instant::now() + Duration::from_millis(10))?.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_loan_deadline(&mut self, len: usize, deadline: Instant) -> Result<SendLoan<'_>, SendTimeoutError> {
        self.send_loan_inner(len, Limit::deadline(deadline)).map_err(SendFail::send_timeout)
    }

    fn send_loan_inner(&mut self, len: usize, limit: Limit) -> Result<SendLoan<'_>, SendFail> {
        let (wait, max, most) = (self.wait, self.max, self.max_loan());
        match &mut self.link {
            Link::Closed => Err(SendFail::HandleClosed),
            Link::Stream(s) => {
                if len > most {
                    return Err(SendFail::TooLarge { len, max: most });
                }
                Ok(SendLoan { inner: SendInner::Stream { stream: &**s, buf: vec![0; len], max } })
            }
            Link::Rings(r) => {
                let tx = r.tx.as_mut().ok_or(SendFail::NotWritable)?;
                if len > most {
                    return Err(SendFail::TooLarge { len, max: most });
                }
                // As in `send_bytes`: a closed reader is seen before anything is reserved.
                if tx.reader_gone(false) {
                    return Err(SendFail::Closed);
                }
                let mut res = tx.prod.try_reserve(len, 0)?;
                if res.is_none() {
                    until_room(tx, wait, limit, |tx| {
                        res = tx.prod.try_reserve(len, 0)?;
                        Ok(res.is_some())
                    })?;
                }
                let res = res.ok_or(SendFail::Corrupt("room found but not reserved"))?;
                let ptr = NonNull::from(tx.prod.reserved(&res)).cast::<u8>();
                Ok(SendLoan { inner: SendInner::Ring { prod: &mut tx.prod, res, ptr, len } })
            }
        }
    }

    /// Borrows the next message where it lies in the ring, waiting for it: read it through
    /// the loan; dropping the loan hands its space back. No copy, no allocation (except for a
    /// message that had to be fragmented, which is reassembled into a buffer of its own).
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes) (a descriptor waiting first is `FdPending`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(&[1, 2, 3])?;
    /// let sum: u32 = b.recv_loan()?.iter().map(|&x| u32::from(x)).sum();
    /// assert_eq!(sum, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_loan(&mut self) -> Result<RecvLoan<'_>, RecvError> {
        self.recv_loan_inner(Limit::Forever).map_err(RecvFail::recv)
    }

    /// `recv_loan` without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or as [`recv_loan`](Self::recv_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.try_recv_loan(), Err(multiproc::TryRecvError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_loan(&mut self) -> Result<RecvLoan<'_>, TryRecvError> {
        self.recv_loan_inner(Limit::Now).map_err(RecvFail::try_recv)
    }

    /// `recv_loan` waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or as [`recv_loan`](Self::recv_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(b.recv_loan_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_loan_timeout(&mut self, timeout: Duration) -> Result<RecvLoan<'_>, RecvTimeoutError> {
        self.recv_loan_inner(Limit::timeout(timeout)).map_err(RecvFail::recv_timeout)
    }

    /// `recv_loan` waiting until `deadline`.
    ///
    /// # Errors
    /// As [`recv_loan_timeout`](Self::recv_loan_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"x")?;
    /// assert_eq!(&*b.recv_loan_deadline(Instant::now() + Duration::from_millis(10))?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_loan_deadline(&mut self, deadline: Instant) -> Result<RecvLoan<'_>, RecvTimeoutError> {
        self.recv_loan_inner(Limit::deadline(deadline)).map_err(RecvFail::recv_timeout)
    }

    fn recv_loan_inner(&mut self, limit: Limit) -> Result<RecvLoan<'_>, RecvFail> {
        let how = (self.wait, self.max);
        let r = match &mut self.link {
            Link::Closed => return Err(RecvFail::HandleClosed),
            Link::Stream(s) => {
                return Ok(RecvLoan { inner: RecvInner::Owned(s.recv(limit, usize::MAX, how.1, None)?) });
            }
            Link::Rings(r) => r,
        };
        match r.next_message(how, limit, usize::MAX, None)? {
            Msg::Fd => Err(RecvFail::FdPending),
            Msg::Whole(v) => Ok(RecvLoan { inner: RecvInner::Owned(v) }),
            Msg::Inline(rec) => {
                let rx = r.rx.as_mut().ok_or(RecvFail::NotReadable)?;
                let bytes = rx.cons.payload(&rec);
                let (ptr, len) = (NonNull::from(bytes).cast::<u8>(), bytes.len());
                Ok(RecvLoan { inner: RecvInner::Ring { cons: &mut rx.cons, rec, ptr, len } })
            }
        }
    }
}
