//! The errors of a broadcast: one enum per operation and form (`docs/API.md` §4). Inside the
//! module every step returns `BcFail`, which knows every outcome; the public methods turn it
//! into their form's error.

#[cfg(feature = "serde")]
use crate::codec::CodecError;
use crate::forms::error_forms;
use crate::shm::ShmError;

/// Every outcome of a broadcast step, before the public method picks its form's error.
#[derive(Debug)]
pub(crate) enum BcFail {
    Lagged(u64),
    /// Nothing new, or the writers' lock busy, when the limit passed.
    NotNow,
    TooLarge {
        len: usize,
        max: usize,
    },
    #[cfg(feature = "serde")]
    Encode(CodecError),
    #[cfg(feature = "serde")]
    Decode(CodecError),
    Corrupt(&'static str),
    Shm(ShmError),
    Os(std::io::Error),
}

impl From<ShmError> for BcFail {
    fn from(e: ShmError) -> BcFail {
        BcFail::Shm(e)
    }
}

error_forms! {
    /// Why a blocking `publish` failed: nothing was published.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Broadcast, PublishError};
    /// let b = Broadcast::<Vec<u8>>::new(4, 8)?;
    /// assert!(matches!(b.publish_bytes(&[0; 9]), Err(PublishError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum PublishError;
    /// Why `try_publish` did not publish: another writer holds the writers' lock now, or one of
    /// [`PublishError`]'s reasons.
    #[derive(Debug)]
    pub enum TryPublishError {
        /// Another writer is publishing now.
        WouldBlock => "another writer is publishing", is_would_block
    }
    /// Why `publish_timeout`/`publish_deadline` did not publish: the other writers held the
    /// lock until the time ran out, or one of [`PublishError`]'s reasons.
    #[derive(Debug)]
    pub enum PublishTimeoutError {
        /// The writers' lock stayed busy until the time ran out.
        Timeout => "timed out waiting for the other writers", is_timeout
    }
    {
        /// The message is larger than a slot.
        TooLarge {
            /// The message's (encoded) length in bytes.
            len: usize,
            /// The largest message the broadcast takes.
            max: usize,
        } [{ len, max }] => ("a message of {len} bytes is larger than the broadcast's {max}-byte slots");
        /// The value could not be encoded.
        #[cfg(feature = "serde")]
        Encode(CodecError) [(e)] => ("cannot encode the message: {e}"), source e;
        /// The shared state is inconsistent (a corrupt segment).
        Corrupt(&'static str) [(w)] => ("corrupt broadcast: {w}");
        /// The writers' lock failed with this OS error.
        Os(std::io::Error) [(e)] => ("broadcast writers' lock: {e}"), source e;
    }
}

error_forms! {
    /// Why a blocking [`Subscriber`](crate::Subscriber) receive returned no message.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Broadcast, BroadcastRecvError};
    /// let b = Broadcast::<u8>::new(1, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish(&1)?;
    /// b.publish(&2)?;
    /// assert!(matches!(sub.recv(), Err(BroadcastRecvError::Lagged(1))));
    /// assert_eq!(sub.recv()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum BroadcastRecvError;
    /// Why a `try_recv*` of a [`Subscriber`](crate::Subscriber) returned no message.
    #[derive(Debug)]
    pub enum TryBroadcastRecvError {
        /// No new message now.
        Empty => "no new message", is_empty
    }
    /// Why a timed receive of a [`Subscriber`](crate::Subscriber) returned no message.
    #[derive(Debug)]
    pub enum BroadcastRecvTimeoutError {
        /// No new message came before the time ran out.
        Timeout => "timed out waiting for a message", is_timeout
    }
    {
        /// The subscriber fell behind by more than the ring holds: this many messages were
        /// overwritten before it read them. It now stands at the oldest message left; the next
        /// receive goes on from there.
        Lagged(u64) [(n)] => ("subscriber lagged: {n} messages were overwritten unread");
        /// A message could not be decoded as `T` (it was consumed).
        #[cfg(feature = "serde")]
        Decode(CodecError) [(e)] => ("cannot decode the message: {e}"), source e;
        /// The shared state is inconsistent (a corrupt segment).
        Corrupt(&'static str) [(w)] => ("corrupt broadcast: {w}");
    }
}

/// An outcome the form cannot have: read as inconsistent state.
const CROSSED: &str = "an outcome of another operation (inconsistent state)";

impl BcFail {
    /// The error of a publish of this form (`not_now`: what an expired limit means).
    fn publish_of(self) -> Result<PublishError, BcFail> {
        Ok(match self {
            BcFail::TooLarge { len, max } => PublishError::TooLarge { len, max },
            #[cfg(feature = "serde")]
            BcFail::Encode(e) => PublishError::Encode(e),
            BcFail::Corrupt(w) => PublishError::Corrupt(w),
            BcFail::Os(e) => PublishError::Os(e),
            BcFail::Shm(ShmError::Os(e)) => PublishError::Os(e),
            BcFail::NotNow => return Err(BcFail::NotNow),
            _ => PublishError::Corrupt(CROSSED),
        })
    }

    pub(crate) fn publish(self) -> PublishError {
        self.publish_of().unwrap_or(PublishError::Corrupt(CROSSED))
    }

    pub(crate) fn try_publish(self) -> TryPublishError {
        self.publish_of().map_or(TryPublishError::WouldBlock, TryPublishError::from)
    }

    pub(crate) fn publish_timeout(self) -> PublishTimeoutError {
        self.publish_of().map_or(PublishTimeoutError::Timeout, PublishTimeoutError::from)
    }

    fn recv_of(self) -> Result<BroadcastRecvError, BcFail> {
        Ok(match self {
            BcFail::Lagged(n) => BroadcastRecvError::Lagged(n),
            #[cfg(feature = "serde")]
            BcFail::Decode(e) => BroadcastRecvError::Decode(e),
            BcFail::Corrupt(w) => BroadcastRecvError::Corrupt(w),
            BcFail::NotNow => return Err(BcFail::NotNow),
            _ => BroadcastRecvError::Corrupt(CROSSED),
        })
    }

    pub(crate) fn recv(self) -> BroadcastRecvError {
        self.recv_of().unwrap_or(BroadcastRecvError::Corrupt(CROSSED))
    }

    pub(crate) fn try_recv(self) -> TryBroadcastRecvError {
        self.recv_of().map_or(TryBroadcastRecvError::Empty, TryBroadcastRecvError::from)
    }

    pub(crate) fn recv_timeout(self) -> BroadcastRecvTimeoutError {
        self.recv_of().map_or(BroadcastRecvTimeoutError::Timeout, BroadcastRecvTimeoutError::from)
    }

    /// The error of making a broadcast.
    pub(crate) fn setup(self) -> ShmError {
        match self {
            BcFail::Shm(e) => e,
            BcFail::Os(e) => ShmError::Os(e),
            BcFail::Corrupt(what) => ShmError::Corrupt { what },
            _ => ShmError::Corrupt { what: CROSSED },
        }
    }
}
