//! `Broadcast`: every reader sees every message (the shape LibAFL's LLMP gives fuzzing
//! instances to share new inputs), with a fixed capacity and readers that lag instead of
//! holding writers up.
//!
//! One or many writers publish into a ring of fixed slots; each [`Subscriber`] has its own
//! cursor in its own process. A subscriber that falls more than the ring's slot count behind
//! (slow, stopped, or dead) is overtaken: its next `recv` reports
//! [`BroadcastRecvError::Lagged`] with the number of messages it missed and resumes at the oldest
//! one still there, as tokio's broadcast channel does. Memory never grows. The protocol,
//! and why a killed writer never publishes half a message, is in `ring.rs`.

mod error;
mod ring;
mod subscriber;

pub(crate) use error::BcFail;
pub use error::{
    BroadcastRecvError, BroadcastRecvTimeoutError, PublishError, PublishTimeoutError, TryBroadcastRecvError,
    TryPublishError,
};
use ring::BcRing;
pub use subscriber::Subscriber;

use crate::shm::{Segment, ShmError, Words};
use crate::wait::Limit;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// How long a blocked `recv` sleeps before looking again (covers a writer that died between
/// publishing and ringing the doorbell).
const SLICE: Duration = Duration::from_millis(100);

/// A broadcast channel in shared memory: a writer handle that any process holding it (a
/// clone, a fork, a spawn argument, or [`open`](Self::open) by name) can publish through, and
/// the source of [`Subscriber`]s.
///
/// `T` is the message type (any serde type, encoded with the crate's codec); the byte methods
/// ([`publish_bytes`](Self::publish_bytes), [`Subscriber::recv_bytes`]) work for every `T`.
///
/// # No loans
///
/// Unlike [`Pipe`](crate::Pipe) and [`Queue`](crate::Queue), a broadcast has no zero-copy
/// loans, by design: its readers write nothing shared, so that a slow, stopped or dead reader
/// never holds a writer up, and a writer may overwrite a slot while a reader copies it (the
/// reader then sees the slot's stamp change and reports a lag). A message lent to a reader in
/// place could change under its `&[u8]`; a writer's plain writes into a slot would race the
/// readers' atomic reads. Both would be undefined behaviour, and preventing them would make
/// writers wait for readers, which is what a broadcast exists to avoid. Read with
/// [`Subscriber::recv_bytes_into`] into a reused buffer: one copy, no allocation.
///
/// # Examples
///
/// ```
/// use multiproc::{Broadcast, Process};
///
/// let b = Broadcast::<String>::new(64, 256)?;
/// let mut sub = b.subscribe();
/// let reader = Process::new(move || -> Result<(), multiproc::BroadcastRecvError> {
///     assert_eq!(sub.recv()?, "new input");
///     Ok(())
/// });
/// reader.start()?;
/// b.publish(&"new input".to_string())?;
/// reader.join()?;
/// assert_eq!(reader.exitcode(), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Broadcast<T> {
    ring: BcRing,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Broadcast<T> {
    fn clone(&self) -> Self {
        Broadcast { ring: self.ring.clone(), _t: PhantomData }
    }
}

impl<T> fmt::Debug for Broadcast<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("slots", &self.ring.slots())
            .field("max_message", &self.ring.max_message())
            .field("published", &self.ring.published())
            .finish()
    }
}

