//! Capturing a child's panic without touching std's panic-hook lock in the child.
//!
//! `std::panic::set_hook`/`take_hook` take a process-wide lock. A forked child must not: if
//! another thread of the parent held it at the moment of the fork (it was panicking), the child
//! would block on it forever, before running its closure. So the hook is installed **once, in
//! the parent, before the first fork** ([`install`]), and a child only *arms* it: it stores its
//! report area in an atomic and marks its main thread in a thread-local ([`arm`]), neither of
//! which can block.
//!
//! The hook, in an armed child's main thread, writes the panic's message and location to the
//! report area, then calls the previous hook (which prints it as usual, unless a pool worker
//! asked for [`set_quiet`]). In every thread it remembers the location of the last panic, for
//! the pool's failure reports ([`take_location`]).
//!
//! A program that replaces the panic hook after its first fork loses the location in child
//! reports; the message still arrives (taken from the panic payload by `catch_unwind`).

// The hook's flags are process-local, never in shared memory and never part of an algorithm
// loom checks: plain `core` atomics (loom's cannot live in statics).
#![allow(clippy::disallowed_types)]

use super::report::{Kind, Report};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicUsize};
use std::cell::{Cell, RefCell};
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

/// The armed child's report area (address of a `Report` in a mapping the child keeps until it
/// exits), or 0.
static REPORT: AtomicUsize = AtomicUsize::new(0);
/// The pid that armed the hook: a grandchild forked from the armed thread is not the armed
/// child, so it must not write into its parent's report.
static ARMED_PID: AtomicUsize = AtomicUsize::new(0);
/// Don't print panics (pool workers report them to the parent instead).
static QUIET: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread is the armed child's main thread.
    static ARMED_THREAD: Cell<bool> = const { Cell::new(false) };
    /// `file:line:col` of this thread's last panic.
    static LAST_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the crate's panic hook in front of the current one, once per process. Call before
/// forking (never in a forked child: that is the point).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            hook(info);
            // Relaxed: a process-local flag set before the panicking code ran.
            if !QUIET.load(Relaxed) {
                previous(info);
            }
        }));
    });
}

/// In a forked child: sends this thread's panics to `report`. Lock-free and allocation-free.
///
/// `report` must stay mapped until the process exits (the child's `child_main` keeps its
/// handle and never returns).
pub(crate) fn arm(report: &Report) {
    ARMED_PID.store(crate::sys::process::getpid() as usize, Relaxed);
    // SYNC(release → hook's acquire load): the pid is visible with the report address.
    REPORT.store(report as *const Report as usize, Release);
    ARMED_THREAD.with(|a| a.set(true));
}

/// Don't print panics in this process (pool workers).
#[cfg(feature = "serde")] // the pool's
pub(crate) fn set_quiet() {
    // Relaxed: process-local; read by this process's own hook later.
    QUIET.store(true, Relaxed);
}

/// The location of this thread's last panic, if any (and forgets it).
#[cfg(feature = "serde")] // the pool's
pub(crate) fn take_location() -> Option<String> {
    LAST_LOCATION.with(|l| l.borrow_mut().take())
}

/// The text of a panic payload (`&str` or `String`; anything else is named).
pub(crate) fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>")
}

fn hook(info: &PanicHookInfo<'_>) {
    let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let armed = ARMED_THREAD.with(Cell::get)
        // Relaxed: written by this process before the thread that reads it ran (program order).
        && ARMED_PID.load(Relaxed) == crate::sys::process::getpid() as usize;
    // SYNC(acquire ← arm).
    let report = REPORT.load(Acquire);
    if armed && report != 0 {
        let msg = payload_text(info.payload());
        let text = match &location {
            Some(l) => format!("panicked at {l}: {msg}"),
            None => format!("panicked: {msg}"),
        };
        #[allow(unsafe_code)]
        // SAFETY: `arm` stored the address of a `Report` that stays mapped until this process
        // exits (its contract), and `Report` is only ever accessed through atomics. A lock
        // would be safer to write but could be held by a thread the fork did not copy.
        let report = unsafe { &*(report as *const Report) };
        report.write(Kind::Panic, &text);
    }
    LAST_LOCATION.with(|l| *l.borrow_mut() = location);
}
