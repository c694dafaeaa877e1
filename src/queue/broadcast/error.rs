//! `BroadcastError`: why a broadcast operation failed.

#[cfg(feature = "serde")]
use crate::codec::CodecError;
use crate::shm::ShmError;
use std::fmt;

/// Why a [`Broadcast`](crate::Broadcast) or [`Subscriber`](crate::Subscriber) operation failed.
///
/// # Examples
///
/// ```
/// use multiproc::{Broadcast, BroadcastError};
/// let b = Broadcast::<u8>::new(1, 8)?;
/// let mut sub = b.subscribe();
/// b.publish(&1)?;
/// b.publish(&2)?;
/// assert!(matches!(sub.recv(), Err(BroadcastError::Lagged(1))));
/// assert_eq!(sub.recv()?, 2);
/// # Ok::<(), BroadcastError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The subscriber fell behind by more than the ring holds: this many messages were
    /// overwritten before it read them. It now stands at the oldest message left; the next
    /// `recv` goes on from there.
    Lagged(u64),
    /// A non-blocking receive found no new message.
    Empty,
    /// A timed receive found no new message in time.
    Timeout,
    /// The message is larger than a slot: nothing was published.
    TooLarge {
        /// The message's (encoded) length in bytes.
        len: usize,
        /// The largest message the broadcast takes.
        max: usize,
    },
    /// The value could not be encoded (nothing was published).
    #[cfg(feature = "serde")]
    Encode(CodecError),
    /// A message could not be decoded as `T` (it was consumed).
    #[cfg(feature = "serde")]
    Decode(CodecError),
    /// The shared state is inconsistent (a corrupt segment).
    Corrupt(&'static str),
    /// The broadcast's shared memory could not be created or opened.
    Shm(ShmError),
    /// The writers' lock failed with this OS error.
    Os(std::io::Error),
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BroadcastError::Lagged(n) => write!(f, "subscriber lagged: {n} messages were overwritten unread"),
            BroadcastError::Empty => f.write_str("no new message"),
            BroadcastError::Timeout => f.write_str("timed out waiting for a message"),
            BroadcastError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes is larger than the broadcast's {max}-byte slots")
            }
            #[cfg(feature = "serde")]
            BroadcastError::Encode(e) => write!(f, "cannot publish: {e}"),
            #[cfg(feature = "serde")]
            BroadcastError::Decode(e) => write!(f, "cannot receive: {e}"),
            BroadcastError::Corrupt(w) => write!(f, "corrupt broadcast: {w}"),
            BroadcastError::Shm(e) => write!(f, "broadcast memory: {e}"),
            BroadcastError::Os(e) => write!(f, "broadcast writers' lock: {e}"),
        }
    }
}

impl std::error::Error for BroadcastError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "serde")]
            BroadcastError::Encode(e) | BroadcastError::Decode(e) => Some(e),
            BroadcastError::Shm(e) => Some(e),
            BroadcastError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ShmError> for BroadcastError {
    fn from(e: ShmError) -> BroadcastError {
        BroadcastError::Shm(e)
    }
}
