//! Sending a shared object itself over a connection: [`Connection::send_object`] and
//! [`Connection::recv_object`] (Python pickles a `Queue` or a `Lock` to hand it over).
//!
//! An object travels as one data message that says what it is (its kind, its type
//! parameter's fingerprint, size and alignment) and where its parts are (offsets into its
//! segments, as a named object's directory does), followed by one descriptor per segment
//! (`send_fd`). The receiver maps each segment, validates it, checks what the message says
//! against the type it asked for (another is `WrongType`, never a reinterpretation), and
//! bounds-checks every offset, exactly as an opener of a named object does.

use super::{Connection, ExportFail, Exported, RecvError, SendError, EXPORT_WORDS};
use crate::shm::{Named, Parts, Segment, DIR_WORDS};
use std::os::fd::{AsFd, OwnedFd};

#[cfg(feature = "serde")]
pub(crate) use transfer::{decode_with_handles, encode_with_handles};

const MAGIC: &[u8; 8] = b"MPOBJ1\0\0";
/// Bytes of the message that announces an object.
const LEN: usize = 8 + 4 * 8 + EXPORT_WORDS + 8 * EXPORT_WORDS;
/// The tag of a connection end (object kinds are small numbers).
const CONNECTION_TAG: u32 = 0xC0_0000;

/// What travels for one object.
#[derive(Debug)]
pub struct Shipment {
    tag: u32,
    ty: (u64, u32, u32),
    fds: Vec<OwnedFd>,
    seg_of: [u8; EXPORT_WORDS],
    words: [u64; EXPORT_WORDS],
}

mod sealed {
    /// The crate-private half of [`Shareable`](super::Shareable).
    pub trait Sealed: Sized {
        fn expected() -> (u32, (u64, u32, u32));
        fn ship(&self) -> Result<super::Shipment, crate::SendError>;
        fn unship(s: super::Shipment) -> Result<Self, crate::RecvError>;
    }
}

/// An object that can be sent over a [`Connection`] to another process with
/// [`Connection::send_object`]: every lock, semaphore, event, condition, barrier, value,
/// array, queue, `ArrayQueue`, `SharedMemory`, and a `Connection` end itself.
pub trait Shareable: sealed::Sealed {}

impl<T: Named> sealed::Sealed for T {
    fn expected() -> (u32, (u64, u32, u32)) {
        let ty = T::type_info();
        (T::KIND as u32, (ty.fp, ty.size, ty.align))
    }

    fn ship(&self) -> Result<Shipment, SendError> {
        let p = self.parts();
        let fds =
            p.segs.iter().map(|s| s.fd().try_clone_to_owned()).collect::<Result<Vec<_>, _>>().map_err(SendError::Os)?;
        let (tag, ty) = T::expected();
        let mut seg_of = [Parts::PARAM; EXPORT_WORDS];
        seg_of[..DIR_WORDS].copy_from_slice(&p.seg_of);
        let mut words = [0; EXPORT_WORDS];
        words[..DIR_WORDS].copy_from_slice(&p.words);
        Ok(Shipment { tag, ty, fds, seg_of, words })
    }

    fn unship(s: Shipment) -> Result<Self, RecvError> {
        let segs = s
            .fds
            .into_iter()
            .map(|fd| Segment::adopt_fd(fd, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| RecvError::Corrupt("an object's segment is not a valid segment"))?;
        let mut p = Parts { segs, words: [0; DIR_WORDS], seg_of: [0; DIR_WORDS] };
        p.words.copy_from_slice(&s.words[..DIR_WORDS]);
        p.seg_of.copy_from_slice(&s.seg_of[..DIR_WORDS]);
        T::from_parts(&p).map_err(|_| RecvError::Corrupt("an object's parts lie outside its segments"))
    }
}

impl<T: Named> Shareable for T {}

impl sealed::Sealed for Connection {
    fn expected() -> (u32, (u64, u32, u32)) {
        (CONNECTION_TAG, (0, 0, 0))
    }

    fn ship(&self) -> Result<Shipment, SendError> {
        let x = self.export().map_err(|e| match e {
            ExportFail::Closed => SendError::NotShareable("a closed connection end"),
            ExportFail::NotShared => SendError::NotShareable("a TCP connection end"),
            ExportFail::Shm(_) => SendError::Corrupt("the connection end's rings lie outside its segment"),
            // Only an import says this; an export cannot.
            ExportFail::AlreadyHeld => SendError::Corrupt("the connection end is held twice in this process"),
            ExportFail::Os(e) => SendError::Os(e),
        })?;
        Ok(Shipment { tag: CONNECTION_TAG, ty: (0, 0, 0), fds: x.fds, seg_of: [0; EXPORT_WORDS], words: x.words })
    }

