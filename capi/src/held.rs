//! The locks this thread holds through C handles.
//!
//! The Rust API hands out guards; C says `acquire` and later `release`. Between the two the
//! guard lives here, in a thread-local list keyed by the handle's address, so that:
//! * only the thread that took a lock can release it (a robust mutex has an owner thread);
//! * a recursive lock's holds stack up, one guard each, released last-in first-out;
//! * after `fork`, the child does not hold what its parent held: entries carry the fork
//!   generation, bumped in the child by a `pthread_atfork` handler, and an entry of an older
//!   generation is forgotten (never dropped: the parent's thread owns that hold).

use mp::{LockGuard, RLockGuard};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Once;

/// A guard kept for C. Its lifetime is really that of the handle it came from: a handle is
/// boxed and never moves, and frees its holds (`take_all`) before it is dropped.
pub(crate) enum AnyGuard {
    Lock(LockGuard<'static>),
    RLock(RLockGuard<'static>),
}

impl AnyGuard {
    pub(crate) fn make_consistent(&mut self) {
        match self {
            AnyGuard::Lock(g) => g.make_consistent(),
            AnyGuard::RLock(g) => g.make_consistent(),
        }
    }
}

struct Entry {
    handle: usize,
    generation: u64,
    guard: Option<AnyGuard>,
}

thread_local! {
    static HELD: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Bumped in every child of `fork`.
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Relaxed);
}

fn generation() -> u64 {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only does an atomic add, which is async-signal-safe
        // as a child-side atfork handler must be. A failure (ENOMEM) leaves the generation
        // fixed: children would then see their parent's holds as theirs, and releasing one
        // would fail with EPERM inside the robust mutex, not corrupt it.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    GENERATION.load(Relaxed)
}

/// Keeps `guard` as this thread's newest hold through `handle`.
pub(crate) fn push(handle: usize, guard: AnyGuard) {
    let generation = generation();
    HELD.with(|h| h.borrow_mut().push(Entry { handle, generation, guard: Some(guard) }));
}

/// Runs `f` on this thread's newest hold through `handle` (None: it holds none).
pub(crate) fn with_newest<R>(handle: usize, f: impl FnOnce(&mut AnyGuard) -> R) -> Option<R> {
    let generation = generation();
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let e = h.iter_mut().rev().find(|e| e.handle == handle && e.generation == generation)?;
        e.guard.as_mut().map(f)
    })
}

/// Takes this thread's newest hold through `handle` out of the list (None: it holds none).
pub(crate) fn pop(handle: usize) -> Option<AnyGuard> {
    let generation = generation();
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        // Holds inherited from before a fork go first, so the list of a child that never
        // frees its parent's handles does not grow.
        h.retain_mut(|e| {
            let stale = e.generation != generation;
            if stale {
                std::mem::forget(e.guard.take());
            }
            !stale
        });
        let i = h.iter().rposition(|e| e.handle == handle)?;
        h.remove(i).guard
    })
}

/// Removes every entry for `handle` before the handle is freed: this thread's holds are
/// released (newest first), holds inherited from before a `fork` are forgotten.
pub(crate) fn take_all(handle: usize) {
    let generation = generation();
    let mine: Vec<Entry> = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let (mine, rest): (Vec<Entry>, Vec<Entry>) = h.drain(..).partition(|e| e.handle == handle);
        *h = rest;
        mine
    });
    for mut e in mine.into_iter().rev() {
        if e.generation == generation {
            drop(e.guard.take());
        } else {
            std::mem::forget(e.guard.take());
        }
    }
}
