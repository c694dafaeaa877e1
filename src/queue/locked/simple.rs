//! `SimpleQueue<T>` (Python's `multiprocessing.SimpleQueue`): an unbounded [`Queue`] with a
//! smaller surface.

use super::{Queue, QueueError};
#[cfg(feature = "serde")]
use std::time::Duration;

/// Python's `SimpleQueue`: an unbounded [`Queue`] with only `put`, `get` (and their `try_`
/// and timed forms), `empty` and `close`.
///
/// # Examples
///
/// ```
/// let q = multiproc::SimpleQueue::<bool>::new()?;
/// assert!(q.empty());
/// q.put(&true)?;
/// assert!(!q.empty());
/// assert_eq!(q.get()?, true);
/// q.close();
/// q.close(); // closing twice is fine (QUE-10)
/// # Ok::<(), multiproc::QueueError>(())
/// ```
#[derive(Debug)]
pub struct SimpleQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue { inner: self.inner.clone() }
    }
}

impl<T> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::SimpleQueue::<u8>::new()?.empty());
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn new() -> Result<SimpleQueue<T>, QueueError> {
        Ok(SimpleQueue { inner: Queue::new()? })
    }

    /// Whether the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::SimpleQueue::<u8>::new()?.empty());
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.inner.empty()
    }

    /// Closes this process's handle (idempotent).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// q.close();
    /// assert!(q.get().is_err());
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn close(&self) {
        self.inner.close()
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> SimpleQueue<T> {
    /// Puts an item (blocks only while the byte capacity is exhausted).
    ///
    /// # Errors
    /// As [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<String>::new()?;
    /// q.put(&"a".to_string())?;
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn put(&self, value: &T) -> Result<(), QueueError> {
        self.inner.put(value)
    }

    /// Puts an item, waiting at most `timeout` while the byte capacity is exhausted.
    ///
    /// # Errors
    /// As [`Queue::put_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put_timeout(&1u8, Duration::from_secs(1))?;
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn put_timeout(&self, value: &T, timeout: Duration) -> Result<(), QueueError> {
        self.inner.put_timeout(value, timeout)
    }

    /// Removes and returns the oldest item, blocking while empty.
    ///
    /// # Errors
    /// As [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put(&5u8)?;
    /// assert_eq!(q.get()?, 5);
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn get(&self) -> Result<T, QueueError> {
        self.inner.get()
    }

    /// The oldest item if there is one now; [`QueueError::Empty`] if not.
    ///
    /// # Errors
    /// As [`Queue::try_get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// assert!(matches!(q.try_get(), Err(multiproc::QueueError::Empty)));
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn try_get(&self) -> Result<T, QueueError> {
        self.inner.try_get()
    }

    /// The oldest item, waiting at most `timeout`; [`QueueError::Empty`] after that.
    ///
    /// # Errors
    /// As [`Queue::get_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// assert!(q.get_timeout(Duration::from_millis(5)).is_err());
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, QueueError> {
        self.inner.get_timeout(timeout)
    }
}
