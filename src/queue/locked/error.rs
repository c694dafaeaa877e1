//! The errors of the `Queue` family: one enum per operation and form (`docs/API.md` §4).
//!
//! Inside the family every step returns `QueueFail`, which knows every outcome; the public
//! methods, which know their form, turn it into [`PutError`] / [`TryPutError`] /
//! [`PutTimeoutError`] or the `Get` ones. The state layer reports an expired limit as
//! `Full`/`Empty`; a timed form turns that into `Timeout`.

#[cfg(feature = "serde")]
use crate::codec::CodecError;
use crate::forms::error_forms;
use std::fmt;

/// Every outcome of a queue step, before the public method picks its form's error.
#[derive(Debug)]
pub(crate) enum QueueFail {
    Empty,
    Full,
    Closed,
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // split queues are serde-only
    Disconnected,
    ShutDown,
    TooLarge {
        len: u64,
        capacity: u64,
    },
    #[cfg(feature = "serde")]
    Encode(CodecError),
    #[cfg(feature = "serde")]
    Decode(CodecError),
    NotBytes,
    TooManyTaskDone,
    Corrupt(&'static str),
    Os(std::io::Error),
}

error_forms! {
    /// Why a blocking `put` failed: nothing was put.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{PutError, Queue};
    ///
    /// let q: Queue<u8> = Queue::new()?;
    /// q.close();
    /// assert!(matches!(q.put(&1), Err(PutError::Closed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum PutError;
    /// Why `try_put` did not put: the queue is full now (Python's `queue.Full`), or one of
    /// [`PutError`]'s reasons.
    #[derive(Debug)]
    pub enum TryPutError {
        /// No room now (Python's `queue.Full` from `put(obj, False)`).
        Full => "the queue is full", is_full
    }
    /// Why `put_timeout`/`put_deadline` did not put: no room came in time (Python's
    /// `queue.Full` from `put(obj, timeout=t)`), or one of [`PutError`]'s reasons.
    #[derive(Debug)]
    pub enum PutTimeoutError {
        /// No room came before the time ran out.
        Timeout => "timed out waiting for room in the queue", is_timeout
    }
    {
        /// This handle was closed with [`Queue::close`](crate::Queue::close) (QUE-7).
        Closed => ("the queue handle is closed");
        /// No consumer is left: every [`Consumer`](crate::Consumer) of a split queue was
        /// dropped or died (the value was not put).
        Disconnected => ("every consumer of the queue is gone");
        /// The queue was shut down ([`Queue::shutdown`](crate::Queue::shutdown), Python 3.13's
        /// `queue.ShutDown`): it takes no more items.
        ShutDown => ("the queue is shut down");
        /// The item is larger than the queue's whole capacity: it could never fit.
        TooLarge {
            /// Bytes the record needs.
            len: u64,
            /// The queue's capacity in bytes.
            capacity: u64,
        } [{ len, capacity }] => ("an item of {len} bytes can never fit a queue of {capacity} bytes");
        /// The value could not be encoded (nothing was put: QUE-B1).
        #[cfg(feature = "serde")]
        Encode(CodecError) [(e)] => ("cannot encode the item: {e}"), source e;
        /// The queue's shared state is inconsistent (a corrupt segment).
        Corrupt(&'static str) [(w)] => ("corrupt queue: {w}");
        /// The queue's lock failed with this OS error.
        Os(std::io::Error) [(e)] => ("queue lock: {e}"), source e;
    }
}

error_forms! {
    /// Why a blocking `get` failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{GetError, Queue};
    ///
    /// let q: Queue<u8> = Queue::new()?;
    /// q.close();
    /// assert!(matches!(q.get(), Err(GetError::Closed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum GetError;
    /// Why `try_get` returned no item: the queue is empty now (Python's `queue.Empty`), or one
    /// of [`GetError`]'s reasons.
    #[derive(Debug)]
    pub enum TryGetError {
        /// No item now (Python's `queue.Empty` from `get(False)`).
        Empty => "the queue is empty", is_empty
    }
    /// Why `get_timeout`/`get_deadline` returned no item: none came in time (Python's
    /// `queue.Empty` from `get(timeout=t)`), or one of [`GetError`]'s reasons.
    #[derive(Debug)]
    pub enum GetTimeoutError {
        /// No item came before the time ran out.
        Timeout => "timed out waiting for an item", is_timeout
    }
    {
        /// This handle was closed with [`Queue::close`](crate::Queue::close) (QUE-7).
        Closed => ("the queue handle is closed");
        /// The queue is empty and no producer is left: every [`Producer`](crate::Producer) of
        /// a split queue was dropped or died.
        Disconnected => ("the queue is empty and every producer is gone");
        /// The queue was shut down and is empty ([`Queue::shutdown`](crate::Queue::shutdown),
        /// Python 3.13's `queue.ShutDown`).
        ShutDown => ("the queue is shut down and empty");
        /// The item could not be decoded as `T` (it was removed from the queue).
        #[cfg(feature = "serde")]
        Decode(CodecError) [(e)] => ("cannot decode the item: {e}"), source e;
        /// `get_bytes_into` found an item that is not a byte string (it was removed).
        NotBytes => ("the item is not a byte string");
        /// The queue's shared state is inconsistent (a corrupt segment).
        Corrupt(&'static str) [(w)] => ("corrupt queue: {w}");
        /// The queue's lock failed with this OS error.
        Os(std::io::Error) [(e)] => ("queue lock: {e}"), source e;
    }
}

/// [`JoinableQueue::task_done`](crate::JoinableQueue::task_done) was called more times than
/// items were put (Python's `ValueError: task_done() called too many times`).
///
/// # Examples
///
/// ```
/// let q = multiproc::JoinableQueue::<u8>::new()?;
/// assert_eq!(q.task_done(), Err(multiproc::TaskDoneError));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}

/// An outcome that the step of this direction cannot produce, reported as what it would mean:
/// shared state that made the step go somewhere it cannot go.
const CROSSED: &str = "an outcome of the other direction (inconsistent shared state)";

impl QueueFail {
    /// The error of a blocking put (no limit, so no `Full`).
    pub(crate) fn put(self) -> PutError {
        match self.try_put() {
            TryPutError::Full => PutError::Corrupt("a put without limit ran out of time"),
            e => put_of(e),
        }
    }

    /// The error of `try_put`.
    pub(crate) fn try_put(self) -> TryPutError {
        match self {
            QueueFail::Full => TryPutError::Full,
            QueueFail::Closed => TryPutError::Closed,
            QueueFail::Disconnected => TryPutError::Disconnected,
            QueueFail::ShutDown => TryPutError::ShutDown,
            QueueFail::TooLarge { len, capacity } => TryPutError::TooLarge { len, capacity },
            #[cfg(feature = "serde")]
            QueueFail::Encode(e) => TryPutError::Encode(e),
            QueueFail::Corrupt(w) => TryPutError::Corrupt(w),
            QueueFail::Os(e) => TryPutError::Os(e),
            QueueFail::Empty | QueueFail::NotBytes | QueueFail::TooManyTaskDone => TryPutError::Corrupt(CROSSED),
            #[cfg(feature = "serde")]
            QueueFail::Decode(_) => TryPutError::Corrupt(CROSSED),
        }
    }

    /// The error of a timed put: an expired limit is `Timeout`.
    pub(crate) fn put_timeout(self) -> PutTimeoutError {
        match self.try_put() {
            TryPutError::Full => PutTimeoutError::Timeout,
            e => PutTimeoutError::from(put_of(e)),
        }
    }

    /// The error of a blocking get (no limit, so no `Empty`).
    pub(crate) fn get(self) -> GetError {
        match self.try_get() {
            TryGetError::Empty => GetError::Corrupt("a get without limit ran out of time"),
            e => get_of(e),
        }
    }

    /// The error of `try_get`.
    pub(crate) fn try_get(self) -> TryGetError {
        match self {
            QueueFail::Empty => TryGetError::Empty,
            QueueFail::Closed => TryGetError::Closed,
            QueueFail::Disconnected => TryGetError::Disconnected,
            QueueFail::ShutDown => TryGetError::ShutDown,
            #[cfg(feature = "serde")]
            QueueFail::Decode(e) => TryGetError::Decode(e),
            QueueFail::NotBytes => TryGetError::NotBytes,
            QueueFail::Corrupt(w) => TryGetError::Corrupt(w),
            QueueFail::Os(e) => TryGetError::Os(e),
            QueueFail::Full | QueueFail::TooLarge { .. } | QueueFail::TooManyTaskDone => TryGetError::Corrupt(CROSSED),
            #[cfg(feature = "serde")]
            QueueFail::Encode(_) => TryGetError::Corrupt(CROSSED),
        }
    }

    /// The error of a timed get: an expired limit is `Timeout`.
    pub(crate) fn get_timeout(self) -> GetTimeoutError {
        match self.try_get() {
            TryGetError::Empty => GetTimeoutError::Timeout,
            e => GetTimeoutError::from(get_of(e)),
        }
    }
}

/// A `TryPutError` that is not `Full`, as a `PutError`.
fn put_of(e: TryPutError) -> PutError {
    e.failure().unwrap_or(PutError::Corrupt(CROSSED))
}

/// A `TryGetError` that is not `Empty`, as a `GetError`.
fn get_of(e: TryGetError) -> GetError {
    e.failure().unwrap_or(GetError::Corrupt(CROSSED))
}

impl From<crate::ShmError> for QueueFail {
    fn from(e: crate::ShmError) -> QueueFail {
        match e {
            crate::ShmError::Os(e) => QueueFail::Os(e),
            crate::ShmError::Corrupt { what } => QueueFail::Corrupt(what),
            other => QueueFail::Os(std::io::Error::other(other)),
        }
    }
}
