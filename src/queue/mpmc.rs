//! `Queue<T>`, `SimpleQueue<T>` and `JoinableQueue<T>` (Python's `multiprocessing.Queue`
//! family): MPMC, any serde type, bounded by a byte capacity (and optionally a `maxsize` in
//! items), with no feeder thread.
//!
//! # Design
//! One anonymous segment holds a [`QueueState`] and a byte ring of `capacity` bytes. Records
//! are `[len: u32][reserved: u32][payload][padding to 8]` at monotonically increasing 64-bit
//! positions (`pos % capacity` in the ring; a record may wrap). All ring access happens under
//! one robust pthread mutex; readers and writers that must wait sleep on two futex sequence
//! words, in bounded slices so that a waker that died before waking cannot strand them.
//!
//! * `put` serializes the value **before** taking the lock (a serialization error is returned
//!   and changes nothing: QUE-B1, QUE-8; the value is captured at `put`: QUE-B3), copies the
//!   record into the ring and then commits it with one store of `tail`. Once `put` returns
//!   `Ok`, the item is in shared memory (QUE-B4); nothing is left to flush, so a child that put
//!   10 MiB exits and can be joined at once (QUE-B5) as long as the queue's capacity holds it.
//! * `get` reads the record at `head` and commits with one store of `head`.
//! * A process killed while holding the lock leaves at most an uncommitted, invisible record;
//!   the next locker gets "owner died", re-derives the item count by walking the committed
//!   records (validating every length), truncates anything inconsistent, and marks the lock
//!   consistent (QUE-B6: a dead consumer never wedges the others). A consumer killed after its
//!   `get` committed had taken that item: it is lost with the consumer (as documented).
//! * Everything read from shared memory (positions, lengths, counts) is checked: a corrupt
//!   queue yields [`QueueError::Corrupt`], never undefined behaviour.

