//! `Value<T>` and `Array<T>`: shared numbers and plain structs with a lock (Python's
//! `multiprocessing.Value` / `Array`), and their lock-free `RawValue` / `RawArray`.
//!
//! VAL-B1: Python's `v.value += 1` takes the lock twice (once to read, once to write), so
//! concurrent increments are lost. Here a read-modify-write is one call under one lock:
//! [`Value::update`] (any change) and [`Value::fetch_add`] (integers).
// The data lives in a plain `core` cell in shared memory, accessed only under the value's
// robust lock or through volatile reads/writes (raw values): nothing for loom to model.
#![allow(clippy::disallowed_types)]

use super::mutex::{LockError, RLock, RLockGuard};
use crate::shm::{self, Segment, ShmError, ShmObject, ShmRef, ShmSafe};
use core::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// One `T` in shared memory.
#[repr(C)]
struct Cell<T>(UnsafeCell<T>);

// SAFETY: `T: ShmSafe` is valid for every bit pattern, zero included, and holds no pointers;
// access to the cell is serialized by the value's lock (Value) or is volatile and documented as
// racy (RawValue), and `T: Send + Sync`.
unsafe impl<T: ShmSafe> ShmObject for Cell<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for Cell<T> {}

/// Errors of [`Array`] and [`RawArray`] element access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArrayError {
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
}

impl fmt::Display for ArrayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArrayError::IndexOutOfRange { index, len } => write!(f, "index {index} out of range for length {len}"),
            ArrayError::LengthMismatch { expected, found } => {
                write!(f, "can only assign a sequence of the same size ({expected}), got {found}")
            }
        }
    }
}

impl std::error::Error for ArrayError {}

/// A shared `T` without a lock (Python's `RawValue` / `Value(..., lock=False)`): reads and
/// writes are single volatile copies, so concurrent writers race exactly as in Python.
///
/// # Examples
///
/// ```
/// let v = multiproc::RawValue::new(7i32)?;
/// v.set(v.get() * 2);
/// assert_eq!(v.get(), 14);
/// # Ok::<(), multiproc::ShmError>(())
/// ```
#[derive(Clone)]
pub struct RawValue<T: ShmSafe> {
    cell: ShmRef<Cell<T>>,
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawValue").field(&self.get()).finish()
    }
}

impl<T: ShmSafe> RawValue<T> {
    /// A shared value in the default arena, shared with children forked afterwards.
    pub fn new(v: T) -> Result<RawValue<T>, ShmError> {
        let r = RawValue { cell: shm::alloc_default()? };
        r.set(v);
        Ok(r)
    }

    /// A shared value allocated in `segment`.
    pub fn new_in(segment: &Segment, v: T) -> Result<RawValue<T>, ShmError> {
        let r = RawValue { cell: segment.alloc_object()? };
        r.set(v);
        Ok(r)
    }

    /// Reads the value (one volatile copy).
    pub fn get(&self) -> T {
        // SAFETY: the cell is a live, aligned `T` in our mapping; every bit pattern is a valid
        // `T` (ShmSafe), so even a torn concurrent write yields a valid value.
        unsafe { self.cell.0.get().read_volatile() }
    }

    /// Writes the value (one volatile copy).
    pub fn set(&self, v: T) {
        // SAFETY: as in `get`; `T: Copy` needs no drop of the old value.
        unsafe { self.cell.0.get().write_volatile(v) }
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
///         Process::new(move || for _ in 0..1000 { c.fetch_add(1); })
///     })
///     .collect();
/// for w in &workers { w.start()?; }
/// for w in &workers { w.join()?; }
/// assert_eq!(counter.get().map_err(|e| e.to_string())?, 2000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Value<T: ShmSafe> {
    cell: ShmRef<Cell<T>>,
    lock: RLock,
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Ok(v) => f.debug_tuple("Value").field(&v).finish(),
            Err(_) => f.write_str("Value(<lock unavailable>)"),
        }
    }
}

