//! What C hands in: handles (boxed, with a magic word first, so a null or foreign pointer is
//! refused instead of used), names, timeouts, buffers and out-pointers, each checked before
//! anything is done with it.

use crate::status::{Fail, Res, MP_INVALID, MP_TOO_LARGE};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `timeout_ns` value that waits as long as it takes.
pub const MP_FOREVER: u64 = u64::MAX;

/// A handle type of the C ABI: a struct whose only field is a `Tagged` (the magic word, then
/// the Rust object), so the magic word is its first 8 bytes. C only ever sees a pointer to it
/// (cbindgen declares it opaque).
pub(crate) trait Handle: Sized {
    /// The Rust object inside.
    type Inner;
    /// Written at creation, checked on every call, overwritten when the handle is freed.
    const MAGIC: u64;
    /// Its C name, for messages.
    const WHAT: &'static str;
    /// The magic word and the object.
    fn tagged(&self) -> &Tagged<Self::Inner>;
}

/// A handle's contents: the magic word first (`#[repr(C)]`), then the Rust object. The word
/// is atomic: a free (`take`) replaces it with one compare-and-swap, so of two threads freeing
/// one handle at once only one drops it.
#[repr(C)]
pub(crate) struct Tagged<T> {
    magic: AtomicU64,
    pub(crate) h: T,
}

/// Implements `Handle` for a handle struct `$name { t: Tagged<$inner> }` declared beside it
/// (written out there so that cbindgen sees it and, as it is not `#[repr(C)]`, declares it
/// opaque).
macro_rules! handle {
    ($name:ident, $inner:ty, $magic:expr) => {
        impl $crate::handle::Handle for $name {
            type Inner = $inner;
            const MAGIC: u64 = $magic;
            const WHAT: &'static str = stringify!($name);
            fn tagged(&self) -> &$crate::handle::Tagged<$inner> {
                &self.t
            }
        }

        // A pointer is checked by reading its first 8 bytes only (a foreign pointer to a
        // small object is not read past them): the magic word must be there. `Tagged` puts it
        // first; the one field of `$name` is where Rust puts it, so the build checks it.
        const _: () = assert!(std::mem::offset_of!($name, t) == 0, "the magic word must come first");

        // C shares any handle between its threads: what is inside must allow that.
        const _: fn() = || {
            fn shareable<T: Send + Sync>() {}
            shareable::<$inner>();
        };

        impl $name {
            pub(crate) fn boxed(h: $inner) -> Box<$name> {
                Box::new($name { t: $crate::handle::Tagged::new(<$name as $crate::handle::Handle>::MAGIC, h) })
            }
        }
    };
}

impl<T> Tagged<T> {
    pub(crate) fn new(magic: u64, h: T) -> Tagged<T> {
        Tagged { magic: AtomicU64::new(magic), h }
    }
}
pub(crate) use handle;

/// The value word a freed handle holds, so that a use after free that still finds the memory
/// mapped is refused.
const DEAD: u64 = 0xdead_dead_dead_dead;

/// Borrows a handle, after checking it is not null, is aligned, and carries its type's magic.
///
/// # Safety
/// `p` is null or points to at least 8 readable bytes (a live handle of any type, or any
/// other readable object: its first word is compared, nothing more is read unless it matches).
pub(crate) unsafe fn get<'a, H: Handle + 'a>(p: *const H) -> Res<&'a Tagged<H::Inner>> {
    if p.is_null() {
        return Err(Fail::invalid(format!("null {} handle", H::WHAT)));
    }
    if (p as usize) % std::mem::align_of::<u64>() != 0 {
        return Err(Fail::invalid(format!("misaligned pointer given as a {} handle", H::WHAT)));
    }
    // SAFETY: non-null, aligned, and readable for 8 bytes by the caller's contract; every
    // handle's first 8 bytes are its atomic magic word (checked at build time by `handle!`),
    // and an `AtomicU64` may be read over any 8 aligned readable bytes.
    // Acquire: pairs with nothing but keeps the checks below after the load.
    let magic = unsafe { &*p.cast::<AtomicU64>() }.load(Ordering::Acquire);
    if magic != H::MAGIC {
        return Err(Fail::invalid(format!("not a live {} handle (freed, or another type)", H::WHAT)));
    }
    // SAFETY: the magic word says this is a live `H` made by `give` and not yet freed.
    Ok(unsafe { &*p }.tagged())
}

