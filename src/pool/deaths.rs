//! Waking the manager at a worker's death: one thread per pool sleeps in one `poll(2)` on every
//! worker's [`Sentinel`] (its pidfd, readable once it has ended) and rings the manager's
//! doorbell, so that a crashed worker is reaped and replaced at once instead of at the
//! manager's next 20 ms tick. (The doorbell is a futex word, which a sleeper in `poll` cannot
//! wait on too: hence a thread of its own, which costs nothing while no worker dies.)

use super::link::Doorbell;
use crate::loom::atomic::{AtomicBool, Ordering};
use crate::Sentinel;
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The death-watch thread of a pool.
pub(super) struct DeathWatch {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    /// The sentinels of the workers not yet seen dead.
    sentinels: Mutex<Vec<Sentinel>>,
    /// Readable when the list changed or the watch should stop.
    changed: EventFd,
    stop: AtomicBool,
    /// Set when a watched worker ended, before the bell rings; the manager takes it
    /// ([`DeathWatch::take_seen`]) to know that a liveness pass has something to find.
    seen: AtomicBool,
}

impl DeathWatch {
    /// Starts the thread; it rings `bell` when a watched worker ends.
    pub(super) fn start(bell: Doorbell) -> std::io::Result<DeathWatch> {
        let inner = Arc::new(Inner {
            sentinels: Mutex::new(Vec::new()),
            changed: EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
            stop: AtomicBool::new(false),
            seen: AtomicBool::new(false),
        });
        let i = inner.clone();
        let thread = std::thread::Builder::new().name("multiproc-pool-deaths".into()).spawn(move || run(&i, &bell))?;
        Ok(DeathWatch { inner, thread: Some(thread) })
    }

    /// Watches one more worker.
    pub(super) fn watch(&self, s: Sentinel) {
        self.inner.sentinels.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        let _ = self.inner.changed.write(1);
    }

    /// Whether a watched worker ended since the last call. A death seen after this call rings
    /// the bell after setting the flag, so the manager's next wait returns and its next call
    /// sees it.
    pub(super) fn take_seen(&self) -> bool {
        // Acquire: pairs with the thread's Release store, made before its ring.
        self.inner.seen.swap(false, Ordering::Acquire)
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        // Release: the thread's Acquire load after its wake-up sees it.
        self.inner.stop.store(true, Ordering::Release);
        let _ = self.inner.changed.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inner: &Inner, bell: &Doorbell) {
    let mut revents = Vec::new();
    loop {
        // Drain first, then look: a stop or a change made after the drain leaves the eventfd
        // readable, so the poll below returns at once (draining after the look could swallow
        // the stop's wake-up, and `Drop` would wait for ever in `join`).
        let _ = inner.changed.read();
        // Acquire: pairs with `drop`'s Release store.
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        let watched: Vec<Sentinel> = inner.sentinels.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let fds: Vec<BorrowedFd<'_>> =
            std::iter::once(inner.changed.as_fd()).chain(watched.iter().map(AsFd::as_fd)).collect();
        if crate::sys::process::poll_many(&fds, libc::POLLIN, -1, &mut revents).is_err() {
            // poll itself failed (no memory?): the manager's tick still finds deaths; look
            // again a little later rather than leave the list to grow unwatched.
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        let ended: Vec<usize> = revents.iter().skip(1).enumerate().filter(|(_, r)| **r != 0).map(|(i, _)| i).collect();
        if ended.is_empty() {
            continue;
        }
        // Forget the ended ones (the manager reaps them), then wake the manager.
        let gone: Vec<std::os::fd::RawFd> =
            ended.iter().map(|&i| std::os::fd::AsRawFd::as_raw_fd(&watched[i])).collect();
        inner
            .sentinels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| !gone.contains(&std::os::fd::AsRawFd::as_raw_fd(s)));
        // Release: the manager's `take_seen` after its wake-up sees it.
        inner.seen.store(true, Ordering::Release);
        bell.ring();
    }
}
