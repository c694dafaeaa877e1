//! The locks this thread holds through C handles.
//!
//! The Rust API hands out guards; C says `acquire` and later `release`. Between the two the
//! guard lives here, in a thread-local list keyed by the handle's address, so that:
//! * only the thread that took a lock can release it (a robust mutex has an owner thread);
//! * a recursive lock's holds stack up, one guard each, released last-in first-out;
//! * after `fork`, the child does not hold what its parent held: entries carry the fork
//!   generation, bumped in the child by a `pthread_atfork` handler, and an entry of an older
//!   generation is forgotten, never dropped (the parent's thread owns that hold);
//! * a guard is released only by an explicit release or free: when a thread (or a forked
//!   child through `exit`) ends while it holds a lock, its entries are forgotten, so the
//!   lock's robust owner record marks the holder dead and the next acquirer gets
//!   `MP_OWNER_DIED`, as it would in Rust or with a robust pthread mutex.
//!
//! Each lock handle also counts its holds ([`Holds`]), so that freeing a handle another
//! thread still holds through it is refused instead of leaving that thread a dangling guard.

use mp::{LockGuard, RLockGuard};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Once;

/// A guard kept for C. Its lifetime is really that of the handle it came from: a handle is
/// boxed and never moves, and is freed only when no thread holds it through that handle
/// ([`Holds`]), after this thread's holds were released ([`take_all`]).
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
    /// The handle's count of holds, which counts this one.
    holds: *const Holds,
}

impl Drop for Entry {
    /// An entry dropped with its guard still in it (the thread ends, or the entry came from
    /// before a fork) forgets the guard: dropping it would release a lock (or change a
    /// recursive lock's depth) on behalf of a thread that did not ask to. The hold no longer
    /// counts against freeing the handle.
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            std::mem::forget(g);
            // An entry from before a fork was counted in the parent's generation, not in
            // this process's count.
            if self.generation == generation() {
                // SAFETY: a handle is not freed while its count of holds is above the freeing
                // thread's own (`release_all_for_free`), and this entry is counted there, so
                // the handle (and its `Holds`) is alive.
                unsafe { &*self.holds }.sub();
            }
        }
    }
}

thread_local! {
    static HELD: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Bumped in every child of `fork`.
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Relaxed);
}

/// This process's fork generation: it changes in a child of `fork`.
pub(crate) fn generation() -> u64 {
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

/// Why this thread's list cannot be used: the thread is ending (a destructor of another
/// thread-local called into the library after ours was destroyed).
pub(crate) const EXITING: &str = "this thread is exiting: its lock holds are gone";

/// How many holds a lock handle has now, in this process's fork generation (the count a
/// child inherits from its parent's memory is not the child's).
#[derive(Default)]
pub(crate) struct Holds(AtomicU64);

impl Holds {
    const GEN_SHIFT: u32 = 32;

    fn update(&self, f: impl Fn(u64) -> u64) {
        let generation = generation() & 0xffff_ffff;
        // Relaxed: a process-local count, read only by `free` of the same handle, which
        // the caller orders after every acquire and release it means to count.
        let _ = self.0.fetch_update(Relaxed, Relaxed, |v| {
            let count = if v >> Self::GEN_SHIFT == generation { v & 0xffff_ffff } else { 0 };
            Some(generation << Self::GEN_SHIFT | (f(count) & 0xffff_ffff))
        });
    }

    fn add(&self) {
        self.update(|c| c + 1);
    }

    fn sub(&self) {
        self.update(|c| c.saturating_sub(1));
    }

    fn now(&self) -> u64 {
        let v = self.0.load(Relaxed);
        if v >> Self::GEN_SHIFT == generation() & 0xffff_ffff {
            v & 0xffff_ffff
        } else {
            0
        }
    }
}

/// Keeps `guard` as this thread's newest hold through `handle`. If this thread is ending
/// the guard is dropped (the lock released) and the call fails.
pub(crate) fn push(handle: usize, holds: &Holds, guard: AnyGuard) -> Result<(), &'static str> {
    let generation = generation();
    let mut guard = Some(guard);
    let kept = HELD.try_with(|h| {
        holds.add();
        h.borrow_mut().push(Entry { handle, generation, guard: guard.take(), holds });
    });
    match kept {
        Ok(()) => Ok(()),
        Err(_) => {
            drop(guard);
            Err(EXITING)
        }
    }
}

/// Runs `f` on this thread's newest hold through `handle` (None: it holds none).
pub(crate) fn with_newest<R>(handle: usize, f: impl FnOnce(&mut AnyGuard) -> R) -> Option<R> {
    let generation = generation();
    HELD.try_with(|h| {
        let mut h = h.borrow_mut();
        let e = h.iter_mut().rev().find(|e| e.handle == handle && e.generation == generation)?;
        e.guard.as_mut().map(f)
    })
    .ok()
    .flatten()
}

/// Takes this thread's newest hold through `handle` out of the list (None: it holds none).
pub(crate) fn pop(handle: usize, holds: &Holds) -> Option<AnyGuard> {
    let generation = generation();
    HELD.try_with(|h| {
        let mut h = h.borrow_mut();
        // Holds inherited from before a fork go first (forgotten by `Entry::drop`), so the
        // list of a child that never frees its parent's handles does not grow.
        h.retain(|e| e.generation == generation);
        let i = h.iter().rposition(|e| e.handle == handle)?;
        let g = h.remove(i).guard.take();
        holds.sub();
        g
    })
    .ok()
    .flatten()
}

/// Forgets this thread's holds through `handle` without releasing them (a condition wait
/// that failed with its lock in an unknown state).
pub(crate) fn forget_all(handle: usize) {
    // `Entry::drop` forgets each guard and uncounts it.
    let _ = HELD.try_with(|h| h.borrow_mut().retain(|e| e.handle != handle));
}

/// Before `handle` is freed: fails if another thread holds the lock through it; otherwise
/// releases this thread's holds (newest first) and forgets holds inherited from before a
/// `fork`.
pub(crate) fn release_all_for_free(handle: usize, holds: &Holds) -> Result<(), &'static str> {
    let generation = generation();
    let mine: Vec<Entry> = HELD
        .try_with(|h| {
            let mut h = h.borrow_mut();
            let (mine, rest): (Vec<Entry>, Vec<Entry>) = h.drain(..).partition(|e| e.handle == handle);
            *h = rest;
            mine
        })
        .unwrap_or_default();
    let current = mine.iter().filter(|e| e.generation == generation).count() as u64;
    if holds.now() > current {
        // Put ours back: nothing is freed.
        let _ = HELD.try_with(|h| h.borrow_mut().extend(mine));
        return Err("another thread holds this lock through this handle: release it there first");
    }
    for mut e in mine.into_iter().rev() {
        if e.generation == generation {
            drop(e.guard.take());
            holds.sub();
        }
        // An older generation's entry is forgotten by `Entry::drop`.
    }
    Ok(())
}
