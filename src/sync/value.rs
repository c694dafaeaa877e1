//! `Value<T>`: a shared number or plain struct with its own robust recursive lock (Python's
//! `multiprocessing.Value`), and [`ValueError`], the error of every value and array operation.
//!
//! VAL-B1: Python's `v.value += 1` takes the lock twice (once to read, once to write), so
//! concurrent increments are lost. Here a read-modify-write is one call under one lock:
//! [`Value::update`] (any change) and [`Value::fetch_add`] (integers).
//!
//! The one-shot operations (`get`, `set`, `update`, `fetch_add`) never hand you a guard: if the
//! lock's previous holder died, they mark it consistent and go on with the value as the dead
//! holder left it (a plain value has no invariant spanning several calls). [`Value::lock`]
//! reports the death instead ([`LockError::OwnerDied`]), for data whose consistency you must
//! judge. Every error is `'static`, so `v.get()?` works in any function returning
//! `Result<_, Box<dyn Error>>`.
// The data lives in a plain `core` cell in shared memory, accessed only under the value's
// robust pthread lock, which loom cannot model (as for `raw::robust`): loom's cell would check
// nothing here.
#![allow(clippy::disallowed_types)]

use super::guarded::{self, DataGuard, Guarded, Registration};
use super::mutex::{blocking, timed, trying, LockError, LockTimeoutError, Patience, RLock, TryLockError};
use crate::loom::atomic::AtomicU32;
use crate::shm::{self, Segment, ShmError, ShmObject, ShmRef, ShmSafe};
use crate::sys::clock::Deadline;
use core::cell::UnsafeCell;
use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// One `T` in shared memory.
#[repr(C)]
pub(crate) struct Cell<T>(pub(crate) UnsafeCell<T>);

// SAFETY: `T: ShmSafe` is valid for every bit pattern, zero included, and holds no pointers;
// access to the cell is serialized by the value's lock (Value) or atomic (RawValue), and
// `T: Send + Sync`.
unsafe impl<T: ShmSafe> ShmObject for Cell<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for Cell<T> {}

/// A [`Value`]'s `T` in shared memory, with the borrow word of its guard (`sync::guarded`).
#[repr(C)]
pub(crate) struct GuardedCell<T> {
    borrow: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: all-zero bytes are a free borrow word and a valid `T` (`ShmSafe`: valid for every
// bit pattern, no pointers); the word is atomic and the value is only accessed under the
// value's lock and borrow (`sync::guarded`).
unsafe impl<T: ShmSafe> ShmObject for GuardedCell<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for GuardedCell<T> {}

/// Why a [`Value`], [`Array`](super::Array), [`RawValue`](super::RawValue) or
/// [`RawArray`](super::RawArray) operation failed. `'static`, so `?` works everywhere.
///
/// # Examples
///
/// ```
/// use multiproc::{Array, ValueError};
/// let a = Array::from_slice(&[1u8, 2, 3])?;
/// assert!(matches!(a.get(3), Err(ValueError::IndexOutOfRange { index: 3, len: 3 })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ValueError {
    /// The index is not below the length (Python's `IndexError`).
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// A slice assignment had the wrong length (Python's "Can only assign sequence of same size").
    LengthMismatch {
        /// The array's length.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// The lock is unrecoverable: an earlier holder died and the guard that got
    /// [`LockError::OwnerDied`] was dropped without `make_consistent`.
    Unrecoverable,
    /// The lock in shared memory is corrupt: nothing was handed to glibc.
    Corrupt,
    /// This thread already holds a guard on this value or array (or is inside an `update` of
    /// it): a second mutable view of the same data is refused.
    WouldDeadlock,
    /// A string or bytes longer than its slot's room in a [`ShareableList`](crate::ShareableList)
    /// (Python's "bytes/str item exceeds available storage"); nothing was written.
    TooLong {
        /// The item's length in bytes.
        len: usize,
        /// The slot's room.
        capacity: usize,
    },
    /// No item is equal to the one looked for (Python's "not in list").
    NotFound,
    /// The bytes of item `index` in shared memory are not an item (an unknown kind, a length
    /// beyond its slot, text that is not UTF-8): another process wrote garbage there.
    CorruptItem {
        /// The item's index.
        index: usize,
    },
    /// The OS reported another error.
    Os(std::io::Error),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::IndexOutOfRange { index, len } => write!(f, "index {index} out of range for length {len}"),
            ValueError::LengthMismatch { expected, found } => {
                write!(f, "can only assign a sequence of the same size ({expected}), got {found}")
            }
            ValueError::Unrecoverable => {
                f.write_str("the value's lock is unrecoverable (a holder died, never repaired)")
            }
            ValueError::Corrupt => f.write_str("the value's lock in shared memory is corrupt"),
            ValueError::WouldDeadlock => {
                f.write_str("this thread already holds a guard on this value (a second `&mut` is refused)")
            }
            ValueError::TooLong { len, capacity } => {
                write!(f, "an item of {len} bytes exceeds its slot's {capacity} bytes of storage")
            }
            ValueError::NotFound => f.write_str("the item is not in the list"),
            ValueError::CorruptItem { index } => write!(f, "item {index} in shared memory is corrupt"),
            ValueError::Os(e) => write!(f, "value lock: {e}"),
        }
    }
}

