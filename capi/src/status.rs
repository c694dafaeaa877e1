//! Status codes, this thread's last error message, and the boundary every call crosses:
//! [`call`] runs a call's body, turns its error into a status and a message, and catches a
//! panic so that no unwind ever reaches C.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call did. Every function of the library returns one (but `mp_last_error`,
/// `mp_status_name` and `mp_version`, which give a message, a name and a number); `MP_OK`
/// is 0, so `if (st)` reads "if it failed". `mp_last_error()` gives this thread's message for the last status
/// that was not `MP_OK`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mp_status {
    /// Done.
    MP_OK = 0,
    /// The time given ran out (a positive timeout), or a lock, semaphore, event or barrier
    /// was not available at once (a timeout of 0).
    MP_TIMEOUT = 1,
    /// Nothing to receive now (a timeout of 0 on a queue, subscriber or connection).
    MP_EMPTY = 2,
    /// No room now (a timeout of 0 on a full queue or pipe).
    MP_FULL = 3,
    /// The other side is gone or the object was closed or shut down: nothing more will come
    /// (a queue whose producers are all gone, a connection whose peer closed it).
    MP_CLOSED = 4,
    /// A lock was taken, but its previous owner died holding it: the lock is held now, and
    /// the data it protects may be half-updated. Repair it, call `mp_lock_make_consistent`
    /// (or the rlock/condition form), then release.
    MP_OWNER_DIED = 5,
    /// Shared memory holds something no correct peer can have written; nothing was trusted.
    /// Also a lock left unrecoverable: its owner died and the next holder released it
    /// without `mp_lock_make_consistent`.
    MP_CORRUPT = 6,
    /// A name leads to another kind of object, or to one made with other parameters (an
    /// array queue's record size, a version of this library).
    MP_MISMATCH = 7,
    /// No object has that name (or the time to wait for it ran out).
    MP_NOT_FOUND = 8,
    /// The name is taken by a live creator.
    MP_EXISTS = 9,
    /// An argument is wrong: a null or foreign handle, a null pointer where data is needed, a
    /// name that is not valid UTF-8 or not a valid name, a release of a lock this thread does
    /// not hold, a count of 0.
    MP_INVALID = 10,
    /// The operating system refused (out of memory, descriptors, permissions); the message
    /// names the call and errno.
    MP_OS = 11,
    /// A message can never fit (larger than the queue, ring or slot), or the buffer given is
    /// too small for the next message: then `*len` is set to the size needed and the message
    /// is kept for the next call, nothing is lost.
    MP_TOO_LARGE = 12,
    /// A broadcast subscriber fell behind: the writer overwrote messages it had not read.
    /// It now stands at the oldest message still there; `mp_subscriber_missed` counts the
    /// lost ones.
    MP_LAGGED = 13,
    /// A barrier is broken (aborted, or a party died or timed out waiting).
    MP_BROKEN = 14,
    /// A bug in this library: a Rust panic was caught at the boundary. The message says
    /// where; please report it.
    MP_INTERNAL = 15,
}

pub use mp_status::*;

/// A failure on its way to C: a status and the message `mp_last_error` will give.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) status: mp_status,
    pub(crate) message: String,
}

