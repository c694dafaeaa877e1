//! Making a `Queue`: [`QueueBuilder`] (capacity in bytes, Python's `maxsize`) and the
//! constructors, anonymous (`new`, `with_maxsize`, `build`) or named (`create`, and the `open`
//! family every named object has).

use super::handle::Queue;
use super::state::LockedRing;
use super::DEFAULT_CAPACITY;
use crate::queue::WaitStrategy;
use crate::shm::{Segment, ShmError};
use std::marker::PhantomData;

/// Builds a [`Queue`] with options.
///
/// # Examples
///
/// ```
/// let q = multiproc::Queue::<u32>::builder().maxsize(6).capacity_bytes(1 << 16).build()?;
/// assert_eq!(q.maxsize(), Some(6));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct QueueBuilder<T> {
    capacity: usize,
    maxsize: Option<usize>,
    integrity: bool,
    wait: WaitStrategy,
    _t: PhantomData<fn() -> T>,
}

impl<T> QueueBuilder<T> {
    /// Ring capacity in bytes (default [`DEFAULT_CAPACITY`]); each item takes its encoded size
    /// plus 8 bytes, rounded up to 8.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::builder().capacity_bytes(4096).build()?;
    /// assert_eq!(q.capacity_bytes(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Maximum number of items (Python's `maxsize`; default unlimited).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Queue::<u8>::builder().maxsize(2).build()?.maxsize(), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn maxsize(mut self, items: usize) -> Self {
        self.maxsize = Some(items);
        self
    }

    /// How this handle's gets wait for an item (default [`WaitStrategy::Park`]): `Park` sleeps
    /// in the kernel at once; `Adaptive` first watches the queue for a few microseconds, and
    /// stops doing so while that keeps failing; `Spin` watches it until the item or the time
    /// limit comes (looking under the lock every 100 ms, as a sleeper does), burning a CPU. A
    /// getter and a putter on two CPUs then pass an item in well under a microsecond, instead
    /// of the tens of microseconds a sleeping getter takes to wake. The choice belongs to the
    /// handle and its clones (a fork's copies included), not to the queue: a queue opened by
    /// name or received from another process parks until [`Queue::set_wait`] says otherwise.
    /// `try_` forms never watch.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Queue, WaitStrategy};
    /// let q = Queue::<u32>::builder().wait(WaitStrategy::Adaptive).build()?;
    /// q.put(&1)?;
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(mut self, strategy: WaitStrategy) -> Self {
        self.wait = strategy;
        self
    }

    /// The integrity mode (off by default): every item carries a CRC32C of its encoded bytes
    /// (computed with the CPU's CRC32C instruction where it has one), checked when it is taken,
    /// so that bytes changed in the shared memory by anyone but a `put` (a scribbling target,
    /// a stray write) are [`GetError::Corrupt`](crate::GetError) instead of data; that item is
    /// dropped and the next `get` goes on with the next one. Without it, only damage to the
    /// framing is caught (a record read where it was not written). It costs a pass over each
    /// item on both sides, under the queue's lock, and 8 bytes per item (`queue.stream.*.crc`
    /// in `multiproc bench`). Every handle of the queue, named openers included, follows it.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<String>::builder().integrity(true).build()?;
    /// q.put(&"checked".to_string())?;
    /// assert_eq!(q.get()?, "checked");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn integrity(mut self, on: bool) -> Self {
        self.integrity = on;
        self
    }

    /// Creates the queue in a fresh anonymous segment, shared with children forked afterwards.
    ///
    /// # Errors
    /// [`ShmError`] if shared memory cannot be mapped or the lock initialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<String>::builder().build()?;
    /// assert!(q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<Queue<T>, ShmError> {
        let seg = Segment::anonymous(LockedRing::segment_len(self.capacity)?)?;
        let mut ring = LockedRing::create_in(&seg, self.capacity, self.maxsize.unwrap_or(0), self.integrity)?;
        ring.wait = self.wait;
        Ok(Queue::from_ring(ring))
    }

    /// Creates the queue under `name`, for processes that are not forked from this one: they
    /// call [`Queue::open`] with the same `T` (another type is
    /// [`ShmError::Mismatch`](crate::ShmError::Mismatch)). The name is removed when this
    /// handle's last clone drops, unless [`Queue::persist`] is called.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, or another error of [`Segment::create`];
    /// [`ShmError::Os`] if the lock cannot be initialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-queue-builder-{}", std::process::id());
    /// let q = multiproc::Queue::<String>::builder().maxsize(4).create(&name)?;
    /// assert_eq!(multiproc::Queue::<String>::open(&name)?.maxsize(), Some(4));
    /// # drop(q);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(self, name: &str) -> Result<Queue<T>, ShmError> {
        let mut q: Queue<T> = crate::shm::create_named(name, LockedRing::segment_len(self.capacity)?, |seg| {
            Ok::<_, ShmError>(
                LockedRing::create_in(seg, self.capacity, self.maxsize.unwrap_or(0), self.integrity)?.words(),
            )
        })?;
        q.set_wait(self.wait);
        Ok(q)
    }
}

impl<T> Queue<T> {
    /// A queue with the default capacity and no item limit.
    ///
    /// # Errors
    /// As [`QueueBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<u64> = multiproc::Queue::new()?;
    /// assert_eq!(q.maxsize(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Queue<T>, ShmError> {
        Queue::builder().build()
    }

    /// A queue holding at most `maxsize` items (Python's `Queue(maxsize)`).
    ///
    /// # Errors
    /// As [`QueueBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<u64> = multiproc::Queue::with_maxsize(6)?;
    /// assert_eq!(q.maxsize(), Some(6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>, ShmError> {
        Queue::builder().maxsize(maxsize).build()
    }

    /// A queue with the default capacity and no item limit under `name`, for processes that
    /// are not forked from this one (see [`QueueBuilder::create`]).
    ///
    /// # Errors
    /// As [`QueueBuilder::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-queue-create-{}", std::process::id());
    /// let q = multiproc::Queue::<u64>::create(&name)?;
    /// multiproc::Queue::<u64>::open(&name)?.put(&7)?; // typically in another program
    /// assert_eq!(q.get()?, 7);
    /// assert!(matches!(multiproc::Queue::<String>::open(&name), Err(multiproc::ShmError::Mismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<Queue<T>, ShmError> {
        Queue::builder().create(name)
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-queue-{}\", std::process::id());\nlet created = multiproc::Queue::<u64>::create(&name)?;\nlet opened = multiproc::Queue::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nopened.put(&3)?;\nassert_eq!(created.get()?, 3);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Queue::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// A builder for capacity and `maxsize`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::builder().capacity_bytes(1 << 12).build()?;
    /// assert_eq!(q.capacity_bytes(), 1 << 12);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder {
            capacity: DEFAULT_CAPACITY,
            maxsize: None,
            integrity: false,
            wait: WaitStrategy::Park,
            _t: PhantomData,
        }
    }
}