impl std::error::Error for ValueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ValueError::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// A shared `T` with its own recursive robust lock (Python's `multiprocessing.Value`).
///
/// # Examples
///
/// ```
/// use multiproc::{Process, Value};
///
/// let counter = Value::new(0u64)?;
/// let workers: Vec<Process> = (0..2)
///     .map(|_| {
///         let c = counter.clone();
///         Process::new(move || -> Result<(), multiproc::ValueError> {
///             for _ in 0..1000 {
///                 c.fetch_add(1)?;
///             }
///             Ok(())
///         })
///     })
///     .collect();
/// for w in &workers { w.start()?; }
/// for w in &workers { w.join()?.exit_ok()?; }
/// assert_eq!(counter.get()?, 2000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Value<T: ShmSafe> {
    cell: ShmRef<GuardedCell<T>>,
    lock: RLock,
    /// Its entry in this process's list of guarded memory (`sync::guarded`).
    _reg: Registration,
}

impl<T: ShmSafe> Value<T> {
    /// A handle of `cell` under `lock`, entered in this process's list of guarded memory.
    fn assemble(cell: ShmRef<GuardedCell<T>>, lock: RLock) -> Result<Value<T>, ShmError> {
        let c: &GuardedCell<T> = &cell;
        let data = std::ptr::from_ref(&c.value).cast::<u8>();
        let reg = Registration::new(cell.segment(), data, std::mem::size_of::<T>(), &c.borrow, &lock)?;
        Ok(Value { cell, lock, _reg: reg })
    }
}

impl<T: ShmSafe> Guarded for Value<T> {
    type Target = T;

    fn data_lock(&self) -> &RLock {
        &self.lock
    }

    fn data(&self) -> (NonNull<T>, NonNull<AtomicU32>) {
        let cell: &GuardedCell<T> = &self.cell;
        (NonNull::from(&cell.value).cast(), NonNull::from(&cell.borrow))
    }

    fn data_segment(&self) -> &Segment {
        self.cell.segment()
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Ok(v) => f.debug_tuple("Value").field(&v).finish(),
            Err(_) => f.write_str("Value(<lock unavailable>)"),
        }
    }
}

/// Holds a [`Value`]'s lock and gives `&mut T` (Python's `with v.get_lock(): v.value …`); the
/// only live mutable view of the value (see [`DataGuard`]).
pub type ValueGuard<'a, T> = DataGuard<'a, T>;

