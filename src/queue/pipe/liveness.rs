//! Each side of a connection, with how it learns that its peer is gone.
//!
//! The kernel is the authority (the liveness pipe(2): `POLLHUP` on the read side once every
//! writer copy is closed, `POLLERR` on the write side once every reader copy is); shared-memory
//! close counters say when asking it is worthwhile, so that the fast paths make no system call.

use super::super::ring::{Consumer, Producer};
use super::held::Held;
use super::SLICE;
use crate::loom::atomic::Ordering;
use crate::sys::clock::{coarse_nanos, monotonic_nanos};
use crate::sys::process::poll_now;
use crate::wait::AdaptiveSpin;
use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The sending side of one direction.
#[derive(Debug)]
pub(super) struct Tx {
    pub(super) prod: Producer,
    /// Write side of the liveness pipe: `POLLERR` once every reader copy is closed.
    live: OwnedFd,
    gone: Cell<bool>,
    /// The reader-close counter when the kernel was last asked.
    seen: Cell<u32>,
    /// The coarse clock when the kernel was last asked.
    last_poll: Cell<u64>,
    /// How `Adaptive` waits on a full ring have gone.
    pub(super) spin: AdaptiveSpin,
    /// This process's claim on the ring's producer side (`held.rs`).
    _held: Option<Held>,
}

impl Tx {
    pub(super) fn new(prod: Producer, live: OwnedFd, held: Option<Held>) -> Tx {
        Tx {
            prod,
            live,
            gone: Cell::new(false),
            seen: Cell::new(0),
            last_poll: Cell::new(0),
            spin: AdaptiveSpin::default(),
            _held: held,
        }
    }

    pub(super) fn live_fd(&self) -> BorrowedFd<'_> {
        self.live.as_fd()
    }

    /// Whether every reader copy is gone. Costs one shared-memory load and one coarse clock
    /// read; asks the kernel (a `poll`) only when a reader closed since the last time, when a
    /// coarse clock tick (4 ms here) has passed, or when `force`d (the ring is full).
    #[inline]
    pub(super) fn reader_gone(&self, force: bool) -> bool {
        if self.gone.get() {
            return true;
        }
        // Relaxed: a hint only; the authoritative answer is the poll below.
        let closes = self.prod.ring().reader_closes().load(Ordering::Relaxed);
        let now = coarse_nanos();
        if force || closes != self.seen.get() || now != self.last_poll.get() {
            self.seen.set(closes);
            self.last_poll.set(now);
            if poll_now(self.live.as_fd(), 0) & libc::POLLERR != 0 {
                self.gone.set(true);
            }
        }
        self.gone.get()
    }
}

/// The receiving side of one direction.
#[derive(Debug)]
pub(super) struct Rx {
    pub(super) cons: Consumer,
    /// Read side of the liveness pipe: `POLLHUP` once every writer copy is closed.
    live: OwnedFd,
    gone: Cell<bool>,
    /// The writer-close counter when the kernel was last asked.
    seen: Cell<u32>,
    last_check: Cell<u64>,
    /// This process's claim on the ring's consumer side (`held.rs`).
    _held: Option<Held>,
}

impl Rx {
    pub(super) fn new(cons: Consumer, live: OwnedFd, held: Option<Held>) -> Rx {
        Rx { cons, live, gone: Cell::new(false), seen: Cell::new(0), last_check: Cell::new(0), _held: held }
    }

    pub(super) fn live_fd(&self) -> BorrowedFd<'_> {
        self.live.as_fd()
    }

    /// Whether every writer is gone. Polls the kernel only when a close was hinted, `force`, or a
    /// slice passed since the last check.
    pub(super) fn writer_gone(&self, force: bool) -> bool {
        if self.gone.get() {
            return true;
        }
        // Relaxed: a hint only; the authoritative answer is the poll below.
        let c = self.cons.ring().writer_closes().load(Ordering::Relaxed);
        let now = monotonic_nanos();
        let slice = SLICE.as_nanos() as u64;
        if force || c != self.seen.get() || now.saturating_sub(self.last_check.get()) >= slice {
            self.seen.set(c);
            self.last_check.set(now);
            if poll_now(self.live.as_fd(), libc::POLLIN) & (libc::POLLHUP | libc::POLLERR) != 0 {
                self.gone.set(true);
            }
        }
        self.gone.get()
    }
}
