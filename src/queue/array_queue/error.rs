//! What a push or pop that did not complete returns: one enum per operation and form
//! (`docs/API.md` §4). A push consumes its value, so every push error gives it back.

use super::algo::Broken;
use crate::forms::error_forms;
use std::fmt;

/// Declares a push error enum: `$extra` (if any) is the form's own variant, with the value.
macro_rules! push_error {
    ($(#[$m:meta])* $name:ident { $($(#[$xm:meta])* $extra:ident => $msg:literal, $is:ident)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum $name<T> {
            $($(#[$xm])* $extra(T),)?
            /// The queue's shared memory is inconsistent (a corrupt or hostile segment).
            Corrupt {
                /// The value that was not pushed.
                value: T,
                /// Which check failed.
                what: &'static str,
            },
        }

        impl<T> $name<T> {
            /// The value that was not pushed.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$extra(v) => v,)?
                    $name::Corrupt { value, .. } => value,
                }
            }
            $(
                #[doc = concat!("Whether this is [`", stringify!($extra), "`](", stringify!($name), "::", stringify!($extra), ").")]
                pub fn $is(&self) -> bool {
                    matches!(self, $name::$extra(_))
                }
            )?
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$extra(_) => f.write_str(concat!(stringify!($extra), "(..)")),)?
                    $name::Corrupt { what, .. } => f.debug_struct("Corrupt").field("what", what).finish_non_exhaustive(),
                }
            }
        }

        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$extra(_) => f.write_str($msg),)?
                    $name::Corrupt { what, .. } => write!(f, "corrupt queue: {what}"),
                }
            }
        }

        impl<T> std::error::Error for $name<T> {}
    };
}

push_error! {
    /// A blocking [`push`](crate::ArrayQueue::push) that did not happen; the value is given
    /// back.
    PushError {}
}

push_error! {
    /// A [`try_push`](crate::ArrayQueue::try_push) that did not happen; the value is given back.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ArrayQueue, TryPushError};
    /// let q = ArrayQueue::<u8>::new(1)?;
    /// q.try_push(1)?;
    /// match q.try_push(2) {
    ///     Err(TryPushError::Full(v)) => assert_eq!(v, 2),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    TryPushError {
        /// No room now (or the next slot waits on a consumer that is being checked).
        Full => "the queue is full", is_full
    }
}

push_error! {
    /// A [`push_timeout`](crate::ArrayQueue::push_timeout) or
    /// [`push_deadline`](crate::ArrayQueue::push_deadline) that did not happen; the value is
    /// given back.
    PushTimeoutError {
        /// No room came before the time ran out.
        Timeout => "the queue stayed full until the timeout", is_timeout
    }
}

impl<T> From<PushError<T>> for TryPushError<T> {
    fn from(e: PushError<T>) -> TryPushError<T> {
        let PushError::Corrupt { value, what } = e;
        TryPushError::Corrupt { value, what }
    }
}

impl<T> From<PushError<T>> for PushTimeoutError<T> {
    fn from(e: PushError<T>) -> PushTimeoutError<T> {
        let PushError::Corrupt { value, what } = e;
        PushTimeoutError::Corrupt { value, what }
    }
}

error_forms! {
    /// Why a blocking [`pop`](crate::ArrayQueue::pop) (or `pop_async`) returned no item.
    #[derive(Debug)]
    pub enum PopError;
    /// Why [`try_pop`](crate::ArrayQueue::try_pop) returned no item.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ArrayQueue, TryPopError};
    /// let q = ArrayQueue::<u8>::new(1)?;
    /// assert!(matches!(q.try_pop(), Err(TryPopError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum TryPopError {
        /// No item now (or the next one is still being written by a producer).
        Empty => "the queue is empty", is_empty
    }
    /// Why [`pop_timeout`](crate::ArrayQueue::pop_timeout) or
    /// [`pop_deadline`](crate::ArrayQueue::pop_deadline) returned no item.
    #[derive(Debug)]
    pub enum PopTimeoutError {
        /// No item came before the time ran out.
        Timeout => "the queue stayed empty until the timeout", is_timeout
    }
    {
        /// The queue's shared memory is inconsistent (a corrupt or hostile segment).
        Corrupt(&'static str) [(what)] => ("corrupt queue: {what}");
        /// `pop_async` could not start its watcher.
        Os(std::io::Error) [(e)] => ("cannot watch the queue: {e}"), source e;
    }
}

/// The broken step of a push, as the error of its form.
pub(super) fn push_error<T>((value, b): (T, Broken)) -> PushError<T> {
    match b {
        Broken::Corrupt(what) => PushError::Corrupt { value, what },
        Broken::Busy => PushError::Corrupt { value, what: "a push without limit ran out of time" },
    }
}

/// The broken step of a `try_push`.
pub(super) fn try_push_error<T>((value, b): (T, Broken)) -> TryPushError<T> {
    match b {
        Broken::Corrupt(what) => TryPushError::Corrupt { value, what },
        Broken::Busy => TryPushError::Full(value),
    }
}

/// The broken step of a timed push.
pub(super) fn push_timeout_error<T>((value, b): (T, Broken)) -> PushTimeoutError<T> {
    match b {
        Broken::Corrupt(what) => PushTimeoutError::Corrupt { value, what },
        Broken::Busy => PushTimeoutError::Timeout(value),
    }
}

/// The broken step of a pop with `limit`, as a `try_pop`'s error (`Busy` is `Empty`).
pub(super) fn try_pop_error(b: Broken) -> TryPopError {
    match b {
        Broken::Corrupt(what) => TryPopError::Corrupt(what),
        Broken::Busy => TryPopError::Empty,
    }
}

/// The broken step of a timed pop.
pub(super) fn pop_timeout_error(b: Broken) -> PopTimeoutError {
    match b {
        Broken::Corrupt(what) => PopTimeoutError::Corrupt(what),
        Broken::Busy => PopTimeoutError::Timeout,
    }
}

/// The broken step of a blocking pop.
pub(super) fn pop_error(b: Broken) -> PopError {
    match b {
        Broken::Corrupt(what) => PopError::Corrupt(what),
        Broken::Busy => PopError::Corrupt("a pop without limit ran out of time"),
    }
}
