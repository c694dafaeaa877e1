//! The futex system call: shared (never `FUTEX_PRIVATE_FLAG`), absolute deadlines, EINTR-proof.
//!
//! See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html). The words live in
//! `MAP_SHARED` memory used by several processes, so the private flag, which keys the wait queue
//! on the process's own address space, would make cross-process wake-ups silently fail.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use super::clock::Deadline;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// The wait ended because its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// Sleeps while `*word == expected`, until woken or `deadline` (CLOCK_MONOTONIC) passes.
///
/// May return spuriously: callers always re-check their state word. `EINTR` is retried with
/// the same absolute deadline, so signals never stretch the wait.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> Result<(), TimedOut> {
    wait_at(word.as_ptr(), expected, deadline)
}

/// The half of a 64-bit word that holds its low 32 bits (the futex half of a word whose high
/// half carries other state, such as a semaphore's transit lanes).
fn low_half(word: &AtomicU64) -> *mut u32 {
    // The low half is the first four bytes on little-endian targets, the last four on big-endian
    // ones. `wrapping_add` stays inside the 8-byte word either way.
    word.as_ptr().cast::<u32>().wrapping_add(usize::from(cfg!(target_endian = "big")))
}

/// [`wait`] on the low 32 bits of `word`: sleeps while they equal `expected`. The high half may
/// change freely meanwhile; only a change of the low half (and a [`wake_low`]) ends the wait.
pub(crate) fn wait_low(word: &AtomicU64, expected: u32, deadline: Option<Deadline>) -> Result<(), TimedOut> {
    wait_at(low_half(word), expected, deadline)
}

/// [`wake`] for sleepers in [`wait_low`] on `word`.
pub(crate) fn wake_low(word: &AtomicU64, n: u32) -> u32 {
    wake_at(low_half(word), n)
}

/// `wait` on a raw address: `word` points at a live, aligned `u32` inside an atomic word that
/// every other access in this process reaches atomically (the kernel reads it atomically too).
fn wait_at(word: *mut u32, expected: u32, deadline: Option<Deadline>) -> Result<(), TimedOut> {
    let ts = deadline.map(|d| d.as_timespec());
    loop {
        // SAFETY: `word` is a live, aligned u32 (an atomic word or the low half of one, see the
        // callers) that the kernel only reads, atomically; `ts` is null or a
        // valid timespec for the duration of the call. FUTEX_WAIT_BITSET takes an absolute
        // CLOCK_MONOTONIC timeout (no FUTEX_CLOCK_REALTIME), and the match-any bitset makes it
        // behave like FUTEX_WAIT otherwise.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word,
                libc::FUTEX_WAIT_BITSET,
                expected,
                ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec),
                ptr::null::<u32>(),
                u32::MAX,
            )
        };
        if r == 0 {
            return Ok(());
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => return Ok(()), // the value had already changed
            Some(libc::EINTR) => continue,       // absolute deadline: retrying adds no drift
            Some(libc::ETIMEDOUT) => return Err(TimedOut),
            // EFAULT/EINVAL can only come from a bad address or op: a bug in this crate.
            e => panic!("futex wait failed unexpectedly: errno {e:?}"),
        }
    }
}

/// Wakes up to `n` waiters sleeping on `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> u32 {
    wake_at(word.as_ptr(), n)
}

/// `wake` on a raw address, as [`wait_at`].
fn wake_at(word: *mut u32, n: u32) -> u32 {
    let n = n.min(i32::MAX as u32);
    // SAFETY: `word` is a live, aligned u32 (the callers pass an atomic word or its low half);
    // FUTEX_WAKE only uses it as a key and reads no other argument.
    let r = unsafe { libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE, n) };
    if r < 0 {
        0
    } else {
        r as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn wait_on_changed_value_returns_at_once() {
        let w = AtomicU32::new(1);
        assert_eq!(wait(&w, 0, None), Ok(()));
    }

    #[test]
    fn wait_times_out_at_the_deadline() {
        let w = AtomicU32::new(0);
        let t = Instant::now();
        let r = wait(&w, 0, Deadline::after(Duration::from_millis(50)));
        assert_eq!(r, Err(TimedOut));
        assert!(t.elapsed() >= Duration::from_millis(45));
    }

    #[test]
    fn wake_releases_a_sleeper() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = w.clone();
        let h = std::thread::spawn(move || {
            while w2.load(SeqCst) == 0 {
                let _ = wait(&w2, 0, Deadline::after(Duration::from_secs(10)));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, SeqCst);
        wake(&w, 1);
        h.join().unwrap();
    }

    #[test]
    fn wait_low_compares_only_the_low_half() {
        // High half different from the low half: a wait on the wrong half would not block.
        let w = AtomicU64::new(7 << 32);
        let t = Instant::now();
        assert_eq!(wait_low(&w, 0, Deadline::after(Duration::from_millis(30))), Err(TimedOut));
        assert!(t.elapsed() >= Duration::from_millis(25));
        assert_eq!(wait_low(&w, 7, None), Ok(()), "the high half was compared");
    }

    #[test]
    fn wake_low_releases_a_sleeper_in_wait_low() {
        let w = Arc::new(AtomicU64::new(5 << 32));
        let w2 = w.clone();
        let h = std::thread::spawn(move || {
            while w2.load(SeqCst) as u32 == 0 {
                let _ = wait_low(&w2, 0, Deadline::after(Duration::from_secs(10)));
            }
        });
        std::thread::sleep(Duration::from_millis(20)); // usually asleep by now; correct either way
        w.fetch_add(1, SeqCst);
        assert!(wake_low(&w, 1) <= 1);
        h.join().unwrap();
    }
}

/// Why [`wait_any`] returned without being woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitAnyError {
    /// The deadline passed.
    TimedOut,
    /// `futex_waitv(2)` is missing (Linux < 5.16) or refused this many words: use another way.
    Unsupported,
}

