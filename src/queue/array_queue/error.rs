//! What a push or pop that did not complete returns.

use super::algo::Broken;
use crate::wait::Limit;
use std::fmt;

/// A push that did not happen; the value is given back.
///
/// # Examples
///
/// ```
/// use multiproc::{ArrayQueue, PushError};
/// let q = ArrayQueue::<u8>::new(1)?;
/// q.try_push(1)?;
/// match q.try_push(2) {
///     Err(PushError::Full(v)) => assert_eq!(v, 2),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError<T> {
    /// `try_push`: no room now (or the next slot waits on a consumer that is being checked).
    Full(T),
    /// No room within the timeout.
    Timeout(T),
    /// The queue's shared memory is inconsistent (a corrupt or hostile segment).
    Corrupt {
        /// The value that was not pushed.
        value: T,
        /// Which check failed.
        what: &'static str,
    },
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Timeout(v) | PushError::Corrupt { value: v, .. } => v,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Timeout(_) => f.write_str("Timeout(..)"),
            PushError::Corrupt { what, .. } => f.debug_struct("Corrupt").field("what", what).finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("the queue is full"),
            PushError::Timeout(_) => f.write_str("the queue stayed full until the timeout"),
            PushError::Corrupt { what, .. } => write!(f, "corrupt queue: {what}"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}

/// A pop that found no item.
///
/// # Examples
///
/// ```
/// use multiproc::{ArrayQueue, PopError};
/// let q = ArrayQueue::<u8>::new(1)?;
/// assert_eq!(q.try_pop(), Err(PopError::Empty));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PopError {
    /// `try_pop`: no item now (or the next one is still being written by a producer).
    Empty,
    /// No item within the timeout.
    Timeout,
    /// The queue's shared memory is inconsistent (a corrupt or hostile segment).
    Corrupt(&'static str),
    /// `pop_async` could not start its watcher: this OS error (errno; see
    /// [`std::io::Error::from_raw_os_error`]).
    Os(i32),
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopError::Empty => f.write_str("the queue is empty"),
            PopError::Timeout => f.write_str("the queue stayed empty until the timeout"),
            PopError::Corrupt(what) => write!(f, "corrupt queue: {what}"),
            PopError::Os(errno) => write!(f, "cannot watch the queue: {}", std::io::Error::from_raw_os_error(*errno)),
        }
    }
}

impl std::error::Error for PopError {}

pub(super) fn push_error<T>(limit: Limit, (value, b): (T, Broken)) -> PushError<T> {
    match b {
        Broken::Corrupt(what) => PushError::Corrupt { value, what },
        Broken::Busy if limit.is_now() => PushError::Full(value),
        Broken::Busy => PushError::Timeout(value),
    }
}

pub(super) fn pop_error(limit: Limit, b: Broken) -> PopError {
    match b {
        Broken::Corrupt(what) => PopError::Corrupt(what),
        Broken::Busy if limit.is_now() => PopError::Empty,
        Broken::Busy => PopError::Timeout,
    }
}