use super::doorbell::bump;
use crate::loom::atomic::{
    AtomicBool, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::loom::futex;
use crate::shm::{Segment, ShmError, ShmObject, ShmRef};
use crate::sync::raw::robust::RawRobustMutex;
use crate::sys::clock::Deadline;
use crate::sys::pthread::{Locked, MutexKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default ring capacity: 16 MiB of address space (pages are touched only as the ring fills).
pub const DEFAULT_CAPACITY: usize = 16 << 20;

/// Bytes of a record's header.
const HEADER: u64 = 8;

/// How long a blocked `put`/`get`/`join` sleeps before re-checking the queue (covers a waker
/// that died between committing and waking).
#[cfg_attr(loom, allow(dead_code))]
const SLICE: Duration = Duration::from_millis(100);

/// The shared part of a queue.
#[repr(C)]
#[derive(Debug)]
struct QueueState {
    lock: RawRobustMutex,
    /// Position of the oldest committed record (only written under the lock).
    head: AtomicU64,
    /// Position after the newest committed record (only written under the lock).
    tail: AtomicU64,
    /// Committed records (only written under the lock; read without it by `qsize`).
    count: AtomicU64,
    /// Ring size in bytes (set at creation).
    capacity: AtomicU64,
    /// Maximum number of items, 0 for no limit.
    maxsize: AtomicU64,
    /// `put`s not yet matched by `task_done` (JoinableQueue).
    unfinished: AtomicU64,
    /// Bumped (by 2) after every commit of a `put`; bit 0: someone may be asleep on it.
    not_empty: AtomicU32,
    /// Bumped after every `get`.
    not_full: AtomicU32,
    /// Bumped when `unfinished` reaches 0.
    all_done: AtomicU32,
    _pad: AtomicU32,
}

// SAFETY: all-zero is an empty queue with capacity 0 (refused by `attach`), an uninitialized
// mutex (refused by RawRobustMutex) and zero counters; atomics and the pthread object only, no
// pointers; every value a peer can leave is validated before use (see `check`).
unsafe impl ShmObject for QueueState {}

/// Sleeps on `word` while it still equals `seen` (raising the sleepers flag first), at most one
/// slice. Every `put`/`get` [`bump`]s the word, so an event between reading `seen` and sleeping
/// makes the futex return at once.
fn sleep_on(word: &AtomicU32, seen: u32, deadline: Option<Deadline>) {
    // Relaxed: the futex compares the whole word in the kernel.
    if word.fetch_or(1, Relaxed) | 1 != seen | 1 {
        return;
    }
    // Under loom, no slice: the models prove that a `bump` alone ends the sleep.
    #[cfg(loom)]
    let until = deadline;
    #[cfg(not(loom))]
    let until = match (deadline, Deadline::after(SLICE)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let _ = futex::wait(word, seen | 1, until);
}

/// Why a queue operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// A non-blocking or timed `get` found nothing (Python's `queue.Empty`).
    Empty,
    /// A non-blocking or timed `put` found no room (Python's `queue.Full`).
    Full,
    /// This handle was closed with [`Queue::close`] (QUE-7).
    Closed,
    /// The serialized item is larger than the queue's whole capacity: it could never fit.
    TooLarge {
        /// Bytes the record needs.
        len: u64,
        /// The queue's capacity in bytes.
        capacity: u64,
    },
    /// The value could not be serialized (nothing was put: QUE-B1).
    Serialize(String),
    /// An item could not be deserialized as `T` (it was removed from the queue).
    Deserialize(String),
    /// `task_done` was called more times than items were put (JoinableQueue).
    TooManyTaskDone,
    /// The shared state is inconsistent (a corrupt segment).
    Corrupt(&'static str),
    /// The queue's lock is unusable.
    Lock(String),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Empty => f.write_str("queue is empty"),
            QueueError::Full => f.write_str("queue is full"),
            QueueError::Closed => f.write_str("queue is closed"),
            QueueError::TooLarge { len, capacity } => {
                write!(f, "item of {len} bytes can never fit a queue of {capacity} bytes")
            }
            QueueError::Serialize(e) => write!(f, "could not serialize the item: {e}"),
            QueueError::Deserialize(e) => write!(f, "could not deserialize an item: {e}"),
            QueueError::TooManyTaskDone => f.write_str("task_done() called too many times"),
            QueueError::Corrupt(w) => write!(f, "corrupt queue: {w}"),
            QueueError::Lock(e) => write!(f, "queue lock: {e}"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<ShmError> for QueueError {
    fn from(e: ShmError) -> QueueError {
        QueueError::Lock(e.to_string())
    }
}

/// Builds a [`Queue`] with options.
///
/// # Examples
///
/// ```
/// let q = multiproc::Queue::<u32>::builder().maxsize(6).capacity_bytes(1 << 16).build()?;
/// assert_eq!(q.maxsize(), Some(6));
/// # Ok::<(), multiproc::QueueError>(())
/// ```
#[derive(Debug, Clone)]
pub struct QueueBuilder<T> {
    capacity: usize,
    maxsize: Option<usize>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> QueueBuilder<T> {
    /// Ring capacity in bytes (default [`DEFAULT_CAPACITY`]); each item takes its serialized
    /// size plus 8 bytes, rounded up to 8.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Maximum number of items (Python's `maxsize`; default unlimited).
    pub fn maxsize(mut self, items: usize) -> Self {
        self.maxsize = Some(items);
        self
    }

    /// Creates the queue in a fresh anonymous segment, shared with children forked afterwards.
    ///
    /// # Errors
    /// [`QueueError::Lock`] if shared memory cannot be mapped or the lock initialized.
    pub fn build(self) -> Result<Queue<T>, QueueError> {
        let cap = (self.capacity.max(64) as u64).next_multiple_of(8);
        let seg = Segment::anonymous(cap as usize + 4096)?;
        let state: ShmRef<QueueState> = seg.alloc_object()?;
        state.lock.init(MutexKind::ErrorCheck).map_err(|e| QueueError::Lock(e.to_string()))?;
        state.capacity.store(cap, Relaxed);
        state.maxsize.store(self.maxsize.map_or(0, |m| m as u64), Relaxed);
        let off = seg.alloc(cap as usize, 8)?;
        let ring = seg.bytes_at(off, cap as usize)?;
        Ok(Queue { state, ring, cap, closed: Arc::new(AtomicBool::new(false)), _t: PhantomData })
    }
}

/// A multi-producer, multi-consumer queue between processes (Python's
/// `multiprocessing.Queue`): a byte ring in shared memory guarded by a robust mutex. A
/// process killed inside `put` leaves nothing visible; one killed inside `get` after taking an
/// item takes that item with it; nobody is wedged (the next locker repairs the ring). Details
/// in the repository's `docs/FAILURE.md`.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, Queue};
///
/// let q: Queue<String> = Queue::new()?;
/// let producer = Process::new({
///     let q = q.clone();
///     move || q.put(&"hello".to_string())
/// });
/// producer.start()?;
/// assert_eq!(q.get()?, "hello");
/// producer.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    state: ShmRef<QueueState>,
    ring: NonNull<u8>,
    cap: u64,
    closed: Arc<AtomicBool>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            state: self.state.clone(),
            ring: self.ring,
            cap: self.cap,
            closed: self.closed.clone(),
            _t: PhantomData,
        }
    }
}

// SAFETY: `ring` points into the segment that `state` keeps mapped; the ring is only accessed
// under the robust lock; the handle holds no thread-local state.
unsafe impl<T> Send for Queue<T> {}
// SAFETY: as above: every access to shared bytes is serialized by the lock.
unsafe impl<T> Sync for Queue<T> {}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("qsize", &self.state.count.load(Relaxed)).field("capacity", &self.cap).finish()
    }
}

/// Holds the queue's lock; unlocks on drop.
struct Held<'a> {
    lock: &'a RawRobustMutex,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = self.lock.unlock();
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue with the default capacity and no item limit.
    ///
    /// # Errors
    /// [`QueueError::Lock`] if shared memory cannot be mapped.
    pub fn new() -> Result<Queue<T>, QueueError> {
        Queue::builder().build()
    }

    /// A queue holding at most `maxsize` items (Python's `Queue(maxsize)`).
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>, QueueError> {
        Queue::builder().maxsize(maxsize).build()
    }

    /// A builder for capacity and `maxsize`.
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder { capacity: DEFAULT_CAPACITY, maxsize: None, _t: PhantomData }
    }

    /// The item limit, if any.
    pub fn maxsize(&self) -> Option<usize> {
        match self.state.maxsize.load(Relaxed) {
            0 => None,
            m => Some(m as usize),
        }
    }

    /// Number of items in the queue; exact as soon as a `put` or `get` has returned (QUE-B2).
    pub fn qsize(&self) -> usize {
        // Acquire: pairs with the Release store of `count` at commit.
        self.state.count.load(Acquire) as usize
    }

    /// Whether the queue holds no items.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items.
    pub fn full(&self) -> bool {
        self.maxsize().is_some_and(|m| self.qsize() >= m)
    }

    /// Closes this process's handle (and its clones): later `put`s and `get`s through it fail
    /// with [`QueueError::Closed`] (QUE-7). Other processes are not affected, as in Python.
    pub fn close(&self) {
        self.closed.store(true, Relaxed);
    }

    fn check_open(&self) -> Result<(), QueueError> {
        if self.closed.load(Relaxed) {
            Err(QueueError::Closed)
        } else {
            Ok(())
        }
    }

    /// Takes the lock, repairing the queue if its previous holder died.
    fn lock(&self, deadline: Option<Deadline>) -> Result<Option<Held<'_>>, QueueError> {
        let st = &*self.state;
        match st.lock.lock(deadline).map_err(|e| QueueError::Lock(e.to_string()))? {
            Locked::Acquired => Ok(Some(Held { lock: &st.lock })),
            Locked::OwnerDied => {
                let held = Held { lock: &st.lock };
                self.repair()?;
                st.lock.make_consistent().map_err(|e| QueueError::Lock(e.to_string()))?;
                Ok(Some(held))
            }
            Locked::Busy => Ok(None),
            Locked::NotRecoverable => Err(QueueError::Lock("the queue lock is unrecoverable".into())),
            Locked::Deadlock => Err(QueueError::Lock("this thread already holds the queue lock".into())),
        }
    }

    /// Head and tail, validated: `head <= tail <= head + capacity`.
    fn positions(&self) -> Result<(u64, u64), QueueError> {
        let st = &*self.state;
        // Relaxed: we hold the lock, which orders every write of these fields.
        let (head, tail) = (st.head.load(Relaxed), st.tail.load(Relaxed));
        if st.capacity.load(Relaxed) != self.cap || tail < head || tail - head > self.cap {
            return Err(QueueError::Corrupt("ring positions"));
        }
        Ok((head, tail))
    }

    /// After an owner death: recount the committed records, truncating at the first bad one.
    fn repair(&self) -> Result<(), QueueError> {
        let st = &*self.state;
        let (head, tail) = match self.positions() {
            Ok(p) => p,
            Err(_) => {
                // Positions beyond repair: drop everything rather than read garbage.
                let t = st.tail.load(Relaxed);
                st.head.store(t, Relaxed);
                st.count.store(0, Release);
                return Ok(());
            }
        };
        let mut pos = head;
        let mut n = 0;
        while pos < tail {
            match self.record_len(pos, tail) {
                Some(size) => {
                    pos += size;
                    n += 1;
                }
                None => break,
            }
        }
        st.tail.store(pos, Relaxed);
        st.count.store(n, Release);
        Ok(())
    }

    /// Total size of the record at `pos` (header + padded payload) if it is valid and ends by
    /// `tail`.
    fn record_len(&self, pos: u64, tail: u64) -> Option<u64> {
        let mut h = [0u8; 4];
        self.copy_out(pos, &mut h);
        let len = u32::from_le_bytes(h) as u64;
        let size = HEADER + len.next_multiple_of(8);
        (pos + size <= tail).then_some(size)
    }

    /// Copies `buf` into the ring at position `pos` (wrapping).
    fn copy_in(&self, pos: u64, buf: &[u8]) {
        let start = (pos % self.cap) as usize;
        let first = buf.len().min(self.cap as usize - start);
        // SAFETY: `start + first <= cap` and `buf.len() - first <= cap - ... <= cap` (callers
        // never copy more than `cap` bytes), both ranges lie in the ring allocated for this
        // queue, which `self.state` keeps mapped; we hold the lock, so nobody else touches them.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), self.ring.as_ptr().add(start), first);
            std::ptr::copy_nonoverlapping(buf.as_ptr().add(first), self.ring.as_ptr(), buf.len() - first);
        }
    }

    /// Copies from the ring at position `pos` (wrapping) into `buf`.
    fn copy_out(&self, pos: u64, buf: &mut [u8]) {
        // SAFETY: `buf` is `buf.len()` writable bytes.
        unsafe { self.copy_out_raw(pos, buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies `len` bytes from the ring at position `pos` (wrapping) to `dst`.
    ///
    /// # Safety
    /// `dst` is valid for `len` bytes of writes and does not overlap the ring; `len` is at
    /// most the capacity (callers copy out records that `record_len` checked lie within
    /// `[head, tail)`).
    unsafe fn copy_out_raw(&self, pos: u64, dst: *mut u8, len: usize) {
        let start = (pos % self.cap) as usize;
        let first = len.min(self.cap as usize - start);
        // SAFETY: as in `copy_in`, reading instead of writing: both source ranges lie in the
        // ring, which `self.state` keeps mapped, and we hold the lock; `dst` per the contract.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.as_ptr().add(start), dst, first);
            std::ptr::copy_nonoverlapping(self.ring.as_ptr(), dst.add(first), len - first);
        }
    }

    /// Puts `value`, blocking while the queue is full (Python's `put(obj)`).
    ///
    /// # Errors
    /// [`QueueError::Closed`], [`QueueError::Serialize`] (nothing was put),
    /// [`QueueError::TooLarge`] (can never fit), [`QueueError::Lock`], [`QueueError::Corrupt`].
    pub fn put(&self, value: &T) -> Result<(), QueueError> {
        self.put_until(value, None, true)
    }

    /// Puts `value` if there is room now (Python's `put(obj, False)` / `put_nowait`).
    pub fn try_put(&self, value: &T) -> Result<(), QueueError> {
        self.put_until(value, None, false)
    }

    /// Puts `value`, waiting at most `timeout` for room (Python's `put(obj, timeout=t)`);
    /// [`QueueError::Full`] after that.
    pub fn put_timeout(&self, value: &T, timeout: Duration) -> Result<(), QueueError> {
        match Deadline::after(timeout) {
            Some(d) => self.put_until(value, Some(d), true),
            None => self.put(value),
        }
    }

    /// Puts `value`, waiting until `deadline` for room.
    pub fn put_deadline(&self, value: &T, deadline: Instant) -> Result<(), QueueError> {
        self.put_until(value, Deadline::at(deadline), true)
    }

    fn put_until(&self, value: &T, deadline: Option<Deadline>, block: bool) -> Result<(), QueueError> {
        self.check_open()?;
        let payload = postcard::to_allocvec(value).map_err(|e| QueueError::Serialize(e.to_string()))?;
        self.put_record(payload.len() as u64, deadline, block, |q, pos| q.copy_in(pos, &payload))
    }

    /// Commits one record of `len` payload bytes, which `write(self, pos)` copies into the ring
    /// at `pos` (under the lock, before the commit), waiting for room as `deadline`/`block` say.
    fn put_record(
        &self,
        len: u64,
        deadline: Option<Deadline>,
        block: bool,
        write: impl Fn(&Self, u64),
    ) -> Result<(), QueueError> {
        let size = HEADER + len.next_multiple_of(8);
        if len > u32::MAX as u64 || size > self.cap {
            return Err(QueueError::TooLarge { len: size, capacity: self.cap });
        }
        let st = &*self.state;
        loop {
            // Relaxed: the sequence only decides whether to sleep; the state is read under the lock.
            let seen = st.not_full.load(Relaxed);
            {
                let Some(_held) = self.lock(None)? else { continue };
                let (head, tail) = self.positions()?;
                let maxsize = st.maxsize.load(Relaxed);
                let count = st.count.load(Relaxed);
                if self.cap - (tail - head) >= size && (maxsize == 0 || count < maxsize) {
                    let mut header = [0u8; 8];
                    header[..4].copy_from_slice(&(len as u32).to_le_bytes());
                    self.copy_in(tail, &header);
                    write(self, tail + HEADER);
                    st.unfinished.fetch_add(1, Relaxed);
                    // The commit point: one store makes the whole record visible.
                    st.tail.store(tail + size, Relaxed);
                    // SYNC(release → qsize's acquire load).
                    st.count.store(count + 1, Release);
                    drop(_held);
                    bump(&st.not_empty);
                    return Ok(());
                }
            }
            if !block || deadline.is_some_and(|d| d.has_passed()) {
                return Err(QueueError::Full);
            }
            sleep_on(&st.not_full, seen, deadline);
        }
    }

    /// Removes and returns the oldest item, blocking while the queue is empty (Python's `get()`).
    ///
    /// # Errors
    /// [`QueueError::Closed`], [`QueueError::Deserialize`] (the bad item is removed),
    /// [`QueueError::Lock`], [`QueueError::Corrupt`].
    pub fn get(&self) -> Result<T, QueueError> {
        self.get_until(None, true)
    }

    /// Removes the oldest item if there is one (Python's `get(False)` / `get_nowait`).
    pub fn try_get(&self) -> Result<T, QueueError> {
        self.get_until(None, false)
    }

    /// Waits at most `timeout` for an item (Python's `get(timeout=t)`); [`QueueError::Empty`]
    /// after that.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, QueueError> {
        match Deadline::after(timeout) {
            Some(d) => self.get_until(Some(d), true),
            None => self.get(),
        }
    }

    /// Waits until `deadline` for an item.
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, QueueError> {
        self.get_until(Deadline::at(deadline), true)
    }

    fn get_until(&self, deadline: Option<Deadline>, block: bool) -> Result<T, QueueError> {
        self.check_open()?;
        let bytes = self.get_record(deadline, block, |q, pos, len| {
            let mut payload = vec![0u8; len as usize];
            q.copy_out(pos, &mut payload);
            Ok(payload)
        })?;
        postcard::from_bytes(&bytes).map_err(|e| QueueError::Deserialize(e.to_string()))
    }

    /// Removes the oldest record, handing its payload (`len` bytes at ring position `pos`) to
    /// `read` under the lock, waiting for one as `deadline`/`block` say. The record is removed
    /// even if `read` fails (a bad item must not wedge the queue).
    fn get_record<R>(
        &self,
        deadline: Option<Deadline>,
        block: bool,
        read: impl FnOnce(&Self, u64, u64) -> Result<R, QueueError>,
    ) -> Result<R, QueueError> {
        let st = &*self.state;
        let mut read = Some(read);
        loop {
            // Relaxed: see `put_record`.
            let seen = st.not_empty.load(Relaxed);
            let got = {
                let Some(_held) = self.lock(None)? else { continue };
                let (head, tail) = self.positions()?;
                if head != tail {
                    let Some(size) = self.record_len(head, tail) else {
                        return Err(QueueError::Corrupt("record length"));
                    };
                    let mut h = [0u8; 4];
                    self.copy_out(head, &mut h);
                    // `record_len` checked that the payload lies within [head, tail).
                    let read = read.take().expect("read runs once: we return right after");
                    let r = read(self, head + HEADER, u32::from_le_bytes(h) as u64);
                    let count = st.count.load(Relaxed);
                    // The commit point.
                    st.head.store(head + size, Relaxed);
                    // SYNC(release → qsize's acquire load).
                    st.count.store(count.saturating_sub(1), Release);
                    Some(r)
                } else {
                    None
                }
            };
            if let Some(r) = got {
                bump(&st.not_full);
                return r;
            }
            if !block || deadline.is_some_and(|d| d.has_passed()) {
                return Err(QueueError::Empty);
            }
            sleep_on(&st.not_empty, seen, deadline);
        }
    }
}

