//! Async readiness: [`ReadyFd`], a descriptor that becomes readable when an object may have
//! something to receive (for epoll, mio, tokio's `AsyncFd`), and, with the `async` feature,
//! runtime-agnostic futures on top of it.
//!
//! # Design
//! Senders in other processes cannot write to a descriptor of ours, and making every send a
//! system call would cost the hot path its speed. So a watcher thread in the receiving process
//! stands in for the receiver: while *armed*, it checks the object, and if nothing is there it
//! announces itself on the object's futex word (the same sleeper flag a blocked `get` raises,
//! so senders make a system call only while someone is asleep) and sleeps on it. When the
//! object becomes ready, the watcher disarms it, makes the eventfd readable and wakes the
//! futures waiting on it; it then ignores the object until [`ReadyFd::rearm`], which the
//! receiver calls after it has drained the object (a non-blocking receive said empty).
//! Rearming makes the watcher look again at once, so an item that arrived between the drain and
//! the rearm is not missed. While disarmed an object costs nothing, and senders pay nothing
//! extra.
//!
//! One watcher thread serves many objects (`hub`): up to 127 per thread, all slept on in one
//! `futex_waitv(2)`, so an event loop watching 1,000 queues costs 8 threads, not 1,000. The
//! watcher sleeps in slices of 50 ms, so a sender that died between publishing and waking, or
//! a peer's death (a connection's end of file, a split queue's last producer), is noticed
//! within one slice. A `ReadyFd` belongs to the process that made it: threads do not survive
//! `fork`, so a child makes its own.

mod hub;

pub(crate) use hub::{lock_for_fork, Probe, Sleep};

use crate::loom::atomic::Ordering::{Acquire, Release};
use crate::wait::Waitable;
use hub::Entry;
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

/// Any [`Waitable`] handle the watcher can own (a clone of the user's).
pub(crate) struct Watched<W>(pub(crate) W);

impl<W: Waitable + Send + Sync + 'static> Probe for Watched<W> {
    fn ready(&self) -> bool {
        self.0.is_ready()
    }

    fn announce(&self) -> Option<(&crate::loom::atomic::AtomicU32, u32)> {
        #[cfg(not(all(test, loom)))]
        return self.0.announce_waiter().map(|w| w.parts());
        #[cfg(all(test, loom))]
        None
    }
}

/// A descriptor that becomes readable when its object may have something to receive: made by
/// `ready_fd()` on [`Queue`](crate::Queue), [`SimpleQueue`](crate::SimpleQueue),
/// [`JoinableQueue`](crate::JoinableQueue), [`ArrayQueue`](crate::ArrayQueue),
/// [`Consumer`](crate::Consumer) and [`Connection`](crate::Connection), for epoll, mio or
/// tokio's `AsyncFd`.
///
/// Readable means "look": receive with the non-blocking form until it reports empty, then
/// call [`rearm`](Self::rearm) (which also clears the readability) and wait again. A spurious
/// readability is possible (another consumer took the item); a lost one is not.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// let q = multiproc::Queue::<u32>::new()?;
/// let ready = q.ready_fd()?;
/// q.put(&1)?; // typically in another process
/// // Sleep in poll(2) until the watcher signals (an epoll or AsyncFd loop would do the same).
/// let mut fds = [nix::poll::PollFd::new(ready.as_fd(), nix::poll::PollFlags::POLLIN)];
/// nix::poll::poll(&mut fds, 5000u16)?;
/// assert_eq!(q.try_get()?, 1);
/// assert!(q.try_get().is_err()); // drained:
/// ready.rearm(); // wait for the next one
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReadyFd {
    entry: Arc<Entry>,
}

impl ReadyFd {
    /// A `ReadyFd` whose watcher thread owns `probe`.
    pub(crate) fn watch(probe: impl Probe) -> std::io::Result<ReadyFd> {
        let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(ReadyFd { entry: hub::register(Box::new(probe), efd)? })
    }

