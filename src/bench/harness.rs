//! The harness: [`Bench`] pins this thread per placement, lets a row's set-up start its peers
//! ([`BenchPeers`]), samples the operation under a watchdog, and records the measurement or why
//! there is none; [`PinnedPeer`] keeps one peer for criterion's `iter_custom`.
#![allow(clippy::disallowed_types)] // the watchdog's flags are std atomics between two threads of this process, not a shared-memory algorithm for loom

use super::stats::{bench_sample, bench_timer_cost_ns, BenchBudget};
use super::{BenchError, BenchMeasurement, BenchOperation, BenchReport, BenchResult, BenchRow, Placement};
use crate::sys::affinity::CpuSet;
use crate::sys::clock::monotonic_nanos;
use crate::{ChildOutcome, Process};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default [`Bench::peer_limit`].
const PEER_LIMIT: Duration = Duration::from_secs(10);

/// Measures rows across processes and keeps their results (see the [module docs](crate::Bench)
/// for the whole story).
///
/// # Examples
///
/// ```
/// use multiproc::{Bench, BenchRow, BenchUnit, Placement};
///
/// let mut bench = Bench::new()?.quick();
/// let row = BenchRow::new("my.local.op").unit(BenchUnit::Ns).placements(&[Placement::Same]);
/// bench.measure(&row, |_peers| {
///     let mut x = 0u64;
///     Ok(move |n: u64| -> multiproc::BenchResult {
///         for i in 0..n {
///             x = std::hint::black_box(x ^ i);
///         }
///         Ok(())
///     })
/// })?;
/// assert_eq!(bench.report().measurements.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Bench {
    budget: BenchBudget,
    peer_limit: Duration,
    timer_ns: f64,
    original: CpuSet,
    cpus: Vec<usize>,
    report: BenchReport,
}

impl Bench {
    /// A harness with [`BenchBudget::full`] budgets, for this thread's allowed CPUs (read now).
    ///
    /// # Errors
    /// [`BenchError::Os`] if the affinity mask cannot be read.
    ///
    /// # Examples
    ///
    /// See [`Bench`].
    pub fn new() -> Result<Bench, BenchError> {
        let original = CpuSet::current().map_err(BenchError::Os)?;
        Ok(Bench {
            budget: BenchBudget::full(),
            peer_limit: PEER_LIMIT,
            timer_ns: bench_timer_cost_ns(),
            cpus: original.cpus(),
            original,
            report: BenchReport::default(),
        })
    }

    /// Other budgets.
    ///
    /// # Examples
    ///
    /// See the [module docs](crate::Bench).
    pub fn budget(mut self, budget: BenchBudget) -> Bench {
        self.budget = budget;
        self
    }

    /// [`BenchBudget::quick`] budgets.
    ///
    /// # Examples
    ///
    /// See [`Bench`].
    pub fn quick(self) -> Bench {
        self.budget(BenchBudget::quick())
    }