/// The byte fast path of a `Queue<Vec<u8>>`: no serde on either side.
///
/// postcard encodes a `Vec<u8>` as a LEB128 varint length followed by the bytes, so
/// [`put_bytes`](Queue::put_bytes) writes exactly what `put(&vec)` would, straight from the
/// caller's slice into the ring, and [`get_bytes_into`](Queue::get_bytes_into) copies an item's
/// bytes straight into the caller's buffer. The two paths mix freely: an item put with
/// `put_bytes` can be read with `get`, and the other way round. (serde would otherwise visit a
/// `Vec<u8>` one byte at a time: at 64 KiB that costs more than the copies.)
impl Queue<Vec<u8>> {
    /// Puts `bytes` as one item, blocking while the queue is full.
    ///
    /// # Errors
    /// As [`put`](Queue::put), except that serialization cannot fail.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes(b"abc")?;
    /// assert_eq!(q.get()?, b"abc"); // the typed path reads it too
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(), QueueError> {
        self.put_bytes_until(bytes, None, true)
    }

    /// Puts `bytes` if there is room now; [`QueueError::Full`] if not.
    pub fn try_put_bytes(&self, bytes: &[u8]) -> Result<(), QueueError> {
        self.put_bytes_until(bytes, None, false)
    }

    /// Puts `bytes`, waiting at most `timeout` for room; [`QueueError::Full`] after that.
    pub fn put_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), QueueError> {
        match Deadline::after(timeout) {
            Some(d) => self.put_bytes_until(bytes, Some(d), true),
            None => self.put_bytes(bytes),
        }
    }

    fn put_bytes_until(&self, bytes: &[u8], deadline: Option<Deadline>, block: bool) -> Result<(), QueueError> {
        self.check_open()?;
        let (prefix, plen) = varint(bytes.len() as u64);
        let prefix = &prefix[..plen];
        self.put_record((plen + bytes.len()) as u64, deadline, block, |q, pos| {
            q.copy_in(pos, prefix);
            q.copy_in(pos + plen as u64, bytes);
        })
    }

    /// Removes the oldest item and copies its bytes into `out` (cleared first; its allocation
    /// is reused), blocking while the queue is empty. Returns the item's length.
    ///
    /// # Errors
    /// As [`get`](Queue::get); [`QueueError::Deserialize`] if the item is not a byte vector
    /// (it is removed, as with `get`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put(&vec![1, 2, 3])?;
    /// let mut buf = Vec::new();
    /// assert_eq!(q.get_bytes_into(&mut buf)?, 3);
    /// assert_eq!(buf, [1, 2, 3]);
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn get_bytes_into(&self, out: &mut Vec<u8>) -> Result<usize, QueueError> {
        self.get_bytes_until(out, None, true)
    }

    /// As [`get_bytes_into`](Self::get_bytes_into) if an item is there now;
    /// [`QueueError::Empty`] if not.
    pub fn try_get_bytes_into(&self, out: &mut Vec<u8>) -> Result<usize, QueueError> {
        self.get_bytes_until(out, None, false)
    }

    /// As [`get_bytes_into`](Self::get_bytes_into), waiting at most `timeout`;
    /// [`QueueError::Empty`] after that.
    pub fn get_bytes_into_timeout(&self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, QueueError> {
        match Deadline::after(timeout) {
            Some(d) => self.get_bytes_until(out, Some(d), true),
            None => self.get_bytes_into(out),
        }
    }

    fn get_bytes_until(&self, out: &mut Vec<u8>, deadline: Option<Deadline>, block: bool) -> Result<usize, QueueError> {
        self.check_open()?;
        out.clear();
        self.get_record(deadline, block, |q, pos, len| {
            let mut prefix = [0u8; 10];
            let peek = (len as usize).min(prefix.len());
            q.copy_out(pos, &mut prefix[..peek]);
            // The item must be exactly a varint length and that many bytes.
            let bad = || QueueError::Deserialize("the item is not a byte vector".into());
            let (n, plen) = parse_varint(&prefix[..peek]).ok_or_else(bad)?;
            if n.checked_add(plen as u64) != Some(len) {
                return Err(bad());
            }
            let n = n as usize;
            out.reserve_exact(n);
            // SAFETY: `reserve_exact` made room for `n` bytes after the (cleared) contents;
            // `n <= len <= capacity` (checked above against the record's length, which
            // `record_len` checked against the ring), and the copy initializes all of them
            // before `set_len` exposes them.
            unsafe {
                q.copy_out_raw(pos + plen as u64, out.as_mut_ptr(), n);
                out.set_len(n);
            }
            Ok(n)
        })
    }
}

