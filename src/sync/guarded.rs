//! The one guard of [`Value`](super::Value) and [`Array`](super::Array): a `&mut` view of data
//! in shared memory, held under the data's recursive lock, and unique although that lock is
//! re-entrant.
//!
//! # Why a recursive lock is not enough
//!
//! Python's `Value` and `Array` carry an `RLock`, and Python code takes it re-entrantly
//! (`with v.get_lock(): v.value += 1` takes it twice). But a thread that may take a lock twice
//! could hold two guards at once, and two guards that both dereference mutably are two live
//! `&mut` to one place: undefined behaviour from safe code. std's `ReentrantLockGuard` has no
//! `DerefMut` for that reason. We keep `DerefMut` (Python mutates under the lock) and make the
//! *data* refuse re-entry instead:
//!
//! * Each guarded cell (a `Value`'s `T`, an `Array`'s `[T]`) has a **borrow word** beside it in
//!   shared memory, written only by the thread that holds the lock: `0` when free, otherwise
//!   the lock's *ownership epoch* at the time of the borrow.
//! * The lock (`RawRobustMutex`) bumps its epoch whenever a thread takes it at depth 0, and
//!   after an owner death. A borrow word equal to the current epoch is a live borrow of the
//!   current owner; any other value was left by an earlier owner that died, or by a guard that
//!   was leaked with `mem::forget` before the lock was released at last, and is stale.
//! * Taking a guard (or running a one-shot `get`/`set`/`update`) takes the lock, then the
//!   borrow: a live borrow is refused with `WouldDeadlock`, and the lock level just taken is
//!   given back. Dropping the guard clears the word, then releases the lock.
//! * The lock also counts the data guards of its owner. A `Condition` that would release the
//!   lock while one is alive refuses (another thread could then take the lock and a second
//!   `&mut`).
//!
//! The word lives in shared memory, because the same cell can be mapped twice in one process
//! (a value created, then opened by name), at two addresses. Two values that share one lock
//! (`Value::with_lock`) have two words: holding a guard on one and reading the other is fine,
//! as in Python.
//!
//! The word and the lock are found through the handle, though, and a handle's words can come
//! from a peer (a message, a named segment's directory): a forged one could put a second handle
//! over the same or overlapping memory with a borrow word or a lock of its own, and the word
//! would then let a guard through each. So every handle is entered in a process-wide list
//! ([`Registration`]), named by the memory itself (the segment file's device and inode and the
//! byte range in it, the same in every mapping), with its word and its lock named the same way;
//! a handle whose memory overlaps a live one's must have the same word and lock, or it is not
//! made. This costs a list update per handle made or dropped, nothing per guard.
//!
//! A hostile peer that rewrites the borrow word can make a borrow look live (the next guard is
//! refused: an error) or free; it can equally write the data itself while a guard is alive,
//! which is outside what any process-shared memory can prevent (see `docs/FAILURE.md`).

// The data lives in plain shared memory under a robust pthread lock, which loom cannot model.
#![allow(clippy::disallowed_types)]

use super::mutex::{blocking, Attempt, LockError, Patience, RLock, RLockGuard};
use crate::loom::atomic::{AtomicU32, Ordering::Relaxed};
use crate::shm::Segment;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// What a guarded object tells its guard: the lock, where the data and its borrow word are,
/// and the segment that holds them.
pub(crate) trait Guarded: Clone {
    /// `T` for a `Value<T>`, `[T]` for an `Array<T>`.
    type Target: ?Sized + 'static;

    /// The recursive lock that guards the data.
    fn data_lock(&self) -> &RLock;

    /// The data and its borrow word. Both point into [`data_segment`](Self::data_segment)'s
    /// mapping, are aligned, and stay valid while that mapping lives; every bit pattern of the
    /// data is a valid `Target`.
    fn data(&self) -> (NonNull<Self::Target>, NonNull<AtomicU32>);

    /// The segment that holds the data (kept alive by a guard that owns its handles).
    fn data_segment(&self) -> &Segment;
}

/// A handle's entry in this process's list of guarded memory (module docs): made with the
/// handle, copied with its clones, removed when it drops.
#[derive(Debug)]
pub(crate) struct Registration(Option<Entry>);

