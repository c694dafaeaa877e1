//! `BoundedSemaphore`: a `Semaphore` whose `release` cannot raise it above its bound.

use super::{Semaphore, MAX_PERMITS};
use crate::shm::{self, Segment, ShmError};
use crate::sync::raw::semaphore::Released;
use std::fmt;

/// A semaphore whose `release` fails instead of raising the value above its initial value
/// (Python's `BoundedSemaphore`).
///
/// # Examples
///
/// ```
/// use multiproc::{BoundedSemaphore, ReleaseError};
///
/// let s = BoundedSemaphore::new(2)?;
/// s.acquire();
/// s.release()?;
/// assert_eq!(s.release(), Err(ReleaseError));
/// assert_eq!(s.get_value(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore, ShmError> {
        Ok(BoundedSemaphore { inner: Semaphore::build(shm::alloc_default()?, value, true)? })
    }

    /// A bounded semaphore allocated in `segment`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// let s = multiproc::BoundedSemaphore::new_in(&seg, 1)?;
    /// s.try_acquire()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_in(segment: &Segment, value: u32) -> Result<BoundedSemaphore, ShmError> {
        Ok(BoundedSemaphore { inner: Semaphore::build(segment.alloc_object()?, value, true)? })
    }

    /// A bounded semaphore with `value` permits (also its bound) under `name`, for processes
    /// that are not forked from this one: they call [`open`](Self::open).
    ///
    /// # Errors
    /// As [`Semaphore::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-bounded-create-{}", std::process::id());
    /// let s = multiproc::BoundedSemaphore::create(&name, 1)?;
    /// assert!(multiproc::BoundedSemaphore::open(&name)?.release().is_err());
    /// # drop(s);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, value: u32) -> Result<BoundedSemaphore, ShmError> {
        Semaphore::create_kind(name, value, true)
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-boundedsemaphore-{}\", std::process::id());\nlet created = multiproc::BoundedSemaphore::create(&name, 1)?;\nlet opened = multiproc::BoundedSemaphore::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.try_acquire()?;\nopened.release()?;\nassert!(created.release().is_err());\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::BoundedSemaphore::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Gives a permit back.
    ///
    /// # Errors
    /// [`ReleaseError`] if the value is already at its bound (Python's `ValueError: semaphore
    /// or lock released too many times`, SEM-3); the value is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::BoundedSemaphore::new(1)?;
    /// assert!(s.release().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        match self.inner.state.raw.release_bounded(self.inner.state.limit().unwrap_or(MAX_PERMITS)) {
            Released::Ok => Ok(()),
            Released::AtLimit => Err(ReleaseError),
        }
    }
}

/// A [`BoundedSemaphore`] was released more times than it was acquired: the value is unchanged
/// (Python's `ValueError: semaphore or lock released too many times`, SEM-3).
///
/// # Examples
///
/// ```
/// let s = multiproc::BoundedSemaphore::new(1)?;
/// assert_eq!(s.release(), Err(multiproc::ReleaseError));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReleaseError;

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl std::error::Error for ReleaseError {}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;

    /// Everything but `release` is the same as [`Semaphore`]'s.
    fn deref(&self) -> &Semaphore {
        &self.inner
    }
}

impl shm::Named for BoundedSemaphore {
    const KIND: shm::ObjectKind = shm::ObjectKind::BoundedSemaphore;

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        Ok(BoundedSemaphore { inner: Semaphore::from_words(seg, w)? })
    }

    fn segment(&self) -> &Segment {
        shm::Named::segment(&self.inner)
    }

    fn words(&self) -> shm::Words {
        shm::Named::words(&self.inner)
    }
}

/// As [`Semaphore`]'s.
impl crate::wait::Waitable for BoundedSemaphore {
    fn is_ready(&self) -> bool {
        crate::wait::Waitable::is_ready(&self.inner)
    }
}