/// `n` as a LEB128 varint (postcard's length prefix): the bytes and how many are used.
fn varint(mut n: u64) -> ([u8; 10], usize) {
    let mut buf = [0u8; 10];
    let mut i = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = byte;
            return (buf, i + 1);
        }
        buf[i] = byte | 0x80;
        i += 1;
    }
}

/// Parses a LEB128 varint at the start of `b`: the value and its length, `None` if it is
/// truncated or overlong.
fn parse_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let bits = (byte & 0x7f) as u64;
        if i == 9 && bits > 1 {
            return None; // more than 64 bits
        }
        n |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

/// Python's `SimpleQueue`: an unbounded [`Queue`] with only `put`, `get`, `empty` and `close`.
///
/// # Examples
///
/// ```
/// let q = multiproc::SimpleQueue::<bool>::new()?;
/// assert!(q.empty());
/// q.put(&true)?;
/// assert!(!q.empty());
/// assert_eq!(q.get()?, true);
/// q.close();
/// q.close(); // closing twice is fine (QUE-10)
/// # Ok::<(), multiproc::QueueError>(())
/// ```
#[derive(Debug)]
pub struct SimpleQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue { inner: self.inner.clone() }
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    pub fn new() -> Result<SimpleQueue<T>, QueueError> {
        Ok(SimpleQueue { inner: Queue::new()? })
    }

    /// Puts an item (blocks only if the byte capacity is exhausted).
    pub fn put(&self, value: &T) -> Result<(), QueueError> {
        self.inner.put(value)
    }

    /// Removes and returns the oldest item, blocking while empty.
    pub fn get(&self) -> Result<T, QueueError> {
        self.inner.get()
    }

    /// Whether the queue is empty.
    pub fn empty(&self) -> bool {
        self.inner.empty()
    }

    /// Closes this process's handle.
    pub fn close(&self) {
        self.inner.close()
    }
}