/// Holds a [`Value`]'s lock and gives `&mut T` (Python's `with v.get_lock(): v.value …`).
pub struct ValueGuard<'a, T: ShmSafe> {
    value: &'a Value<T>,
    guard: RLockGuard<'a>,
}

impl<T: ShmSafe> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ValueGuard(..)")
    }
}

impl<T: ShmSafe> ValueGuard<'_, T> {
    /// Marks the lock consistent after its previous owner died (see [`LockError::OwnerDied`]).
    pub fn make_consistent(&mut self) {
        self.guard.make_consistent();
    }
}

impl<T: ShmSafe> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the value's lock, so no other process or thread writes the cell; the
        // cell is aligned and live while `self.value` is; any bits are a valid `T`.
        unsafe { &*self.value.cell.0.get() }
    }
}

impl<T: ShmSafe> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference through the guard
        // (the lock is recursive, but a second guard of this thread would need `&self.value`,
        // and Rust's borrow of this guard keeps `&mut T` unique while it lives).
        unsafe { &mut *self.value.cell.0.get() }
    }
}

/// Result of locking a [`Value`].
pub type ValueLockResult<'a, T> = Result<ValueGuard<'a, T>, LockError<ValueGuard<'a, T>>>;

impl<T: ShmSafe> Value<T> {
    /// A shared value with a new lock, in the default arena.
    ///
    /// # Errors
    /// [`ShmError`] if shared memory cannot be mapped.
    pub fn new(v: T) -> Result<Value<T>, ShmError> {
        Value::with_lock(v, RLock::new()?)
    }

    /// A shared value in `segment`, with a new lock there too.
    pub fn new_in(segment: &Segment, v: T) -> Result<Value<T>, ShmError> {
        let lock = RLock::new_in(segment)?;
        let cell: ShmRef<Cell<T>> = segment.alloc_object()?;
        // SAFETY: the cell is fresh and not yet shared.
        unsafe { cell.0.get().write(v) };
        Ok(Value { cell, lock })
    }

    /// A shared value guarded by an existing lock (Python's `Value(t, v, lock=L)`, VAL-2).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// let a = multiproc::Value::with_lock(1i32, lock.clone())?;
    /// let b = multiproc::Value::with_lock(2i32, lock)?;
    /// let _both = a.lock().unwrap();
    /// assert_eq!(b.get().unwrap(), 2); // recursive: the same thread may lock again
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn with_lock(v: T, lock: RLock) -> Result<Value<T>, ShmError> {
        let cell: ShmRef<Cell<T>> = shm::alloc_default()?;
        // SAFETY: the cell is fresh and not yet shared.
        unsafe { cell.0.get().write(v) };
        Ok(Value { cell, lock })
    }

    /// The lock that guards this value (Python's `get_lock()`).
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// Locks the value and returns a guard that dereferences to `T`.
    ///
    /// # Errors
    /// As [`RLock::lock`]; an owner-died guard dereferences to the value as the dead owner left
    /// it.
    pub fn lock(&self) -> ValueLockResult<'_, T> {
        match self.lock.lock() {
            Ok(guard) => Ok(ValueGuard { value: self, guard }),
            Err(e) => Err(e.map(|guard| ValueGuard { value: self, guard })),
        }
    }

    /// Reads the value under the lock (Python's `v.value`).
    pub fn get(&self) -> Result<T, LockError<ValueGuard<'_, T>>> {
        self.lock().map(|g| *g)
    }

    /// Writes the value under the lock (Python's `v.value = x`).
    pub fn set(&self, v: T) -> Result<(), LockError<ValueGuard<'_, T>>> {
        self.lock().map(|mut g| *g = v)
    }

    /// Runs `f` on the value under one lock: an atomic read-modify-write (VAL-B1).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(10i32)?;
    /// let doubled = v.update(|x| { *x *= 2; *x }).unwrap();
    /// assert_eq!(doubled, 20);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, LockError<ValueGuard<'_, T>>> {
        self.lock().map(|mut g| f(&mut g))
    }
}