impl<T> Broadcast<T> {
    /// A broadcast of `slots` messages (at least 1) of at most `max_message` bytes each
    /// (rounded up to 8), shared with the children forked after it.
    ///
    /// # Errors
    /// [`ShmError`] if the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u64>::new(1024, 64)?;
    /// assert_eq!((b.slots(), b.max_message()), (1024, 64));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(slots: usize, max_message: usize) -> Result<Broadcast<T>, ShmError> {
        let (words, len) = BcRing::segment_len(slots, max_message)?;
        let seg = Segment::anonymous(len)?;
        let w = BcRing::init_in(&seg, slots, words).map_err(BcFail::setup)?;
        <Broadcast<T> as crate::shm::Named>::from_named(&seg, &w)
    }

    /// A broadcast as [`new`](Self::new) under `name`, for processes that are not forked from
    /// this one: they [`open`](Self::open) it with the same `T`. The name is removed when this
    /// handle's last clone drops, unless [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, or another [`ShmError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-bcast-create-{}", std::process::id());
    /// let b = multiproc::Broadcast::<u32>::create(&name, 16, 8)?;
    /// let mut sub = multiproc::Broadcast::<u32>::open(&name)?.subscribe(); // typically in another program
    /// b.publish(&9)?;
    /// assert_eq!(sub.recv()?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, slots: usize, max_message: usize) -> Result<Broadcast<T>, ShmError> {
        let (words, len) = BcRing::segment_len(slots, max_message)?;
        crate::shm::create_named(name, len, |seg| BcRing::init_in(seg, slots, words).map_err(BcFail::setup))
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-bcast-{}\", std::process::id());\nlet created = multiproc::Broadcast::<u64>::create(&name, 8, 8)?;\nlet opened = multiproc::Broadcast::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nlet mut sub = created.subscribe();\nopened.publish(&3)?;\nassert_eq!(sub.recv()?, 3);\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Broadcast::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Number of slots: how far a subscriber may fall behind before it lags.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Broadcast::<u8>::new(0, 8)?.slots(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slots(&self) -> usize {
        self.ring.slots() as usize
    }

    /// The largest message, in (encoded) bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Broadcast::<u8>::new(4, 10)?.max_message(), 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.ring.max_message()
    }

    /// Messages published so far, by every writer.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// b.publish_bytes(b"x")?;
    /// assert_eq!(b.published(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn published(&self) -> u64 {
        self.ring.published()
    }

    /// A subscriber that starts at the next message published (it sees nothing older).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// b.publish(&1)?;
    /// let mut sub = b.subscribe();
    /// assert!(matches!(sub.try_recv(), Err(multiproc::TryBroadcastRecvError::Empty)));
    /// b.publish(&2)?;
    /// assert_eq!(sub.try_recv()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self) -> Subscriber<T> {
        Subscriber::at(self.clone(), self.ring.published())
    }

    /// A subscriber that starts at the oldest message still in the ring.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// b.publish(&1)?;
    /// let mut sub = b.subscribe_oldest();
    /// assert_eq!(sub.try_recv()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_oldest(&self) -> Subscriber<T> {
        let next = self.ring.published();
        Subscriber::at(self.clone(), next.saturating_sub(self.ring.slots()))
    }

    /// Publishes a byte message to every subscriber; returns its sequence number. Never waits
    /// for readers (only, briefly, for another writer).
    ///
    /// # Errors
    /// [`PublishError::TooLarge`] (nothing was published), [`PublishError::Os`],
    /// [`PublishError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// assert_eq!(b.publish_bytes(b"abc")?, 0);
    /// assert_eq!(sub.recv_bytes()?, b"abc");
    /// assert!(matches!(b.publish_bytes(&[0; 9]), Err(multiproc::PublishError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_bytes(&self, msg: &[u8]) -> Result<u64, PublishError> {
        self.publish_until(msg, Limit::Forever).map_err(BcFail::publish)
    }

    /// [`publish_bytes`](Self::publish_bytes) if no other writer is publishing now.
    ///
    /// # Errors
    /// [`TryPublishError::WouldBlock`], or as [`publish_bytes`](Self::publish_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// assert_eq!(b.try_publish_bytes(b"x")?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_publish_bytes(&self, msg: &[u8]) -> Result<u64, TryPublishError> {
        self.publish_until(msg, Limit::Now).map_err(BcFail::try_publish)
    }

    /// [`publish_bytes`](Self::publish_bytes), waiting at most `timeout` for the other writers.
    ///
    /// # Errors
    /// [`PublishTimeoutError::Timeout`], or as [`publish_bytes`](Self::publish_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// assert_eq!(b.publish_bytes_timeout(b"x", std::time::Duration::from_millis(10))?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_bytes_timeout(&self, msg: &[u8], timeout: Duration) -> Result<u64, PublishTimeoutError> {
        self.publish_until(msg, Limit::timeout(timeout)).map_err(BcFail::publish_timeout)
    }

    /// [`publish_bytes`](Self::publish_bytes), waiting until `deadline` for the other writers.
    ///
    /// # Errors
    /// As [`publish_bytes_timeout`](Self::publish_bytes_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// assert_eq!(b.publish_bytes_deadline(b"x", std::time::Instant::now())?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_bytes_deadline(&self, msg: &[u8], deadline: Instant) -> Result<u64, PublishTimeoutError> {
        self.publish_until(msg, Limit::deadline(deadline)).map_err(BcFail::publish_timeout)
    }

    fn publish_until(&self, msg: &[u8], limit: Limit) -> Result<u64, BcFail> {
        if msg.len() > self.ring.max_message() {
            return Err(BcFail::TooLarge { len: msg.len(), max: self.ring.max_message() });
        }
        self.ring.publish(msg, limit)
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Broadcast<T> {
    /// Publishes `value` to every subscriber; returns its sequence number.
    ///
    /// # Errors
    /// [`PublishError::Encode`], and those of [`publish_bytes`](Self::publish_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<(u32, String)>::new(8, 64)?;
    /// let mut sub = b.subscribe();
    /// b.publish(&(1, "one".to_string()))?;
    /// assert_eq!(sub.recv()?, (1, "one".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&self, value: &T) -> Result<u64, PublishError> {
        self.publish_value(value, Limit::Forever).map_err(BcFail::publish)
    }

    /// [`publish`](Self::publish) if no other writer is publishing now.
    ///
    /// # Errors
    /// [`TryPublishError::WouldBlock`], or as [`publish`](Self::publish).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u32>::new(8, 8)?;
    /// assert_eq!(b.try_publish(&5)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_publish(&self, value: &T) -> Result<u64, TryPublishError> {
        self.publish_value(value, Limit::Now).map_err(BcFail::try_publish)
    }

    /// [`publish`](Self::publish), waiting at most `timeout` for the other writers.
    ///
    /// # Errors
    /// [`PublishTimeoutError::Timeout`], or as [`publish`](Self::publish).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u32>::new(8, 8)?;
    /// assert_eq!(b.publish_timeout(&5, std::time::Duration::from_millis(10))?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_timeout(&self, value: &T, timeout: Duration) -> Result<u64, PublishTimeoutError> {
        self.publish_value(value, Limit::timeout(timeout)).map_err(BcFail::publish_timeout)
    }

    /// [`publish`](Self::publish), waiting until `deadline` for the other writers.
    ///
    /// # Errors
    /// As [`publish_timeout`](Self::publish_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u32>::new(8, 8)?;
    /// assert_eq!(b.publish_deadline(&5, std::time::Instant::now())?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_deadline(&self, value: &T, deadline: Instant) -> Result<u64, PublishTimeoutError> {
        self.publish_value(value, Limit::deadline(deadline)).map_err(BcFail::publish_timeout)
    }

    fn publish_value(&self, value: &T, limit: Limit) -> Result<u64, BcFail> {
        let bytes = crate::codec::encode(value).map_err(BcFail::Encode)?;
        self.publish_until(&bytes, limit)
    }
}

impl<T> crate::shm::Named for Broadcast<T> {
    const KIND: crate::shm::ObjectKind = crate::shm::ObjectKind::Broadcast;

    fn type_info() -> crate::shm::TypeInfo {
        crate::shm::TypeInfo::encoded::<T>()
    }

    fn from_named(seg: &Segment, w: &Words) -> Result<Self, ShmError> {
        Ok(Broadcast { ring: BcRing::attach(seg, w)?, _t: PhantomData })
    }

    fn segment(&self) -> &Segment {
        self.ring.segment()
    }

    fn words(&self) -> Words {
        self.ring.words()
    }
}