impl Fail {
    pub(crate) fn new(status: mp_status, message: impl Into<String>) -> Fail {
        Fail { status, message: message.into() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Fail {
        Fail::new(MP_INVALID, message)
    }
}

/// The result of a call's body.
pub(crate) type Res<T = ()> = Result<T, Fail>;

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last(message: &str) {
    // An interior NUL would cut the message short in C; it can only come from a name the
    // caller gave, so it is shown escaped instead.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // A thread whose thread-locals are already destroyed (a C destructor running at thread
    // exit) keeps no message: `mp_last_error` says so.
    let _ = LAST.try_with(|l| *l.borrow_mut() = text);
}

/// Runs `body` as one call of the C ABI: `Ok` is `MP_OK`; a `Fail` records its message for
/// `mp_last_error` and returns its status; a panic becomes `MP_INTERNAL`.
#[inline]
pub(crate) fn call(body: impl FnOnce() -> Res) -> mp_status {
    // AssertUnwindSafe: after a panic the call reports `MP_INTERNAL`; the handles it touched
    // hold only multiproc objects, whose shared state is built to survive a process dying at
    // any instruction, so a thread unwinding out of one leaves nothing worse behind.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => MP_OK,
        Ok(Err(f)) => {
            set_last(&f.message);
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            set_last(&format!("internal error (a bug in multiproc): {what}"));
            MP_INTERNAL
        }
    }
}

/// This thread's message for the last call that did not return `MP_OK` (an empty string if
/// there was none).
///
/// The text stays valid until this thread's next failing call; copy it to keep it. Never
/// null. Never blocks.
#[no_mangle]
pub extern "C" fn mp_last_error() -> *const c_char {
    LAST.try_with(|l| l.borrow().as_ptr()).unwrap_or(c"(no message: this thread is exiting)".as_ptr())
}

/// The name of a status code ("MP_OK", "MP_TIMEOUT", …), or "MP_UNKNOWN" for a value that is
/// none of them. A static string; never null. Never blocks.
#[no_mangle]
pub extern "C" fn mp_status_name(status: i32) -> *const c_char {
    let name: &'static [u8] = match status {
        0 => b"MP_OK\0",
        1 => b"MP_TIMEOUT\0",
        2 => b"MP_EMPTY\0",
        3 => b"MP_FULL\0",
        4 => b"MP_CLOSED\0",
        5 => b"MP_OWNER_DIED\0",
        6 => b"MP_CORRUPT\0",
        7 => b"MP_MISMATCH\0",
        8 => b"MP_NOT_FOUND\0",
        9 => b"MP_EXISTS\0",
        10 => b"MP_INVALID\0",
        11 => b"MP_OS\0",
        12 => b"MP_TOO_LARGE\0",
        13 => b"MP_LAGGED\0",
        14 => b"MP_BROKEN\0",
        15 => b"MP_INTERNAL\0",
        _ => b"MP_UNKNOWN\0",
    };
    name.as_ptr().cast()
}

/// The version of this library as `major * 10000 + minor * 100 + patch` (0.2.0 is 200), to
/// compare with `MP_VERSION` from the header a program was compiled with. Never blocks.
#[no_mangle]
pub extern "C" fn mp_version() -> u32 {
    let n = |s: &str| s.parse::<u32>().unwrap_or(0);
    n(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + n(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + n(env!("CARGO_PKG_VERSION_PATCH"))
}

/// Test hook (feature `test-hooks`, not in the header): panics inside the boundary, so that
/// the C suite sees the panic come out as `MP_INTERNAL` with its message, the process alive.
///
/// cbindgen:ignore
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn mp_debug_panic() -> mp_status {
    call(|| panic!("mp_debug_panic was called"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn a_panic_becomes_internal_with_its_message() {
        let st = call(|| panic!("boom"));
        assert_eq!(st, MP_INTERNAL);
        // SAFETY: mp_last_error returns a NUL-terminated string owned by this thread.
        let msg = unsafe { CStr::from_ptr(mp_last_error()) }.to_str().unwrap().to_string();
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn every_status_has_its_name() {
        for (st, name) in [(MP_OK, "MP_OK"), (MP_LAGGED, "MP_LAGGED"), (MP_INTERNAL, "MP_INTERNAL")] {
            // SAFETY: a static NUL-terminated string.
            let got = unsafe { CStr::from_ptr(mp_status_name(st as i32)) };
            assert_eq!(got.to_str().unwrap(), name);
        }
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(mp_status_name(99)) }.to_str().unwrap(), "MP_UNKNOWN");
    }
}