impl<T: ShmSafe + std::ops::Add<Output = T>> Value<T> {
    /// Adds `delta` under the lock and returns the previous value (VAL-B1). If the lock's
    /// previous owner died, the value is taken as it was left and the lock made consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::Value::new(5u64)?;
    /// assert_eq!(v.fetch_add(3), 5);
    /// assert_eq!(v.get().unwrap(), 8);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn fetch_add(&self, delta: T) -> T {
        let mut g = match self.lock() {
            Ok(g) => g,
            Err(LockError::OwnerDied(d)) => {
                let mut g = d.into_guard();
                g.make_consistent();
                g
            }
            Err(e) => panic!("Value::fetch_add: {e}"),
        };
        let old = *g;
        *g = old + delta;
        old
    }
}

/// A shared array with its own recursive robust lock (Python's `multiprocessing.Array`).
///
/// # Examples
///
/// ```
/// let a = multiproc::Array::from_slice(&[0.0f64, 100.0, 200.0])?;
/// a.update(|xs| xs.iter_mut().for_each(|x| *x += 1.0)).unwrap();
/// assert_eq!(a.to_vec().unwrap(), vec![1.0, 101.0, 201.0]);
/// assert!(a.get(3).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Array<T: ShmSafe> {
    /// Keeps the mapping that `data` points into alive.
    _seg: Segment,
    data: NonNull<T>,
    len: usize,
    lock: RLock,
}

// SAFETY: the data pointer points into `seg`'s mapping, which the handle keeps alive and which
// is valid in every thread; access is under the lock; `T: Send + Sync`.
unsafe impl<T: ShmSafe> Send for Array<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for Array<T> {}

impl<T: ShmSafe> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array").field("len", &self.len).finish()
    }
}

/// Holds an [`Array`]'s lock and gives `&mut [T]`.
pub struct ArrayGuard<'a, T: ShmSafe> {
    array: &'a Array<T>,
    guard: RLockGuard<'a>,
}

impl<T: ShmSafe> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArrayGuard(..)")
    }
}

impl<T: ShmSafe> ArrayGuard<'_, T> {
    /// Marks the lock consistent after its previous owner died.
    pub fn make_consistent(&mut self) {
        self.guard.make_consistent();
    }
}

impl<T: ShmSafe> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `data..data+len` was allocated for this array inside the mapping the handle
        // keeps alive; we hold the lock, so nobody writes it; any bits are valid `T`s.
        unsafe { std::slice::from_raw_parts(self.array.data.as_ptr(), self.array.len) }
    }
}