    /// How long one batch may take before the harness decides a peer is silent and kills the
    /// peers (default 10 s): the row then fails with [`BenchError::PeerSilent`] as soon as the
    /// operation returns (which an operation that notices its peer's death does at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Bench::new()?.peer_limit(std::time::Duration::from_secs(2));
    /// # let _ = b;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peer_limit(mut self, limit: Duration) -> Bench {
        self.peer_limit = limit;
        self
    }

    /// The CPUs this harness places processes on (this thread's mask when it was made).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!multiproc::Bench::new()?.cpus().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Measures `row` at each of its placements: `setup` starts the row's peers (with
    /// [`BenchPeers::spawn`]) and returns the parent's side of the operation. A placement this
    /// machine cannot give is skipped with a note; a failure is noted too, and the other
    /// placements are still measured. The peers are killed and reaped after each placement.
    ///
    /// # Errors
    /// The first failure (not a skip) among the placements: [`BenchError::Operation`] (the
    /// set-up or the operation failed), [`BenchError::Start`], [`BenchError::PeerDied`],
    /// [`BenchError::PeerSilent`], [`BenchError::Os`].
    ///
    /// # Examples
    ///
    /// See [`Bench`] and the [module docs](crate::Bench).
    pub fn measure<S, O>(&mut self, row: &BenchRow, mut setup: S) -> Result<&mut Bench, BenchError>
    where
        S: FnMut(&mut BenchPeers) -> BenchResult<O>,
        O: BenchOperation,
    {
        let mut first = None;
        for &p in &row.placements {
            match self.measure_at(row, p, &mut setup) {
                Ok(m) => self.report.measurements.push(m),
                Err(BenchError::Placement(why)) => {
                    self.report.notes.push(format!("{} [{}] skipped: {why}", row.name, p.as_str()))
                }
                Err(e) => {
                    self.report.notes.push(format!("{} [{}] FAILED: {e}", row.name, p.as_str()));
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// Measures `row` at `placement` alone and returns the measurement (it is not added to the
    /// report).
    ///
    /// # Errors
    /// As [`measure`](Self::measure), and [`BenchError::Placement`] for a placement this
    /// machine cannot give.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Bench, BenchRow, Placement};
    /// let mut bench = Bench::new()?.quick();
    /// let m = bench.measure_at(&BenchRow::new("nothing"), Placement::Free, &mut |_| Ok(|_: u64| Ok(())))?;
    /// assert_eq!(m.placement, Placement::Free);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn measure_at<S, O>(
        &mut self,
        row: &BenchRow,
        placement: Placement,
        setup: &mut S,
    ) -> Result<BenchMeasurement, BenchError>
    where
        S: FnMut(&mut BenchPeers) -> BenchResult<O>,
        O: BenchOperation,
    {
        let _pin = Pin::to(placement, &self.cpus, self.original)?;
        let mut peers = BenchPeers { placement, cpus: self.cpus.clone(), children: Vec::new() };
        let mut op = setup(&mut peers).map_err(from_setup)?;
        let watch = Watch::start(self.peer_limit, peers.children.clone(), self.original);
        let mut watched = |n: u64| -> BenchResult {
            watch.batch_started();
            let r = op.run(n);
            watch.batch_ended();
            r
        };
        let mut between = || -> Result<(), BenchError> {
            if watch.fired() {
                return Err(BenchError::PeerSilent { limit: self.peer_limit });
            }
            peers.check(Duration::ZERO)
        };
        let sampled = bench_sample(&mut watched, &self.budget, row.min_batch, self.timer_ns, &mut between);
        let fired = watch.fired();
        drop(watch);
        // An operation that failed because its peer is gone says so: the peer's end is the news.
        let sampled = match sampled {
            Err(BenchError::Operation(_)) if fired => Err(BenchError::PeerSilent { limit: self.peer_limit }),
            Err(BenchError::Operation(e)) => {
                Err(peers.check(Duration::from_millis(100)).err().unwrap_or(BenchError::Operation(e)))
            }
            r => r,
        };
        drop(op); // the parent's side first: a peer waiting on it sees it close
        drop(peers);
        let samples = sampled?;
        Ok(BenchMeasurement::from_samples(
            &row.name,
            placement,
            row.unit,
            row.bytes_per_op,
            &samples,
            row.baseline.as_deref(),
        ))
    }

    /// Adds a measurement made elsewhere (an earlier run's row, a row of your own harness).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Bench, BenchMeasurement, BenchSamples, BenchUnit, Placement};
    /// let mut bench = Bench::new()?;
    /// let s = BenchSamples::new(vec![1.0], 1);
    /// bench.record(BenchMeasurement::from_samples("x", Placement::Free, BenchUnit::Ns, 0, &s, None));
    /// assert_eq!(bench.report().measurements.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record(&mut self, m: BenchMeasurement) {
        self.report.measurements.push(m);
    }

    /// Adds a note to the report.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut bench = multiproc::Bench::new()?;
    /// bench.note("measured on battery");
    /// assert_eq!(bench.report().notes, ["measured on battery"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn note(&mut self, text: impl Into<String>) {
        self.report.notes.push(text.into());
    }

    /// The measurements so far, with their ratios to their baselines resolved.
    ///
    /// # Examples
    ///
    /// See [`Bench`].
    pub fn report(&self) -> BenchReport {
        let mut r = self.report.clone();
        r.resolve_baselines();
        r
    }
}

/// A set-up's error: a [`BenchError`] it passed on (a placement skip from
/// [`BenchPeers::spawn`]) is itself; anything else is an operation failure.
fn from_setup(e: Box<dyn std::error::Error + Send + Sync>) -> BenchError {
    match e.downcast::<BenchError>() {
        Ok(b) => *b,
        Err(e) => BenchError::Operation(e),
    }
}

/// This thread pinned for a placement; the original mask comes back on drop (a panic too).
struct Pin {
    original: CpuSet,
}