    fn unship(s: Shipment) -> Result<Self, RecvError> {
        Connection::import(Exported { fds: s.fds, words: s.words }).map_err(|e| match e {
            ExportFail::AlreadyHeld => RecvError::AlreadyHeld,
            _ => RecvError::Corrupt("a connection end that does not check out"),
        })
    }
}

impl Shareable for Connection {}

/// The tag of a split queue's side: this bit or'ed into the queue's kind.
#[cfg(feature = "serde")]
const SIDE_TAG: u32 = 0xC1_0000;
#[cfg(feature = "serde")]
const CONSUMER_BIT: u32 = 0x100;

/// A split queue's side travels as its queue plus two descriptors (its liveness pipe ends),
/// so that the receiving process counts as a producer (or consumer) while it holds it.
#[cfg(feature = "serde")]
macro_rules! side_shareable {
    ($side:ident, $bit:expr) => {
        impl<T> sealed::Sealed for crate::queue::$side<T> {
            fn expected() -> (u32, (u64, u32, u32)) {
                let (tag, ty) = <crate::queue::Queue<T> as sealed::Sealed>::expected();
                (SIDE_TAG | $bit | tag, ty)
            }

            fn ship(&self) -> Result<Shipment, SendError> {
                let mut s = sealed::Sealed::ship(self.queue())?;
                let (alive, peer) = self.fds();
                s.fds.push(alive.try_clone_to_owned().map_err(SendError::Os)?);
                s.fds.push(peer.try_clone_to_owned().map_err(SendError::Os)?);
                s.tag |= SIDE_TAG | $bit;
                Ok(s)
            }

            fn unship(mut s: Shipment) -> Result<Self, RecvError> {
                let bad = RecvError::Corrupt("a queue side without its liveness descriptors");
                let peer = s.fds.pop().ok_or(bad)?;
                let alive = s.fds.pop().ok_or(RecvError::Corrupt("a queue side without its liveness descriptors"))?;
                s.tag &= !(SIDE_TAG | $bit);
                let queue = <crate::queue::Queue<T> as sealed::Sealed>::unship(s)?;
                Ok(crate::queue::$side::from_fds(queue, alive, peer))
            }
        }

        impl<T> Shareable for crate::queue::$side<T> {}
    };
}

#[cfg(feature = "serde")]
side_shareable!(Producer, 0);
#[cfg(feature = "serde")]
side_shareable!(Consumer, CONSUMER_BIT);

impl Connection {
    /// Sends `object` (a queue, a lock, a value, shared memory, another connection end, …)
    /// to the process at the other end, which gets its own working handle with
    /// [`recv_object`](Self::recv_object): no name needed. Needs a connection with descriptor
    /// passing ([`PipeBuilder::fd_passing`](super::PipeBuilder::fd_passing), or any same-host
    /// connection made by a [`Listener`](crate::Listener)).
    ///
    /// # Errors
    /// [`SendError::FdPassingDisabled`], and the errors of [`send_bytes`](Self::send_bytes)
    /// and [`send_fd`](Self::send_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pipe, Queue};
    ///
    /// let (mut a, mut b) = Pipe::builder().fd_passing(true).duplex()?;
    /// let q = Queue::<u64>::new()?;
    /// a.send_object(&q)?;
    /// let q2: Queue<u64> = b.recv_object()?; // typically in another process
    /// q2.put(&7)?;
    /// assert_eq!(q.get()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_object<T: Shareable>(&mut self, object: &T) -> Result<(), SendError> {
        match self.passes_fds() {
            Some(true) => {}
            Some(false) => return Err(SendError::FdPassingDisabled),
            None => return Err(SendError::Closed),
        }
        let s = object.ship()?;
        let mut msg = Vec::with_capacity(LEN);
        msg.extend_from_slice(MAGIC);
        for w in [s.tag as u64, s.ty.0, u64::from(s.ty.1) | u64::from(s.ty.2) << 32, s.fds.len() as u64] {
            msg.extend_from_slice(&w.to_le_bytes());
        }
        msg.extend_from_slice(&s.seg_of);
        for w in s.words {
            msg.extend_from_slice(&w.to_le_bytes());
        }
        self.send_bytes(&msg)?;
        for fd in &s.fds {
            self.send_fd(fd.as_fd())?;
        }
        Ok(())
    }

