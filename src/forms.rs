//! The three forms of a blocking operation's error (`docs/API.md` §3–4), written once.
//!
//! A blocking `x` returns `XError`: only its failures. `try_x` returns `TryXError`: the same
//! variants plus the one that says *not now* (`Empty`, `Full`, `WouldBlock`); `x_timeout` and
//! `x_deadline` return `XTimeoutError`: the same plus `Timeout`. The three are flat (matched
//! one level deep, like crossbeam-channel's `TryRecvError`/`RecvTimeoutError`) and generated
//! from one list by [`error_forms!`], so that a shared variant has the same name, payload and
//! message in all three, and `?` turns an `XError` into either of the others.
//!
//! Operations whose only way not to finish is *not now* or *too late* return the unit errors
//! [`WouldBlock`] and [`Timeout`].

use std::fmt;

/// A try form could not proceed now (the lock, permit or event was not available), for
/// operations that have no other way to fail.
///
/// # Examples
///
/// ```
/// use multiproc::{Semaphore, WouldBlock};
///
/// let s = Semaphore::new(0)?;
/// assert_eq!(s.try_acquire(), Err(WouldBlock));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WouldBlock;

impl fmt::Display for WouldBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operation would block")
    }
}

impl std::error::Error for WouldBlock {}

/// The time of a timed form ran out, for operations that have no other way to fail.
///
/// # Examples
///
/// ```
/// use multiproc::{Event, Timeout};
/// use std::time::Duration;
///
/// let e = Event::new()?;
/// assert_eq!(e.wait_timeout(Duration::from_millis(1)), Err(Timeout));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Timeout {}

/// `Some(e)` for a variant declared with `source e`, else `None`.
macro_rules! __source {
    () => {
        None
    };
    ($e:ident) => {
        Some($e)
    };
}
pub(crate) use __source;

