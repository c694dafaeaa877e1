//! The loom shim: the only module that names `core::sync::atomic`, `UnsafeCell`
//! or the `loom` crate.
//!
//! Normal builds get thin aliases over `core` and the real futex in [`crate::sys::futex`].
//! Under `cfg(all(test, loom))` the same names come from `loom`, and [`futex`] becomes a model of
//! the kernel's futex (FIFO wait queues keyed by address), so that a forgotten wake-up shows up
//! as a loom deadlock instead of being hidden by a spin loop. Gating on `test` as well as `loom`
//! means a downstream crate building with `--cfg loom` never swaps our internals.
//!
//! Both back ends export the same items: `atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering,
//! fence}`, `cell::UnsafeCell` (with loom's `with`/`with_mut` API), `hint::spin_loop`, and
//! `futex::{wait, wake, wait_low, wake_low, TimedOut}`.

#[cfg(not(all(test, loom)))]
mod std;
#[cfg(not(all(test, loom)))]
pub(crate) use self::std::*;

#[cfg(all(test, loom))]
mod model;
#[cfg(all(test, loom))]
pub(crate) use self::model::*;

#[cfg(all(test, loom))]
mod tests;
