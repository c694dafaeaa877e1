//! Loans on `Queue<Vec<u8>>`: an item written or read where it lies in the ring, with no copy
//! in between.
//!
//! A [`PutLoan`] is room for one item, placed in the ring under the queue's lock: the producer
//! writes the bytes in place and [`commit`](PutLoan::commit)s them (one store of `tail`, as for
//! any put); dropping the loan abandons it. A [`GetLoan`] is the oldest item, borrowed where it
//! lies: it is taken (one store of `head`) when the loan is dropped.
//!
//! **A loan holds the queue's lock**, as a `put` or `get` does for the length of its copy: the
//! queue is multi-producer and multi-consumer, and the lock is what orders its producers and its
//! consumers. Other puts and gets on that queue, in every process, wait until the loan ends, so
//! keep loans short (write or read, then let go); a `try_` call that finds the lock held waits
//! for it up to 100 ms, as it does for a long copy, and then answers `Empty` or `Full`. A
//! `shutdown_immediate` from another thread waits for open loans to end; from the thread that
//! holds one, the items are dropped when that loan ends. A put loan still open when the queue
//! is shut down puts nothing (`commit` says `ShutDown`). A loan is not `Send`: the lock is a
//! thread's.
//!
//! What dies with a loan: a producer killed with a loan open never committed it, so nobody ever
//! sees it (the next locker's repair finds the tail where it was); a consumer killed while
//! borrowing never took its item, so the next consumer gets that item, whole. This is the kill
//! guarantee of `put` and `get`, which hold the same lock.
//!
//! A loan copied into a forked child (a `fork` while it was open) neither commits nor takes
//! there, but its bytes are the parent's: a child must not write or read them while the parent
//! may.
//!
//! Records never wrap around the ring's end (`state.rs`), so a loan's bytes are one slice. Its
//! bytes follow the item's length prefix (postcard's, so that the typed path reads the same
//! item): they are not aligned, so for a `zerocopy` record use `T::read_from_bytes(&loan)` or an
//! `Unaligned` type, or a [`Pipe`](crate::Pipe)'s loans, whose payloads are 8-aligned.

use super::bytes::{byte_item, varint};
use super::record::Framed;
use super::state::{Held, LockedRing, SKIP};
use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, QueueFail, TryGetError, TryPutError};
use crate::wait::Limit;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// Room for one item in a [`Queue<Vec<u8>>`](Queue)'s ring, written in place
/// ([`Queue::put_loan`]). Derefs to the item's bytes (`&mut [u8]`, whatever the ring held: write
/// all of it). [`commit`](Self::commit) puts it; dropping it puts nothing. It holds the queue's
/// lock until then (see [`Queue::put_loan`]).
///
/// # Examples
///
/// ```
/// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
/// let mut loan = q.put_loan(5)?;
/// loan.copy_from_slice(b"hello");
/// loan.commit()?;
/// drop(q.put_loan(3)?); // abandoned: never seen
/// assert_eq!(&*q.get_loan()?, b"hello");
/// assert!(q.try_get_loan().unwrap_err().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PutLoan<'a> {
    ring: &'a LockedRing,
    held: Held<'a>,
    /// Records in the queue when the room was found.
    count: u64,
    /// The record's position and payload length (the prefix included).
    pos: u64,
    payload: u64,
    /// The item's bytes, `ptr..ptr + len`: in the record, ours alone while we hold the lock.
    ptr: NonNull<u8>,
    len: usize,
    /// The process that made the loan: a forked copy of it must neither commit nor unlock.
    pid: u32,
    /// The lock is the thread's that took it.
    _not_send: PhantomData<*const ()>,
}

