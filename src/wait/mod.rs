//! The waiting toolkit: how every blocking call of the crate bounds its wait, and `wait` over
//! many objects (`select.rs`).
//!
//! * [`Limit`] is the one representation of "try now", "until a deadline" and "forever", built
//!   from a public `timeout: Duration` or `deadline: Instant` in exactly one way: a timeout
//!   whose deadline overflows the clock (`Duration::MAX`, say) means **forever**, as in std.
//! * [`Limit::slice`] is "the earlier of the limit and one slice from now": blocking calls
//!   sleep in bounded slices so that a peer's death (which wakes nobody) is looked at again.
//! * [`AdaptiveSpin`] is the spin budget of [`WaitStrategy::Adaptive`](crate::WaitStrategy):
//!   spin a while before parking, and stop spinning when it keeps failing.
//!
//! Call sites map an expired limit to their own error: `Full`/`Empty` for [`Limit::Now`]
//! (a `try_` form), `Timeout` otherwise ([`Limit::is_now`] tells which).

mod select;

#[cfg(not(all(test, loom)))]
pub(crate) use select::WaitWord;
pub use select::{wait, Waitable};

use crate::sys::clock::Deadline;
use std::time::{Duration, Instant};

/// How long a blocking call may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Do not wait: a `try_` form.
    Now,
    /// Wait until this point on `CLOCK_MONOTONIC`.
    Until(Deadline),
    /// Wait as long as it takes.
    Forever,
}

impl Limit {
    /// The limit of a call with `timeout`: a deadline `timeout` from now, or forever when that
    /// overflows (`Duration::MAX` and the like). A zero timeout is a deadline that has passed:
    /// the call checks once and reports a time-out, unlike [`Limit::Now`].
    pub(crate) fn timeout(timeout: Duration) -> Limit {
        match Deadline::after(timeout) {
            Some(d) => Limit::Until(d),
            None => Limit::Forever,
        }
    }

    /// The limit of a call with an absolute `deadline` (one in the past has passed).
    pub(crate) fn deadline(deadline: Instant) -> Limit {
        match Deadline::at(deadline) {
            Some(d) => Limit::Until(d),
            None => Limit::Forever,
        }
    }

    /// The limit of a Python-style optional timeout (`None`: forever).
    pub(crate) fn optional(timeout: Option<Duration>) -> Limit {
        timeout.map_or(Limit::Forever, Limit::timeout)
    }

    /// Whether this is a `try_` form (expiry means `Full`/`Empty`, not `Timeout`).
    pub(crate) fn is_now(self) -> bool {
        self == Limit::Now
    }

    /// Whether the limit has passed (always for [`Limit::Now`], never for [`Limit::Forever`]).
    pub(crate) fn passed(self) -> bool {
        match self {
            Limit::Now => true,
            Limit::Until(d) => d.has_passed(),
            Limit::Forever => false,
        }
    }

    /// The absolute deadline (`None`: forever); [`Limit::Now`] is the current time.
    pub(crate) fn deadline_opt(self) -> Option<Deadline> {
        match self {
            Limit::Now => Some(Deadline::now()),
            Limit::Until(d) => Some(d),
            Limit::Forever => None,
        }
    }

    /// The earlier of this limit and `slice` from now: how long one bounded sleep lasts.
    pub(crate) fn slice(self, slice: Duration) -> Option<Deadline> {
        earliest(self.deadline_opt(), Deadline::after(slice))
    }
}

/// The earlier of two optional deadlines (`None` is "never").
pub(crate) fn earliest(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Spin iterations of `Adaptive` waiting before it parks (≈ 10–30 µs).
pub(crate) const ADAPTIVE_SPINS: u32 = 500;
/// After this many consecutive spin phases that ended in parking anyway, `Adaptive` parks at
/// once (spinning is pure loss when the peer cannot run meanwhile, e.g. when both processes
/// share one CPU); it tries spinning again every [`SPIN_PROBE_EVERY`]-th wait.
pub(crate) const SPIN_FAILS_TO_STOP: u8 = 4;
/// See [`SPIN_FAILS_TO_STOP`].
pub(crate) const SPIN_PROBE_EVERY: u32 = 16;

/// The spin budget of one waiting side (per direction of a pipe end): how long to spin before
/// parking, learned from how the last waits went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdaptiveSpin {
    /// Consecutive spin phases that ended in parking.
    pub(crate) fails: u8,
    /// Waits so far (wrapping), for the periodic probe.
    pub(crate) waits: u32,
}

impl AdaptiveSpin {
    /// How many spins this wait may make before parking: none after a run of failed spin
    /// phases, except for an occasional probe.
    pub(crate) fn budget(&self) -> u32 {
        if self.fails >= SPIN_FAILS_TO_STOP && self.waits % SPIN_PROBE_EVERY != 0 {
            0
        } else {
            ADAPTIVE_SPINS
        }
    }

    /// Records how a wait went: whether it ended parked, and the budget it had.
    pub(crate) fn record(&mut self, parked: bool, budget: u32) {
        self.waits = self.waits.wrapping_add(1);
        if !parked {
            self.fails = 0;
        } else if budget > 0 {
            self.fails = self.fails.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_that_overflows_is_forever() {
        assert_eq!(Limit::timeout(Duration::MAX), Limit::Forever);
        assert_eq!(Limit::timeout(Duration::from_secs(u64::MAX)), Limit::Forever);
        assert!(matches!(Limit::timeout(Duration::from_secs(1)), Limit::Until(_)));
        assert!(!Limit::timeout(Duration::MAX).passed());
        assert_eq!(Limit::optional(None), Limit::Forever);
    }

    #[test]
    fn a_zero_timeout_has_passed_but_is_not_a_try() {
        let l = Limit::timeout(Duration::ZERO);
        assert!(l.passed() && !l.is_now());
        assert!(Limit::Now.passed() && Limit::Now.is_now());
        assert!(Limit::deadline(Instant::now() - Duration::from_millis(1)).passed());
    }

    #[test]
    fn a_slice_never_outlasts_the_limit() {
        let l = Limit::timeout(Duration::from_millis(5));
        let s = l.slice(Duration::from_secs(10)).unwrap();
        assert!(s.remaining() <= Duration::from_millis(5));
        let f = Limit::Forever.slice(Duration::from_millis(50)).unwrap();
        assert!(f.remaining() <= Duration::from_millis(50));
        assert!(Limit::Forever.slice(Duration::MAX).is_none());
    }

    #[test]
    fn adaptive_spin_stops_after_failures_and_probes() {
        let mut s = AdaptiveSpin::default();
        for _ in 0..SPIN_FAILS_TO_STOP {
            let b = s.budget();
            assert_eq!(b, ADAPTIVE_SPINS);
            s.record(true, b);
        }
        let budgets: Vec<u32> = (0..SPIN_PROBE_EVERY)
            .map(|_| {
                let b = s.budget();
                s.record(true, b);
                b
            })
            .collect();
        assert_eq!(budgets.iter().filter(|&&b| b > 0).count(), 1, "one probe in every {SPIN_PROBE_EVERY} waits");
        s.record(false, ADAPTIVE_SPINS);
        assert_eq!(s.budget(), ADAPTIVE_SPINS);
    }
}
