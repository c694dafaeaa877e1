//! The only module that calls `libc`: every system call the crate makes is wrapped here once,
//! with a `// SAFETY:` note at the call and a link to its man page.
//!
//! Nothing above this layer names `libc` for a call (clippy's `disallowed-methods` enforces the
//! worst offenders); higher layers get small, typed wrappers that return [`std::io::Result`].
//! Errors keep their `errno` (`io::Error::raw_os_error`), so callers can match on it.

#[cfg(feature = "bench")]
pub(crate) mod affinity;
pub(crate) mod clock;
pub(crate) mod fdpass;
pub(crate) mod futex;
pub(crate) mod mman;
pub(crate) mod process;
pub(crate) mod pthread;
pub(crate) mod random;
#[cfg(feature = "serde")] // the pool's workers (`PoolBuilder::reset_signals`)
pub(crate) mod signals;
#[cfg(feature = "serde")] // spawned children take serde arguments
pub(crate) mod spawn;

use std::io;

/// Turns a `-1`-means-error return value into an `io::Result`, reading `errno` right away.
pub(crate) fn cvt<T: IsMinusOne>(r: T) -> io::Result<T> {
    if r.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Integer return types of libc calls that signal failure with `-1`.
pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}
macro_rules! impl_is_minus_one {
    ($($t:ty)*) => {$(impl IsMinusOne for $t { fn is_minus_one(&self) -> bool { *self == -1 } })*};
}
impl_is_minus_one!(i32 i64 isize);

/// Converts a pthread-style return code (0 or an errno value) into an `io::Result`.
pub(crate) fn cvt_pthread(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}
