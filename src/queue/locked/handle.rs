//! `Queue<T>`: the handle, its state queries, and typed `put`/`get` (made in `builder.rs`).

use super::state::LockedRing;
use super::QueueFail;
#[cfg(feature = "serde")]
use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError};
use crate::loom::atomic::{AtomicBool, Ordering::Relaxed};
use crate::shm::Segment;
#[cfg(feature = "serde")]
use crate::wait::Limit;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
#[cfg(feature = "serde")]
use std::time::{Duration, Instant};

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
    pub(super) ring: LockedRing,
    closed: Arc<AtomicBool>,
    /// This process's `ReadyFd` for the `async` methods.
    #[cfg(feature = "async")]
    pub(super) ready: Arc<crate::queue::ready::ReadyCache>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            #[cfg(feature = "async")]
            ready: self.ready.clone(),
            ..self.probe_clone()
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("qsize", &self.qsize()).field("capacity", &self.ring.capacity()).finish()
    }
}

impl<T> Queue<T> {
    pub(super) fn from_ring(ring: LockedRing) -> Queue<T> {
        Queue {
            ring,
            closed: Arc::new(AtomicBool::new(false)),
            #[cfg(feature = "async")]
            ready: Default::default(),
            _t: PhantomData,
        }
    }

    /// The item limit, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Queue::<u8>::new()?.maxsize(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn maxsize(&self) -> Option<usize> {
        self.ring.maxsize()
    }

    /// The ring's capacity in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Queue::<u8>::new()?.capacity_bytes(), multiproc::DEFAULT_CAPACITY);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity_bytes(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// How this handle's gets wait for an item from now on (see [`QueueBuilder::wait`](crate::QueueBuilder::wait)); a
    /// queue opened by name or received from another process starts with
    /// [`WaitStrategy::Park`](crate::WaitStrategy::Park).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Queue, WaitStrategy};
    /// let mut q = Queue::<u32>::new()?;
    /// q.set_wait(WaitStrategy::Spin);
    /// assert!(q.get_timeout(std::time::Duration::from_millis(2)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_wait(&mut self, strategy: crate::WaitStrategy) {
        self.ring.wait = strategy;
    }

    /// Number of items in the queue; exact as soon as a `put` or `get` has returned (QUE-B2).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// q.put(&1)?;
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.ring.count()
    }

    /// Whether the queue holds no items.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::Queue::<u8>::new()?.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::with_maxsize(1)?;
    /// q.put(&1)?;
    /// assert!(q.full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn full(&self) -> bool {
        self.maxsize().is_some_and(|m| self.qsize() >= m)
    }

    /// Closes this process's handle (and its clones): later `put`s and `get`s through it fail
    /// with [`PutError::Closed`] (QUE-7). Other processes are not affected, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// q.close();
    /// assert!(matches!(q.put(&1), Err(multiproc::PutError::Closed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        // Relaxed: a flag of this process's handles; nothing else is published with it.
        self.closed.store(true, Relaxed);
    }

    /// Shuts the queue down for every process (Python 3.13's `Queue.shutdown()`): further
    /// puts fail with [`PutError::ShutDown`] (blocked ones wake and fail too); gets take what
    /// is left, then fail with [`GetError::ShutDown`] instead of waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{GetError, PutError, Queue};
    ///
    /// let q = Queue::<u32>::new()?;
    /// q.put(&1)?;
    /// q.shutdown();
    /// assert!(matches!(q.put(&2), Err(PutError::ShutDown)));
    /// assert_eq!(q.get()?, 1); // what was put is still there
    /// assert!(matches!(q.get(), Err(GetError::ShutDown)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        self.ring.shutdown(false);
    }

    /// Shuts the queue down and drops every item in it (Python 3.13's
    /// `Queue.shutdown(immediate=True)`): as [`shutdown`](Self::shutdown), and gets fail at
    /// once; a [`JoinableQueue`](crate::JoinableQueue)'s `join` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u32>::new()?;
    /// q.put(&1)?;
    /// q.shutdown_immediate();
    /// assert!(q.empty());
    /// assert!(q.get().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_immediate(&self) {
        self.ring.shutdown(true);
    }

    /// Whether the queue was shut down, by any process.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u32>::new()?;
    /// assert!(!q.is_shutdown());
    /// q.shutdown();
    /// assert!(q.is_shutdown());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.ring.is_shutdown()
    }

    /// See `LockedRing::announce_not_empty` (for `wait`).
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce_not_empty(&self) -> (&crate::loom::atomic::AtomicU32, u32) {
        self.ring.announce_not_empty()
    }

    /// A clone for a `ReadyFd` watcher: the same queue and closed flag, but not the `async`
    /// methods' cache, which owns the watcher (sharing it would make a cycle that keeps the
    /// watcher, and the handle, alive for ever).
    pub(super) fn probe_clone(&self) -> Queue<T> {
        Queue {
            ring: self.ring.clone(),
            closed: self.closed.clone(),
            #[cfg(feature = "async")]
            ready: Default::default(),
            _t: PhantomData,
        }
    }

    pub(crate) fn check_open(&self) -> Result<(), QueueFail> {
        // Relaxed: see `close`.
        if self.closed.load(Relaxed) {
            Err(QueueFail::Closed)
        } else {
            Ok(())
        }
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Queue<T> {
    /// A blocking iterator over the items (see [`QueueIter`](crate::QueueIter)): it ends
    /// when this handle is [`close`](Self::close)d (looked at before each item). To end when
    /// the producers are gone, [`split`](Self::split) the queue and iterate the
    /// [`Consumer`](crate::Consumer).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u32>::new()?;
    /// for i in 0..5 {
    ///     q.put(&i)?;
    /// }
    /// let firsts: Vec<u32> = q.iter().take(3).collect::<Result<_, _>>()?;
    /// assert_eq!(firsts, [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> super::QueueIter<'_, T> {
        super::QueueIter::new(move |l| self.get_until(l), false)
    }

    /// An iterator over the items there now, without blocking: it ends at the first `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u32>::new()?;
    /// q.put(&1)?;
    /// q.put(&2)?;
    /// assert_eq!(q.try_iter().collect::<Result<Vec<_>, _>>()?, [1, 2]);
    /// assert!(q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> super::QueueIter<'_, T> {
        super::QueueIter::new(move |l| self.get_until(l), true)
    }

    /// Puts `value`, blocking while the queue is full (Python's `put(obj)`). The value is
    /// encoded first: once `put` returns, it is in shared memory, whatever `value` becomes.
    ///
    /// # Errors
    /// [`PutError::Closed`], [`PutError::Encode`] (nothing was put),
    /// [`PutError::TooLarge`] (can never fit), [`PutError::Os`], [`PutError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<Vec<u32>>::new()?;
    /// q.put(&vec![1, 2])?;
    /// assert_eq!(q.get()?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: &T) -> Result<(), PutError> {
        self.put_until(value, Limit::Forever).map_err(QueueFail::put)
    }

    /// Puts `value` if there is room now (Python's `put(obj, False)` / `put_nowait`);
    /// [`TryPutError::Full`] if not.
    ///
    /// # Errors
    /// As [`put`](Self::put), plus `Full`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::with_maxsize(1)?;
    /// q.try_put(&1)?;
    /// assert!(matches!(q.try_put(&2), Err(multiproc::TryPutError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&self, value: &T) -> Result<(), TryPutError> {
        self.put_until(value, Limit::Now).map_err(QueueFail::try_put)
    }

    /// Puts `value`, waiting at most `timeout` for room (Python's `put(obj, timeout=t)`);
    /// [`PutTimeoutError::Timeout`] after that. `Duration::MAX` waits forever.
    ///
    /// # Errors
    /// As [`put`](Self::put), plus `Full`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::Queue::<u8>::with_maxsize(1)?;
    /// q.put_timeout(&1, Duration::from_millis(10))?;
    /// assert!(q.put_timeout(&2, Duration::from_millis(10)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, value: &T, timeout: Duration) -> Result<(), PutTimeoutError> {
        self.put_until(value, Limit::timeout(timeout)).map_err(QueueFail::put_timeout)
    }

    /// Puts `value`, waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put`](Self::put), plus `Full`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let q = multiproc::Queue::<u8>::new()?;
    /// q.put_deadline(&1, Instant::now() + Duration::from_secs(1))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_deadline(&self, value: &T, deadline: Instant) -> Result<(), PutTimeoutError> {
        self.put_until(value, Limit::deadline(deadline)).map_err(QueueFail::put_timeout)
    }

    fn put_until(&self, value: &T, limit: Limit) -> Result<(), QueueFail> {
        let payload = crate::codec::encode(value).map_err(QueueFail::Encode)?;
        self.put_encoded(&payload, limit)
    }

    /// Puts an already encoded item.
    pub(super) fn put_encoded(&self, payload: &[u8], limit: Limit) -> Result<(), QueueFail> {
        self.check_open()?;
        self.ring.put_record(payload.len() as u64, limit, |w| w.write(0, payload))
    }

    /// Removes and returns the oldest item, blocking while the queue is empty (Python's `get()`).
    ///
    /// # Errors
    /// [`GetError::Closed`], [`GetError::Decode`] (the bad item is removed),
    /// [`GetError::Os`], [`GetError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<String>::new()?;
    /// q.put(&"x".to_string())?;
    /// assert_eq!(q.get()?, "x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(Limit::Forever).map_err(QueueFail::get)
    }

    /// Removes the oldest item if there is one (Python's `get(False)` / `get_nowait`);
    /// [`TryGetError::Empty`] if not.
    ///
    /// # Errors
    /// As [`get`](Self::get), plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// assert!(matches!(q.try_get(), Err(multiproc::TryGetError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.get_until(Limit::Now).map_err(QueueFail::try_get)
    }

    /// Waits at most `timeout` for an item (Python's `get(timeout=t)`); [`GetTimeoutError::Timeout`]
    /// after that. `Duration::MAX` waits forever.
    ///
    /// # Errors
    /// As [`get`](Self::get), plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::Queue::<u8>::new()?;
    /// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(multiproc::GetTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_until(Limit::timeout(timeout)).map_err(QueueFail::get_timeout)
    }

    /// Waits until `deadline` for an item.
    ///
    /// # Errors
    /// As [`get`](Self::get), plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let q = multiproc::Queue::<u8>::new()?;
    /// q.put(&3)?;
    /// assert_eq!(q.get_deadline(Instant::now() + Duration::from_secs(1))?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.get_until(Limit::deadline(deadline)).map_err(QueueFail::get_timeout)
    }

    pub(super) fn get_until(&self, limit: Limit) -> Result<T, QueueFail> {
        self.check_open()?;
        let bytes = self.ring.get_record(limit, |r| {
            let mut payload = Vec::new();
            r.read_append(0, r.len as usize, &mut payload);
            Ok(payload)
        })?;
        crate::codec::decode(&bytes).map_err(QueueFail::Decode)
    }
}

impl<T> crate::shm::Named for Queue<T> {
    const KIND: crate::shm::ObjectKind = crate::shm::ObjectKind::Queue;

    fn type_info() -> crate::shm::TypeInfo {
        crate::shm::TypeInfo::encoded::<T>()
    }

    fn from_named(seg: &Segment, w: &crate::shm::Words) -> Result<Self, crate::ShmError> {
        Ok(Queue::from_ring(LockedRing::open_in(seg, w)?))
    }

    fn segment(&self) -> &Segment {
        self.ring.segment()
    }

    fn words(&self) -> crate::shm::Words {
        self.ring.words()
    }
}