impl Pin {
    fn to(p: Placement, cpus: &[usize], original: CpuSet) -> Result<Pin, BenchError> {
        let first = *cpus.first().ok_or_else(|| BenchError::Placement("no usable CPU".into()))?;
        match p {
            Placement::Same | Placement::Cross => CpuSet::single(first).apply().map_err(BenchError::Os)?,
            Placement::Free => original.apply().map_err(BenchError::Os)?,
        }
        Ok(Pin { original })
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = self.original.apply();
    }
}

/// The peers of one row at one placement: started by the row's set-up, killed and reaped when
/// the measurement ends (dropped).
#[derive(Debug)]
pub struct BenchPeers {
    placement: Placement,
    cpus: Vec<usize>,
    children: Vec<Process>,
}

impl BenchPeers {
    /// The placement being measured.
    ///
    /// # Examples
    ///
    /// See [`BenchPeers::spawn`].
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Starts a peer process (forked) running `f`, pinned for the placement: `Same` on this
    /// thread's CPU, `Cross` the *k*-th peer on the (*k* + 2)-th allowed CPU, `Free` unpinned.
    /// It runs until it returns or the measurement ends (then it is killed and reaped).
    ///
    /// # Errors
    /// [`BenchError::Placement`] if `Cross` needs a CPU this machine does not have (the row
    /// is then skipped at this placement, with a note); [`BenchError::Start`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Bench, BenchRow, Event, Placement};
    /// let mut bench = Bench::new()?.quick();
    /// let row = BenchRow::new("event.handoff").placements(&[Placement::Free]);
    /// bench.measure(&row, |peers| {
    ///     let (ping, pong) = (Event::new()?, Event::new()?);
    ///     let (p, q) = (ping.clone(), pong.clone());
    ///     peers.spawn(move || -> () {
    ///         loop {
    ///             p.wait();
    ///             p.clear();
    ///             q.set();
    ///         }
    ///     })?;
    ///     Ok(move |n: u64| -> multiproc::BenchResult {
    ///         for _ in 0..n {
    ///             ping.set();
    ///             pong.wait_timeout(std::time::Duration::from_secs(10))?; // a dead peer: Timeout
    ///             pong.clear();
    ///         }
    ///         Ok(())
    ///     })
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, R>(&mut self, f: F) -> Result<u32, BenchError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        let k = self.children.len();
        let cpu = match self.placement {
            Placement::Same => Some(self.cpus[0]),
            Placement::Cross => Some(*self.cpus.get(k + 1).ok_or_else(|| {
                BenchError::Placement(format!(
                    "cross needs {} CPUs for {} peer(s); {} usable",
                    k + 2,
                    k + 1,
                    self.cpus.len()
                ))
            })?),
            Placement::Free => None,
        };
        let p = Process::builder()
            .start(move || {
                if let Some(c) = cpu {
                    let _ = CpuSet::single(c).apply();
                }
                f()
            })
            .map_err(BenchError::Start)?;
        let pid = p.pid().unwrap_or(0);
        self.children.push(p);
        Ok(pid)
    }

    /// `PeerDied` if a peer has ended, or ends within `wait` (an operation that failed
    /// because its peer died may see the death before the peer is reapable).
    fn check(&self, wait: Duration) -> Result<(), BenchError> {
        for c in &self.children {
            if let Ok(status) = c.join_timeout(wait) {
                return Err(BenchError::PeerDied { pid: c.pid().unwrap_or(0), status });
            }
        }
        Ok(())
    }
}

impl Drop for BenchPeers {
    fn drop(&mut self) {
        for c in &self.children {
            let _ = c.kill();
        }
        for c in &self.children {
            let _ = c.join();
        }
    }
}

