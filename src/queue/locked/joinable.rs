//! `JoinableQueue<T>` (Python's `multiprocessing.JoinableQueue`).

use super::{Queue, TaskDoneError};
use crate::forms::{Timeout, WouldBlock};
use crate::shm::ShmError;
use crate::wait::Limit;
use std::time::{Duration, Instant};

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
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<JoinableQueue<T>, ShmError> {
        Ok(JoinableQueue { inner: Queue::new()? })
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
    /// let name = format!("doc-joinable-create-{}", std::process::id());
    /// let q = multiproc::JoinableQueue::<u8>::create(&name)?;
    /// multiproc::JoinableQueue::<u8>::open(&name)?.put(&1)?; // typically in another program
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<JoinableQueue<T>, ShmError> {
        crate::shm::create_named(name, super::state::LockedRing::segment_len(super::DEFAULT_CAPACITY)?, |seg| {
            let ring = super::state::LockedRing::create_in(seg, super::DEFAULT_CAPACITY, 0, false)?;
            Ok::<_, ShmError>(ring.words())
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-joinablequeue-{}\", std::process::id());\nlet created = multiproc::JoinableQueue::<u64>::create(&name)?;\nlet opened = multiproc::JoinableQueue::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.put(&3)?;\nassert_eq!(created.get()?, 3);\ncreated.task_done()?;\nopened.join_timeout(std::time::Duration::from_secs(1))?;\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::JoinableQueue::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// A new queue holding at most `maxsize` items.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::JoinableQueue::<u8>::with_maxsize(2)?.maxsize(), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>, ShmError> {
        Ok(JoinableQueue { inner: Queue::with_maxsize(maxsize)? })
    }

    /// Marks one item taken with `get` as done (Python's `task_done()`).
    ///
    /// # Errors
    /// [`TaskDoneError`] if every item put is already done.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.put(&1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert_eq!(q.task_done(), Err(multiproc::TaskDoneError));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.inner.ring.task_done().map_err(|_| TaskDoneError)
    }

    /// Blocks until every item put has been marked done (Python's `join()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.join(); // nothing was put
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) {
        self.inner.ring.join(Limit::Forever);
    }

    /// Returns at once: `Ok` if every item put has been marked done.
    ///
    /// # Errors
    /// [`WouldBlock`] if some are not done yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.try_join()?;
    /// q.put(&1)?;
    /// assert!(q.try_join().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_join(&self) -> Result<(), WouldBlock> {
        if self.inner.ring.join(Limit::Now) {
            Ok(())
        } else {
            Err(WouldBlock)
        }
    }

    /// [`join`](Self::join) for at most `timeout` (`Duration::MAX` waits forever).
    ///
    /// # Errors
    /// [`Timeout`] if some items were still not done when the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.put(&1)?;
    /// assert_eq!(q.join_timeout(Duration::from_millis(5)), Err(multiproc::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.timed_join(Limit::timeout(timeout))
    }

    /// [`join`](Self::join) until `deadline`.
    ///
    /// # Errors
    /// [`Timeout`] if some items were still not done at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.join_deadline(std::time::Instant::now())?; // nothing was put
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.timed_join(Limit::deadline(deadline))
    }

    fn timed_join(&self, limit: Limit) -> Result<(), Timeout> {
        if self.inner.ring.join(limit) {
            Ok(())
        } else {
            Err(Timeout)
        }
    }
}

impl<T> crate::shm::Named for JoinableQueue<T> {
    const KIND: crate::shm::ObjectKind = crate::shm::ObjectKind::JoinableQueue;

    fn type_info() -> crate::shm::TypeInfo {
        crate::shm::TypeInfo::encoded::<T>()
    }

    fn from_named(seg: &crate::Segment, w: &crate::shm::Words) -> Result<Self, crate::ShmError> {
        Ok(JoinableQueue { inner: crate::Queue::from_ring(super::state::LockedRing::open_in(seg, w)?) })
    }

    fn segment(&self) -> &crate::Segment {
        crate::shm::Named::segment(&self.inner)
    }

    fn words(&self) -> crate::shm::Words {
        crate::shm::Named::words(&self.inner)
    }
}
