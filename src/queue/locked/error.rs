//! `QueueError`: why an operation of the `Queue` family failed.

#[cfg(feature = "serde")]
use crate::codec::CodecError;
use crate::shm::ShmError;
use std::fmt;

/// Why a queue operation failed.
///
/// # Examples
///
/// ```
/// use multiproc::{Queue, QueueError};
/// let q: Queue<u8> = Queue::with_maxsize(1)?;
/// q.put(&1)?;
/// assert!(matches!(q.try_put(&2), Err(QueueError::Full)));
/// assert_eq!(q.get()?, 1);
/// assert!(matches!(q.try_get(), Err(QueueError::Empty)));
/// # Ok::<(), QueueError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum QueueError {
    /// A non-blocking or timed `get` found nothing (Python's `queue.Empty`).
    Empty,
    /// A non-blocking or timed `put` found no room (Python's `queue.Full`).
    Full,
    /// This handle was closed with [`Queue::close`](crate::Queue::close) (QUE-7).
    Closed,
    /// The other side of a [`split`](crate::Queue::split) queue is gone: a
    /// [`Consumer`](crate::Consumer) found the queue empty with every
    /// [`Producer`](crate::Producer) dropped or dead, or a producer found no consumer left
    /// (the value was not put).
    Disconnected,
    /// The item is larger than the queue's whole capacity: it could never fit.
    TooLarge {
        /// Bytes the record needs.
        len: u64,
        /// The queue's capacity in bytes.
        capacity: u64,
    },
    /// The value could not be encoded (nothing was put: QUE-B1).
    #[cfg(feature = "serde")]
    Encode(CodecError),
    /// An item could not be decoded as `T` (it was removed from the queue).
    #[cfg(feature = "serde")]
    Decode(CodecError),
    /// `get_bytes_into` found an item that is not a byte string (it was removed).
    NotBytes,
    /// `task_done` was called more times than items were put (JoinableQueue).
    TooManyTaskDone,
    /// The shared state is inconsistent (a corrupt segment).
    Corrupt(&'static str),
    /// The queue's shared memory could not be created or opened.
    Shm(ShmError),
    /// The queue's lock failed with this OS error.
    Os(std::io::Error),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Empty => f.write_str("queue is empty"),
            QueueError::Full => f.write_str("queue is full"),
            QueueError::Closed => f.write_str("queue is closed"),
            QueueError::Disconnected => f.write_str("the other side of the queue is gone"),
            QueueError::TooLarge { len, capacity } => {
                write!(f, "item of {len} bytes can never fit a queue of {capacity} bytes")
            }
            #[cfg(feature = "serde")]
            QueueError::Encode(e) => write!(f, "cannot put: {e}"),
            #[cfg(feature = "serde")]
            QueueError::Decode(e) => write!(f, "cannot get: {e}"),
            QueueError::NotBytes => f.write_str("the item is not a byte string"),
            QueueError::TooManyTaskDone => f.write_str("task_done() called too many times"),
            QueueError::Corrupt(w) => write!(f, "corrupt queue: {w}"),
            QueueError::Shm(e) => write!(f, "queue memory: {e}"),
            QueueError::Os(e) => write!(f, "queue lock: {e}"),
        }
    }
}

impl std::error::Error for QueueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "serde")]
            QueueError::Encode(e) | QueueError::Decode(e) => Some(e),
            QueueError::Shm(e) => Some(e),
            QueueError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ShmError> for QueueError {
    fn from(e: ShmError) -> QueueError {
        QueueError::Shm(e)
    }
}
