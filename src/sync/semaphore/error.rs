//! Why a semaphore could not be created or released.

use super::MAX_PERMITS;
use crate::shm::ShmError;
use std::fmt;

/// Why a semaphore could not be created or released.
#[derive(Debug)]
#[non_exhaustive]
pub enum SemaphoreError {
    /// The initial value is above the largest supported count (`i32::MAX`, as for POSIX
    /// semaphores). Negative values cannot be expressed (SEM-5).
    InvalidValue(u64),
    /// A `BoundedSemaphore` was released more times than it was acquired: the value is unchanged
    /// (Python's `ValueError: semaphore or lock released too many times`, SEM-3).
    ReleasedTooManyTimes,
    /// The shared memory could not be allocated or the name created.
    Shm(ShmError),
}

impl fmt::Display for SemaphoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SemaphoreError::InvalidValue(v) => write!(f, "invalid semaphore value {v} (maximum {MAX_PERMITS})"),
            SemaphoreError::ReleasedTooManyTimes => f.write_str("semaphore or lock released too many times"),
            SemaphoreError::Shm(e) => write!(f, "semaphore shared memory: {e}"),
        }
    }
}

impl std::error::Error for SemaphoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SemaphoreError::Shm(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ShmError> for SemaphoreError {
    fn from(e: ShmError) -> SemaphoreError {
        SemaphoreError::Shm(e)
    }
}
