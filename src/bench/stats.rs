//! Sampling and statistics: the warm-up that sizes batches from the timer's cost, the samples
//! (one per batch: its time over its operations), and their percentiles.

use super::{BenchError, BenchOperation};
use std::time::{Duration, Instant};

/// How long a measurement warms up and samples, and how many samples it keeps at most.
///
/// # Examples
///
/// ```
/// use multiproc::BenchBudget;
/// let b = BenchBudget::quick();
/// assert!(b.measure < BenchBudget::full().measure);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchBudget {
    /// Warm-up: the batch grows until this much time is spent; the last batch gives the cost
    /// of one operation, from which the sampling batch is sized.
    pub warmup: Duration,
    /// Sampling: batches are timed until this much time is spent (at least 5 samples).
    pub measure: Duration,
    /// At most this many samples.
    pub max_samples: usize,
}

impl BenchBudget {
    /// 300 ms of warm-up, 2 s of samples (what `multiproc bench` uses).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::BenchBudget::full().measure, std::time::Duration::from_secs(2));
    /// ```
    pub fn full() -> BenchBudget {
        BenchBudget { warmup: Duration::from_millis(300), measure: Duration::from_secs(2), max_samples: 200_000 }
    }

    /// 60 ms of warm-up, 400 ms of samples (`multiproc bench --quick`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::BenchBudget::quick().warmup, std::time::Duration::from_millis(60));
    /// ```
    pub fn quick() -> BenchBudget {
        BenchBudget { warmup: Duration::from_millis(60), measure: Duration::from_millis(400), max_samples: 20_000 }
    }
}

/// The samples of one measurement: per-operation times in nanoseconds, sorted, and the batch
/// size that gave them.
///
/// # Examples
///
/// ```
/// let s = multiproc::BenchSamples::new(vec![3.0, 1.0, 2.0], 10);
/// assert_eq!(s.ns_per_op(), [1.0, 2.0, 3.0]);
/// assert_eq!(s.batch(), 10);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSamples {
    ns: Vec<f64>,
    batch: u64,
}

impl BenchSamples {
    /// Samples from per-operation times (ns) in any order; NaNs are dropped.
    ///
    /// # Examples
    ///
    /// See [`BenchSamples`].
    pub fn new(mut ns_per_op: Vec<f64>, batch: u64) -> BenchSamples {
        ns_per_op.retain(|x| !x.is_nan());
        ns_per_op.sort_by(f64::total_cmp);
        BenchSamples { ns: ns_per_op, batch }
    }

    /// The per-operation times, ascending.
    ///
    /// # Examples
    ///
    /// See [`BenchSamples`].
    pub fn ns_per_op(&self) -> &[f64] {
        &self.ns
    }

    /// Operations per sample.
    ///
    /// # Examples
    ///
    /// See [`BenchSamples`].
    pub fn batch(&self) -> u64 {
        self.batch
    }