    /// Receives an object sent with [`send_object`](Self::send_object), blocking until it
    /// arrives. The object must be a `T` (the same kind and type parameter).
    ///
    /// # Errors
    /// [`RecvError::WrongType`] if another kind of object (or another type parameter) was sent
    /// (its descriptors are consumed and closed); [`RecvError::Corrupt`] for a message that is
    /// not an object or whose parts do not check out; the errors of
    /// [`recv_bytes`](Self::recv_bytes) and [`recv_fd`](Self::recv_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Lock, Pipe};
    ///
    /// let (mut a, mut b) = Pipe::builder().fd_passing(true).duplex()?;
    /// let lock = Lock::new()?;
    /// a.send_object(&lock)?;
    /// let same: Lock = b.recv_object()?;
    /// let _held = lock.lock()?;
    /// let other_thread = std::thread::spawn(move || same.try_lock().is_err_and(|e| e.is_would_block()));
    /// assert!(other_thread.join().unwrap()); // the same lock: held
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_object<T: Shareable>(&mut self) -> Result<T, RecvError> {
        if self.passes_fds() == Some(false) {
            return Err(RecvError::FdPassingDisabled);
        }
        let msg = self.recv_bytes()?;
        if msg.len() != LEN || &msg[..8] != MAGIC {
            return Err(RecvError::Corrupt("not an object message"));
        }
        let word = |i: usize| u64::from_le_bytes(msg[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
        let (tag, fp, sa, nfds) = (word(0), word(1), word(2), word(3));
        if nfds as usize > Parts::MAX_SEGS.max(4) {
            return Err(RecvError::Corrupt("an object with too many descriptors"));
        }
        let mut fds = Vec::with_capacity(nfds as usize);
        for _ in 0..nfds {
            fds.push(self.recv_fd()?);
        }
        let (want_tag, want_ty) = T::expected();
        if tag != u64::from(want_tag) || (fp, sa) != (want_ty.0, u64::from(want_ty.1) | u64::from(want_ty.2) << 32) {
            return Err(RecvError::WrongType { expected: std::any::type_name::<T>() });
        }
        let at = 8 + 4 * 8;
        let mut seg_of = [0u8; EXPORT_WORDS];
        seg_of.copy_from_slice(&msg[at..at + EXPORT_WORDS]);
        let mut words = [0u64; EXPORT_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            let o = at + EXPORT_WORDS + 8 * i;
            *w = u64::from_le_bytes(msg[o..o + 8].try_into().expect("8 bytes"));
        }
        T::unship(Shipment { tag: tag as u32, ty: want_ty, fds, seg_of, words })
    }
}

/// Handles inside serde values: a value that holds a `Queue`, a `Lock`, … can be encoded for a
/// process started with `Spawn` or `ForkServer` (its descriptors travel beside the bytes, over
/// the bootstrap socket) and decoded there into working handles.
///
/// While [`encode_with_handles`] runs, each handle's `Serialize` moves its descriptors to a
/// thread-local list and writes their positions in it, with its kind, type and words; while
/// [`decode_with_handles`] runs, each handle's `Deserialize` takes its descriptors back by
/// position (each at most once) and is checked as a received object is. Outside these two
/// calls a handle cannot be serialized (an error, not a silent copy of a number).
#[cfg(feature = "serde")]
mod transfer {
    use super::{Shareable, Shipment, CONNECTION_TAG};
    use crate::codec::{self, CodecError};
    use std::cell::RefCell;
    use std::os::fd::OwnedFd;

    thread_local! {
        static OUT: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
        static IN: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    }

    /// The most descriptors one value may carry.
    const MAX_FDS: usize = 64;

    /// Encodes `value`, collecting the descriptors of the handles it holds.
    pub(crate) fn encode_with_handles<T: serde::Serialize + ?Sized>(
        value: &T,
    ) -> Result<(Vec<u8>, Vec<OwnedFd>), CodecError> {
        OUT.with(|o| *o.borrow_mut() = Some(Vec::new()));
        let r = codec::encode(value);
        let fds = OUT.with(|o| o.borrow_mut().take()).unwrap_or_default();
        r.map(|bytes| (bytes, fds))
    }

    /// Decodes a `T` whose handles' descriptors are `fds`; descriptors no handle took are
    /// closed.
    pub(crate) fn decode_with_handles<T: serde::de::DeserializeOwned>(
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<T, CodecError> {
        IN.with(|i| *i.borrow_mut() = Some(fds.into_iter().map(Some).collect()));
        let r = codec::decode(bytes);
        IN.with(|i| i.borrow_mut().take());
        r
    }

    /// What a handle writes: tag, type (fingerprint, size|align), first descriptor, count,
    /// which segment each word is in, the words.
    type Wire = (u32, u64, u64, u32, u32, [u8; super::EXPORT_WORDS], [u64; super::EXPORT_WORDS]);

    pub(super) fn serialize_handle<T: Shareable, S: serde::Serializer>(h: &T, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let ship = h.ship().map_err(S::Error::custom)?;
        let base = OUT.with(|o| {
            let mut o = o.borrow_mut();
            let Some(v) = o.as_mut() else {
                return Err(S::Error::custom(
                    "a shared handle can only be serialized to start a process (spawn) or with Connection::send_object",
                ));
            };
            if v.len() + ship.fds.len() > MAX_FDS {
                return Err(S::Error::custom("too many handles in one value"));
            }
            let base = v.len();
            v.extend(ship.fds);
            Ok(base)
        })?;
        let n = OUT.with(|o| o.borrow().as_ref().map_or(0, Vec::len)) - base;
        let wire: Wire = (
            ship.tag,
            ship.ty.0,
            u64::from(ship.ty.1) | u64::from(ship.ty.2) << 32,
            base as u32,
            n as u32,
            ship.seg_of,
            ship.words,
        );
        serde::Serialize::serialize(&wire, s)
    }

    pub(super) fn deserialize_handle<'de, T: Shareable, D: serde::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        use serde::de::Error;
        let (tag, fp, sa, base, n, seg_of, words): Wire = serde::Deserialize::deserialize(d)?;
        let (want_tag, want_ty) = T::expected();
        if tag != want_tag || (fp, sa) != (want_ty.0, u64::from(want_ty.1) | u64::from(want_ty.2) << 32) {
            let what = if tag == CONNECTION_TAG { "a Connection" } else { "another kind or type of object" };
            return Err(D::Error::custom(format!("expected {}, got {what}", std::any::type_name::<T>())));
        }
        let fds = IN.with(|i| {
            let mut i = i.borrow_mut();
            let Some(v) = i.as_mut() else {
                return Err(D::Error::custom("a shared handle can only be decoded where it was sent to"));
            };
            let range = (base as usize)..(base as usize).saturating_add(n as usize);
            if range.end > v.len() {
                return Err(D::Error::custom("a handle names descriptors that did not arrive"));
            }
            v[range].iter_mut().map(|f| f.take().ok_or_else(|| D::Error::custom("a descriptor used twice"))).collect()
        })?;
        T::unship(Shipment { tag, ty: want_ty, fds, seg_of, words }).map_err(D::Error::custom)
    }
}

/// `Serialize` and `Deserialize` for handles (see `transfer`).
#[cfg(feature = "serde")]
macro_rules! handle_serde {
    ($([$($g:tt)*] $t:ty),* $(,)?) => {$(
        impl<$($g)*> serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                transfer::serialize_handle(self, s)
            }
        }

        impl<'de, $($g)*> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                transfer::deserialize_handle(d)
            }
        }
    )*};
}