impl<T: ShmSafe> Value<T> {
    /// A shared value with a new lock, in the default arena.
    ///
    /// # Errors
    /// [`ShmError`] if shared memory cannot be mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Value::new(7i32)?.get()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(v: T) -> Result<Value<T>, ShmError> {
        Value::with_lock(v, RLock::new()?)
    }

    /// A shared value in `segment`, with a new lock there too.
    ///
    /// # Errors
    /// [`ShmError`] if `segment` has no room left.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// assert_eq!(multiproc::Value::new_in(&seg, 1.5f64)?.get()?, 1.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_in(segment: &Segment, v: T) -> Result<Value<T>, ShmError> {
        let lock = RLock::new_in(segment)?;
        let cell: ShmRef<GuardedCell<T>> = segment.alloc_object()?;
        // SAFETY: the cell is fresh and not yet shared.
        unsafe { cell.value.get().write(v) };
        Value::assemble(cell, lock)
    }

    /// A shared value with its lock under `name`, for processes that are not forked from this
    /// one: they call [`open`](Self::open) with the same `T` (another type is
    /// [`ShmError::Mismatch`]). The name is removed when this handle's last clone drops, unless
    /// [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, and the errors of [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-value-create-{}", std::process::id());
    /// let v = multiproc::Value::create(&name, 0u64)?;
    /// multiproc::Value::<u64>::open(&name)?.fetch_add(5)?; // typically in another program
    /// assert_eq!(v.get()?, 5);
    /// assert!(matches!(multiproc::Value::<u32>::open(&name), Err(multiproc::ShmError::Mismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, v: T) -> Result<Value<T>, ShmError> {
        shm::create_named(name, 256 + std::mem::size_of::<T>() + std::mem::align_of::<T>(), |seg| {
            let value = Value::new_in(seg, v)?;
            Ok::<_, ShmError>([value.lock.offset() as u64, value.cell.offset() as u64, 0, 0, 0, 0])
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-value-{}\", std::process::id());\nlet created = multiproc::Value::create(&name, 1u64)?;\nlet opened = multiproc::Value::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.fetch_add(1)?;\nassert_eq!(created.get()?, 2);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Value::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// A shared value guarded by an existing lock (Python's `Value(t, v, lock=L)`, VAL-2).
    ///
    /// # Errors
    /// [`ShmError`] if shared memory cannot be mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// let a = multiproc::Value::with_lock(1i32, lock.clone())?;
    /// let b = multiproc::Value::with_lock(2i32, lock)?;
    /// let _both = a.lock()?;
    /// assert_eq!(b.get()?, 2); // recursive: the same thread may lock again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_lock(v: T, lock: RLock) -> Result<Value<T>, ShmError> {
        let cell: ShmRef<GuardedCell<T>> = shm::alloc_default()?;
        // SAFETY: the cell is fresh and not yet shared.
        unsafe { cell.value.get().write(v) };
        Value::assemble(cell, lock)
    }

    /// The lock that guards this value (Python's `get_lock()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(0u8)?;
    /// let _g = v.get_lock().lock()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// Locks the value and returns a guard that dereferences to `T`.
    ///
    /// # Errors
    /// As [`RLock::lock`] (an owner-died guard dereferences to the value as the dead owner left
    /// it), and [`LockError::WouldDeadlock`] if this thread already holds a guard on this value
    /// (through this handle, a clone, or another handle to the same value): the lock is
    /// re-entrant, the data's mutable view is not.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{LockError, Value};
    ///
    /// let v = Value::new(1u32)?;
    /// let mut g = v.lock()?;
    /// *g += 1;
    /// assert!(matches!(v.lock(), Err(LockError::WouldDeadlock))); // no second `&mut`
    /// drop(g);
    /// assert_eq!(v.get()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'static, T>>> {
        blocking(guarded::attempt(self, Patience::Forever))
    }

    /// Locks the value if its lock is free now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if another thread or process holds the lock, or the errors
    /// of [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(1u32)?;
    /// *v.try_lock()? = 5;
    /// assert_eq!(v.get()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_lock(&self) -> Result<ValueGuard<'_, T>, TryLockError<ValueGuard<'static, T>>> {
        trying(guarded::attempt(self, Patience::Now))
    }

    /// Locks the value, waiting at most `timeout` (`Duration::MAX`: forever).
    ///
    /// # Errors
    /// [`LockTimeoutError::Timeout`] if the lock stayed busy, or the errors of
    /// [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(1u32)?;
    /// assert_eq!(*v.lock_timeout(std::time::Duration::from_millis(10))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T>, LockTimeoutError<ValueGuard<'static, T>>> {
        timed(guarded::attempt(self, Patience::Until(Deadline::after(timeout))))
    }

    /// Locks the value, waiting until `deadline`.
    ///
    /// # Errors
    /// As [`lock_timeout`](Self::lock_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(1u32)?;
    /// assert_eq!(*v.lock_deadline(std::time::Instant::now())?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<ValueGuard<'_, T>, LockTimeoutError<ValueGuard<'static, T>>> {
        timed(guarded::attempt(self, Patience::Until(Deadline::at(deadline))))
    }

    /// Runs `f` on the value under one lock: an atomic read-modify-write (VAL-B1). A lock
    /// whose holder died is repaired first (see the module docs).
    ///
    /// # Errors
    /// [`ValueError::WouldDeadlock`] if this thread already holds a guard on this value (for
    /// example, `update` called from inside `f`), [`ValueError::Unrecoverable`],
    /// [`ValueError::Corrupt`], [`ValueError::Os`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Value, ValueError};
    ///
    /// let v = Value::new(10i32)?;
    /// let doubled = v.update(|x| { *x *= 2; *x })?;
    /// assert_eq!(doubled, 20);
    /// // `f` holds the only mutable view: touching the same value inside it is refused.
    /// assert!(matches!(v.update(|_| v.get())?, Err(ValueError::WouldDeadlock)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, ValueError> {
        guarded::update(self, f).map_err(value_error)
    }

    /// Reads the value under the lock (Python's `v.value`).
    ///
    /// # Errors
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Value::new(3u8)?.get()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, ValueError> {
        self.update(|v| *v)
    }

    /// Writes the value under the lock (Python's `v.value = x`).
    ///
    /// # Errors
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(3u8)?;
    /// v.set(4)?;
    /// assert_eq!(v.get()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, v: T) -> Result<(), ValueError> {
        self.update(|x| *x = v)
    }
}