/// The oldest item of a [`Queue<Vec<u8>>`](Queue), borrowed where it lies
/// ([`Queue::get_loan`]). Derefs to its bytes; dropping the loan takes the item out of the queue
/// and lets the queue's lock go.
///
/// # Examples
///
/// ```
/// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
/// q.put_bytes(b"in place")?;
/// let item = q.get_loan()?;
/// assert_eq!(&*item, b"in place");
/// drop(item); // taken now
/// assert!(q.empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct GetLoan<'a> {
    ring: &'a LockedRing,
    /// `None` only once dropped.
    held: Option<Held<'a>>,
    /// The position after the item: the head once it is taken.
    end: u64,
    ptr: NonNull<u8>,
    len: usize,
    pid: u32,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for PutLoan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutLoan").field("len", &self.len).finish_non_exhaustive()
    }
}

impl fmt::Debug for GetLoan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetLoan").field("len", &self.len).finish_non_exhaustive()
    }
}

/// This process's pid (one atomic load; a forked child sees its own).
fn pid() -> u32 {
    crate::sys::process::self_identity().0
}

impl PutLoan<'_> {
    /// Puts the item: consumers see it whole, as if put with
    /// [`put_bytes`](Queue::put_bytes). Lets the queue's lock go.
    ///
    /// # Errors
    /// [`PutError::ShutDown`] if the queue was shut down while the loan was open (nothing is
    /// put); [`PutError::Os`] (`EPERM`) for a copy of the loan in a forked child, which does
    /// not hold the lock: nothing is put from there (the parent's loan is unaffected).
    pub fn commit(self) -> Result<(), PutError> {
        if self.pid != pid() {
            return Err(PutError::Os(std::io::Error::from_raw_os_error(libc::EPERM)));
        }
        let ring = self.ring;
        // SAFETY: we hold the lock; the record was placed at `pos` by `place` and its header
        // written there.
        unsafe { ring.seal(self.pos + ring.hdr, self.payload) };
        let end = self.pos + ring.record_size(self.payload);
        ring.commit_put(self.held, self.count, end, 1).map_err(QueueFail::put)
    }
}

impl Deref for PutLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` lies in the record placed for this loan (one lap of the ring,
        // which the queue handle we borrow keeps mapped) and nobody else writes it while we hold
        // the lock.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PutLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only view of those bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Deref for GetLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` lies in the committed record at the head (validated by
        // `frame`: stamped, within one lap, before the tail), which nobody writes or takes
        // while we hold the lock; the queue handle we borrow keeps it mapped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for GetLoan<'_> {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        if self.pid == pid() {
            self.ring.commit_get(held, self.end, 1);
        } else {
            // A forked copy: the parent's loan takes the item. Unlocking fails here (the lock
            // is the parent thread's), and is ignored.
            drop(held);
        }
    }
}

impl LockedRing {
    /// The ring address of position `pos` (`pos`'s `len` bytes lie within one lap).
    fn at(&self, pos: u64) -> NonNull<u8> {
        // SAFETY: `pos % cap < cap`: inside the ring, which `self.state` keeps mapped.
        unsafe { self.ring.add((pos % self.cap) as usize) }
    }
}

