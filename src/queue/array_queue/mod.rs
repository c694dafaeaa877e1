//! `ArrayQueue<T: ShmSafe>`: a bounded lock-free MPMC queue of fixed-size plain-data slots in
//! shared memory (Vyukov's bounded queue with per-slot sequence numbers, as crossbeam's
//! `ArrayQueue`), with blocking forms over futex words. The algorithm, its claim records and
//! its recovery of dead claimants are in `algo.rs`; this file is the handle and its errors.

mod algo;
mod builder;
mod error;
#[cfg(any(test, feature = "test-hooks"))]
mod heap;
mod ready;

use crate::loom::atomic::{AtomicU32, Ordering::Relaxed};
use crate::shm::{Segment, ShmError, ShmRef, ShmSafe};
use crate::wait::Limit;
use algo::{Core, Header, Slot};

/// An empty `try_pop` reads the producers' index on one poll in this many of its handle.
const LOOK_EVERY: u32 = 32;
pub use algo::{STUCK_AFTER, UNRECORDED_AFTER};
pub use builder::ArrayQueueBuilder;
use error::{pop_error, pop_timeout_error, push_error, push_timeout_error, try_pop_error, try_push_error};
pub use error::{PopError, PopTimeoutError, PushError, PushTimeoutError, TryPopError, TryPushError};
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use heap::HeapQueue;
use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// A bounded lock-free MPMC queue of plain-data items in shared memory, shared with children
/// forked after its creation (Vyukov's sequence-stamped slots).
///
/// A producer or consumer that dies between claiming and finishing a slot is detected after
/// [`STUCK_AFTER`] (or [`UNRECORDED_AFTER`] if it died before recording itself) and skipped or
/// freed, so the queue never wedges; every operation honours its timeout whatever the slots
/// hold, the `try_` forms never block, and a corrupt segment is an error, never a spin. Details
/// in the repository's `docs/FAILURE.md`.
///
/// # Examples
///
/// ```
/// use multiproc::{ArrayQueue, Process};
///
/// let q = ArrayQueue::<u64>::new(1024)?;
/// let child = Process::new({
///     let q = q.clone();
///     move || -> Result<(), multiproc::PushError<u64>> {
///         for i in 0..100u64 {
///             q.push(i)?;
///         }
///         Ok(())
///     }
/// });
/// child.start()?;
/// let mut sum = 0;
/// for _ in 0..100 {
///     sum += q.pop()?;
/// }
/// assert_eq!(sum, 4950);
/// child.join()?.exit_ok()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArrayQueue<T: ShmSafe> {
    hdr: ShmRef<Header>,
    slots: NonNull<Slot<T>>,
    cap: usize,
    /// The integrity mode (`ArrayQueueBuilder::integrity`), read from the directory once.
    crc: bool,
    _seg: Segment,
    /// This handle's empty polls, counted so that one in [`LOOK_EVERY`] reads `tail` (see
    /// "Empty polls" in `algo.rs`). Process-local.
    polls: AtomicU32,
    /// This process's `ReadyFd` for `pop_async`.
    #[cfg(feature = "async")]
    ready: std::sync::Arc<crate::queue::ready::ReadyCache>,
}

impl<T: ShmSafe> Clone for ArrayQueue<T> {
    fn clone(&self) -> Self {
        ArrayQueue {
            #[cfg(feature = "async")]
            ready: self.ready.clone(),
            ..self.probe_clone()
        }
    }
}

// SAFETY: `slots` points into `_seg`, which the handle keeps mapped; all shared access follows
// the stamp protocol; `T` is plain `Send + Sync` data.
unsafe impl<T: ShmSafe> Send for ArrayQueue<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for ArrayQueue<T> {}

impl<T: ShmSafe> fmt::Debug for ArrayQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayQueue").field("len", &self.len()).field("capacity", &self.cap).finish()
    }
}

