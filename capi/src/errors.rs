//! Which status each multiproc error becomes. The message is the error's own `Display`, so
//! C sees the same words a Rust caller would.

use crate::status::*;
use mp::*;
use std::fmt::Display;

/// An error of the Rust API, read as a status.
pub(crate) trait ToStatus {
    fn status(&self) -> mp_status;
}

impl<E: ToStatus + Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail::new(e.status(), e.to_string())
    }
}

/// One `match` per error type: its variants by name, the rest (`#[non_exhaustive]`) `MP_OS`.
macro_rules! statuses {
    ($($ty:ty { $($pat:pat => $st:expr),* $(,)? })*) => {$(
        impl ToStatus for $ty {
            #[allow(unreachable_patterns)]
            fn status(&self) -> mp_status {
                match self {
                    $($pat => $st,)*
                    _ => MP_OS,
                }
            }
        }
    )*};
}

/// The arms shared by a blocking error and its timed and try forms (written with `Self::`),
/// plus the variant each of those two adds.
macro_rules! forms {
    ($($b:ty, $t:ty, $y:ty : $yv:ident => $yst:expr; { $($pat:pat => $st:expr),* $(,)? })*) => {$(
        statuses! { $b { $($pat => $st),* } }
        statuses! { $t { Self::Timeout => MP_TIMEOUT, $($pat => $st),* } }
        statuses! { $y { Self::$yv => $yst, $($pat => $st),* } }
    )*};
}

statuses! {
    ShmError {
        ShmError::NotFound { .. } | ShmError::NotReady { .. } => MP_NOT_FOUND,
        ShmError::Exists { .. } => MP_EXISTS,
        ShmError::Mismatch { .. } | ShmError::VersionMismatch { .. } | ShmError::BadMagic { .. } => MP_MISMATCH,
        ShmError::Corrupt { .. } | ShmError::OutOfBounds { .. } => MP_CORRUPT,
        ShmError::InvalidName { .. } | ShmError::InvalidArgument { .. } | ShmError::TooSmall { .. } => MP_INVALID,
        ShmError::TooLarge { .. } | ShmError::OutOfSpace { .. } => MP_TOO_LARGE,
        // /dev/shm is full: the system's limit, not the request's size.
        ShmError::NoSpace { .. } => MP_OS,
        ShmError::PermissionDenied { .. } | ShmError::Os(_) => MP_OS,
    }
    Timeout { _ => MP_TIMEOUT }
    WouldBlock { _ => MP_TIMEOUT }
    ReleaseError { _ => MP_INVALID }
    NotifyError { NotifyError::NotOwner => MP_INVALID }
    BarrierError {
        BarrierError::Broken | BarrierError::PartyDied | BarrierError::ActionFailed => MP_BROKEN,
    }
    BarrierTimeoutError {
        BarrierTimeoutError::Timeout => MP_TIMEOUT,
        BarrierTimeoutError::Broken | BarrierTimeoutError::PartyDied | BarrierTimeoutError::ActionFailed => MP_BROKEN,
    }
    ConnError {
        ConnError::Refused(_) => MP_NOT_FOUND,
        ConnError::AddressInUse(_) => MP_EXISTS,
        ConnError::BadAddress { .. } => MP_INVALID,
        ConnError::Authentication(_) | ConnError::Protocol(_) => MP_MISMATCH,
        ConnError::HandshakeTimeout => MP_TIMEOUT,
        ConnError::Shm(e) => e.status(),
    }
    ConnTimeoutError {
        ConnTimeoutError::Timeout | ConnTimeoutError::HandshakeTimeout => MP_TIMEOUT,
        ConnTimeoutError::Refused(_) => MP_NOT_FOUND,
        ConnTimeoutError::AddressInUse(_) => MP_EXISTS,
        ConnTimeoutError::BadAddress { .. } => MP_INVALID,
        ConnTimeoutError::Authentication(_) | ConnTimeoutError::Protocol(_) => MP_MISMATCH,
        ConnTimeoutError::Shm(e) => e.status(),
    }
    TryConnError {
        TryConnError::WouldBlock => MP_EMPTY,
        TryConnError::HandshakeTimeout => MP_TIMEOUT,
        TryConnError::Refused(_) => MP_NOT_FOUND,
        TryConnError::AddressInUse(_) => MP_EXISTS,
        TryConnError::BadAddress { .. } => MP_INVALID,
        TryConnError::Authentication(_) | TryConnError::Protocol(_) => MP_MISMATCH,
        TryConnError::Shm(e) => e.status(),
    }
}

