//! `ArrayQueue::ready_fd` and (feature `async`) `pop_async`.

use super::ArrayQueue;
use crate::queue::ready::{ReadyFd, Watched};
use crate::shm::ShmSafe;

impl<T: ShmSafe + 'static> ArrayQueue<T> {
    /// A descriptor that becomes readable when an item may be there (see
    /// [`Queue::ready_fd`](crate::Queue::ready_fd) and [`ReadyFd`]). Producers keep their
    /// system-call-free fast path: they wake the watcher only while it sleeps.
    ///
    /// # Errors
    /// The OS errors of making an eventfd or a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u64>::new(8)?;
    /// let ready = q.ready_fd()?;
    /// q.try_push(1)?;
    /// let t = std::time::Instant::now();
    /// while !ready.is_signaled() && t.elapsed().as_secs() < 5 {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(q.try_pop()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready_fd(&self) -> std::io::Result<ReadyFd> {
        ReadyFd::watch(Watched(self.probe_clone()))
    }

    /// Pops an item, as a future that any executor can run (see
    /// [`Queue::get_async`](crate::Queue::get_async)).
    ///
    /// # Errors
    /// [`PopError::Corrupt`](super::PopError::Corrupt), [`PopError::Os`](super::PopError::Os)
    /// (the watcher could not be started).
    #[cfg(feature = "async")]
    pub async fn pop_async(&self) -> Result<T, super::PopError> {
        loop {
            match self.try_pop() {
                Ok(v) => return Ok(v),
                Err(super::TryPopError::Empty) => {}
                Err(super::TryPopError::Corrupt(what)) => return Err(super::PopError::Corrupt(what)),
                Err(super::TryPopError::Os(e)) => return Err(super::PopError::Os(e)),
            }
            let fd = self.ready.get(|| self.ready_fd()).map_err(super::PopError::Os)?;
            fd.readable().await;
        }
    }
}

/// Ready when a pop has something to do: an item at the head (not merely a claimed position),
/// a dead producer's claim to recover, or a corrupt state to report (`Core::pop_ready`).
impl<T: crate::shm::ShmSafe> crate::wait::Waitable for super::ArrayQueue<T> {
    fn is_ready(&self) -> bool {
        self.core().pop_ready()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        let (word, v) = self.announce_not_empty();
        Some(crate::wait::WaitWord::new(word, v))
    }
}
