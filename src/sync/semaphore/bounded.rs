//! `BoundedSemaphore`: a `Semaphore` whose `release` cannot raise it above its bound.

use super::{Semaphore, SemaphoreError, MAX_PERMITS};
use crate::shm::{self, Segment};
use crate::sync::raw::semaphore::Released;
use std::fmt;

/// A semaphore whose `release` fails instead of raising the value above its initial value
/// (Python's `BoundedSemaphore`).
///
/// # Examples
///
/// ```
/// use multiproc::{BoundedSemaphore, SemaphoreError};
///
/// let s = BoundedSemaphore::new(2)?;
/// s.acquire();
/// s.release()?;
/// assert_eq!(s.release(), Err(SemaphoreError::ReleasedTooManyTimes));
/// assert_eq!(s.get_value(), 2);
/// # Ok::<(), multiproc::SemaphoreError>(())
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore").field("value", &self.get_value()).finish()
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits (also its bound) in the default arena.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::BoundedSemaphore::new(1)?;
    /// assert_eq!(s.get_value(), 1);
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore, SemaphoreError> {
        Ok(BoundedSemaphore { inner: Semaphore::build(shm::alloc_default()?, value, true)? })
    }

    /// A bounded semaphore allocated in `segment`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// let s = multiproc::BoundedSemaphore::new_in(&seg, 1)?;
    /// assert!(s.try_acquire());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_in(segment: &Segment, value: u32) -> Result<BoundedSemaphore, SemaphoreError> {
        Ok(BoundedSemaphore { inner: Semaphore::build(segment.alloc_object()?, value, true)? })
    }

    /// Gives a permit back.
    ///
    /// # Errors
    /// [`SemaphoreError::ReleasedTooManyTimes`] if the value is already at its bound; the value
    /// is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::BoundedSemaphore::new(1)?;
    /// assert!(s.release().is_err());
    /// # Ok::<(), multiproc::SemaphoreError>(())
    /// ```
    pub fn release(&self) -> Result<(), SemaphoreError> {
        match self.inner.state.raw.release_bounded(self.inner.limit().unwrap_or(MAX_PERMITS)) {
            Released::Ok => Ok(()),
            Released::AtLimit => Err(SemaphoreError::ReleasedTooManyTimes),
        }
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;

    /// Everything but `release` is the same as [`Semaphore`]'s.
    fn deref(&self) -> &Semaphore {
        &self.inner
    }
}