/// The kernel's `struct futex_waitv` (linux/futex.h).
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32`: the word is 32 bits (and, without `FUTEX2_PRIVATE`, shared).
const FUTEX2_SIZE_U32: u32 = 0x02;
/// The kernel's `FUTEX_WAITV_MAX`.
pub(crate) const WAIT_ANY_MAX: usize = 128;

/// Sleeps until any `word` is woken (or no longer holds its `expected` value), or `deadline`
/// (CLOCK_MONOTONIC) passes: one sleep over several futexes
/// ([futex_waitv(2)](https://docs.kernel.org/userspace-api/futex2.html), Linux 5.16).
///
/// May return `Ok` spuriously (a changed value, a signal): callers re-check their state.
pub(crate) fn wait_any(words: &[(&AtomicU32, u32)], deadline: Option<Deadline>) -> Result<(), WaitAnyError> {
    if words.is_empty() || words.len() > WAIT_ANY_MAX {
        return Err(WaitAnyError::Unsupported);
    }
    let waiters: Vec<FutexWaitv> = words
        .iter()
        .map(|(w, v)| FutexWaitv { val: u64::from(*v), uaddr: w.as_ptr() as u64, flags: FUTEX2_SIZE_U32, reserved: 0 })
        .collect();
    let ts = deadline.map(|d| d.as_timespec());
    // SAFETY: `waiters` is a live array of `words.len()` kernel-layout entries, each naming a
    // live, aligned u32 that the kernel only reads; `ts` is null or a valid absolute
    // CLOCK_MONOTONIC timespec; the flags argument must be 0. All outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waiters.as_ptr(),
            waiters.len() as libc::c_uint,
            0 as libc::c_uint,
            ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec),
            libc::CLOCK_MONOTONIC,
        )
    };
    if r >= 0 {
        return Ok(());
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) => Ok(()),
        Some(libc::ETIMEDOUT) => Err(WaitAnyError::TimedOut),
        _ => Err(WaitAnyError::Unsupported),
    }
}

#[cfg(test)]
mod wait_any_tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn wait_any_wakes_on_any_word_and_times_out() {
        let words: Arc<[AtomicU32; 3]> = Arc::new([AtomicU32::new(1), AtomicU32::new(1), AtomicU32::new(1)]);
        // Timeout with nothing happening.
        let t = std::time::Instant::now();
        let r = wait_any(&[(&words[0], 1), (&words[1], 1)], Deadline::after(Duration::from_millis(20)));
        assert_eq!(r, Err(WaitAnyError::TimedOut));
        assert!(t.elapsed() >= Duration::from_millis(15));
        // A changed value returns at once.
        assert_eq!(wait_any(&[(&words[0], 1), (&words[1], 7)], None), Ok(()));
        // A wake on the second word ends the wait.
        let w = words.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w[2].store(2, std::sync::atomic::Ordering::SeqCst);
            wake(&w[2], u32::MAX);
        });
        let r = wait_any(&[(&words[0], 1), (&words[2], 1)], Deadline::after(Duration::from_secs(10)));
        assert_eq!(r, Ok(()));
        assert_eq!(words[2].load(std::sync::atomic::Ordering::SeqCst), 2);
        waker.join().unwrap();
        assert_eq!(wait_any(&[], None), Err(WaitAnyError::Unsupported));
    }
}