impl<T: ShmSafe> ArrayQueue<T> {
    /// A queue of `capacity` slots (at least 1) in a fresh anonymous segment.
    ///
    /// # Errors
    /// [`ShmError`] if the segment cannot be mapped or the size overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::ArrayQueue::<u64>::new(16)?.capacity(), 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(capacity: usize) -> Result<ArrayQueue<T>, ShmError> {
        let (cap, len) = ArrayQueue::<T>::segment_len(capacity)?;
        let seg = Segment::anonymous(len)?;
        let w = ArrayQueue::<T>::init_in(&seg, cap, false)?;
        <ArrayQueue<T> as crate::shm::Named>::from_named(&seg, &w)
    }

    /// The slot count for a request of `capacity`, and the segment size it needs.
    pub(super) fn segment_len(capacity: usize) -> Result<(usize, usize), ShmError> {
        let cap = capacity.max(1);
        let bytes = cap.checked_mul(std::mem::size_of::<Slot<T>>()).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let len =
            bytes.checked_add(std::mem::size_of::<Header>() + 2 * 128).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        Ok((cap, len))
    }

    /// Allocates and initializes a queue of `cap` slots in `seg`; returns its directory words
    /// (header offset, slots offset, capacity).
    /// Lays the queue out in `seg`; `crc`: the integrity mode, recorded in the directory words.
    pub(super) fn init_in(seg: &Segment, cap: usize, crc: bool) -> Result<crate::shm::Words, ShmError> {
        let hdr: ShmRef<Header> = seg.alloc_object()?;
        let off = seg.alloc(cap * std::mem::size_of::<Slot<T>>(), std::mem::align_of::<Slot<T>>().max(8))?;
        let slots = seg.elements_at::<Slot<T>>(off, cap)?;
        // SAFETY: `slots..slots+cap` was just allocated (zeroed, aligned) for this queue, and
        // nothing else references it yet.
        for (i, s) in unsafe { std::slice::from_raw_parts(slots.as_ptr(), cap) }.iter().enumerate() {
            s.init(2 * i as u64);
        }
        Ok([hdr.offset() as u64, off as u64, cap as u64, u64::from(crc), 0, 0])
    }

    /// A queue of `capacity` slots (at least 1) under `name`, for processes that are not
    /// forked from this one: they call [`open`](Self::open) with the same `T` (another type
    /// is [`ShmError::Mismatch`]). The name is removed when this handle's last clone drops,
    /// unless [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, [`ShmError::TooLarge`], and the errors of
    /// [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-arrayqueue-create-{}", std::process::id());
    /// let q = multiproc::ArrayQueue::<u64>::create(&name, 1024)?;
    /// multiproc::ArrayQueue::<u64>::open(&name)?.try_push(5)?; // typically in another program
    /// assert_eq!(q.try_pop()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, capacity: usize) -> Result<ArrayQueue<T>, ShmError> {
        let (cap, len) = ArrayQueue::<T>::segment_len(capacity)?;
        crate::shm::create_named(name, len, |seg| ArrayQueue::<T>::init_in(seg, cap, false))
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-arrayqueue-{}\", std::process::id());\nlet created = multiproc::ArrayQueue::<u64>::create(&name, 8)?;\nlet opened = multiproc::ArrayQueue::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.try_push(3)?;\nassert_eq!(created.try_pop()?, 3);\nassert_eq!(opened.capacity(), 8);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::ArrayQueue::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// See [`Header::announce_not_empty`](algo::Header::announce_not_empty).
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce_not_empty(&self) -> (&crate::loom::atomic::AtomicU32, u32) {
        self.hdr.announce_not_empty()
    }

    /// A clone for a `ReadyFd` watcher, without the `pop_async` cache that owns the watcher
    /// (sharing it would make a cycle that keeps both alive for ever).
    pub(crate) fn probe_clone(&self) -> ArrayQueue<T> {
        ArrayQueue {
            hdr: self.hdr.clone(),
            slots: self.slots,
            cap: self.cap,
            crc: self.crc,
            _seg: self._seg.clone(),
            polls: AtomicU32::new(0),
            #[cfg(feature = "async")]
            ready: Default::default(),
        }
    }

    fn core(&self) -> Core<'_, T> {
        // SAFETY: `slots..slots+cap` was allocated for this queue in the segment the handle keeps
        // mapped, aligned for `Slot<T>`, and zero-initialized (a valid `Slot<T>`, see the
        // ShmObject impl); shared access goes through atomics and the stamp protocol.
        let slots = unsafe { std::slice::from_raw_parts(self.slots.as_ptr(), self.cap) };
        Core { hdr: &self.hdr, slots, crc: self.crc }
    }

    /// Number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::ArrayQueue::<u8>::new(0)?.capacity(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Items in the queue now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(4)?;
    /// q.try_push(1)?;
    /// assert_eq!(q.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether the queue is empty now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::ArrayQueue::<u8>::new(4)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full now.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(1)?;
    /// q.try_push(1)?;
    /// assert!(q.is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() >= self.cap
    }

    /// Pushes without waiting; gives the value back if the queue is full.
    ///
    /// # Errors
    /// [`TryPushError::Full`], [`TryPushError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(1)?;
    /// assert!(q.try_push(1).is_ok());
    /// assert_eq!(q.try_push(2).unwrap_err().into_inner(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_push(&self, value: T) -> Result<(), TryPushError<T>> {
        self.core().try_push(value).map_err(try_push_error)
    }

    /// Pushes, waiting while the queue is full.
    ///
    /// # Errors
    /// [`PushError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(1)?;
    /// q.push(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        self.core().push_until(value, Limit::Forever).map_err(push_error)
    }

    /// Pushes, waiting at most `timeout` (`Duration::MAX`: forever).
    ///
    /// # Errors
    /// [`PushTimeoutError::Timeout`], [`PushTimeoutError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::ArrayQueue::<u8>::new(1)?;
    /// q.push_timeout(1, Duration::from_millis(5))?;
    /// assert!(q.push_timeout(2, Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        self.core().push_until(value, Limit::timeout(timeout)).map_err(push_timeout_error)
    }

    /// Pushes, waiting until `deadline`.
    ///
    /// # Errors
    /// [`PushTimeoutError::Timeout`], [`PushTimeoutError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(1)?;
    /// q.push_deadline(1, std::time::Instant::now())?; // room now: no wait needed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_deadline(&self, value: T, deadline: Instant) -> Result<(), PushTimeoutError<T>> {
        self.core().push_until(value, Limit::deadline(deadline)).map_err(push_timeout_error)
    }

    /// Pops without waiting.
    ///
    /// # Errors
    /// [`TryPopError::Empty`], [`TryPopError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(2)?;
    /// q.try_push(7)?;
    /// assert_eq!(q.try_pop()?, 7);
    /// assert!(q.try_pop().unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_pop(&self) -> Result<T, TryPopError> {
        self.core().try_pop_looking(|| self.look_at_tail()).map_err(try_pop_error)
    }

    /// Whether this empty poll reads the producers' `tail`: one in [`LOOK_EVERY`] of this
    /// handle's (see "Empty polls" in `algo.rs`).
    fn look_at_tail(&self) -> bool {
        // Relaxed load and store, not an RMW: a process-local count whose lost increments
        // (two threads polling one handle) only shift which poll looks.
        let n = self.polls.load(Relaxed);
        self.polls.store(n.wrapping_add(1), Relaxed);
        n % LOOK_EVERY == 0
    }

    /// Pops, waiting while the queue is empty.
    ///
    /// # Errors
    /// [`PopError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(2)?;
    /// q.push(3)?;
    /// assert_eq!(q.pop()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> Result<T, PopError> {
        self.core().pop_until(Limit::Forever).map_err(pop_error)
    }

    /// Pops, waiting at most `timeout` (`Duration::MAX`: forever).
    ///
    /// # Errors
    /// [`PopTimeoutError::Timeout`], [`PopTimeoutError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::ArrayQueue::<u8>::new(2)?;
    /// assert!(q.pop_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopTimeoutError> {
        self.core().pop_until(Limit::timeout(timeout)).map_err(pop_timeout_error)
    }

    /// Pops, waiting until `deadline`.
    ///
    /// # Errors
    /// [`PopTimeoutError::Timeout`], [`PopTimeoutError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::new(2)?;
    /// assert!(q.pop_deadline(std::time::Instant::now()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_deadline(&self, deadline: Instant) -> Result<T, PopTimeoutError> {
        self.core().pop_until(Limit::deadline(deadline)).map_err(pop_timeout_error)
    }

    /// The shared header and slot stamps, for tests that play a corrupt or dying peer.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn debug_state(&self) -> ArrayQueueDebug<'_, T> {
        ArrayQueueDebug { q: self }
    }
}

