//! `JoinableQueue<T>` (Python's `multiprocessing.JoinableQueue`).

use super::{Queue, QueueError};
use crate::wait::Limit;
use std::time::Duration;

/// Python's `JoinableQueue`: a [`Queue`] whose consumers call [`task_done`](Self::task_done)
/// per item and whose [`join`](Self::join) waits until every item put has been done.
///
/// Everything else is the [`Queue`]'s (through `Deref`).
///
/// # Examples
///
/// ```
/// let q = multiproc::JoinableQueue::<u32>::new()?;
/// q.put(&7)?;
/// assert_eq!(q.get()?, 7);
/// q.task_done()?;
/// q.join(); // returns at once: every item is done
/// assert!(q.task_done().is_err());
/// # Ok::<(), multiproc::QueueError>(())
/// ```
#[derive(Debug)]
pub struct JoinableQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { inner: self.inner.clone() }
    }
}

impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.inner
    }
}

impl<T> JoinableQueue<T> {
    /// A new, empty queue with no item limit.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::JoinableQueue::<u8>::new()?.empty());
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn new() -> Result<JoinableQueue<T>, QueueError> {
        Ok(JoinableQueue { inner: Queue::new()? })
    }

    /// A new queue holding at most `maxsize` items.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::JoinableQueue::<u8>::with_maxsize(2)?.maxsize(), Some(2));
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>, QueueError> {
        Ok(JoinableQueue { inner: Queue::with_maxsize(maxsize)? })
    }

    /// Marks one item taken with `get` as done.
    ///
    /// # Errors
    /// [`QueueError::TooManyTaskDone`] if every item put is already done.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// assert!(matches!(q.task_done(), Err(multiproc::QueueError::TooManyTaskDone)));
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn task_done(&self) -> Result<(), QueueError> {
        self.inner.ring.task_done()
    }

    /// Blocks until every item put has been marked done.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.join(); // nothing was put
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn join(&self) {
        self.inner.ring.join(Limit::Forever);
    }

    /// [`join`](Self::join) for at most `timeout`; returns whether every item was done.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.put(&1)?;
    /// assert!(!q.join_timeout(Duration::from_millis(5)));
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.inner.ring.join(Limit::timeout(timeout))
    }
}
