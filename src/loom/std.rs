//! The normal back end of the shim: `core` atomics and the real futex.
//!
//! The shim exports the same surface as the loom back end; not every build uses every item.
#![allow(dead_code)]
#![allow(clippy::disallowed_types)]

pub(crate) mod atomic {
    pub(crate) use core::sync::atomic::{fence, Ordering};
    pub(crate) type AtomicU32 = core::sync::atomic::AtomicU32;
    pub(crate) type AtomicU64 = core::sync::atomic::AtomicU64;
    pub(crate) type AtomicUsize = core::sync::atomic::AtomicUsize;
    pub(crate) type AtomicBool = core::sync::atomic::AtomicBool;

    /// The `u64` at `p` as an atomic (a word of a shared region that a protocol accesses
    /// atomically, such as a ring's record headers).
    ///
    /// # Safety
    /// `p` is 8-aligned and valid for reads and writes for `'a`, and every concurrent access to
    /// it is atomic (plain accesses only where the protocol orders them).
    #[inline(always)]
    pub(crate) unsafe fn u64_at<'a>(p: *mut u64) -> &'a AtomicU64 {
        // SAFETY: forwarded contract; `AtomicU64` has the size and alignment of `u64`.
        unsafe { AtomicU64::from_ptr(p) }
    }
}

pub(crate) mod hint {
    pub(crate) use core::hint::spin_loop;
}

pub(crate) mod cell {
    /// `core::cell::UnsafeCell` with loom's closure API, so one source compiles both ways.
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(data: T) -> UnsafeCell<T> {
            UnsafeCell(core::cell::UnsafeCell::new(data))
        }
    }

    impl<T: ?Sized> UnsafeCell<T> {
        /// Runs `f` with a shared raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a mutable raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }

        /// The raw pointer itself, for FFI that keeps it across a call (pthread mutexes).
        #[inline(always)]
        pub(crate) fn get(&self) -> *mut T {
            self.0.get()
        }
    }
}

pub(crate) mod futex {
    pub(crate) use crate::sys::futex::{wait, wait_low, wake, wake_low, TimedOut};
}