/// Memory, a borrow word and a lock, each named by (segment file, byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    file: (u64, u64),
    start: usize,
    end: usize,
    word: ((u64, u64), usize),
    lock: ((u64, u64), usize),
}

/// The guarded memory that this process's handles reach.
static HANDLES: std::sync::Mutex<Vec<Entry>> = std::sync::Mutex::new(Vec::new());

fn handles() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    HANDLES.lock().unwrap_or_else(|p| p.into_inner())
}

/// The list, locked: `Process::start` holds it across `fork` (as it holds the arena), so that a
/// child never inherits it locked by a thread that did not come along.
pub(crate) struct ForkGuard(#[allow(dead_code)] std::sync::MutexGuard<'static, Vec<Entry>>);

/// Locks the list for a `fork` (see [`ForkGuard`]).
pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(handles())
}

impl Registration {
    /// Enters a handle whose `bytes` of data at `data` and whose borrow word `word` lie in
    /// `seg`, guarded by `lock`. Refused if another live handle of this process reaches
    /// overlapping memory with another word or lock. Memory that cannot be named (no `fstat`)
    /// is not entered.
    pub(crate) fn new(
        seg: &Segment,
        data: *const u8,
        bytes: usize,
        word: *const AtomicU32,
        lock: &RLock,
    ) -> Result<Registration, crate::ShmError> {
        let name = |s: &Segment, p: *const u8| s.file_id().zip(s.offset_of(p));
        let lock_seg = crate::shm::Named::segment(lock);
        let lock = lock_seg.file_id().map(|f| (f, lock.offset()));
        let (Some((file, start)), Some(word), Some(lock)) = (name(seg, data), name(seg, word.cast()), lock) else {
            return Ok(Registration(None));
        };
        let e = Entry { file, start, end: start + bytes, word, lock };
        let mut list = handles();
        if list
            .iter()
            .any(|h| h.file == e.file && h.start < e.end && e.start < h.end && (h.word, h.lock) != (e.word, e.lock))
        {
            return Err(crate::ShmError::Corrupt {
                what: "another handle in this process reaches this memory with another lock or borrow word",
            });
        }
        list.push(e);
        Ok(Registration(Some(e)))
    }
}

impl Clone for Registration {
    fn clone(&self) -> Registration {
        if let Some(e) = self.0 {
            handles().push(e);
        }
        Registration(self.0)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(e) = self.0 {
            let mut list = handles();
            if let Some(i) = list.iter().position(|h| *h == e) {
                list.swap_remove(i);
            }
        }
    }
}

/// Holds a [`Value`](super::Value)'s or an [`Array`](super::Array)'s lock and gives `&mut` to
/// its data (Python's `with v.get_lock(): v.value …`). The only live mutable view of that data:
/// while it lives, another guard or one-shot operation on the same data from this thread is
/// refused with `WouldDeadlock`, and other threads and processes wait for the lock.
///
/// A guard belongs to the process that took it. A copy that a `fork` makes (of a guard kept in
/// a static or a thread-local, say) is not a hold in the child: dropping it there does
/// nothing, and what it shows there the parent, which holds the lock, may be changing.
///
/// Spelled [`ValueGuard`](super::ValueGuard) and [`ArrayGuard`](super::ArrayGuard).
#[must_use = "dropping the guard releases the lock at once"]
pub struct DataGuard<'a, T: ?Sized + 'static> {
    data: NonNull<T>,
    word: NonNull<AtomicU32>,
    /// Released after `Drop::drop` clears the borrow word (fields drop after it).
    lock: RLockGuard<'a>,
    /// Keeps the data's mapping alive for a guard that owns its handles (inside an owner-died
    /// error, which is `'static`); `None` when the guard borrows the object.
    _keep: Option<Segment>,
    /// The process that took the borrow (`sys::process::cached_pid`). A copy of the guard in a
    /// forked child (kept in memory the fork copied) is not a borrow there: its drop writes
    /// nothing shared (it would clear the parent's borrow word). Access through it is not
    /// checked (a check on every `Deref` would cost element loops their vectorization): there
    /// the data is memory another process writes, as any peer may.
    pid: u32,
    _data: PhantomData<&'a mut T>,
}

