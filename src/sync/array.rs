//! `Array<T>`: a shared array of plain data with its own robust recursive lock (Python's
//! `multiprocessing.Array`). Its one-shot operations behave as [`Value`](super::Value)'s: a lock
//! whose holder died is repaired and the operation goes on; [`Array::lock`] reports the death.

use super::guarded::{self, DataGuard, Guarded, Registration};
use super::mutex::{blocking, timed, trying, LockError, LockTimeoutError, Patience, RLock, TryLockError};
use super::value::{value_error, ValueError};
use crate::loom::atomic::AtomicU32;
use crate::shm::{Segment, ShmError, ShmSafe};
use crate::sys::clock::Deadline;
use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// A shared array with its own recursive robust lock (Python's `multiprocessing.Array`).
///
/// # Examples
///
/// ```
/// let a = multiproc::Array::from_slice(&[0.0f64, 100.0, 200.0])?;
/// a.update(|xs| xs.iter_mut().for_each(|x| *x += 1.0))?;
/// assert_eq!(a.to_vec()?, vec![1.0, 101.0, 201.0]);
/// assert!(a.get(3).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Array<T: ShmSafe> {
    /// Keeps the mapping that `data` and `borrow` point into alive.
    _seg: Segment,
    data: NonNull<T>,
    len: usize,
    /// The borrow word of the array's guard (`sync::guarded`), in `_seg`.
    borrow: NonNull<AtomicU32>,
    lock: RLock,
    /// Its entry in this process's list of guarded memory (`sync::guarded`).
    _reg: Registration,
}

impl<T: ShmSafe> Guarded for Array<T> {
    type Target = [T];

    fn data_lock(&self) -> &RLock {
        &self.lock
    }

    fn data(&self) -> (NonNull<[T]>, NonNull<AtomicU32>) {
        (NonNull::slice_from_raw_parts(self.data, self.len), self.borrow)
    }

    fn data_segment(&self) -> &Segment {
        &self._seg
    }
}

// SAFETY: the data and borrow pointers point into `seg`'s mapping, which the handle keeps alive
// and which is valid in every thread; access is under the lock; `T: Send + Sync`.
unsafe impl<T: ShmSafe> Send for Array<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for Array<T> {}

impl<T: ShmSafe> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array").field("len", &self.len).finish()
    }
}

/// Holds an [`Array`]'s lock and gives `&mut [T]`; the only live mutable view of the
/// elements (see [`DataGuard`]).
pub type ArrayGuard<'a, T> = DataGuard<'a, [T]>;