/// Test hooks of an [`ArrayQueue`] (hidden; not a stable API): write raw values into its shared
/// state, as a crashed or hostile peer could.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
#[derive(Debug)]
pub struct ArrayQueueDebug<'a, T: ShmSafe> {
    q: &'a ArrayQueue<T>,
}

#[cfg(feature = "test-hooks")]
impl<T: ShmSafe> ArrayQueueDebug<'_, T> {
    /// Overwrites `head` and `tail`.
    pub fn set_indices(&self, head: Option<u64>, tail: Option<u64>) {
        self.q.core().set_indices(head, tail);
    }

    /// Overwrites slot `i`'s stamp.
    pub fn set_stamp(&self, i: usize, stamp: u64) {
        self.q.core().set_stamp(i, stamp);
    }

    /// Plays a producer (`push`) or consumer that claimed the next position, recorded itself
    /// as `(pid, start)` (`pid` 0: did not record itself) and then died.
    pub fn claim_as(&self, push: bool, pid: u32, start: u64) {
        self.q.core().claim_as(push, pid, start);
    }

    /// `(head, tail)`.
    pub fn indices(&self) -> (u64, u64) {
        self.q.core().indices()
    }
}

impl<T: ShmSafe> crate::shm::Named for ArrayQueue<T> {
    const KIND: crate::shm::ObjectKind = crate::shm::ObjectKind::ArrayQueue;