/// The one-shot operations' error for a lock error. An owner death is repaired by the caller
/// (`LockError::split` keeps it out), so its variant is uninhabited here.
pub(crate) fn value_error(e: LockError<std::convert::Infallible>) -> ValueError {
    match e {
        LockError::Unrecoverable => ValueError::Unrecoverable,
        LockError::Corrupt => ValueError::Corrupt,
        LockError::WouldDeadlock => ValueError::WouldDeadlock,
        LockError::Os(e) => ValueError::Os(e),
        #[allow(unreachable_code)] // `d` holds an `Infallible`: there is no such value
        LockError::OwnerDied(d) => match d.into_guard() {},
    }
}

impl<T: ShmSafe + std::ops::Add<Output = T>> Value<T> {
    /// Adds `delta` under the lock and returns the previous value (VAL-B1). A lock whose holder
    /// died is repaired first (see the module docs).
    ///
    /// # Errors
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(5u64)?;
    /// assert_eq!(v.fetch_add(3)?, 5);
    /// assert_eq!(v.get()?, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_add(&self, delta: T) -> Result<T, ValueError> {
        self.update(|x| {
            let old = *x;
            *x = old + delta;
            old
        })
    }
}

impl<T: ShmSafe> shm::Named for Value<T> {
    const KIND: shm::ObjectKind = shm::ObjectKind::Value;

    fn type_info() -> shm::TypeInfo {
        shm::TypeInfo::plain::<T>()
    }

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        let lock = <RLock as shm::Named>::from_named(seg, &[w[0], 0, 0, 0, 0, 0])?;
        Value::assemble(seg.object_at(shm::word_usize(w[1])?)?, lock)
    }

    fn segment(&self) -> &Segment {
        self.cell.segment()
    }

    fn words(&self) -> shm::Words {
        [self.lock.offset() as u64, self.cell.offset() as u64, 0, 0, 0, 0]
    }

    fn parts(&self) -> shm::Parts {
        let mut p = shm::Parts { segs: Vec::new(), words: self.words(), seg_of: [shm::Parts::PARAM; shm::DIR_WORDS] };
        p.seg_of[0] = p.seg(shm::Named::segment(&self.lock));
        p.seg_of[1] = p.seg(self.cell.segment());
        p
    }

    fn from_parts(p: &shm::Parts) -> Result<Self, ShmError> {
        let lock = <RLock as shm::Named>::from_named(p.seg_of(0)?, &[p.words[0], 0, 0, 0, 0, 0])?;
        Value::assemble(p.seg_of(1)?.object_at(shm::word_usize(p.words[1])?)?, lock)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::Named;

    /// A handle of a live value's cell under another lock (a forged message's words) is not
    /// made: the cell's borrow word records a lock's epoch, so two locks would each let a
    /// guard through, two live `&mut` to one value.
    #[test]
    fn a_handle_of_a_live_values_cell_under_another_lock_is_refused() {
        let v = Value::new(5u64).unwrap();
        let other = RLock::new().unwrap();
        let mut p = v.parts();
        let lock_seg = p.seg(Named::segment(&other));
        p.seg_of[0] = lock_seg;
        p.words[0] = other.offset() as u64;
        assert!(matches!(Value::<u64>::from_parts(&p), Err(ShmError::Corrupt { .. })));
        // Under its own lock, a second handle is the same value (the word keeps it sound).
        let same = Value::<u64>::from_parts(&v.parts()).unwrap();
        let g = v.lock().unwrap();
        assert!(matches!(same.lock(), Err(LockError::WouldDeadlock)));
        drop(g);
        assert_eq!(same.get().unwrap(), 5);
    }
}
