//! `CLOCK_MONOTONIC` time and absolute deadlines.
//!
//! Every blocking call in the crate turns its timeout into one absolute [`Deadline`] up front, so
//! that retries after `EINTR` or spurious wake-ups never stretch the wait.
//! `std::time::Instant` is `CLOCK_MONOTONIC` on Linux too, so the two agree.

use std::time::{Duration, Instant};

/// A point in time on `CLOCK_MONOTONIC`, as the kernel's futex and pthread calls take it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Deadline {
    /// Nanoseconds since the clock's epoch (boot). `u64` nanoseconds last 584 years.
    nanos: u64,
}

impl Deadline {
    /// The current time.
    pub(crate) fn now() -> Deadline {
        Deadline { nanos: monotonic_nanos() }
    }

    /// `now + d`, or `None` (wait forever) when that overflows, as std does.
    pub(crate) fn after(d: Duration) -> Option<Deadline> {
        let d = u64::try_from(d.as_nanos()).ok()?;
        Some(Deadline { nanos: monotonic_nanos().checked_add(d)? })
    }

    /// The deadline matching a `std::time::Instant` (both are `CLOCK_MONOTONIC`).
    pub(crate) fn at(t: Instant) -> Option<Deadline> {
        let now = Instant::now();
        match t.checked_duration_since(now) {
            Some(ahead) => Deadline::after(ahead),
            None => Some(Deadline::now()),
        }
    }

    /// Time left before the deadline, zero once it has passed.
    pub(crate) fn remaining(&self) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(monotonic_nanos()))
    }

    /// Whether the deadline has passed.
    pub(crate) fn has_passed(&self) -> bool {
        monotonic_nanos() >= self.nanos
    }

    /// The deadline as the `timespec` the kernel wants.
    pub(crate) fn as_timespec(&self) -> libc::timespec {
        libc::timespec {
            tv_sec: (self.nanos / 1_000_000_000) as libc::time_t,
            tv_nsec: (self.nanos % 1_000_000_000) as libc::c_long,
        }
    }
}

/// Nanoseconds on `CLOCK_MONOTONIC` ([clock_gettime(2)](https://man7.org/linux/man-pages/man2/clock_gettime.2.html)).
pub(crate) fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, and
    // clock_gettime through the vDSO cannot fail for a valid clock and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds on `CLOCK_MONOTONIC_COARSE`: the time of the last timer tick (4 ms apart on a
/// kernel with `HZ=250`), read from the vDSO without touching the TSC (≈ 6 ns against ≈ 24 ns
/// for the fine clock here). For rate limits, never for deadlines.
pub(crate) fn coarse_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: as in `monotonic_nanos`; CLOCK_MONOTONIC_COARSE exists since Linux 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_after_overflow_is_forever() {
        assert_eq!(Deadline::after(Duration::MAX), None);
        assert!(Deadline::after(Duration::from_secs(1)).is_some());
    }

    #[test]
    fn remaining_counts_down_to_zero() {
        let d = Deadline::after(Duration::from_millis(20)).unwrap();
        assert!(d.remaining() <= Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(25));
        assert!(d.has_passed());
        assert_eq!(d.remaining(), Duration::ZERO);
    }

    #[test]
    fn instant_and_deadline_share_a_clock() {
        let t = Instant::now() + Duration::from_millis(50);
        let d = Deadline::at(t).unwrap();
        let left = d.remaining();
        assert!(left > Duration::from_millis(30) && left <= Duration::from_millis(50), "{left:?}");
    }
}