impl<T: ShmSafe> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` keeps the slice unique while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.array.data.as_ptr(), self.array.len) }
    }
}

impl<T: ShmSafe> Array<T> {
    /// `len` zeroed elements (Python's `Array('i', 10)`, VAL-5), in a fresh anonymous segment.
    pub fn zeroed(len: usize) -> Result<Array<T>, ShmError> {
        let size = len.checked_mul(std::mem::size_of::<T>()).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let seg = Segment::anonymous(size + std::mem::align_of::<T>() + 64)?;
        let lock = RLock::new()?;
        let off = seg.alloc(size, std::mem::align_of::<T>())?;
        let data = seg.bytes_at(off, size)?.cast::<T>();
        Ok(Array { _seg: seg, data, len, lock })
    }

    /// An array holding a copy of `items`.
    pub fn from_slice(items: &[T]) -> Result<Array<T>, ShmError> {
        let a = Array::zeroed(items.len())?;
        // SAFETY: fresh, unshared memory of exactly `items.len()` elements.
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), a.data.as_ptr(), items.len()) };
        Ok(a)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The array's lock (Python's `get_lock()`).
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// Locks the array; the guard dereferences to `[T]`.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        match self.lock.lock() {
            Ok(guard) => Ok(ArrayGuard { array: self, guard }),
            Err(e) => Err(e.map(|guard| ArrayGuard { array: self, guard })),
        }
    }

    /// Element `i` (Python's `arr[i]`).
    ///
    /// # Errors
    /// [`ArrayError::IndexOutOfRange`] (the lock is not taken then); lock errors are reported
    /// as a panic-free `Err` through [`Array::lock`] for callers that need them.
    pub fn get(&self, i: usize) -> Result<T, ArrayError> {
        if i >= self.len {
            return Err(ArrayError::IndexOutOfRange { index: i, len: self.len });
        }
        Ok(self.with_guard(|xs| xs[i]))
    }

    /// Sets element `i`.
    pub fn set(&self, i: usize, v: T) -> Result<(), ArrayError> {
        if i >= self.len {
            return Err(ArrayError::IndexOutOfRange { index: i, len: self.len });
        }
        self.with_guard(|xs| xs[i] = v);
        Ok(())
    }

    /// Replaces every element (Python's `arr[:] = items`).
    pub fn assign(&self, items: &[T]) -> Result<(), ArrayError> {
        if items.len() != self.len {
            return Err(ArrayError::LengthMismatch { expected: self.len, found: items.len() });
        }
        self.with_guard(|xs| xs.copy_from_slice(items));
        Ok(())
    }

    /// A copy of the elements (Python's `arr[:]`).
    pub fn to_vec(&self) -> Result<Vec<T>, ArrayError> {
        Ok(self.with_guard(|xs| xs.to_vec()))
    }

    /// Runs `f` on the elements under one lock.
    pub fn update<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R, LockError<ArrayGuard<'_, T>>> {
        self.lock().map(|mut g| f(&mut g))
    }

    /// Runs `f` under the lock, repairing the lock if its owner died (the data is taken as left).
    fn with_guard<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> R {
        let mut g = match self.lock() {
            Ok(g) => g,
            Err(LockError::OwnerDied(d)) => {
                let mut g = d.into_guard();
                g.make_consistent();
                g
            }
            Err(e) => panic!("Array: {e}"),
        };
        f(&mut g)
    }
}

/// A shared array without a lock (Python's `RawArray`): element reads and writes are volatile
/// copies; concurrent writers race as in Python.
///
/// # Examples
///
/// ```
/// let a = multiproc::RawArray::<i32>::zeroed(3)?;
/// a.set(1, 5).unwrap();
/// assert_eq!(a.to_vec(), vec![0, 5, 0]);
/// # Ok::<(), multiproc::ShmError>(())
/// ```
#[derive(Clone)]
pub struct RawArray<T: ShmSafe> {
    _seg: Segment,
    data: NonNull<T>,
    len: usize,
}

// SAFETY: as for `Array`; access is volatile and documented as racy.
unsafe impl<T: ShmSafe> Send for RawArray<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for RawArray<T> {}

impl<T: ShmSafe> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray").field("len", &self.len).finish()
    }
}

impl<T: ShmSafe> RawArray<T> {
    /// `len` zeroed elements in a fresh anonymous segment.
    pub fn zeroed(len: usize) -> Result<RawArray<T>, ShmError> {
        let size = len.checked_mul(std::mem::size_of::<T>()).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let seg = Segment::anonymous(size + std::mem::align_of::<T>() + 64)?;
        let off = seg.alloc(size, std::mem::align_of::<T>())?;
        let data = seg.bytes_at(off, size)?.cast::<T>();
        Ok(RawArray { _seg: seg, data, len })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Result<T, ArrayError> {
        if i >= self.len {
            return Err(ArrayError::IndexOutOfRange { index: i, len: self.len });
        }
        // SAFETY: `i < len`, inside the allocation the handle keeps mapped; any bits are a `T`.
        Ok(unsafe { self.data.as_ptr().add(i).read_volatile() })
    }

    /// Sets element `i`.
    pub fn set(&self, i: usize, v: T) -> Result<(), ArrayError> {
        if i >= self.len {
            return Err(ArrayError::IndexOutOfRange { index: i, len: self.len });
        }
        // SAFETY: as in `get`.
        unsafe { self.data.as_ptr().add(i).write_volatile(v) };
        Ok(())
    }

    /// A copy of the elements.
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len).filter_map(|i| self.get(i).ok()).collect()
    }
}