/// Declares the three error enums of one blocking operation.
///
/// ```text
/// error_forms! {
///     /// docs of the blocking form's error
///     pub enum GetError;
///     /// docs of the try form's error
///     pub enum TryGetError { /// docs
///                            Empty => "message", is_empty }
///     /// docs of the timed forms' error
///     pub enum GetTimeoutError { /// docs
///                                Timeout => "message", is_timeout }
///     {
///         /// docs (attributes, `#[cfg]` included, go on the variant and its match arms)
///         Closed => ("the queue is closed");
///         Decode(CodecError) [(e)] => ("cannot decode the item: {e}"), source e;
///         TooLarge { len: u64, max: u64 } [{ len, max }] => ("{len} bytes exceed {max}");
///     }
/// }
/// ```
///
/// An operation with no try form (it waits for something that has not happened yet, as
/// `Barrier::wait`) leaves the `Try` enum out.
///
/// Each shared variant names its fields once as a pattern in `[..]` (tuple or struct form),
/// used for its message, its `source`, and the conversion from the blocking form's error.
macro_rules! error_forms {
    (
        $(#[$m:meta])*
        pub enum $E:ident;
        $(#[$tm:meta])*
        pub enum $TE:ident { $(#[$tvm:meta])* $tv:ident => $tmsg:literal, $tis:ident }
        $(#[$om:meta])*
        pub enum $OE:ident { $(#[$ovm:meta])* $ov:ident => $omsg:literal, $ois:ident }
        {
            $(
                $(#[$vm:meta])*
                $v:ident $( ( $($vt:ty),* ) )? $( { $($(#[$fm:meta])* $vf:ident : $vft:ty),* $(,)? } )?
                    $( [$($bind:tt)*] )? => ($($fmt:tt)*) $(, source $src:ident)?;
            )*
        }
    ) => {
        $crate::forms::error_forms!(@one $(#[$m])* $E {} {
            $( $(#[$vm])* $v $( ( $($vt),* ) )? $( { $($(#[$fm])* $vf : $vft),* } )? [$($($bind)*)?] ($($fmt)*) [$($src)?]; )*
        });
        $crate::forms::error_forms!(@one $(#[$tm])* $TE { $(#[$tvm])* $tv => $tmsg, $tis } {
            $( $(#[$vm])* $v $( ( $($vt),* ) )? $( { $($(#[$fm])* $vf : $vft),* } )? [$($($bind)*)?] ($($fmt)*) [$($src)?]; )*
        });
        $crate::forms::error_forms!(@one $(#[$om])* $OE { $(#[$ovm])* $ov => $omsg, $ois } {
            $( $(#[$vm])* $v $( ( $($vt),* ) )? $( { $($(#[$fm])* $vf : $vft),* } )? [$($($bind)*)?] ($($fmt)*) [$($src)?]; )*
        });
        $crate::forms::error_forms!(@from $E => $TE {
            $( $(#[$vm])* $v [$($($bind)*)?]; )*
        });
        $crate::forms::error_forms!(@from $E => $OE {
            $( $(#[$vm])* $v [$($($bind)*)?]; )*
        });
    };
    (
        $(#[$m:meta])*
        pub enum $E:ident;
        $(#[$om:meta])*
        pub enum $OE:ident { $(#[$ovm:meta])* $ov:ident => $omsg:literal, $ois:ident }
        {
            $(
                $(#[$vm:meta])*
                $v:ident $( ( $($vt:ty),* ) )? $( { $($(#[$fm:meta])* $vf:ident : $vft:ty),* $(,)? } )?
                    $( [$($bind:tt)*] )? => ($($fmt:tt)*) $(, source $src:ident)?;
            )*
        }
    ) => {
        $crate::forms::error_forms!(@one $(#[$m])* $E {} {
            $( $(#[$vm])* $v $( ( $($vt),* ) )? $( { $($(#[$fm])* $vf : $vft),* } )? [$($($bind)*)?] ($($fmt)*) [$($src)?]; )*
        });
        $crate::forms::error_forms!(@one $(#[$om])* $OE { $(#[$ovm])* $ov => $omsg, $ois } {
            $( $(#[$vm])* $v $( ( $($vt),* ) )? $( { $($(#[$fm])* $vf : $vft),* } )? [$($($bind)*)?] ($($fmt)*) [$($src)?]; )*
        });
        $crate::forms::error_forms!(@from $E => $OE {
            $( $(#[$vm])* $v [$($($bind)*)?]; )*
        });
    };
    (@one
        $(#[$m:meta])* $E:ident { $( $(#[$xvm:meta])* $xv:ident => $xmsg:literal, $xis:ident )? }
        {
            $(
                $(#[$vm:meta])*
                $v:ident $( ( $($vt:ty),* ) )? $( { $($(#[$fm:meta])* $vf:ident : $vft:ty),* } )?
                    [$($bind:tt)*] ($($fmt:tt)*) [$($src:ident)?];
            )*
        }
    ) => {
        $(#[$m])*
        #[non_exhaustive]
        pub enum $E {
            $( $(#[$xvm])* $xv, )?
            $( $(#[$vm])* $v $( ( $($vt),* ) )? $( { $($(#[$fm])* $vf : $vft),* } )?, )*
        }

        impl ::std::fmt::Display for $E {
            #[allow(unused_doc_comments, unused_variables)]
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    $( $E::$xv => f.write_str($xmsg), )?
                    $( $(#[$vm])* $E::$v $($bind)* => write!(f, $($fmt)*), )*
                }
            }
        }

        impl ::std::error::Error for $E {
            #[allow(unused_doc_comments, unused_variables, unreachable_patterns)]
            fn source(&self) -> Option<&(dyn ::std::error::Error + 'static)> {
                match self {
                    $( $(#[$vm])* $E::$v $($bind)* => $crate::forms::__source!($($src)?), )*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }

        $(
            impl $E {
                #[doc = concat!("Whether this is [`", stringify!($xv), "`](", stringify!($E), "::", stringify!($xv), ").")]
                pub fn $xis(&self) -> bool {
                    matches!(self, $E::$xv)
                }
            }
        )?
    };
    (@from $E:ident => $T:ident { $( $(#[$vm:meta])* $v:ident [$($bind:tt)*]; )* }) => {
        impl From<$E> for $T {
            #[allow(unused_doc_comments)]
            fn from(e: $E) -> $T {
                match e {
                    $( $(#[$vm])* $E::$v $($bind)* => $T::$v $($bind)*, )*
                }
            }
        }

        impl $T {
            /// The failure inside, as the blocking form's error; `None` for the form's own
            /// variant (not now, or too late).
            #[allow(dead_code, unused_doc_comments)]
            pub(crate) fn failure(self) -> Option<$E> {
                #[allow(unreachable_patterns)]
                match self {
                    $( $(#[$vm])* $T::$v $($bind)* => Some($E::$v $($bind)*), )*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use error_forms;