impl<T: ShmSafe> Array<T> {
    /// `len` zeroed elements (Python's `Array('i', 10)`, VAL-5), in a fresh anonymous segment.
    ///
    /// # Errors
    /// [`ShmError`] if the memory cannot be mapped or the size overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Array::<i32>::zeroed(10)?.to_vec()?, [0; 10]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<Array<T>, ShmError> {
        let size = len.checked_mul(std::mem::size_of::<T>()).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let room = size.checked_add(std::mem::align_of::<T>() + 64).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let seg = Segment::anonymous(room)?;
        let lock = RLock::new()?;
        let borrow = borrow_word(&seg, seg.alloc(4, 4)?)?;
        let off = seg.alloc(size, std::mem::align_of::<T>())?;
        let data = seg.bytes_at(off, size)?.cast::<T>();
        Array::assemble(seg, data, len, borrow, lock)
    }

    /// The array of `len` elements at `data` with its borrow word, in `seg`, under `lock`:
    /// entered in this process's list of guarded memory (`sync::guarded`). The elements lie in
    /// the segment (checked by the caller), so their size cannot overflow.
    fn assemble(
        seg: Segment,
        data: NonNull<T>,
        len: usize,
        borrow: NonNull<AtomicU32>,
        lock: RLock,
    ) -> Result<Array<T>, ShmError> {
        let reg =
            Registration::new(&seg, data.as_ptr().cast(), len * std::mem::size_of::<T>(), borrow.as_ptr(), &lock)?;
        Ok(Array { _seg: seg, data, len, borrow, lock, _reg: reg })
    }

    /// The array an opener's words describe (`[lock, elements, len, borrow word, ..]`), its
    /// elements and borrow word in `seg`, checked: in bounds, aligned, apart.
    fn at(seg: &Segment, w: &crate::shm::Words, lock: RLock) -> Result<Array<T>, ShmError> {
        let len = crate::shm::word_usize(w[2])?;
        let data = seg.elements_at::<T>(crate::shm::word_usize(w[1])?, len)?;
        let borrow = borrow_word(seg, crate::shm::word_usize(w[3])?)?;
        apart(data, len, borrow)?;
        Array::assemble(seg.clone(), data, len, borrow, lock)
    }

    /// An array holding a copy of `items`.
    ///
    /// # Errors
    /// As [`zeroed`](Self::zeroed).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Array::from_slice(&[1u8, 2])?.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_slice(items: &[T]) -> Result<Array<T>, ShmError> {
        let a = Array::zeroed(items.len())?;
        // SAFETY: fresh, unshared memory of exactly `items.len()` elements.
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), a.data.as_ptr(), items.len()) };
        Ok(a)
    }

    /// An array holding a copy of `items`, with its lock, under `name`, for processes that are
    /// not forked from this one: they call [`open`](Self::open) with the same `T` (another type
    /// is [`ShmError::Mismatch`]). The name is removed when this handle's last clone drops,
    /// unless [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, [`ShmError::TooLarge`], and the errors of
    /// [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-array-create-{}", std::process::id());
    /// let a = multiproc::Array::create(&name, &[0u32; 8])?;
    /// multiproc::Array::<u32>::open(&name)?.set(7, 1)?; // typically in another program
    /// assert_eq!(a.get(7)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, items: &[T]) -> Result<Array<T>, ShmError> {
        let size = std::mem::size_of_val(items);
        crate::shm::create_named(name, 256 + size + std::mem::align_of::<T>(), |seg| {
            let lock = RLock::new_in(seg)?;
            let borrow = seg.alloc(4, 4)?;
            let off = seg.alloc(size, std::mem::align_of::<T>())?;
            let data = seg.elements_at::<T>(off, items.len())?;
            // SAFETY: fresh, unpublished memory of exactly `items.len()` elements, aligned for `T`.
            unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), data.as_ptr(), items.len()) };
            Ok::<_, ShmError>([lock.offset() as u64, off as u64, items.len() as u64, borrow as u64, 0, 0])
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-array-{}\", std::process::id());\nlet created = multiproc::Array::create(&name, &[1u8, 2, 3])?;\nlet opened = multiproc::Array::<u8>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.set(0, 9)?;\nassert_eq!(created.to_vec()?, [9, 2, 3]);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Array::<u8>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Array::<u8>::zeroed(3)?.len(), 3);
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
    /// assert!(multiproc::Array::<u8>::zeroed(0)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The array's lock (Python's `get_lock()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::Array::<u8>::zeroed(1)?;
    /// let _g = a.get_lock().lock()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// Locks the array; the guard dereferences to `[T]`.
    ///
    /// # Errors
    /// As [`RLock::lock`], and [`LockError::WouldDeadlock`] if this thread already holds a
    /// guard on this array (the lock is re-entrant, the elements' mutable view is not).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Array, LockError};
    ///
    /// let a = Array::from_slice(&[1u8, 2])?;
    /// let mut g = a.lock()?;
    /// g[1] = 5;
    /// assert!(matches!(a.lock(), Err(LockError::WouldDeadlock))); // no second `&mut`
    /// drop(g);
    /// assert_eq!(a.to_vec()?, [1, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'static, T>>> {
        blocking(guarded::attempt(self, Patience::Forever))
    }

    /// Locks the array if its lock is free now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if another thread or process holds the lock, or the errors
    /// of [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Array::<u8>::zeroed(1)?.try_lock()?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, TryLockError<ArrayGuard<'static, T>>> {
        trying(guarded::attempt(self, Patience::Now))
    }

    /// Locks the array, waiting at most `timeout` (`Duration::MAX`: forever).
    ///
    /// # Errors
    /// [`LockTimeoutError::Timeout`] if the lock stayed busy, or the errors of
    /// [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::Array::<u8>::zeroed(1)?;
    /// a.lock_timeout(std::time::Duration::from_millis(10))?[0] = 3;
    /// assert_eq!(a.get(0)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, LockTimeoutError<ArrayGuard<'static, T>>> {
        timed(guarded::attempt(self, Patience::Until(Deadline::after(timeout))))
    }

    /// Locks the array, waiting until `deadline`.
    ///
    /// # Errors
    /// As [`lock_timeout`](Self::lock_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::Array::<u8>::zeroed(1)?;
    /// assert_eq!(a.lock_deadline(std::time::Instant::now())?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<ArrayGuard<'_, T>, LockTimeoutError<ArrayGuard<'static, T>>> {
        timed(guarded::attempt(self, Patience::Until(Deadline::at(deadline))))
    }

    /// Runs `f` on the elements under one lock; a lock whose holder died is repaired first.
    ///
    /// # Errors
    /// [`ValueError::WouldDeadlock`] if this thread already holds a guard on this array (for
    /// example, `update` called from inside `f`), [`ValueError::Unrecoverable`],
    /// [`ValueError::Corrupt`], [`ValueError::Os`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[1u8, 2])?;
    /// assert_eq!(a.update(|xs| xs.iter().map(|&x| u32::from(x)).sum::<u32>())?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R, ValueError> {
        guarded::update(self, f).map_err(value_error)
    }

    fn check(&self, i: usize) -> Result<(), ValueError> {
        if i < self.len {
            Ok(())
        } else {
            Err(ValueError::IndexOutOfRange { index: i, len: self.len })
        }
    }

    /// Element `i` (Python's `arr[i]`).
    ///
    /// # Errors
    /// [`ValueError::IndexOutOfRange`] (the lock is not taken then), or as
    /// [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Array::from_slice(&[4u8, 5])?.get(1)?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, i: usize) -> Result<T, ValueError> {
        self.check(i)?;
        self.update(|xs| xs[i])
    }

    /// Sets element `i`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::Array::<u8>::zeroed(2)?;
    /// a.set(0, 9)?;
    /// assert_eq!(a.to_vec()?, [9, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, i: usize, v: T) -> Result<(), ValueError> {
        self.check(i)?;
        self.update(|xs| xs[i] = v)
    }

    /// Replaces every element (Python's `arr[:] = items`).
    ///
    /// # Errors
    /// [`ValueError::LengthMismatch`], or as [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::Array::<u8>::zeroed(2)?;
    /// a.assign(&[1, 2])?;
    /// assert!(a.assign(&[1]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn assign(&self, items: &[T]) -> Result<(), ValueError> {
        if items.len() != self.len {
            return Err(ValueError::LengthMismatch { expected: self.len, found: items.len() });
        }
        self.update(|xs| xs.copy_from_slice(items))
    }

    /// A copy of the elements (Python's `arr[:]`).
    ///
    /// # Errors
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Array::from_slice(&[1i64, -1])?.to_vec()?, [1, -1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, ValueError> {
        self.update(|xs| xs.to_vec())
    }
}