impl Queue<Vec<u8>> {
    /// The largest `len` a [`put_loan`](Self::put_loan) can ask for (the ring less a record's
    /// header and the item's length prefix).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::builder().capacity_bytes(4096).build()?;
    /// assert!(q.put_loan(q.max_loan() + 1).unwrap_err().to_string().contains("never fit"));
    /// q.put_loan(q.max_loan())?.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_loan(&self) -> usize {
        // A multiple of 8 that fits (a whole record), below the skip record's length.
        let room = (self.ring.capacity() - self.ring.hdr).min(u64::from(SKIP) & !7);
        let mut n = room.saturating_sub(10);
        while self.ring.fits_ever(n + 1 + varint(n + 1).1 as u64) {
            n += 1;
        }
        n as usize
    }

    /// Room for an item of `len` bytes, written in place: blocks while the queue is full.
    /// Commit the loan to put the item; drop it to put nothing.
    ///
    /// The loan holds the queue's lock until it is committed or dropped: every other put and
    /// get of this queue, in any process, waits meanwhile (a `put` or `get` holds it for its
    /// copy), so write and commit without waiting for anything else. A producer killed with a
    /// loan open puts nothing, and the queue goes on.
    ///
    /// # Errors
    /// As [`put_bytes`](Self::put_bytes): [`PutError::TooLarge`] when `len` is over
    /// [`max_loan`](Self::max_loan); [`PutError::Os`] (`EDEADLK`) when this thread already
    /// holds a loan of this queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// let mut loan = q.put_loan(4)?;
    /// loan.copy_from_slice(&7u32.to_le_bytes());
    /// loan.commit()?;
    /// assert_eq!(q.get()?, 7u32.to_le_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_loan(&self, len: usize) -> Result<PutLoan<'_>, PutError> {
        self.put_loan_until(len, Limit::Forever).map_err(QueueFail::put)
    }

    /// As [`put_loan`](Self::put_loan) if there is room now.
    ///
    /// # Errors
    /// [`TryPutError::Full`] if there is none, or as [`put_loan`](Self::put_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::with_maxsize(1)?;
    /// q.try_put_loan(1)?.commit()?;
    /// assert!(q.try_put_loan(1).unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_loan(&self, len: usize) -> Result<PutLoan<'_>, TryPutError> {
        self.put_loan_until(len, Limit::Now).map_err(QueueFail::try_put)
    }

    /// As [`put_loan`](Self::put_loan), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] if no room came, or as [`put_loan`](Self::put_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::with_maxsize(1)?;
    /// q.put_loan_timeout(1, Duration::from_millis(5))?.commit()?;
    /// assert!(q.put_loan_timeout(1, Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_loan_timeout(&self, len: usize, timeout: Duration) -> Result<PutLoan<'_>, PutTimeoutError> {
        self.put_loan_until(len, Limit::timeout(timeout)).map_err(QueueFail::put_timeout)
    }

    /// As [`put_loan`](Self::put_loan), waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put_loan_timeout`](Self::put_loan_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_loan_deadline(2, std::time::Instant::now())?.copy_from_slice(b"ab"); // dropped: not put
    /// assert!(q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_loan_deadline(&self, len: usize, deadline: Instant) -> Result<PutLoan<'_>, PutTimeoutError> {
        self.put_loan_until(len, Limit::deadline(deadline)).map_err(QueueFail::put_timeout)
    }

    fn put_loan_until(&self, len: usize, limit: Limit) -> Result<PutLoan<'_>, QueueFail> {
        self.check_open()?;
        let ring = &self.ring;
        let (prefix, plen) = varint(len as u64);
        let payload = (len as u64).saturating_add(plen as u64);
        if !ring.fits_ever(payload) {
            let len = payload.saturating_add(ring.hdr).saturating_add(7) & !7;
            return Err(QueueFail::TooLarge { len, capacity: ring.capacity() });
        }
        let size = ring.record_size(payload);
        let (held, s, pos) = ring.hold_room(limit, |mut s| {
            if s.maxsize != 0 && s.count >= s.maxsize {
                return None;
            }
            // SAFETY: we hold the lock; the positions were validated under it.
            unsafe { ring.place(&mut s.head, s.tail, size) }
        })?;
        // SAFETY: we hold the lock; `place` found `size` free bytes at `pos`: the header and
        // the prefix are written now, the item's bytes by the loan's owner.
        unsafe { ring.write_record(pos, payload, |w| w.write(0, &prefix[..plen])) };
        // `place` puts a record within one lap; the slice handed out relies on it.
        assert!(pos % ring.capacity() + size <= ring.capacity(), "a lent record wraps");
        let ptr = ring.at(pos + ring.hdr + plen as u64);
        Ok(PutLoan { ring, held, count: s.count, pos, payload, ptr, len, pid: pid(), _not_send: PhantomData })
    }

    /// The oldest item, borrowed where it lies in the ring: blocks while the queue is empty.
    /// The item is taken when the loan is dropped.
    ///
    /// The loan holds the queue's lock until then (see [`put_loan`](Self::put_loan)). A
    /// consumer killed while borrowing takes nothing: the next consumer gets the same item.
    ///
    /// # Errors
    /// As [`get_bytes_into`](Self::get_bytes_into): [`GetError::NotBytes`] for an item that is
    /// not a byte string (it is removed); [`GetError::Corrupt`] for one that fails its
    /// checksum (integrity mode: it is removed) or cannot be framed; [`GetError::Os`]
    /// (`EDEADLK`) when this thread already holds a loan of this queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put(&vec![1, 2, 3])?;
    /// assert_eq!(q.get_loan()?.iter().sum::<u8>(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_loan(&self) -> Result<GetLoan<'_>, GetError> {
        self.get_loan_until(Limit::Forever).map_err(QueueFail::get)
    }

    /// As [`get_loan`](Self::get_loan) if an item is there now.
    ///
    /// # Errors
    /// [`TryGetError::Empty`] if there is none, or as [`get_loan`](Self::get_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// assert!(q.try_get_loan().unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_loan(&self) -> Result<GetLoan<'_>, TryGetError> {
        self.get_loan_until(Limit::Now).map_err(QueueFail::try_get)
    }

    /// As [`get_loan`](Self::get_loan), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`] if no item came, or as [`get_loan`](Self::get_loan).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// let r = q.get_loan_timeout(std::time::Duration::from_millis(5));
    /// assert!(r.unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_loan_timeout(&self, timeout: Duration) -> Result<GetLoan<'_>, GetTimeoutError> {
        self.get_loan_until(Limit::timeout(timeout)).map_err(QueueFail::get_timeout)
    }

    /// As [`get_loan`](Self::get_loan), waiting until `deadline`.
    ///
    /// # Errors
    /// As [`get_loan_timeout`](Self::get_loan_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes(b"xy")?;
    /// assert_eq!(q.get_loan_deadline(std::time::Instant::now())?.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_loan_deadline(&self, deadline: Instant) -> Result<GetLoan<'_>, GetTimeoutError> {
        self.get_loan_until(Limit::deadline(deadline)).map_err(QueueFail::get_timeout)
    }

    fn get_loan_until(&self, limit: Limit) -> Result<GetLoan<'_>, QueueFail> {
        self.check_open()?;
        let ring = &self.ring;
        let (held, head, tail) = ring.hold_item(limit)?;
        // Cannot be framed: nothing is taken (as `get`), the error is reported again.
        let Framed { pos, end, len } = ring.frame(head, tail)?;
        let rec = super::record::RecordReader::at(ring, pos, len);
        match ring.checked(&rec).and_then(|()| byte_item(&rec)) {
            Ok((plen, n)) => {
                let ptr = ring.at(pos + ring.hdr + plen);
                Ok(GetLoan { ring, held: Some(held), end, ptr, len: n, pid: pid(), _not_send: PhantomData })
            }
            Err(e) => {
                // A bad item must not wedge the queue: it is removed, as `get` removes it.
                ring.commit_get(held, end, 1);
                Err(e)
            }
        }
    }
}

#[cfg(all(test, not(loom), feature = "serde"))]
mod tests {
    use crate::{GetError, Queue, TryGetError};

    #[test]
    fn que_b11_a_get_loan_refuses_an_item_that_is_not_bytes_and_removes_it() {
        let q: Queue<Vec<u8>> = Queue::new().unwrap();
        // Reach the raw path through a queue of another type over the same state.
        let raw: Queue<(u32, String)> = Queue::from_ring(q.ring.clone());
        raw.put(&(1_000_000, "not bytes".to_string())).unwrap();
        q.put_bytes(b"ok").unwrap();
        assert!(matches!(q.get_loan(), Err(GetError::NotBytes)));
        assert_eq!(&*q.get_loan().unwrap(), b"ok");
        assert!(matches!(q.try_get_loan(), Err(TryGetError::Empty)));
    }
}