/// Python's `JoinableQueue`: a [`Queue`] whose consumers call [`task_done`](Self::task_done)
/// per item and whose [`join`](Self::join) waits until every item put has been done.
///
/// # Examples
///
/// ```
/// let q = multiproc::JoinableQueue::<u32>::new()?;
/// q.put(&7)?;
/// assert_eq!(q.get()?, 7);
/// q.task_done()?;
/// q.join(); // returns at once: every item is done
/// assert!(q.task_done().is_err());
/// # Ok::<(), multiproc::QueueError>(())
/// ```
#[derive(Debug)]
pub struct JoinableQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { inner: self.inner.clone() }
    }
}

impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.inner
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A new, empty queue with no item limit.
    pub fn new() -> Result<JoinableQueue<T>, QueueError> {
        Ok(JoinableQueue { inner: Queue::new()? })
    }

    /// A new queue holding at most `maxsize` items.
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>, QueueError> {
        Ok(JoinableQueue { inner: Queue::with_maxsize(maxsize)? })
    }

    /// Marks one item taken with `get` as done.
    ///
    /// # Errors
    /// [`QueueError::TooManyTaskDone`] if every item put is already done.
    pub fn task_done(&self) -> Result<(), QueueError> {
        let st = &*self.inner.state;
        // AcqRel-free CAS loop: Release so that `join`'s Acquire sees the consumer's work.
        let mut u = st.unfinished.load(Relaxed);
        loop {
            if u == 0 {
                return Err(QueueError::TooManyTaskDone);
            }
            // SYNC(release → join's acquire load).
            match st.unfinished.compare_exchange_weak(u, u - 1, Release, Relaxed) {
                Ok(_) => break,
                Err(now) => u = now,
            }
        }
        if u == 1 {
            bump(&st.all_done);
        }
        Ok(())
    }

    /// Blocks until every item put has been marked done.
    pub fn join(&self) {
        while !self.join_until(None) {}
    }

    /// [`join`](Self::join) for at most `timeout`; returns whether every item was done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Deadline::after(timeout))
    }

    fn join_until(&self, deadline: Option<Deadline>) -> bool {
        let st = &*self.inner.state;
        loop {
            let seen = st.all_done.load(Relaxed);
            // SYNC(acquire ← task_done's release).
            if st.unfinished.load(Acquire) == 0 {
                return true;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return false;
            }
            sleep_on(&st.all_done, seen, deadline);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_postcard_and_round_trips() {
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, 1 << 32, u64::MAX] {
            let (b, len) = varint(n);
            assert_eq!(parse_varint(&b[..len]), Some((n, len)));
            // postcard's own length prefix for a sequence of n bytes.
            let pc = postcard::to_allocvec(&n).unwrap();
            assert_eq!(&b[..len], &pc[..], "n = {n}");
        }
        assert_eq!(parse_varint(&[0x80]), None, "truncated");
        assert_eq!(parse_varint(&[0xff; 10]), None, "more than 64 bits");
    }

    #[test]
    fn bytes_path_and_typed_path_mix() {
        let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(1 << 16).build().unwrap();
        let big: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        q.put_bytes(&big).unwrap();
        q.put(&vec![7, 8]).unwrap();
        q.put_bytes(b"").unwrap();
        assert_eq!(q.get().unwrap(), big);
        let mut out = vec![1, 2, 3];
        assert_eq!(q.get_bytes_into(&mut out).unwrap(), 2);
        assert_eq!(out, [7, 8]);
        assert_eq!(q.try_get_bytes_into(&mut out).unwrap(), 0);
        assert!(out.is_empty());
        assert_eq!(q.try_get_bytes_into(&mut out), Err(QueueError::Empty));
        // A record that wraps around the ring's end.
        for round in 0..10u8 {
            q.put_bytes(&big[..15_000]).unwrap();
            q.put_bytes(&[round; 9]).unwrap();
            q.get_bytes_into(&mut out).unwrap();
            assert_eq!(out, &big[..15_000]);
            q.get_bytes_into(&mut out).unwrap();
            assert_eq!(out, [round; 9]);
        }
        assert!(matches!(q.try_put_bytes(&vec![0; 1 << 16]), Err(QueueError::TooLarge { capacity: 65536, .. })));
        assert!(q.empty(), "a refused item leaves nothing behind");
    }

    #[test]
    fn get_bytes_into_refuses_an_item_that_is_not_bytes_and_removes_it() {
        let q: Queue<Vec<u8>> = Queue::new().unwrap();
        // Reach the raw path through a queue of another type over the same state.
        let raw: Queue<(u32, String)> =
            Queue { state: q.state.clone(), ring: q.ring, cap: q.cap, closed: q.closed.clone(), _t: PhantomData };
        raw.put(&(1_000_000, "not bytes".to_string())).unwrap();
        q.put_bytes(b"ok").unwrap();
        let mut out = Vec::new();
        assert!(matches!(q.get_bytes_into(&mut out), Err(QueueError::Deserialize(_))));
        assert_eq!(q.get_bytes_into(&mut out).unwrap(), 2);
        assert_eq!(out, b"ok");
    }
}

/// The sleep/wake protocol of `Queue`, with a loom mutex standing in for the robust pthread
/// mutex (which loom cannot model): a consumer reads the sequence word, checks the state under
/// the lock, and sleeps on the word; a producer changes the state under the lock and bumps.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{bump, sleep_on};
    use crate::loom::atomic::{AtomicU32, Ordering::Relaxed};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct Stand {
        items: Mutex<u32>,
        not_empty: AtomicU32,
    }

    fn get(s: &Stand) {
        loop {
            let seen = s.not_empty.load(Relaxed);
            {
                let mut n = s.items.lock().unwrap();
                if *n > 0 {
                    *n -= 1;
                    return;
                }
            }
            sleep_on(&s.not_empty, seen, None);
        }
    }

    fn put(s: &Stand) {
        *s.items.lock().unwrap() += 1;
        bump(&s.not_empty);
    }

    #[test]
    fn loom_queue_sleeping_consumers_are_woken_by_puts() {
        loom::model(|| {
            let s = Arc::new(Stand { items: Mutex::new(0), not_empty: AtomicU32::new(0) });
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || get(&s))
                })
                .collect();
            put(&s);
            put(&s);
            for c in consumers {
                c.join().unwrap();
            }
        });
    }
}
