//! The errors of a [`Condition`](super::Condition): [`NotifyError`], and the waits'
//! [`ConditionWaitError`] and [`ConditionWaitTimeoutError`], which carry the lock's guard
//! wherever the lock is held.

use crate::sync::mutex::OwnerDied;
use std::fmt;

/// Why [`Condition::notify`](crate::Condition::notify) refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifyError {
    /// The guard passed in belongs to another lock than the condition's (COND-7).
    NotOwner,
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the guard does not hold this condition's lock")
    }
}

impl std::error::Error for NotifyError {}

/// The former name of [`NotifyError`].
#[deprecated(since = "0.2.0", note = "renamed `NotifyError` (the error of `notify`)")]
pub type ConditionError = NotifyError;

macro_rules! wait_errors {
    ($(
        $(#[$doc:meta])*
        $name:ident { $($(#[$vdoc:meta])* $extra:ident ($xt:ty) => $msg:literal, $is:ident),* }
    )*) => {$(
        $(#[$doc])*
        ///
        /// `G` is the lock's guard type ([`LockGuard`](crate::LockGuard) or [`RLockGuard`](crate::RLockGuard)), with a handle of
        /// its own: a guard inside an error holds the lock.
        #[non_exhaustive]
        pub enum $name<G> {
            $($(#[$vdoc])* $extra($xt),)*
            /// The lock's previous owner died while this thread waited: the lock **is held**
            /// again through the guard inside (see [`LockError::OwnerDied`](crate::LockError::OwnerDied)).
            OwnerDied(OwnerDied<G>),
            /// The lock became unrecoverable while this thread waited (an owner died and it was
            /// released without `make_consistent`); it is not held.
            Unrecoverable,
            /// The lock in shared memory is corrupt; it is not held.
            Corrupt,
            /// The OS failed to re-take the lock; it is not held.
            Os(std::io::Error),
            /// The guard belongs to another lock than the condition's (COND-7): here it is
            /// back, still held; nothing waited.
            NotOwner(G),
            /// A [`Value`](crate::Value) or [`Array`](crate::Array) guard on data under this
            /// lock is alive in this thread: releasing the lock would let another thread take
            /// a second `&mut` to that data. The guard is back, still held; nothing waited.
            DataBorrowed(G),
        }

        impl<G> $name<G> {
            /// The guard inside, if the lock is held (everything but `Unrecoverable`,
            /// `Corrupt` and `Os`).
            pub fn into_guard(self) -> Option<G> {
                match self {
                    $($name::$extra(g) => Some(g),)*
                    $name::OwnerDied(d) => Some(d.into_guard()),
                    $name::NotOwner(g) | $name::DataBorrowed(g) => Some(g),
                    _ => None,
                }
            }
            $(
                #[doc = concat!("Whether this is [`", stringify!($extra), "`](", stringify!($name), "::", stringify!($extra), ").")]
                pub fn $is(&self) -> bool {
                    matches!(self, $name::$extra(_))
                }
            )*
        }

        impl<G> fmt::Debug for $name<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$extra(_) => f.write_str(concat!(stringify!($extra), "(..)")),)*
                    $name::OwnerDied(_) => f.write_str("OwnerDied(..)"),
                    $name::Unrecoverable => f.write_str("Unrecoverable"),
                    $name::Corrupt => f.write_str("Corrupt"),
                    $name::Os(e) => f.debug_tuple("Os").field(e).finish(),
                    $name::NotOwner(_) => f.write_str("NotOwner(..)"),
                    $name::DataBorrowed(_) => f.write_str("DataBorrowed(..)"),
                }
            }
        }

        impl<G> fmt::Display for $name<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$extra(_) => f.write_str($msg),)*
                    $name::OwnerDied(_) => f.write_str("the previous owner of the condition's lock died holding it"),
                    $name::Unrecoverable => f.write_str("the condition's lock is unrecoverable"),
                    $name::Corrupt => f.write_str("the condition's lock in shared memory is corrupt"),
                    $name::Os(e) => write!(f, "re-taking the condition's lock failed: {e}"),
                    $name::NotOwner(_) => f.write_str("the guard does not hold this condition's lock"),
                    $name::DataBorrowed(_) => {
                        f.write_str("a value or array guard under the condition's lock is alive in this thread")
                    }
                }
            }
        }

        impl<G> std::error::Error for $name<G> {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Os(e) => Some(e),
                    _ => None,
                }
            }
        }
    )*};
}

wait_errors! {
    /// Why [`Condition::wait`](crate::Condition::wait) or [`Condition::wait_for`](crate::Condition::wait_for) did not return normally.
    ConditionWaitError {}

    /// Why a timed [`Condition`](crate::Condition) wait did not return normally: the time ran out (the lock is
    /// held again, through the guard inside), or one of [`ConditionWaitError`]'s reasons.
    ConditionWaitTimeoutError {
        /// No notify came (or the predicate stayed false) before the time ran out (COND-5);
        /// the lock is held again through this guard.
        Timeout(G) => "timed out waiting for a notify", is_timeout
    }
}

impl<G> From<ConditionWaitError<G>> for ConditionWaitTimeoutError<G> {
    fn from(e: ConditionWaitError<G>) -> ConditionWaitTimeoutError<G> {
        match e {
            ConditionWaitError::OwnerDied(d) => ConditionWaitTimeoutError::OwnerDied(d),
            ConditionWaitError::Unrecoverable => ConditionWaitTimeoutError::Unrecoverable,
            ConditionWaitError::Corrupt => ConditionWaitTimeoutError::Corrupt,
            ConditionWaitError::Os(e) => ConditionWaitTimeoutError::Os(e),
            ConditionWaitError::NotOwner(g) => ConditionWaitTimeoutError::NotOwner(g),
            ConditionWaitError::DataBorrowed(g) => ConditionWaitTimeoutError::DataBorrowed(g),
        }
    }
}