    /// Clears the readability and asks the watcher to look again. Call it after a
    /// non-blocking receive reported empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// let ready = q.ready_fd()?;
    /// ready.rearm();
    /// assert!(!ready.is_signaled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rearm(&self) {
        let e = &*self.entry;
        // Release: pairs with the watcher's Acquire load of `armed`.
        e.signaled.store(false, Release);
        let _ = e.efd.read(); // EAGAIN when it was not readable: nothing to clear
        e.armed.store(true, Release);
        e.group.poke();
    }

    /// Whether the watcher found the object ready since the last [`rearm`](Self::rearm).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// q.put(&1)?;
    /// let ready = q.ready_fd()?;
    /// let t = std::time::Instant::now();
    /// while !ready.is_signaled() && t.elapsed().as_secs() < 5 {
    ///     std::thread::yield_now();
    /// }
    /// assert!(ready.is_signaled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_signaled(&self) -> bool {
        // Acquire: pairs with the watcher's Release store.
        self.entry.signaled.load(Acquire)
    }

    /// A future that resolves when the watcher finds the object ready, for any executor
    /// (no runtime is needed: the watcher wakes the task). It rearms before resolving, so
    /// the caller then receives with the non-blocking form, and awaits again on empty.
    #[cfg(feature = "async")]
    pub fn readable(&self) -> Readable<'_> {
        Readable { fd: self, id: None }
    }
}

impl AsFd for ReadyFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.entry.efd.as_fd()
    }
}

/// For tokio's `AsyncFd` and mio's `SourceFd`, which take raw descriptors.
impl std::os::fd::AsRawFd for ReadyFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.entry.efd)
    }
}

impl Drop for ReadyFd {
    fn drop(&mut self) {
        // Release: the watcher forgets the object at its next look, which the poke makes now.
        self.entry.stop.store(true, Release);
        self.entry.group.poke();
    }
}

/// The future of [`ReadyFd::readable`].
#[cfg(feature = "async")]
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Readable<'a> {
    fd: &'a ReadyFd,
    /// The id its waker is kept under, once registered (taken out again on drop).
    id: Option<u64>,
}

#[cfg(feature = "async")]
impl std::future::Future for Readable<'_> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let w = &*self.fd.entry;
        if w.signaled.load(Acquire) {
            self.fd.rearm();
            return std::task::Poll::Ready(());
        }
        // Relaxed: ids only need to differ.
        let id = *self.id.get_or_insert_with(|| w.next_id.fetch_add(1, crate::loom::atomic::Ordering::Relaxed));
        {
            let mut wakers = w.wakers.lock().unwrap_or_else(|p| p.into_inner());
            match wakers.iter_mut().find(|(i, _)| *i == id) {
                Some((_, k)) if k.will_wake(cx.waker()) => {}
                Some((_, k)) => k.clone_from(cx.waker()),
                None => wakers.push((id, cx.waker().clone())),
            }
        }
        // Re-check after registering: the watcher may have signaled (and taken the list)
        // in between.
        if w.signaled.load(Acquire) {
            self.fd.rearm();
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    }
}

/// A future dropped before its object was ready (a select with a time-out, in a loop) takes
/// its waker out, so that the list holds only the futures still waiting.
#[cfg(feature = "async")]
impl Drop for Readable<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let mut wakers = self.fd.entry.wakers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = wakers.iter().position(|(k, _)| *k == id) {
                wakers.swap_remove(i);
            }
        }
    }
}

/// A per-process cache of a handle's `ReadyFd` for the `async` methods: a forked child finds
/// its parent's (whose watcher thread did not survive the fork) and makes its own.
#[cfg(feature = "async")]
#[derive(Debug, Default)]
pub(crate) struct ReadyCache(std::sync::Mutex<Option<(u32, Arc<ReadyFd>)>>);

#[cfg(feature = "async")]
impl ReadyCache {
    /// This process's `ReadyFd`, made with `make` on first use.
    pub(crate) fn get<E>(&self, make: impl FnOnce() -> Result<ReadyFd, E>) -> Result<Arc<ReadyFd>, E> {
        let me = std::process::id();
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &*c {
            Some((pid, fd)) if *pid == me => Ok(fd.clone()),
            _ => {
                let fd = Arc::new(make()?);
                *c = Some((me, fd.clone()));
                Ok(fd)
            }
        }
    }
}
