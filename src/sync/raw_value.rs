//! `RawValue<T>` and `RawArray<T>`: shared plain data without a lock (Python's `RawValue`,
//! `RawArray`, and `Value(..., lock=False)`).
//!
//! Reads and writes are atomic accesses (`shm::atomic_bytes`), so concurrent use from threads
//! and processes is sound: a value of 1, 2, 4 or 8 bytes is read and written whole; a larger one
//! may tear between 8-byte words when written concurrently (a wrong value, never undefined
//! behaviour: every bit pattern is a valid `T`). Concurrent read-modify-writes race exactly as
//! in Python: use [`Value`](super::Value) for those.

use super::value::{Cell, ValueError};
use crate::shm::atomic_bytes;
use crate::shm::{self, Segment, ShmError, ShmRef, ShmSafe};
use std::fmt;
use std::ptr::NonNull;

/// A shared `T` without a lock (Python's `RawValue` / `Value(..., lock=False)`).
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
    ///
    /// # Errors
    /// [`ShmError`] if shared memory cannot be mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawValue::new(1u8)?.get(), 1);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn new(v: T) -> Result<RawValue<T>, ShmError> {
        let r = RawValue { cell: shm::alloc_default()? };
        r.set(v);
        Ok(r)
    }

    /// A shared value allocated in `segment`.
    ///
    /// # Errors
    /// [`ShmError`] if `segment` has no room left.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// assert_eq!(multiproc::RawValue::new_in(&seg, 2u16)?.get(), 2);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn new_in(segment: &Segment, v: T) -> Result<RawValue<T>, ShmError> {
        let r = RawValue { cell: segment.alloc_object()? };
        r.set(v);
        Ok(r)
    }

    /// Reads the value (atomically for values of up to 8 bytes; see the module docs).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawValue::new([1u32, 2])?.get(), [1, 2]);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn get(&self) -> T {
        // SAFETY: the cell is a live, aligned `T` in our mapping, only ever accessed through
        // `atomic_bytes`.
        unsafe { atomic_bytes::load(self.cell.0.get()) }
    }

    /// Writes the value (atomically for values of up to 8 bytes; see the module docs).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::RawValue::new(0.5f64)?;
    /// v.set(1.5);
    /// assert_eq!(v.get(), 1.5);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn set(&self, v: T) {
        // SAFETY: as in `get`.
        unsafe { atomic_bytes::store(self.cell.0.get(), v) }
    }
}

/// A shared array without a lock (Python's `RawArray`): element reads and writes are atomic
/// accesses (see the module docs); concurrent writers race as in Python.
///
/// # Examples
///
/// ```
/// let a = multiproc::RawArray::<i32>::zeroed(3)?;
/// a.set(1, 5)?;
/// assert_eq!(a.to_vec(), vec![0, 5, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RawArray<T: ShmSafe> {
    _seg: Segment,
    data: NonNull<T>,
    len: usize,
}

// SAFETY: the data pointer points into `_seg`'s mapping, which the handle keeps alive; every
// access is atomic; `T: Send + Sync`.
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
    ///
    /// # Errors
    /// [`ShmError`] if the memory cannot be mapped or the size overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawArray::<u8>::zeroed(2)?.to_vec(), [0, 0]);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<RawArray<T>, ShmError> {
        let size = len.checked_mul(std::mem::size_of::<T>()).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let seg = Segment::anonymous(size + std::mem::align_of::<T>() + 64)?;
        let off = seg.alloc(size, std::mem::align_of::<T>())?;
        let data = seg.bytes_at(off, size)?.cast::<T>();
        Ok(RawArray { _seg: seg, data, len })
    }

    /// Number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawArray::<u8>::zeroed(2)?.len(), 2);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::RawArray::<u8>::zeroed(0)?.is_empty());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`.
    ///
    /// # Errors
    /// [`ValueError::IndexOutOfRange`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::RawArray::<u8>::zeroed(1)?;
    /// assert!(a.get(1).is_err());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn get(&self, i: usize) -> Result<T, ValueError> {
        if i >= self.len {
            return Err(ValueError::IndexOutOfRange { index: i, len: self.len });
        }
        // SAFETY: `i < len`, inside the allocation the handle keeps mapped, aligned for `T`;
        // only ever accessed through `atomic_bytes`.
        Ok(unsafe { atomic_bytes::load(self.data.as_ptr().add(i)) })
    }

    /// Sets element `i`.
    ///
    /// # Errors
    /// [`ValueError::IndexOutOfRange`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::RawArray::<u8>::zeroed(1)?;
    /// a.set(0, 3)?;
    /// assert_eq!(a.get(0)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, i: usize, v: T) -> Result<(), ValueError> {
        if i >= self.len {
            return Err(ValueError::IndexOutOfRange { index: i, len: self.len });
        }
        // SAFETY: as in `get`.
        unsafe { atomic_bytes::store(self.data.as_ptr().add(i), v) };
        Ok(())
    }

    /// A copy of the elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawArray::<u16>::zeroed(2)?.to_vec(), [0, 0]);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len).filter_map(|i| self.get(i).ok()).collect()
    }
}