forms! {
    GetError, GetTimeoutError, TryGetError: Empty => MP_EMPTY; {
        Self::Closed | Self::Disconnected | Self::ShutDown => MP_CLOSED,
        // The element type was checked on open: an item that is not bytes was not written by
        // a correct peer.
        Self::Corrupt(_) | Self::NotBytes => MP_CORRUPT,
        Self::Decode(_) => MP_MISMATCH,
    }
    PutError, PutTimeoutError, TryPutError: Full => MP_FULL; {
        Self::Closed | Self::Disconnected | Self::ShutDown => MP_CLOSED,
        Self::Corrupt(_) => MP_CORRUPT,
        Self::TooLarge { .. } => MP_TOO_LARGE,
        Self::Encode(_) => MP_INVALID,
    }
    PopError, PopTimeoutError, TryPopError: Empty => MP_EMPTY; { Self::Corrupt(_) => MP_CORRUPT }
    PublishError, PublishTimeoutError, TryPublishError: WouldBlock => MP_FULL; {
        Self::Corrupt(_) => MP_CORRUPT,
        Self::TooLarge { .. } => MP_TOO_LARGE,
        Self::Encode(_) => MP_INVALID,
    }
    BroadcastRecvError, BroadcastRecvTimeoutError, TryBroadcastRecvError: Empty => MP_EMPTY; {
        Self::Corrupt(_) => MP_CORRUPT,
        Self::Lagged(_) => MP_LAGGED,
        Self::Decode(_) => MP_MISMATCH,
    }
    SendError, SendTimeoutError, TrySendError: Full => MP_FULL; {
        Self::Closed | Self::Disconnected => MP_CLOSED,
        Self::NotWritable | Self::BadRange { .. } => MP_INVALID,
        Self::Corrupt(_) => MP_CORRUPT,
        Self::TooLarge { .. } => MP_TOO_LARGE,
    }
    RecvError, RecvTimeoutError, TryRecvError: Empty => MP_EMPTY; {
        Self::Closed | Self::Disconnected => MP_CLOSED,
        Self::NotReadable => MP_INVALID,
        Self::Corrupt(_) => MP_CORRUPT,
        Self::BufferTooShort(_) | Self::TooLong { .. } => MP_TOO_LARGE,
        Self::WrongType { .. } | Self::FdPending | Self::NotAnFd => MP_MISMATCH,
    }
    PollError, PollTimeoutError, TryPollError: Empty => MP_EMPTY; {
        Self::Closed => MP_CLOSED,
        Self::NotReadable => MP_INVALID,
        Self::Corrupt(_) => MP_CORRUPT,
    }
}

// The push errors give the value back, so they are generic: written out, not through the
// macros above.
impl<T> ToStatus for TryPushError<T> {
    fn status(&self) -> mp_status {
        match self {
            TryPushError::Full(_) => MP_FULL,
            TryPushError::Corrupt { .. } => MP_CORRUPT,
            _ => MP_OS,
        }
    }
}

impl<T> ToStatus for PushTimeoutError<T> {
    fn status(&self) -> mp_status {
        match self {
            PushTimeoutError::Timeout(_) => MP_TIMEOUT,
            PushTimeoutError::Corrupt { .. } => MP_CORRUPT,
            _ => MP_OS,
        }
    }
}

impl<T> ToStatus for PushError<T> {
    fn status(&self) -> mp_status {
        match self {
            PushError::Corrupt { .. } => MP_CORRUPT,
            _ => MP_OS,
        }
    }
}
