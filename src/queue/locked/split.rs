//! [`Queue::split`]: a producer-only and a consumer-only handle, and disconnection.
//!
//! # Design
//! Who is still there is counted by the kernel, as a [`Pipe`](crate::Pipe)'s peer is: each side
//! owns the write end of its own liveness pipe(2) and the read end of the other side's. Every
//! copy of a handle, in every process (a fork copies descriptors, a spawn or `send_object`
//! passes them), keeps its side's write end open; when the last copy is closed, by a drop or
//! by the death of the last process that held one, the other side's read end reports
//! `POLLHUP`. No shared counter can be left wrong by a SIGKILL.
//!
//! Asking the kernel costs a `poll(2)`, so the hot paths ask at most once per coarse clock tick
//! (≈ 4 ms), and always before reporting `Empty`, `Full` or a time-out. A blocked call sleeps in
//! slices of [`LOOK_AGAIN`] and asks again after each; a *dropped* side also wakes the other's
//! sleepers at once (a death wakes nobody, so it is noticed within one slice).
//!
//! A consumer reports [`GetError::Disconnected`](crate::GetError::Disconnected) only when it saw the hang-up *before*
//! finding the queue empty: every `put` of a gone producer returned before its descriptor was
//! closed, so nothing it put is ever lost to a disconnection.

use super::state::LockedRing;
use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, QueueFail, TryGetError, TryPutError};
use crate::loom::atomic::{
    AtomicBool, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::shm::ShmError;
use crate::sys::clock::coarse_nanos;
use crate::sys::process::{pipe_cloexec, poll_now};
use crate::wait::Limit;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a blocked call of a split handle sleeps before asking whether the other side is
/// still there.
const LOOK_AGAIN: Duration = Duration::from_millis(20);

/// Which side a [`Side`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
}

/// One process's hold on one side of a split queue (shared by that process's clones).
struct Side {
    role: Role,
    /// Write end of this side's liveness pipe (`None` once dropped).
    alive: Option<OwnedFd>,
    /// Read end of the other side's liveness pipe: `POLLHUP` once every copy of its write end
    /// is closed.
    peer: OwnedFd,
    /// Sticky: the other side was seen gone.
    peer_gone: AtomicBool,
    /// The coarse clock when the kernel was last asked.
    last_look: AtomicU64,
    /// The other side's drop count (in shared memory) when the kernel was last asked.
    seen_drops: AtomicU32,
    /// The queue's ring, to wake the other side's sleepers when this side goes.
    ring: LockedRing,
}

impl Side {
    /// Whether every handle of the other side is gone. Asks the kernel when `force`d or when
    /// a coarse clock tick passed since the last time; otherwise costs two loads.
    fn peer_gone(&self, force: bool) -> bool {
        // Acquire/Release: a thread that sees the flag also sees what its setter saw.
        if self.peer_gone.load(Acquire) {
            return true;
        }
        // A handle of the other side let go in some process since we last asked: ask now, so
        // that a drop is seen by the very next call (a death bumps nothing: it is seen within
        // a tick, or a slice when blocked).
        // SYNC(acquire ← the Release bump in `Side::drop`, made after its descriptor closed).
        let drops = self.other_drops().load(Acquire);
        // Relaxed: this process's own record, compared and set here only. A load first, and a
        // store only when the count moved: no read-modify-write on every call (threads racing
        // here at most ask the kernel once more).
        let moved = drops != self.seen_drops.load(Relaxed);
        if moved {
            self.seen_drops.store(drops, Relaxed);
        }
        let force = force || moved;
        let now = coarse_nanos();
        // Relaxed: a rate limit only. A load first, so that the common case (asked already in
        // this tick) writes nothing that other threads' caches would have to fetch back.
        if !force && self.last_look.load(Relaxed) == now {
            return false;
        }
        self.last_look.store(now, Relaxed);
        let hup = poll_now(self.peer.as_fd(), libc::POLLIN) & (libc::POLLHUP | libc::POLLERR) != 0;
        if hup {
            self.peer_gone.store(true, Release);
        }
        hup
    }
}