/// Makes a new handle with `make` and hands it to C through `out`, which is checked first:
/// a null `out` fails before anything is made (no named object appears and vanishes, no
/// accepted client is dropped).
///
/// # Safety
/// `out` is null or valid for one pointer write.
pub(crate) unsafe fn give<H: Handle>(out: *mut *mut H, make: impl FnOnce() -> Res<Box<H>>) -> Res {
    if out.is_null() {
        return Err(Fail::invalid(format!("null out-pointer for the new {}", H::WHAT)));
    }
    let h = make()?;
    // SAFETY: non-null and writable by the caller's contract.
    unsafe { out.write(Box::into_raw(h)) };
    Ok(())
}

/// Takes a handle back from C to drop it. Null is allowed and does nothing (as `free(NULL)`).
///
/// # Safety
/// As [`get`]; and no other thread uses the handle during or after this call.
pub(crate) unsafe fn take<H: Handle>(p: *mut H) -> Res<Option<Box<H>>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract, as for `get`.
    let t = unsafe { get(p) }?;
    // AcqRel: of two frees racing, exactly one swaps the word; the other is refused.
    if t.magic.compare_exchange(H::MAGIC, DEAD, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(Fail::invalid(format!("{} handle freed twice at once", H::WHAT)));
    }
    // SAFETY: made by `give` from a `Box<H>`, and now taken back exactly once (the swap above
    // succeeds once; the magic word is gone, so a later `take` is refused while the memory is
    // still mapped).
    Ok(Some(unsafe { Box::from_raw(p) }))
}

/// A name from C: NUL-terminated UTF-8.
///
/// # Safety
/// `p` is null or a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn name<'a>(p: *const c_char) -> Res<&'a str> {
    if p.is_null() {
        return Err(Fail::invalid("null name"));
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| Fail::invalid("a name must be UTF-8"))
}

/// `len` bytes at `p` (`p` may be null when `len` is 0).
///
/// A length over `isize::MAX` (no object is that large) is `MP_TOO_LARGE`, never a slice.
///
/// # Safety
/// `p` is null or valid for `len` reads for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const c_void, len: usize) -> Res<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::invalid(format!("null data pointer with a length of {len}")));
    }
    if len > isize::MAX as usize {
        return Err(Fail::new(MP_TOO_LARGE, format!("a length of {len} bytes is more than any object can hold")));
    }
    // SAFETY: non-null and valid for `len` reads by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// `cap` writable bytes at `p` (`p` may be null when `cap` is 0).
///
/// # Safety
/// `p` is null or valid for `cap` writes for `'a`, and not read or written by anyone else
/// meanwhile.
pub(crate) unsafe fn buffer<'a>(p: *mut c_void, cap: usize) -> Res<&'a mut [u8]> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Fail::invalid(format!("null buffer with a capacity of {cap}")));
    }
    if cap > isize::MAX as usize {
        return Err(Fail::invalid(format!("a buffer capacity of {cap} bytes is more than any object can hold")));
    }
    // SAFETY: non-null and valid for `cap` writes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), cap) })
}

/// Writes `v` through `out`, which may be null when the caller does not want it.
///
/// # Safety
/// `out` is null or valid for one write of `T`.
pub(crate) unsafe fn set<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: non-null and writable by the caller's contract.
        unsafe { out.write(v) };
    }
}

/// Writes `v` through `out`, which must not be null: the value is the call's result.
///
/// # Safety
/// `out` is null or valid for one write of `T`.
pub(crate) unsafe fn set_required<T>(out: *mut T, v: T, what: &str) -> Res {
    if out.is_null() {
        return Err(Fail::new(MP_INVALID, format!("null out-pointer for {what}")));
    }
    // SAFETY: as `set`.
    unsafe { set(out, v) };
    Ok(())
}

/// How long a call may wait: `timeout_ns` as the C ABI spells it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// 0: do not wait (the Rust `try_` form).
    Now,
    /// A positive time (the Rust `_timeout` form).
    For(Duration),
    /// `MP_FOREVER` (the Rust blocking form).
    Forever,
}

impl Wait {
    pub(crate) fn from_ns(ns: u64) -> Wait {
        match ns {
            0 => Wait::Now,
            MP_FOREVER => Wait::Forever,
            n => Wait::For(Duration::from_nanos(n)),
        }
    }

    /// The time as a `Duration` for calls that have only a timed form (`Duration::MAX` waits
    /// forever there, `ZERO` looks once).
    pub(crate) fn duration(self) -> Duration {
        match self {
            Wait::Now => Duration::ZERO,
            Wait::For(d) => d,
            Wait::Forever => Duration::MAX,
        }
    }
}
