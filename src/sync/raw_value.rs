//! `RawValue<T>` and `RawArray<T>`: shared plain data without a lock (Python's `RawValue`,
//! `RawArray`, and `Value(..., lock=False)`).
//!
//! Reads and writes are atomic accesses (`shm::atomic_bytes`), so concurrent use from threads
//! and processes is sound: a value of 1, 2, 4 or 8 bytes aligned to its size (`u32`, `f64`,
//! …) is read and written whole; any other (larger, or of smaller alignment, such as `[u8; 8]`)
//! is copied byte by byte and may tear between bytes when written concurrently (a wrong value,
//! never undefined behaviour: every bit pattern is a valid `T`). Concurrent read-modify-writes race exactly as
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_in(segment: &Segment, v: T) -> Result<RawValue<T>, ShmError> {
        let r = RawValue { cell: segment.alloc_object()? };
        r.set(v);
        Ok(r)
    }

    /// A shared value under `name`, for processes that are not forked from this one: they
    /// call [`open`](Self::open) with the same `T` (another type is [`ShmError::Mismatch`]).
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, and the errors of [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-rawvalue-create-{}", std::process::id());
    /// let v = multiproc::RawValue::create(&name, 1u32)?;
    /// multiproc::RawValue::<u32>::open(&name)?.set(2); // typically in another program
    /// assert_eq!(v.get(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, v: T) -> Result<RawValue<T>, ShmError> {
        shm::create_named(name, std::mem::size_of::<T>() + std::mem::align_of::<T>(), |seg| {
            Ok::<_, ShmError>([RawValue::new_in(seg, v)?.cell.offset() as u64, 0, 0, 0, 0, 0])
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-rawvalue-{}\", std::process::id());\nlet created = multiproc::RawValue::create(&name, 1u64)?;\nlet opened = multiproc::RawValue::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.set(2);\nassert_eq!(created.get(), 2);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::RawValue::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Reads the value (atomically for a value of 1, 2, 4 or 8 bytes aligned to its size; see the module docs).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawValue::new([1u32, 2])?.get(), [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> T {
        // SAFETY: the cell is a live, aligned `T` in our mapping, only ever accessed through
        // `atomic_bytes`.
        unsafe { atomic_bytes::load(self.cell.0.get()) }
    }

    /// Writes the value (atomically for a value of 1, 2, 4 or 8 bytes aligned to its size; see the module docs).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiproc::RawValue::new(0.5f64)?;
    /// v.set(1.5);
    /// assert_eq!(v.get(), 1.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<RawArray<T>, ShmError> {
        let size = len.checked_mul(std::mem::size_of::<T>()).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let room = size.checked_add(std::mem::align_of::<T>() + 64).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let seg = Segment::anonymous(room)?;
        let off = seg.alloc(size, std::mem::align_of::<T>())?;
        let data = seg.bytes_at(off, size)?.cast::<T>();
        Ok(RawArray { _seg: seg, data, len })
    }

    /// An array holding a copy of `items`.
    ///
    /// # Errors
    /// As [`zeroed`](Self::zeroed).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawArray::from_slice(&[1u8, 2])?.to_vec(), [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_slice(items: &[T]) -> Result<RawArray<T>, ShmError> {
        let a = RawArray::zeroed(items.len())?;
        // SAFETY: fresh, unshared memory of exactly `items.len()` elements, aligned for `T`.
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), a.data.as_ptr(), items.len()) };
        Ok(a)
    }

    /// An array holding a copy of `items` under `name`, for processes that are not forked
    /// from this one: they call [`open`](Self::open) with the same `T`.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, [`ShmError::TooLarge`], and the errors of
    /// [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-rawarray-create-{}", std::process::id());
    /// let a = multiproc::RawArray::create(&name, &[0u8; 4])?;
    /// multiproc::RawArray::<u8>::open(&name)?.set(3, 1)?; // typically in another program
    /// assert_eq!(a.to_vec(), [0, 0, 0, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, items: &[T]) -> Result<RawArray<T>, ShmError> {
        let size = std::mem::size_of_val(items);
        shm::create_named(name, size + std::mem::align_of::<T>(), |seg| {
            let off = seg.alloc(size, std::mem::align_of::<T>())?;
            let data = seg.elements_at::<T>(off, items.len())?;
            // SAFETY: fresh, unpublished memory of exactly `items.len()` elements, aligned for `T`.
            unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), data.as_ptr(), items.len()) };
            Ok::<_, ShmError>([off as u64, items.len() as u64, 0, 0, 0, 0])
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-rawarray-{}\", std::process::id());\nlet created = multiproc::RawArray::create(&name, &[1u8, 2])?;\nlet opened = multiproc::RawArray::<u8>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.set(1, 5)?;\nassert_eq!(created.to_vec(), [1, 5]);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::RawArray::<u8>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::RawArray::<u8>::zeroed(2)?.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len).filter_map(|i| self.get(i).ok()).collect()
    }
}

impl<T: ShmSafe> shm::Named for RawValue<T> {
    const KIND: shm::ObjectKind = shm::ObjectKind::RawValue;

    fn type_info() -> shm::TypeInfo {
        shm::TypeInfo::plain::<T>()
    }

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        Ok(RawValue { cell: seg.object_at(shm::word_usize(w[0])?)? })
    }

    fn segment(&self) -> &Segment {
        self.cell.segment()
    }

    fn words(&self) -> shm::Words {
        [self.cell.offset() as u64, 0, 0, 0, 0, 0]
    }
}

impl<T: ShmSafe> shm::Named for RawArray<T> {
    const KIND: shm::ObjectKind = shm::ObjectKind::RawArray;

    fn type_info() -> shm::TypeInfo {
        shm::TypeInfo::plain::<T>()
    }

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        let len = shm::word_usize(w[1])?;
        let data = seg.elements_at::<T>(shm::word_usize(w[0])?, len)?;
        Ok(RawArray { _seg: seg.clone(), data, len })
    }

    fn segment(&self) -> &Segment {
        &self._seg
    }

    fn words(&self) -> shm::Words {
        let off = self._seg.offset_of(self.data.as_ptr()).unwrap_or(0);
        [off as u64, self.len as u64, 0, 0, 0, 0]
    }
}