#[cfg(feature = "serde")]
use crate::shm::ShmSafe;
#[cfg(feature = "serde")]
use crate::sync::{
    Array, Barrier, BoundedSemaphore, Condition, ConditionLock, Event, Lock, RLock, RawArray, RawValue, Semaphore,
    Value,
};

#[cfg(feature = "serde")]
handle_serde!(
    [] Lock,
    [] RLock,
    [] Semaphore,
    [] BoundedSemaphore,
    [] Event,
    [] Barrier,
    [L: ConditionLock] Condition<L>,
    [T: ShmSafe] Value<T>,
    [T: ShmSafe] Array<T>,
    [T: ShmSafe] RawValue<T>,
    [T: ShmSafe] RawArray<T>,
    [T] crate::queue::Queue<T>,
    [T] crate::queue::SimpleQueue<T>,
    [T] crate::queue::JoinableQueue<T>,
    [T] crate::queue::Producer<T>,
    [T] crate::queue::Consumer<T>,
    [T: ShmSafe] crate::queue::ArrayQueue<T>,
    [T] crate::queue::Broadcast<T>,
    [] crate::shm::SharedMemory,
    [] crate::sync::ShareableList,
    [] Connection,
    [] crate::shm::WordArray,
    [] crate::queue::SharedBell,
);