impl<T: ShmSafe> crate::shm::Named for Array<T> {
    const KIND: crate::shm::ObjectKind = crate::shm::ObjectKind::Array;

    fn type_info() -> crate::shm::TypeInfo {
        crate::shm::TypeInfo::plain::<T>()
    }

    fn from_named(seg: &Segment, w: &crate::shm::Words) -> Result<Self, ShmError> {
        Array::at(seg, w, <RLock as crate::shm::Named>::from_named(seg, &[w[0], 0, 0, 0, 0, 0])?)
    }

    fn segment(&self) -> &Segment {
        &self._seg
    }

    fn words(&self) -> crate::shm::Words {
        let off = self._seg.offset_of(self.data.as_ptr()).unwrap_or(0);
        let borrow = self._seg.offset_of(self.borrow.as_ptr()).unwrap_or(0);
        [self.lock.offset() as u64, off as u64, self.len as u64, borrow as u64, 0, 0]
    }

    fn parts(&self) -> crate::shm::Parts {
        use crate::shm::{Named, Parts, DIR_WORDS};
        let mut p = Parts { segs: Vec::new(), words: self.words(), seg_of: [Parts::PARAM; DIR_WORDS] };
        p.seg_of[0] = p.seg(Named::segment(&self.lock));
        p.seg_of[1] = p.seg(&self._seg);
        p
    }

    fn from_parts(p: &crate::shm::Parts) -> Result<Self, ShmError> {
        let lock = <RLock as crate::shm::Named>::from_named(p.seg_of(0)?, &[p.words[0], 0, 0, 0, 0, 0])?;
        Array::at(p.seg_of(1)?, &p.words, lock)
    }
}

/// The borrow word at `offset` in `seg`, checked in bounds and aligned (it may come from shared
/// memory).
fn borrow_word(seg: &Segment, offset: usize) -> Result<NonNull<AtomicU32>, ShmError> {
    seg.elements_at::<AtomicU32>(offset, 1)
}

/// Refuses a borrow word (from shared memory) that overlaps the elements it guards.
fn apart<T>(data: NonNull<T>, len: usize, borrow: NonNull<AtomicU32>) -> Result<(), ShmError> {
    let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + len * std::mem::size_of::<T>());
    let w = borrow.as_ptr() as usize;
    if w + 4 > start && w < end {
        return Err(ShmError::Corrupt { what: "an array's borrow word overlaps its elements" });
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::Named;

    /// A handle over elements that overlap a live handle's, with a borrow word of its own (what
    /// a forged message or directory can describe: a peer's words are untrusted), is not made:
    /// each handle's guard would be a live `&mut` to the same bytes. One with the same word and
    /// lock is the same array seen through other bounds, which the word keeps sound.
    #[test]
    fn a_handle_over_a_live_arrays_elements_with_another_borrow_word_is_refused() {
        let a = Array::<u8>::zeroed(64).unwrap();
        // The first 16 elements of `a`, a borrow word 32 bytes further in (inside `a`'s
        // elements, outside its own: `apart` accepts it), the same lock.
        let mut p = a.parts();
        p.words[2] = 16;
        p.words[3] = p.words[1] + 32;
        assert!(matches!(Array::<u8>::from_parts(&p), Err(ShmError::Corrupt { .. })));
        // The same bounds with `a`'s own word: made, and its guard excludes `a`'s.
        let mut same = a.parts();
        same.words[2] = 16;
        let b = Array::<u8>::from_parts(&same).unwrap();
        let mut ga = a.lock().unwrap();
        assert!(matches!(b.lock(), Err(LockError::WouldDeadlock)));
        ga[3] = 7;
        drop(ga);
        assert_eq!(b.get(3).unwrap(), 7);
        // Once `a` and `b` are gone, nothing of this process reaches that memory.
        drop((a, b));
        assert!(Array::<u8>::from_parts(&p).is_ok());
    }
}
