//! `Broadcast`: every reader sees every message (the shape LibAFL's LLMP gives fuzzing
//! instances to share new inputs), with a fixed capacity and readers that lag instead of
//! holding writers up.
//!
//! One or many writers publish into a ring of fixed slots; each [`Subscriber`] has its own
//! cursor in its own process. A subscriber that falls more than the ring's slot count behind
//! (slow, stopped, or dead) is overtaken: its next `recv` reports
//! [`BroadcastError::Lagged`] with the number of messages it missed and resumes at the oldest
//! one still there, as tokio's broadcast channel does. Memory never grows. The protocol,
//! and why a killed writer never publishes half a message, is in `ring.rs`.

mod error;
mod ring;

pub use error::BroadcastError;
use ring::{BcRing, Read};

use crate::shm::{Segment, ShmError, Words};
use crate::wait::Limit;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

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
/// # Examples
///
/// ```
/// use multiproc::{Broadcast, Process};
///
/// let b = Broadcast::<String>::new(64, 256)?;
/// let mut sub = b.subscribe();
/// let reader = Process::new(move || -> Result<(), multiproc::BroadcastError> {
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
    /// [`BroadcastError::Shm`] if the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u64>::new(1024, 64)?;
    /// assert_eq!((b.slots(), b.max_message()), (1024, 64));
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn new(slots: usize, max_message: usize) -> Result<Broadcast<T>, BroadcastError> {
        let (words, len) = BcRing::segment_len(slots, max_message)?;
        let seg = Segment::anonymous(len)?;
        let w = BcRing::init_in(&seg, slots, words)?;
        Ok(<Broadcast<T> as crate::shm::Named>::from_named(&seg, &w)?)
    }

    /// A broadcast as [`new`](Self::new) under `name`, for processes that are not forked from
    /// this one: they [`open`](Self::open) it with the same `T`. The name is removed when this
    /// handle's last clone drops, unless [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`BroadcastError::Shm`]: the name exists ([`ShmError::Exists`]) or is invalid.
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
    pub fn create(name: &str, slots: usize, max_message: usize) -> Result<Broadcast<T>, BroadcastError> {
        let (words, len) = BcRing::segment_len(slots, max_message)?;
        crate::shm::create_named(name, len, |seg| BcRing::init_in(seg, slots, words))
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-bcast-{}\", std::process::id());\nlet created = multiproc::Broadcast::<u64>::create(&name, 8, 8)?;\nlet opened = multiproc::Broadcast::<u64>::open_timeout(&name, std::time::Duration::from_secs(1))?;\nlet mut sub = created.subscribe();\nopened.publish(&3)?;\nassert_eq!(sub.recv()?, 3);\nassert_eq!(opened.name(), Some(format!(\"/{name}\").as_str()));\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Broadcast::<u64>::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Number of slots: how far a subscriber may fall behind before it lags.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Broadcast::<u8>::new(0, 8)?.slots(), 1);
    /// # Ok::<(), multiproc::BroadcastError>(())
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
    /// # Ok::<(), multiproc::BroadcastError>(())
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
    /// # Ok::<(), multiproc::BroadcastError>(())
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
    /// assert!(matches!(sub.try_recv(), Err(multiproc::BroadcastError::Empty)));
    /// b.publish(&2)?;
    /// assert_eq!(sub.try_recv()?, 2);
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn subscribe(&self) -> Subscriber<T> {
        Subscriber { b: self.clone(), pos: self.ring.published(), missed: 0, buf: Vec::new() }
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
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn subscribe_oldest(&self) -> Subscriber<T> {
        let next = self.ring.published();
        Subscriber { b: self.clone(), pos: next.saturating_sub(self.ring.slots()), missed: 0, buf: Vec::new() }
    }

    /// Publishes a byte message to every subscriber; returns its sequence number. Never waits
    /// for readers (only, briefly, for another writer).
    ///
    /// # Errors
    /// [`BroadcastError::TooLarge`] (nothing was published), [`BroadcastError::Os`],
    /// [`BroadcastError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// assert_eq!(b.publish_bytes(b"abc")?, 0);
    /// assert_eq!(sub.recv_bytes()?, b"abc");
    /// assert!(matches!(b.publish_bytes(&[0; 9]), Err(multiproc::BroadcastError::TooLarge { .. })));
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn publish_bytes(&self, msg: &[u8]) -> Result<u64, BroadcastError> {
        if msg.len() > self.ring.max_message() {
            return Err(BroadcastError::TooLarge { len: msg.len(), max: self.ring.max_message() });
        }
        self.ring.publish(msg)
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Broadcast<T> {
    /// Publishes `value` to every subscriber; returns its sequence number.
    ///
    /// # Errors
    /// [`BroadcastError::Encode`], and those of [`publish_bytes`](Self::publish_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<(u32, String)>::new(8, 64)?;
    /// let mut sub = b.subscribe();
    /// b.publish(&(1, "one".to_string()))?;
    /// assert_eq!(sub.recv()?, (1, "one".to_string()));
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn publish(&self, value: &T) -> Result<u64, BroadcastError> {
        let bytes = crate::codec::encode(value).map_err(BroadcastError::Encode)?;
        self.publish_bytes(&bytes)
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

/// One reader of a [`Broadcast`], with its own position: it receives every message published
/// after it was made, in order, unless it falls more than [`Broadcast::slots`] behind; then its
/// next `recv` reports [`BroadcastError::Lagged`] and it goes on from the oldest message left.
///
/// A subscriber is local to a process (its position is not shared): a forked child gets a copy
/// that goes on independently. Readers write nothing to shared memory, so any number of them,
/// dead or alive, cost writers nothing.
///
/// # Examples
///
/// ```
/// let b = multiproc::Broadcast::<u32>::new(2, 8)?;
/// let mut sub = b.subscribe();
/// for i in 0..5 {
///     b.publish(&i)?;
/// }
/// assert!(matches!(sub.recv(), Err(multiproc::BroadcastError::Lagged(3))));
/// assert_eq!(sub.recv()?, 3);
/// assert_eq!(sub.recv()?, 4);
/// assert_eq!(sub.missed(), 3);
/// # Ok::<(), multiproc::BroadcastError>(())
/// ```
pub struct Subscriber<T> {
    b: Broadcast<T>,
    pos: u64,
    missed: u64,
    buf: Vec<u8>,
}

impl<T> fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("position", &self.pos).field("missed", &self.missed).finish()
    }
}

impl<T> Clone for Subscriber<T> {
    /// Another subscriber at the same position.
    fn clone(&self) -> Self {
        Subscriber { b: self.b.clone(), pos: self.pos, missed: self.missed, buf: Vec::new() }
    }
}

impl<T> Subscriber<T> {
    /// The sequence number of the next message this subscriber will receive.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// b.publish(&1)?;
    /// assert_eq!(b.subscribe().position(), 1);
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Messages published and not yet received (including any already overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// let sub = b.subscribe();
    /// b.publish(&1)?;
    /// assert_eq!(sub.pending(), 1);
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn pending(&self) -> u64 {
        self.b.ring.published().saturating_sub(self.pos)
    }

    /// Messages this subscriber missed so far (the sum of every `Lagged` it reported).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// assert_eq!(b.subscribe().missed(), 0);
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Receives the next message's bytes, blocking until one is published.
    ///
    /// # Errors
    /// [`BroadcastError::Lagged`] (messages were overwritten before this subscriber read them:
    /// the next call goes on from the oldest one left), [`BroadcastError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish_bytes(b"hi")?;
    /// assert_eq!(sub.recv_bytes()?, b"hi");
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, BroadcastError> {
        self.next_bytes(Limit::Forever).map(<[u8]>::to_vec)
    }

    /// [`recv_bytes`](Self::recv_bytes) into `out` (cleared first), without allocating once
    /// `out` has room; returns the message's length.
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// let mut buf = Vec::with_capacity(8);
    /// b.publish_bytes(b"abc")?;
    /// assert_eq!(sub.recv_bytes_into(&mut buf)?, 3);
    /// assert_eq!(buf, b"abc");
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, BroadcastError> {
        std::mem::swap(&mut self.buf, out);
        let r = self.next_bytes(Limit::Forever).map(<[u8]>::len);
        std::mem::swap(&mut self.buf, out);
        r
    }

    /// [`recv_bytes`](Self::recv_bytes) without blocking.
    ///
    /// # Errors
    /// [`BroadcastError::Empty`], and those of `recv_bytes`.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// assert!(matches!(b.subscribe().try_recv_bytes(), Err(multiproc::BroadcastError::Empty)));
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, BroadcastError> {
        self.next_bytes(Limit::Now).map(<[u8]>::to_vec)
    }

    /// [`recv_bytes`](Self::recv_bytes), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`BroadcastError::Timeout`], and those of `recv_bytes`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let r = b.subscribe().recv_bytes_timeout(Duration::from_millis(10));
    /// assert!(matches!(r, Err(multiproc::BroadcastError::Timeout)));
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, BroadcastError> {
        self.next_bytes(Limit::timeout(timeout)).map(<[u8]>::to_vec)
    }

    /// The next message, in this subscriber's buffer, waiting until `limit`.
    fn next_bytes(&mut self, limit: Limit) -> Result<&[u8], BroadcastError> {
        loop {
            self.buf.clear();
            match self.b.ring.read(self.pos, &mut self.buf)? {
                Read::Message => {
                    self.pos += 1;
                    return Ok(&self.buf);
                }
                Read::Lagged(to) => {
                    let n = to.saturating_sub(self.pos);
                    self.pos = to.max(self.pos);
                    self.missed += n;
                    return Err(BroadcastError::Lagged(n));
                }
                Read::Empty => {}
            }
            if limit.passed() {
                return Err(if limit.is_now() { BroadcastError::Empty } else { BroadcastError::Timeout });
            }
            let ring = &self.b.ring;
            let pos = self.pos;
            let _ = crate::queue::doorbell::wait_for(&ring.header().bell, limit.slice(SLICE), || {
                (ring.published() > pos).then_some(())
            });
        }
    }

    /// Whether a `recv` would not block now (for `wait`).
    pub(crate) fn ready_now(&self) -> bool {
        self.b.ring.published() > self.pos
    }

    /// See `BcRing::announce` (for `wait`).
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce(&self) -> (&crate::loom::atomic::AtomicU32, u32) {
        self.b.ring.announce()
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Subscriber<T> {
    /// Receives the next message, blocking until one is published.
    ///
    /// # Errors
    /// [`BroadcastError::Lagged`] (see [`recv_bytes`](Self::recv_bytes)),
    /// [`BroadcastError::Decode`] (the message was consumed), [`BroadcastError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish(&42)?;
    /// assert_eq!(sub.recv()?, 42);
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn recv(&mut self) -> Result<T, BroadcastError> {
        self.recv_limit(Limit::Forever)
    }

    /// [`recv`](Self::recv) without blocking.
    ///
    /// # Errors
    /// [`BroadcastError::Empty`], and those of `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// assert!(matches!(b.subscribe().try_recv(), Err(multiproc::BroadcastError::Empty)));
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<T, BroadcastError> {
        self.recv_limit(Limit::Now)
    }

    /// [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`BroadcastError::Timeout`], and those of `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// assert!(matches!(b.subscribe().recv_timeout(Duration::from_millis(5)), Err(multiproc::BroadcastError::Timeout)));
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, BroadcastError> {
        self.recv_limit(Limit::timeout(timeout))
    }

    /// [`recv`](Self::recv), waiting until `deadline`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish(&1)?;
    /// assert_eq!(sub.recv_deadline(Instant::now() + Duration::from_secs(1))?, 1);
    /// # Ok::<(), multiproc::BroadcastError>(())
    /// ```
    pub fn recv_deadline(&mut self, deadline: std::time::Instant) -> Result<T, BroadcastError> {
        self.recv_limit(Limit::deadline(deadline))
    }

    fn recv_limit(&mut self, limit: Limit) -> Result<T, BroadcastError> {
        let bytes = self.next_bytes(limit)?;
        crate::codec::decode(bytes).map_err(BroadcastError::Decode)
    }
}
