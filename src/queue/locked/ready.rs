//! `ready_fd()` for the `Queue` family and split consumers, and (feature `async`) their
//! `get_async` (see `queue/ready.rs` for the watcher underneath).

#[cfg(all(feature = "async", feature = "serde"))]
use super::{GetError, TryGetError};
use super::{Queue, SimpleQueue};
use crate::queue::ready::{ReadyFd, Watched};

impl<T: 'static> Queue<T> {
    /// A descriptor that becomes readable when an item may be there, for epoll, mio or tokio's
    /// `AsyncFd` (see [`ReadyFd`] for the protocol: receive with `try_get` until empty, then
    /// [`rearm`](ReadyFd::rearm)). It starts a watcher thread in this process, which leaves
    /// when the `ReadyFd` is dropped. The watcher holds a clone of the queue until then: a
    /// consumer side's producers are not told `Disconnected`, and a named queue keeps its name,
    /// while the `ReadyFd` lives.
    ///
    /// # Errors
    /// The OS errors of making an eventfd or a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// let ready = q.ready_fd()?;
    /// q.put(&1)?;
    /// let t = std::time::Instant::now();
    /// while !ready.is_signaled() && t.elapsed().as_secs() < 5 {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(q.try_get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready_fd(&self) -> std::io::Result<ReadyFd> {
        ReadyFd::watch(Watched(self.probe_clone()))
    }
}

impl<T: 'static> SimpleQueue<T> {
    /// As [`Queue::ready_fd`].
    ///
    /// # Errors
    /// As [`Queue::ready_fd`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// let _ready = q.ready_fd()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready_fd(&self) -> std::io::Result<ReadyFd> {
        ReadyFd::watch(Watched(self.as_queue().probe_clone()))
    }
}

#[cfg(feature = "serde")]
impl<T: 'static> super::Consumer<T> {
    /// As [`Queue::ready_fd`]; the descriptor also becomes readable when every producer is
    /// gone (within about 50 ms of a producer's death).
    ///
    /// # Errors
    /// As [`Queue::ready_fd`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = multiproc::Queue::<u8>::new()?.split()?;
    /// let _ready = rx.ready_fd()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready_fd(&self) -> std::io::Result<ReadyFd> {
        ReadyFd::watch(Watched(self.probe_clone()))
    }
}

/// `get` as a future: try, and on empty await the watcher and try again.
#[cfg(all(feature = "async", feature = "serde"))]
async fn get_async<T>(
    cache: &crate::queue::ready::ReadyCache,
    try_get: impl Fn() -> Result<T, TryGetError>,
    make: impl Fn() -> std::io::Result<ReadyFd>,
) -> Result<T, GetError> {
    loop {
        match try_get() {
            Ok(v) => return Ok(v),
            Err(e) => {
                // `None`: empty, so wait for the watcher.
                if let Some(e) = e.failure() {
                    return Err(e);
                }
            }
        }
        let fd = cache.get(&make).map_err(GetError::Os)?;
        // Between the empty `try_get` and here an item may have come: the watcher, armed,
        // sees it and resolves the future at once.
        fd.readable().await;
    }
}

#[cfg(all(feature = "async", feature = "serde"))]
impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Queue<T> {
    /// Removes and returns the oldest item, as a future that any executor can run: it never
    /// blocks a thread (a watcher thread sleeps on the queue for it; see [`ReadyFd`]).
    ///
    /// # Errors
    /// As [`Queue::get`], plus [`GetError::Os`] if the watcher cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u32>::new()?;
    /// q.put(&5)?;
    /// let got = futures_lite_block_on(q.get_async());
    /// assert_eq!(got?, 5);
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } std::thread::yield_now() }
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn get_async(&self) -> Result<T, GetError> {
        get_async(&self.ready, || self.try_get(), || self.ready_fd()).await
    }
}

#[cfg(all(feature = "async", feature = "serde"))]
impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> SimpleQueue<T> {
    /// As [`Queue::get_async`].
    ///
    /// # Errors
    /// As [`Queue::get_async`].
    pub async fn get_async(&self) -> Result<T, GetError> {
        self.as_queue().get_async().await
    }
}

#[cfg(all(feature = "async", feature = "serde"))]
impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> super::Consumer<T> {
    /// As [`Queue::get_async`], ending with [`GetError::Disconnected`] once the queue is
    /// empty and every producer is gone.
    ///
    /// # Errors
    /// As [`Consumer::get`](super::Consumer::get), plus [`GetError::Os`].
    pub async fn get_async(&self) -> Result<T, GetError> {
        get_async(self.ready_cache(), || self.try_get(), || self.ready_fd()).await
    }
}

/// Ready when an item is there, when this handle was closed, or when the queue was shut
/// down (a `get` would not block: it would fail at once). Positions that say records are there
/// count too, whatever the item count says (a corrupt count must not put a waiter to sleep
/// for ever while the `get` it waits for would find an item, or the corruption).
impl<T> crate::wait::Waitable for super::Queue<T> {
    fn is_ready(&self) -> bool {
        !self.empty() || self.ring.positions_differ() || self.check_open().is_err() || self.is_shutdown()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        let (word, v) = self.announce_not_empty();
        Some(crate::wait::WaitWord::new(word, v))
    }
}

/// As [`Queue`](super::Queue)'s.
impl<T> crate::wait::Waitable for super::SimpleQueue<T> {
    fn is_ready(&self) -> bool {
        self.as_queue().is_ready()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        self.as_queue().announce_waiter()
    }
}

/// As [`Queue`](super::Queue)'s.
impl<T> crate::wait::Waitable for super::JoinableQueue<T> {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        (**self).announce_waiter()
    }
}

/// Ready when an item is there, or every producer is gone (a `get` would not block). A
/// producer's drop wakes `wait` at once; a producer's death within about 20 ms.
#[cfg(feature = "serde")]
impl<T> crate::wait::Waitable for super::Consumer<T> {
    fn is_ready(&self) -> bool {
        self.ready_now()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        self.queue().announce_waiter()
    }
}

#[cfg(all(test, not(loom), feature = "serde"))]
mod tests {
    use crate::loom::atomic::Ordering::Relaxed;
    use crate::wait::Waitable;

    #[test]
    fn a_queue_whose_count_reads_zero_with_an_item_there_is_still_ready() {
        let q = crate::Queue::<u32>::new().unwrap();
        assert!(!q.is_ready());
        q.put(&5).unwrap();
        // A corrupt peer zeroes the item count: a waiter must still be woken (before, it slept
        // for ever while `get` would have found the item).
        // Relaxed: single-threaded test, written as a peer would.
        q.ring.state.count.store(0, Relaxed);
        assert!(q.empty());
        assert!(q.is_ready());
        assert_eq!(q.get().unwrap(), 5);
    }
}
