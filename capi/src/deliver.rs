//! Receiving into a buffer C owns: a message that does not fit is kept for the next call (its
//! size reported), never cut or dropped; and a cell for the Rust objects whose calls take
//! `&mut self` (a connection, a subscriber), so that two threads using one handle at once get
//! `MP_INVALID` instead of a data race.

use crate::handle::{buffer, set_required};
use crate::held::generation;
use crate::status::{Fail, Res, MP_TOO_LARGE};
use std::cell::{RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

thread_local! {
    /// Where a message lands before it is copied to C's buffer (reused, so a receive
    /// allocates nothing once it has seen its largest message).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer (a fresh one if the thread is exiting).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut f = Some(f);
    let done = SCRATCH.try_with(|s| s.try_borrow_mut().ok().and_then(|mut v| f.take().map(|f| f(&mut v))));
    match (done, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut Vec::new()),
        (_, None) => unreachable!("`f` ran, so `done` holds its result"),
    }
}

/// Messages received for a handle but held back because the buffer given was too small.
///
/// They are this process's: a child of `fork` does not see its parent's (the fork
/// generation they were kept in is recorded), so no message is delivered twice.
#[derive(Default)]
pub(crate) struct Pending {
    any: AtomicBool,
    held: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    generation: u64,
    messages: VecDeque<Vec<u8>>,
}

impl Kept {
    /// The messages of this process (a parent's, seen in a child, are dropped).
    fn mine(&mut self) -> &mut VecDeque<Vec<u8>> {
        let now = generation();
        if self.generation != now {
            self.messages.clear();
            self.generation = now;
        }
        &mut self.messages
    }
}

impl Pending {
    /// The oldest held-back message, if any (one relaxed load when there is none).
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mine = held.mine();
        let m = mine.pop_front();
        self.any.store(!mine.is_empty(), Ordering::Release);
        m
    }

    /// Whether a message is held back.
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire) && !self.held.lock().unwrap_or_else(|p| p.into_inner()).mine().is_empty()
    }

    /// Holds `m` back as the oldest message.
    fn keep(&self, m: Vec<u8>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.mine().push_front(m);
        self.any.store(true, Ordering::Release);
    }

    /// Checks the caller's buffer and length pointer before anything is received, so that a
    /// bad argument never costs a message.
    ///
    /// # Safety
    /// As [`deliver`](Self::deliver).
    unsafe fn check(buf: *mut c_void, cap: usize, len: *mut usize) -> Res {
        if len.is_null() {
            return Err(Fail::invalid("null out-pointer for the message length"));
        }
        // SAFETY: the caller's contract.
        unsafe { buffer(buf, cap) }.map(drop)
    }

    /// The start of every receive: checks the buffer and length pointer (before anything is
    /// taken), then hands over the oldest kept message, if there is one (`Some`: the receive
    /// is done with that outcome).
    ///
    /// # Safety
    /// As [`deliver`](Self::deliver).
    pub(crate) unsafe fn begin(&self, buf: *mut c_void, cap: usize, len: *mut usize) -> Option<Res> {
        // SAFETY: the caller's contract.
        if let Err(f) = unsafe { Self::check(buf, cap, len) } {
            return Some(Err(f));
        }
        // SAFETY: the caller's contract.
        self.take().map(|m| unsafe { self.deliver(&m, buf, cap, len) })
    }

    /// A whole receive through this thread's scratch buffer: [`begin`](Self::begin), then
    /// `fill` takes the next message into the scratch buffer, which is delivered.
    ///
    /// # Safety
    /// As [`deliver`](Self::deliver).
    pub(crate) unsafe fn receive(
        &self,
        buf: *mut c_void,
        cap: usize,
        len: *mut usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Res,
    ) -> Res {
        // SAFETY: the caller's contract.
        if let Some(done) = unsafe { self.begin(buf, cap, len) } {
            return done;
        }
        with_scratch(|s| {
            fill(s)?;
            // SAFETY: the caller's contract.
            unsafe { self.deliver(s, buf, cap, len) }
        })
    }

    /// Copies `m` into the caller's buffer and sets `*len`; if it does not fit, keeps it for
    /// the next receive and fails with `MP_TOO_LARGE`, `*len` set to the size needed.
    ///
    /// # Safety
    /// `buf` is null or valid for `cap` writes; `len` is null or valid for one write.
    pub(crate) unsafe fn deliver(&self, m: &[u8], buf: *mut c_void, cap: usize, len: *mut usize) -> Res {
        // SAFETY: the caller's contract.
        unsafe { set_required(len, m.len(), "the message length") }?;
        if m.len() > cap {
            self.keep(m.to_vec());
            return Err(Fail::new(
                MP_TOO_LARGE,
                format!("the next message is {} bytes, the buffer {cap}: it is kept for the next receive", m.len()),
            ));
        }
        // SAFETY: the caller's contract.
        unsafe { buffer(buf, cap) }?[..m.len()].copy_from_slice(m);
        Ok(())
    }
}

/// A value that one thread at a time may use mutably; a second thread at the same time is
/// refused (C code sharing a connection between threads must lock around it, as with a
/// socket used by two threads).
pub(crate) struct Exclusive<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is granted to one thread at a time by the `busy` flag (an
// Acquire swap to take it, a Release store to give it back), so `&Exclusive<T>` shared
// between threads never gives two of them the `&mut T` at once. `T: Send` because the value
// is used (and dropped) from whichever thread holds it.
unsafe impl<T: Send> Sync for Exclusive<T> {}

impl<T> Exclusive<T> {
    pub(crate) fn new(value: T) -> Exclusive<T> {
        Exclusive { busy: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Claims the value for good, before its handle is freed: false (and nothing changed) if
    /// another thread is using it now, whose call would otherwise run on a freed value.
    fn claim_for_free(&self) -> bool {
        // Acquire: the other thread's last use happens before the drop that follows.
        !self.busy.swap(true, Ordering::Acquire)
    }

    /// Runs `f` with the value, unless another thread is using it now.
    #[inline]
    pub(crate) fn with<R>(&self, what: &str, f: impl FnOnce(&mut T) -> Res<R>) -> Res<R> {
        if self.busy.swap(true, Ordering::Acquire) {
            return Err(Fail::invalid(format!("this {what} is in use by another thread at the same time")));
        }
        struct Free<'a>(&'a AtomicBool);
        impl Drop for Free<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _free = Free(&self.busy);
        // SAFETY: the swap above set `busy`, which no other thread can then set; it is
        // cleared only when `_free` drops after `f` returns (or unwinds), so this `&mut` is
        // the only reference to the value while it lives.
        f(unsafe { &mut *self.value.get() })
    }
}

/// Frees a handle whose object one thread at a time uses (its `Exclusive`, which `exclusive`
/// finds): refused with `MP_INVALID` while another thread is inside a call on it, which would
/// otherwise run on the freed object. Null does nothing.
///
/// # Safety
/// As [`take`](crate::handle::take).
pub(crate) unsafe fn free_exclusive<H: crate::handle::Handle, T>(
    p: *mut H,
    exclusive: impl FnOnce(&H::Inner) -> &Exclusive<T>,
    what: &str,
) -> Res {
    if !p.is_null() {
        // SAFETY: the caller's contract.
        let h = unsafe { crate::handle::get(p) }?;
        if !exclusive(&h.h).claim_for_free() {
            return Err(Fail::invalid(format!("this {what} is in use by another thread: not freed")));
        }
    }
    // SAFETY: the caller's contract; claimed above, so no call of another thread is inside.
    unsafe { crate::handle::take(p) }.map(drop)
}
