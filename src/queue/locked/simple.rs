//! `SimpleQueue<T>` (Python's `multiprocessing.SimpleQueue`): an unbounded [`Queue`] with a
//! smaller surface.

use super::Queue;
#[cfg(feature = "serde")]
use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError};
use crate::ShmError;
#[cfg(feature = "serde")]
use std::time::{Duration, Instant};

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
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// The queue underneath (for `wait`).
    pub(crate) fn as_queue(&self) -> &Queue<T> {
        &self.inner
    }

    /// A new, empty queue.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::SimpleQueue::<u8>::new()?.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<SimpleQueue<T>, ShmError> {
        Ok(SimpleQueue { inner: Queue::new()? })
    }

    /// A new, empty queue under `name`, for processes that are not forked from this one:
    /// they call [`open`](Self::open) with the same `T`. The name is removed when this
    /// handle's last clone drops, unless [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// As [`QueueBuilder::create`](crate::QueueBuilder::create).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-simple-create-{}", std::process::id());
    /// let q = multiproc::SimpleQueue::<u8>::create(&name)?;
    /// multiproc::SimpleQueue::<u8>::open(&name)?.put(&1)?; // typically in another program
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<SimpleQueue<T>, ShmError> {
        crate::shm::create_named(name, super::state::LockedRing::segment_len(super::DEFAULT_CAPACITY)?, |seg| {
            let ring = super::state::LockedRing::create_in(seg, super::DEFAULT_CAPACITY, 0, false)?;
            Ok::<_, ShmError>(ring.words())
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-simplequeue-{}\", std::process::id());\nlet created = multiproc::SimpleQueue::<u64>::create(&name)?;\nlet opened = multiproc::SimpleQueue::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.put(&3)?;\nassert_eq!(created.get()?, 3);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::SimpleQueue::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Whether the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::SimpleQueue::<u8>::new()?.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.inner.close()
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> SimpleQueue<T> {
    /// A blocking iterator over the items (as [`Queue::iter`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u32>::new()?;
    /// q.put(&1)?;
    /// assert_eq!(q.iter().next().transpose()?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> super::QueueIter<'_, T> {
        self.inner.iter()
    }

    /// An iterator over the items there now (as [`Queue::try_iter`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u32>::new()?;
    /// q.put(&1)?;
    /// assert_eq!(q.try_iter().collect::<Result<Vec<_>, _>>()?, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> super::QueueIter<'_, T> {
        self.inner.try_iter()
    }

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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: &T) -> Result<(), PutError> {
        self.inner.put(value)
    }

    /// Puts an item if the byte capacity has room now.
    ///
    /// # Errors
    /// As [`Queue::try_put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.try_put(&1u8)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&self, value: &T) -> Result<(), TryPutError> {
        self.inner.try_put(value)
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, value: &T, timeout: Duration) -> Result<(), PutTimeoutError> {
        self.inner.put_timeout(value, timeout)
    }

    /// Puts an item, waiting until `deadline` while the byte capacity is exhausted.
    ///
    /// # Errors
    /// As [`Queue::put_deadline`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put_deadline(&1u8, std::time::Instant::now())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_deadline(&self, value: &T, deadline: Instant) -> Result<(), PutTimeoutError> {
        self.inner.put_deadline(value, deadline)
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.inner.get()
    }

    /// The oldest item if there is one now.
    ///
    /// # Errors
    /// As [`Queue::try_get`]: [`TryGetError::Empty`] if there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// assert!(matches!(q.try_get(), Err(multiproc::TryGetError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.inner.try_get()
    }

    /// The oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Queue::get_timeout`]: [`GetTimeoutError::Timeout`] if none came.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// assert!(q.get_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.inner.get_timeout(timeout)
    }

    /// The oldest item, waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Queue::get_deadline`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// assert!(q.get_deadline(std::time::Instant::now()).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.inner.get_deadline(deadline)
    }
}

impl<T> crate::shm::Named for SimpleQueue<T> {
    const KIND: crate::shm::ObjectKind = crate::shm::ObjectKind::SimpleQueue;

    fn type_info() -> crate::shm::TypeInfo {
        crate::shm::TypeInfo::encoded::<T>()
    }

    fn from_named(seg: &crate::Segment, w: &crate::shm::Words) -> Result<Self, crate::ShmError> {
        Ok(SimpleQueue { inner: crate::Queue::from_ring(super::state::LockedRing::open_in(seg, w)?) })
    }

    fn segment(&self) -> &crate::Segment {
        crate::shm::Named::segment(&self.inner)
    }

    fn words(&self) -> crate::shm::Words {
        crate::shm::Named::words(&self.inner)
    }
}