/// The watchdog of one measurement: a thread that kills the peers when a batch runs past the
/// limit.
struct Watch {
    state: Arc<WatchState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct WatchState {
    /// When the running batch started (CLOCK_MONOTONIC ns); 0: none running.
    started: AtomicU64,
    fired: AtomicBool,
    stop: AtomicBool,
}

impl Watch {
    /// `peers`: handles of the peers (a kill through them never reaches a reused pid);
    /// `mask`: the harness's own mask, so that the watchdog does not wake on the measured CPU.
    fn start(limit: Duration, peers: Vec<Process>, mask: CpuSet) -> Watch {
        let state = Arc::new(WatchState {
            started: AtomicU64::new(0),
            fired: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let s = state.clone();
        let tick = (limit / 20).clamp(Duration::from_millis(1), Duration::from_millis(50));
        let thread = std::thread::Builder::new()
            .name("multiproc-bench-watch".into())
            .spawn(move || {
                let _ = mask.apply();
                let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
                // Relaxed throughout: the words are flags between two threads of this process,
                // read again each tick; nothing else is published through them.
                while !s.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    let t = s.started.load(Ordering::Relaxed);
                    if t != 0 && monotonic_nanos().saturating_sub(t) > limit_ns {
                        for p in &peers {
                            let _ = p.kill();
                        }
                        s.fired.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            })
            .ok();
        Watch { state, thread }
    }

    fn batch_started(&self) {
        self.state.started.store(monotonic_nanos().max(1), Ordering::Relaxed);
    }

    fn batch_ended(&self) {
        self.state.started.store(0, Ordering::Relaxed);
    }

    fn fired(&self) -> bool {
        self.state.fired.load(Ordering::Relaxed)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A peer kept running between calls, for criterion's `Bencher::iter_custom`: this thread is
/// pinned for the placement while it lives (and gets its mask back when it is dropped, on the
/// thread that made it). It reads the thread's mask when it starts, so keep one per thread at a
/// time (a second one would see the first one's pin, and peers dropped out of order would
/// leave a pin behind).
///
/// # Examples
///
/// ```
/// use multiproc::{PinnedPeer, Pipe, Placement};
///
/// let mut peer = PinnedPeer::start(Placement::Free, |peers| {
///     let (mut mine, mut theirs) = Pipe::duplex()?;
///     peers.spawn(move || -> Result<(), Box<dyn std::error::Error>> {
///         loop {
///             let m = theirs.recv_bytes()?;
///             theirs.send_bytes(&m)?;
///         }
///     })?;
///     Ok(move |n: u64| -> multiproc::BenchResult {
///         for _ in 0..n {
///             mine.send_bytes(b"ping")?;
///             mine.recv_bytes()?;
///         }
///         Ok(())
///     })
/// })?;
/// // In a criterion bench: `b.iter_custom(|iters| peer.time(iters))`.
/// let elapsed = peer.time(100);
/// assert!(elapsed > std::time::Duration::ZERO);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PinnedPeer {
    op: Box<dyn BenchOperation>,
    peers: BenchPeers,
    _pin: Pin,
}

impl std::fmt::Debug for PinnedPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedPeer").field("peers", &self.peers).finish_non_exhaustive()
    }
}

impl PinnedPeer {
    /// Pins this thread for `placement` and runs `setup`, which starts the peers and returns
    /// the operation.
    ///
    /// # Errors
    /// As [`Bench::measure_at`].
    ///
    /// # Examples
    ///
    /// See [`PinnedPeer`].
    pub fn start<S, O>(placement: Placement, setup: S) -> Result<PinnedPeer, BenchError>
    where
        S: FnOnce(&mut BenchPeers) -> BenchResult<O>,
        O: BenchOperation + 'static,
    {
        let original = CpuSet::current().map_err(BenchError::Os)?;
        let cpus = original.cpus();
        let pin = Pin::to(placement, &cpus, original)?;
        let mut peers = BenchPeers { placement, cpus, children: Vec::new() };
        let op = setup(&mut peers).map_err(from_setup)?;
        Ok(PinnedPeer { op: Box::new(op), peers, _pin: pin })
    }

    /// Runs `iters` operations and returns how long they took.
    ///
    /// # Errors
    /// [`BenchError::Operation`] if the operation failed; [`BenchError::PeerDied`] if a peer
    /// has ended.
    ///
    /// # Examples
    ///
    /// See [`PinnedPeer`].
    pub fn try_time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        let t = Instant::now();
        self.op.run(iters).map_err(BenchError::Operation)?;
        let d = t.elapsed();
        self.peers.check(Duration::ZERO)?;
        Ok(d)
    }

    /// [`try_time`](Self::try_time) for `iter_custom`, which wants a `Duration`.
    ///
    /// # Panics
    /// If the operation failed or a peer ended (a benchmark cannot go on without it).
    ///
    /// # Examples
    ///
    /// See [`PinnedPeer`].
    pub fn time(&mut self, iters: u64) -> Duration {
        self.try_time(iters).unwrap_or_else(|e| panic!("PinnedPeer: {e}"))
    }
}