impl<T: ?Sized> fmt::Debug for DataGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataGuard(..)")
    }
}

impl<T: ?Sized> DataGuard<'_, T> {
    /// Marks the lock consistent after its previous owner died (see
    /// [`LockError::OwnerDied`]): call it once the data is repaired.
    pub fn make_consistent(&mut self) {
        self.lock.make_consistent();
    }
}

impl<T: ?Sized> Deref for DataGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `data` points into a mapping kept alive by the borrowed object (`'a`) or by
        // `_keep`; every bit pattern is a valid `T` (`Guarded::data`); this thread holds the
        // lock, and the borrow word marks the data as this guard's, so no other `&mut` to it
        // exists in this process (module docs).
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for DataGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the borrow word makes this guard the only one for the data,
        // and `&mut self` makes the returned reference the only one through it.
        unsafe { self.data.as_mut() }
    }
}

impl<T: ?Sized> Drop for DataGuard<'_, T> {
    fn drop(&mut self) {
        if self.pid != crate::sys::process::cached_pid() {
            return; // a forked copy: the borrow and the hold are the parent's (the lock
                    // guard field checks the same)
        }
        // SAFETY: the word lives beside the data, in the mapping kept alive as in `deref`
        // (fields, `_keep` included, drop after this body).
        let word = unsafe { self.word.as_ref() };
        // Relaxed: owner-only words, published by the unlock that follows (the `lock` field).
        word.store(0, Relaxed);
        let raw = self.lock.owner().raw();
        raw.data_guards.store(raw.data_guards.load(Relaxed).saturating_sub(1), Relaxed);
    }
}

/// Takes the borrow of `obj`'s data for the holder of `lock`; `None` (and the lock level given
/// back, by dropping it) if this thread already holds a guard on that data.
fn borrow<'a, O: Guarded>(obj: &O, lock: RLockGuard<'a>, keep: Option<Segment>) -> Option<DataGuard<'a, O::Target>> {
    let (data, word) = obj.data();
    let raw = lock.owner().raw();
    // Relaxed: owner-only words (module docs); we hold the lock.
    let epoch = raw.epoch.load(Relaxed);
    // SAFETY: the word is in the live mapping of `obj`'s data segment (`Guarded::data`).
    let w = unsafe { word.as_ref() };
    if w.load(Relaxed) == epoch {
        return None;
    }
    w.store(epoch, Relaxed);
    raw.data_guards.store(raw.data_guards.load(Relaxed).saturating_add(1), Relaxed);
    Some(DataGuard { data, word, lock, _keep: keep, pid: crate::sys::process::cached_pid(), _data: PhantomData })
}

/// One guard attempt on `obj`: the lock with `patience`, then the borrow.
pub(crate) fn attempt<O: Guarded>(
    obj: &O,
    patience: Patience,
) -> Attempt<DataGuard<'_, O::Target>, DataGuard<'static, O::Target>> {
    match obj.data_lock().attempt(patience) {
        Ok(Some(lock)) => borrow(obj, lock, None).map(Some).ok_or(LockError::WouldDeadlock),
        Ok(None) => Ok(None),
        Err(e) => {
            let died = e.split()?;
            // A new ownership began with the death (a fresh epoch): the borrow cannot be
            // refused; were it ever, dropping the guard would leave the lock unrecoverable,
            // which is reported, never a hang.
            let keep = Some(obj.data_segment().clone());
            match borrow(obj, died, keep) {
                Some(g) => Err(LockError::owner_died(g)),
                None => Err(LockError::WouldDeadlock),
            }
        }
    }
}

/// Runs `f` on `obj`'s data under one lock and one borrow (the one-shot operations of `Value`
/// and `Array`). A lock whose holder died is marked consistent first: a plain value has no
/// invariant spanning several calls.
pub(crate) fn update<O: Guarded, R>(
    obj: &O,
    f: impl FnOnce(&mut O::Target) -> R,
) -> Result<R, LockError<std::convert::Infallible>> {
    let mut g = match blocking(attempt(obj, Patience::Forever)) {
        Ok(g) => g,
        Err(e) => {
            let mut g = e.split()?;
            g.make_consistent();
            g
        }
    };
    Ok(f(&mut g))
}