impl Side {
    /// The drop counter of the other side's role.
    fn other_drops(&self) -> &AtomicU32 {
        match self.role {
            Role::Producer => &self.ring.state.consumer_drops,
            Role::Consumer => &self.ring.state.producer_drops,
        }
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        // Close first, then bump and wake: whoever sees the bump, or is woken, and asks the
        // kernel sees this copy gone.
        drop(self.alive.take());
        let mine = match self.role {
            Role::Producer => &self.ring.state.producer_drops,
            Role::Consumer => &self.ring.state.consumer_drops,
        };
        // SYNC(release → peer_gone's acquire load).
        mine.fetch_add(1, Release);
        match self.role {
            Role::Producer => self.ring.wake_getters(),
            Role::Consumer => self.ring.wake_putters(),
        }
    }
}

/// The sending half of a [`split`](Queue::split) queue: it can only put, and learns when no
/// [`Consumer`] is left ([`PutError::Disconnected`]).
///
/// Clone it for more producers, in this process or (by fork, spawn arguments or
/// [`Connection::send_object`](crate::Connection::send_object)) in others: the consumers see
/// `Disconnected` once every copy everywhere is dropped or its process is dead.
///
/// # Examples
///
/// ```
/// let (tx, rx) = multiproc::Queue::<u32>::new()?.split()?;
/// tx.put(&1)?;
/// drop(tx);
/// assert_eq!(rx.get()?, 1);
/// assert!(matches!(rx.get(), Err(multiproc::GetError::Disconnected)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer<T> {
    queue: Queue<T>,
    side: Arc<Side>,
}

/// The receiving half of a [`split`](Queue::split) queue: it can only get, and learns when
/// every [`Producer`] is gone ([`GetError::Disconnected`], after the last item).
///
/// # Examples
///
/// ```
/// let (tx, rx) = multiproc::Queue::<u32>::new()?.split()?;
/// drop(rx);
/// assert!(matches!(tx.put(&1), Err(multiproc::PutError::Disconnected)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer<T> {
    queue: Queue<T>,
    side: Arc<Side>,
    /// This process's `ReadyFd` for `get_async` (shared by clones; not by the watcher's own
    /// clone, see `probe_clone`).
    #[cfg(feature = "async")]
    ready: Arc<crate::queue::ready::ReadyCache>,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer { queue: self.queue.clone(), side: self.side.clone() }
    }
}

impl<T> Clone for Consumer<T> {
    fn clone(&self) -> Self {
        Consumer {
            #[cfg(feature = "async")]
            ready: self.ready.clone(),
            ..self.probe_clone()
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("queue", &self.queue).finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("queue", &self.queue).finish_non_exhaustive()
    }
}

fn side(role: Role, alive: OwnedFd, peer: OwnedFd, ring: LockedRing) -> Arc<Side> {
    Arc::new(Side {
        role,
        alive: Some(alive),
        peer,
        peer_gone: AtomicBool::new(false),
        last_look: AtomicU64::new(0),
        // Relaxed: the count now; any value would do (a stale one only makes the first call
        // ask the kernel).
        seen_drops: AtomicU32::new(match role {
            Role::Producer => ring.state.consumer_drops.load(Relaxed),
            Role::Consumer => ring.state.producer_drops.load(Relaxed),
        }),
        ring,
    })
}

impl<T> Queue<T> {
    /// Splits this handle into a producer-only and a consumer-only handle, so that a type says
    /// who may do what, and each side learns when the other is gone: a consumer gets
    /// [`GetError::Disconnected`] once the queue is empty and every producer was dropped or
    /// died, a producer once every consumer was (as a [`Pipe`](crate::Pipe) reader gets end of
    /// file). Other clones of this `Queue` keep working but are neither: only split handles are
    /// counted.
    ///
    /// # Errors
    /// [`ShmError::Os`] if the liveness pipes cannot be made (descriptor limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{GetError, Process, PutError, Queue};
    ///
    /// let (tx, rx) = Queue::<u32>::new()?.split()?;
    /// let child = Process::new(move || -> Result<(), PutError> {
    ///     for i in 0..3 {
    ///         tx.put(&i)?;
    ///     }
    ///     Ok(()) // the child's producer goes with it
    /// });
    /// child.start()?; // the parent's copy of `tx` is dropped once the child is started
    /// let got: Result<Vec<u32>, GetError> = rx.iter().collect();
    /// assert_eq!(got?, [0, 1, 2]); // ends when every producer is gone
    /// child.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn split(&self) -> Result<(Producer<T>, Consumer<T>), ShmError> {
        let (prod_r, prod_w) = pipe_cloexec().map_err(ShmError::Os)?;
        let (cons_r, cons_w) = pipe_cloexec().map_err(ShmError::Os)?;
        let p = Producer { queue: self.clone(), side: side(Role::Producer, prod_w, cons_r, self.ring.clone()) };
        let c = Consumer {
            side: side(Role::Consumer, cons_w, prod_r, self.ring.clone()),
            queue: self.clone(),
            #[cfg(feature = "async")]
            ready: Default::default(),
        };
        Ok((p, c))
    }
}

