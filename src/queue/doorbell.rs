//! Sequence words with a "sleepers" flag: how queues wake the processes blocked on them.
//!
//! A word counts events in steps of 2; bit 0 says that some process may be asleep on it.
//! Publishers call [`wake_if_sleepers`] after each event (a fence and a load: no write, no
//! system call unless the flag is up), or [`bump`] to always advance the word; sleepers raise
//! the flag, re-check their condition, and sleep while the word is unchanged ([`wait_for`]).
//!
//! # Memory ordering
//! SeqCst fences on both sides make the flag-raise / condition-check of a sleeper and the
//! event / flag-check of a publisher a Dekker pair: either the publisher sees the flag and
//! wakes, or the sleeper's re-check sees the event. Bumps are Release so a woken sleeper sees
//! what preceded them.

#[cfg(feature = "serde")]
use crate::loom::atomic::Ordering::Acquire;
use crate::loom::atomic::{
    fence, AtomicU32,
    Ordering::{Relaxed, Release, SeqCst},
};
use crate::loom::futex;
use crate::sys::clock::Deadline;

/// Advances the word, clears the flag, and wakes every sleeper if the flag was up.
pub(crate) fn bump(word: &AtomicU32) {
    // Relaxed: a hint for the CAS.
    let mut v = word.load(Relaxed);
    loop {
        // Release: the push/pop before the bump is visible to a woken sleeper.
        match word.compare_exchange_weak(v, v.wrapping_add(2) & !1, Release, Relaxed) {
            Ok(_) => break,
            Err(now) => v = now,
        }
    }
    if v & 1 != 0 {
        futex::wake(word, u32::MAX);
    }
}

/// Wakes sleepers on `word` after a push or pop, only if one announced itself: no atomic
/// write and no system call on the uncontended path.
pub(crate) fn wake_if_sleepers(word: &AtomicU32) {
    // SeqCst fence: Dekker with the sleeper's fence in `wait_for`: either we see its flag, or
    // its re-check after raising the flag sees our push/pop (the stamp CAS before this call).
    fence(SeqCst);
    // Relaxed: ordered by the fence above.
    if word.load(Relaxed) & 1 != 0 {
        bump(word);
    }
}

/// Raises the sleepers flag on `word`, re-checks with `ready`, and sleeps until woken or
/// `until`. Returns the value if `ready` produced one.
pub(crate) fn wait_for<R>(
    word: &AtomicU32,
    until: Option<Deadline>,
    mut ready: impl FnMut() -> Option<R>,
) -> Option<R> {
    // Relaxed: the futex compares the whole word; the fence below orders the re-check.
    let seen = word.fetch_or(1, Relaxed) | 1;
    // SeqCst fence: partner of the one in `wake_if_sleepers`.
    fence(SeqCst);
    if let Some(r) = ready() {
        return Some(r);
    }
    let _ = futex::wait(word, seen, until);
    None
}

/// The word of a [`SharedBell`].
#[repr(C)]
#[derive(Debug)]
#[cfg(feature = "serde")] // the pool's
struct BellWord {
    /// The sequence word waiters sleep on (see the module docs).
    seq: AtomicU32,
    /// Set by [`SharedBell::ring`] for events that leave no other trace; taken by the waiter.
    rung: AtomicU32,
}

// SAFETY: two atomics, all-zero is "never rung, nobody asleep"; any value a peer leaves is a
// valid sequence or flag (the waiter only compares and swaps them).
#[cfg(feature = "serde")]
unsafe impl crate::shm::ShmObject for BellWord {}

/// A wake-up word in its own anonymous segment, shared with the children forked after its
/// creation: any number of processes [`notify`](Self::notify) it after publishing something
/// (a message into a ring of theirs); one waiter sleeps on it until something happened. One
/// word for any number of publishers, where `futex_waitv` stops at 128 words.
#[derive(Debug, Clone)]
#[cfg(feature = "serde")] // the pool's
pub(crate) struct SharedBell {
    word: crate::shm::ShmRef<BellWord>,
}

#[cfg(feature = "serde")]
impl SharedBell {
    /// A new bell.
    pub(crate) fn new() -> Result<SharedBell, crate::shm::ShmError> {
        let seg = crate::shm::Segment::anonymous(4096)?;
        Ok(SharedBell { word: seg.alloc_object()? })
    }

    /// Wakes the waiter if it sleeps; call after publishing what its `ready` check looks at.
    pub(crate) fn notify(&self) {
        wake_if_sleepers(&self.word.seq);
    }

    /// Sets the rung flag, then [`notify`](Self::notify)s.
    pub(crate) fn ring(&self) {
        // Release: whatever the ringer did before is visible to the waiter that takes the flag.
        self.word.rung.store(1, Release);
        self.notify();
    }

    /// Whether the bell was rung since the last call (clears it).
    pub(crate) fn take_rung(&self) -> bool {
        // Relaxed load first: no write on the common path; Acquire swap pairs with `ring`.
        self.word.rung.load(Relaxed) != 0 && self.word.rung.swap(0, Acquire) != 0
    }

    /// Raises the sleepers flag, re-checks with `ready`, and sleeps until notified or `until`
    /// (see [`wait_for`]).
    pub(crate) fn wait_for<R>(&self, until: Option<Deadline>, ready: impl FnMut() -> Option<R>) -> Option<R> {
        wait_for(&self.word.seq, until, ready)
    }
}

/// Sent to a spawned pool worker as a handle.
#[cfg(feature = "serde")]
impl crate::shm::Named for SharedBell {
    const KIND: crate::shm::ObjectKind = crate::shm::ObjectKind::Plain;

    fn type_info() -> crate::shm::TypeInfo {
        crate::shm::TypeInfo {
            fp: crate::codec::fingerprint_of_name("multiproc::SharedBell"),
            size: std::mem::size_of::<BellWord>() as u32,
            align: std::mem::align_of::<BellWord>() as u32,
            name: "SharedBell",
        }
    }

    fn from_named(seg: &crate::shm::Segment, w: &crate::shm::Words) -> Result<Self, crate::shm::ShmError> {
        Ok(SharedBell { word: seg.object_at(crate::shm::word_usize(w[0])?)? })
    }

    fn segment(&self) -> &crate::shm::Segment {
        self.word.segment()
    }

    fn words(&self) -> crate::shm::Words {
        [self.word.offset() as u64, 0, 0, 0, 0, 0]
    }
}