    fn type_info() -> crate::shm::TypeInfo {
        crate::shm::TypeInfo::plain::<T>()
    }

    /// The capacity comes from shared memory: it is checked against the segment (the slots
    /// must lie inside it), and from then on held in process memory.
    fn from_named(seg: &Segment, w: &crate::shm::Words) -> Result<Self, ShmError> {
        let cap = crate::shm::word_usize(w[2])?;
        if cap == 0 {
            return Err(ShmError::Corrupt { what: "ArrayQueue capacity 0" });
        }
        let hdr = seg.object_at(crate::shm::word_usize(w[0])?)?;
        let slots = seg.elements_at::<Slot<T>>(crate::shm::word_usize(w[1])?, cap)?;
        Ok(ArrayQueue {
            hdr,
            slots,
            cap,
            // Any value is a valid choice of mode: checksums fail loudly if it is not the creator's.
            crc: w[3] & 1 != 0,
            _seg: seg.clone(),
            polls: AtomicU32::new(0),
            #[cfg(feature = "async")]
            ready: Default::default(),
        })
    }

    fn segment(&self) -> &Segment {
        &self._seg
    }

    fn words(&self) -> crate::shm::Words {
        let slots = self._seg.offset_of(self.slots.as_ptr()).unwrap_or(0);
        [self.hdr.offset() as u64, slots as u64, self.cap as u64, u64::from(self.crc), 0, 0]
    }
}