impl<T> Producer<T> {
    /// Items in the queue now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// tx.put(&1)?;
    /// assert_eq!(tx.qsize(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether every [`Consumer`] is gone (dropped, or its process dead). Asks the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// assert!(!tx.is_disconnected());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.side.peer_gone(true)
    }

    /// The two descriptors that travel with this handle (this side's write end, the peer's
    /// read end), for spawn and `send_object`.
    pub(crate) fn fds(&self) -> (BorrowedFd<'_>, BorrowedFd<'_>) {
        (self.side.alive.as_ref().expect("alive until dropped").as_fd(), self.side.peer.as_fd())
    }

    /// A producer received from another process.
    pub(crate) fn from_fds(queue: Queue<T>, alive: OwnedFd, peer: OwnedFd) -> Producer<T> {
        let ring = queue.ring.clone();
        Producer { queue, side: side(Role::Producer, alive, peer, ring) }
    }

    /// The queue underneath (for shipping it).
    pub(crate) fn queue(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> Consumer<T> {
    /// Items in the queue now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// tx.put(&1)?;
    /// assert_eq!(rx.qsize(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether the queue holds no items.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// assert!(rx.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// Whether every [`Producer`] is gone (dropped, or its process dead). Items they put may
    /// still be waiting: `get` returns those first. Asks the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// tx.put(&1)?;
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// assert_eq!(rx.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.side.peer_gone(true)
    }

    /// See [`Producer::fds`].
    pub(crate) fn fds(&self) -> (BorrowedFd<'_>, BorrowedFd<'_>) {
        (self.side.alive.as_ref().expect("alive until dropped").as_fd(), self.side.peer.as_fd())
    }

    /// A consumer received from another process.
    pub(crate) fn from_fds(queue: Queue<T>, alive: OwnedFd, peer: OwnedFd) -> Consumer<T> {
        let ring = queue.ring.clone();
        Consumer {
            queue,
            side: side(Role::Consumer, alive, peer, ring),
            #[cfg(feature = "async")]
            ready: Default::default(),
        }
    }

    /// The queue underneath (for shipping it, and for `wait`).
    pub(crate) fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    /// This process's `ReadyFd` cache (`get_async`).
    #[cfg(feature = "async")]
    pub(super) fn ready_cache(&self) -> &crate::queue::ready::ReadyCache {
        &self.ready
    }

    /// A clone for a `ReadyFd` watcher, without the cache that owns the watcher (see
    /// `Queue::probe_clone`).
    pub(super) fn probe_clone(&self) -> Consumer<T> {
        Consumer {
            queue: self.queue.probe_clone(),
            side: self.side.clone(),
            #[cfg(feature = "async")]
            ready: Default::default(),
        }
    }

    /// Whether a `get` would not block: an item is there, or every producer is gone.
    pub(crate) fn ready_now(&self) -> bool {
        !self.queue.empty() || self.queue.is_shutdown() || self.side.peer_gone(false)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Consumer<T> {
    /// `get` until `limit`, in slices that look at the producers.
    fn get_limit(&self, limit: Limit) -> Result<T, QueueFail> {
        let mut force = false;
        loop {
            // Asked before looking at the queue: a hang-up seen here came after every put of
            // the producers that are gone.
            let gone = self.side.peer_gone(force);
            match self.queue.get_until(Limit::Now) {
                Err(QueueFail::Empty) => {}
                r => return r,
            }
            if gone {
                return Err(QueueFail::Disconnected);
            }
            if limit.passed() {
                if !force {
                    force = true;
                    continue; // one authoritative look before reporting Empty
                }
                return Err(QueueFail::Empty);
            }
            match self.queue.get_until(slice(limit)) {
                Err(QueueFail::Empty) => force = true,
                r => return r,
            }
        }
    }
}

/// One bounded sleep of a blocked split-handle call.
fn slice(limit: Limit) -> Limit {
    limit.slice(LOOK_AGAIN).map_or(Limit::Forever, Limit::Until)
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Producer<T> {
    /// Puts `value`, blocking while the queue is full.
    ///
    /// # Errors
    /// [`PutError::Disconnected`] (no consumer is left: nothing was put), and those of
    /// [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = multiproc::Queue::<String>::new()?.split()?;
    /// tx.put(&"hi".to_string())?;
    /// assert_eq!(rx.get()?, "hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: &T) -> Result<(), PutError> {
        self.put_limit(value, Limit::Forever).map_err(QueueFail::put)
    }

    /// Puts `value` if there is room now.
    ///
    /// # Errors
    /// [`TryPutError::Full`], [`TryPutError::Disconnected`], and those of [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = multiproc::Queue::<u8>::with_maxsize(1)?.split()?;
    /// tx.try_put(&1)?;
    /// assert!(matches!(tx.try_put(&2), Err(multiproc::TryPutError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&self, value: &T) -> Result<(), TryPutError> {
        self.put_limit(value, Limit::Now).map_err(QueueFail::try_put)
    }

    /// Puts `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] when the time is up, [`PutTimeoutError::Disconnected`], and those of
    /// [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = multiproc::Queue::<u8>::with_maxsize(1)?.split()?;
    /// tx.put(&1)?;
    /// assert!(matches!(tx.put_timeout(&2, Duration::from_millis(10)), Err(multiproc::PutTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, value: &T, timeout: Duration) -> Result<(), PutTimeoutError> {
        self.put_limit(value, Limit::timeout(timeout)).map_err(QueueFail::put_timeout)
    }

    /// Puts `value`, waiting for room until `deadline`.
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// tx.put_deadline(&1, Instant::now() + Duration::from_secs(1))?;
    /// assert_eq!(rx.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_deadline(&self, value: &T, deadline: Instant) -> Result<(), PutTimeoutError> {
        self.put_limit(value, Limit::deadline(deadline)).map_err(QueueFail::put_timeout)
    }

    fn put_limit(&self, value: &T, limit: Limit) -> Result<(), QueueFail> {
        let payload = crate::codec::encode(value).map_err(QueueFail::Encode)?;
        let mut force = false;
        loop {
            if self.side.peer_gone(force) {
                return Err(QueueFail::Disconnected);
            }
            let step = if limit.is_now() { Limit::Now } else { slice(limit) };
            match self.queue.put_encoded(&payload, step) {
                Err(QueueFail::Full) if !limit.passed() => force = true,
                Err(QueueFail::Full) if !force => force = true, // one last look
                r => return r,
            }
        }
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Consumer<T> {
    /// Removes and returns the oldest item, blocking while the queue is empty and some
    /// producer is still there.
    ///
    /// # Errors
    /// [`GetError::Disconnected`] (empty, and every producer is gone), and those of
    /// [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// tx.put(&5)?;
    /// assert_eq!(rx.get()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_limit(Limit::Forever).map_err(QueueFail::get)
    }

    /// Removes and returns the oldest item if there is one now.
    ///
    /// # Errors
    /// [`TryGetError::Empty`], [`TryGetError::Disconnected`], and those of [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// assert!(matches!(rx.try_get(), Err(multiproc::TryGetError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.get_limit(Limit::Now).map_err(QueueFail::try_get)
    }

    /// Removes and returns the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`] when the time is up, [`GetTimeoutError::Disconnected`], and those of
    /// [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// assert!(matches!(rx.get_timeout(Duration::from_millis(10)), Err(multiproc::GetTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_limit(Limit::timeout(timeout)).map_err(QueueFail::get_timeout)
    }

    /// Removes and returns the oldest item, waiting until `deadline`.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// tx.put(&1)?;
    /// assert_eq!(rx.get_deadline(Instant::now() + Duration::from_secs(1))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.get_limit(Limit::deadline(deadline)).map_err(QueueFail::get_timeout)
    }

    /// A blocking iterator over the items, ending when every producer is gone and the queue
    /// is empty (see [`Iter`](crate::QueueIter)).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// for i in 0..3 {
    ///     tx.put(&i)?;
    /// }
    /// drop(tx);
    /// let items: Vec<u8> = rx.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(items, [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> super::iter::QueueIter<'_, T> {
        super::iter::QueueIter::new(move |l| self.get_limit(l), false)
    }

    /// An iterator over the items there now, without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// tx.put(&1)?;
    /// tx.put(&2)?;
    /// assert_eq!(rx.try_iter().collect::<Result<Vec<_>, _>>()?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> super::iter::QueueIter<'_, T> {
        super::iter::QueueIter::new(move |l| self.get_limit(l), true)
    }
}