    /// The `p`-quantile (0.0 ..= 1.0) by the nearest rank, or `None` without samples.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::BenchSamples::new((1..=100).map(f64::from).collect(), 1);
    /// assert_eq!(s.percentile(0.5), Some(51.0)); // rank round(99 × 0.5) = 50 (0-based)
    /// assert_eq!(s.percentile(0.99), Some(99.0));
    /// assert_eq!(s.percentile(1.0), Some(100.0));
    /// assert_eq!(multiproc::BenchSamples::new(vec![], 1).percentile(0.5), None);
    /// ```
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.ns.is_empty() {
            return None;
        }
        let i = ((self.ns.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
        Some(self.ns[i.min(self.ns.len() - 1)])
    }
}

/// The median cost of reading the clock twice (`Instant::now()` twice), in ns: batches are
/// sized so that it adds at most 1 %.
///
/// # Examples
///
/// ```
/// assert!(multiproc::bench_timer_cost_ns() > 0.0);
/// ```
pub fn bench_timer_cost_ns() -> f64 {
    let mut v: Vec<f64> = (0..20_001)
        .map(|_| {
            let a = Instant::now();
            let b = Instant::now();
            (b - a).as_nanos() as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2].max(1.0)
}

/// Warms `op` up, sizes a batch (at least 100 × `timer_ns` and at least `min_batch` long), and
/// times batches for the budget: one sample per batch. `between` runs after every batch (the
/// harness checks its peers there); an error from it or from `op` ends the sampling.
///
/// # Errors
/// The first error of `op` ([`BenchError::Operation`]) or of `between`.
///
/// # Examples
///
/// ```
/// use multiproc::{bench_sample, bench_timer_cost_ns, BenchBudget};
/// use std::time::Duration;
///
/// let mut x = 0u64;
/// let mut op = |n: u64| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     for i in 0..n {
///         x = std::hint::black_box(x.wrapping_add(i));
///     }
///     Ok(())
/// };
/// let budget = BenchBudget { measure: Duration::from_millis(20), warmup: Duration::from_millis(5), max_samples: 1000 };
/// let s = bench_sample(&mut op, &budget, Duration::ZERO, bench_timer_cost_ns(), &mut || Ok(()))?;
/// assert!(s.ns_per_op().len() >= 5 && s.batch() >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bench_sample(
    op: &mut dyn BenchOperation,
    budget: &BenchBudget,
    min_batch: Duration,
    timer_ns: f64,
    between: &mut dyn FnMut() -> Result<(), BenchError>,
) -> Result<BenchSamples, BenchError> {
    // Warm-up: grow the batch until the warm-up time is spent; the last batch gives the cost of
    // one operation.
    let start = Instant::now();
    let mut n = 1u64;
    let mut per_op_ns;
    loop {
        let t = Instant::now();
        op.run(n).map_err(BenchError::Operation)?;
        per_op_ns = (t.elapsed().as_nanos() as f64 / n as f64).max(0.1);
        between()?;
        if start.elapsed() >= budget.warmup {
            break;
        }
        if (n as f64) * per_op_ns < 1e6 {
            n = n.saturating_mul(2);
        }
    }
    // A batch must dwarf the timer (≥ 100 × its cost, so it adds ≤ 1 %) and last `min_batch`.
    let target_ns = (100.0 * timer_ns).max(min_batch.as_nanos() as f64);
    let batch = ((target_ns / per_op_ns).ceil() as u64).max(1);
    let mut ns = Vec::new();
    let start = Instant::now();
    while ns.len() < budget.max_samples.max(5) && (start.elapsed() < budget.measure || ns.len() < 5) {
        let t = Instant::now();
        op.run(batch).map_err(BenchError::Operation)?;
        ns.push(t.elapsed().as_nanos() as f64 / batch as f64);
        between()?;
    }
    Ok(BenchSamples::new(ns, batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let s = BenchSamples::new((0..=1000).rev().map(f64::from).collect(), 7);
        assert_eq!(s.percentile(0.0), Some(0.0));
        assert_eq!(s.percentile(0.5), Some(500.0));
        assert_eq!(s.percentile(0.9), Some(900.0));
        assert_eq!(s.percentile(0.99), Some(990.0));
        assert_eq!(s.percentile(0.999), Some(999.0));
        assert_eq!(s.percentile(2.0), Some(1000.0), "clamped");
        let one = BenchSamples::new(vec![f64::NAN, 4.0], 1);
        assert_eq!((one.percentile(0.01), one.percentile(0.99), one.ns_per_op().len()), (Some(4.0), Some(4.0), 1));
    }

    #[test]
    fn sampling_stops_at_the_first_error_of_the_operation_or_of_the_check() {
        let budget =
            BenchBudget { warmup: Duration::from_millis(1), measure: Duration::from_millis(5), max_samples: 100 };
        let mut calls = 0;
        let mut failing = |_: u64| -> super::super::BenchResult {
            calls += 1;
            if calls == 3 {
                return Err("third call".into());
            }
            Ok(())
        };
        let e = bench_sample(&mut failing, &budget, Duration::ZERO, 10.0, &mut || Ok(())).unwrap_err();
        assert!(matches!(e, BenchError::Operation(ref m) if m.to_string() == "third call"), "{e:?}");
        let mut fine = |_: u64| -> super::super::BenchResult { Ok(()) };
        let e = bench_sample(&mut fine, &budget, Duration::ZERO, 10.0, &mut || {
            Err(BenchError::PeerSilent { limit: Duration::from_secs(1) })
        })
        .unwrap_err();
        assert!(matches!(e, BenchError::PeerSilent { .. }));
    }
}
