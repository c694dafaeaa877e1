//! The cross-process measurement harness (feature `bench`): what `multiproc bench` is built on,
//! for measuring your own operation across processes.
//!
//! Criterion measures one process. A cross-process operation (a round trip through shared
//! memory, a lock handed between processes, a message through a pipe) needs a peer process,
//! pinned where you say, warmed up with you, and reaped when the row ends; and it reads best
//! next to the physical floor measured in the same run. [`Bench`] does that:
//!
//! * **Placements** ([`Placement`]): `Same` (you and every peer on your first CPU), `Cross`
//!   (you on your first CPU, peer *k* on your (*k* + 2)-th), `Free` (nobody pinned). A placement
//!   this machine lacks the CPUs for is skipped with a note, not failed.
//! * **Peers** ([`BenchPeers::spawn`]): forked per placement, pinned before your code runs,
//!   killed and reaped when the row ends, fails or panics. After each batch the harness checks
//!   they live ([`BenchError::PeerDied`]); a batch that takes longer than
//!   [`Bench::peer_limit`] has its peers killed ([`BenchError::PeerSilent`]), so an operation
//!   that fails when its peer dies (the crate's pipes, queues and locks do) ends the row
//!   instead of hanging it.
//! * **Sampling** ([`bench_sample`]): a warm-up grows the batch until [`BenchBudget::warmup`]
//!   is spent; a batch is then at least 100 × the clock's cost; each batch is one sample.
//! * **Results** ([`BenchMeasurement`], [`BenchReport`]): median, p90/p99/p99.9, quartiles,
//!   min/max, samples, batch, and the ratio to a baseline row measured in the same run; the
//!   table, JSON, CSV, and (feature `plot`) latency histograms and CDFs as SVG.
//! * **Floors** ([`Bench::floors`]): the spin, futex and pipe round trips, so that a row reads
//!   as "× the floor" on whatever machine it runs ([`FLOOR_SPIN`], [`FLOOR_FUTEX`],
//!   [`FLOOR_PIPE`]).
//! * **Criterion** ([`PinnedPeer`]): a peer kept running between calls, and
//!   [`PinnedPeer::time`] for `Bencher::iter_custom`.
//!
//! # Examples
//!
//! A round trip through a [`Pipe`](crate::Pipe), next to the futex floor:
//!
//! ```
//! use multiproc::{Bench, BenchBudget, BenchRow, BenchUnit, Pipe, Placement, FLOOR_FUTEX};
//! use std::time::Duration;
//!
//! let mut bench = Bench::new()?.budget(BenchBudget { warmup: Duration::from_millis(20), measure: Duration::from_millis(100), max_samples: 1000 });
//! bench.floors_only(&[FLOOR_FUTEX])?;
//! let row = BenchRow::new("my.pipe.rt").unit(BenchUnit::Ns).placements(&[Placement::Same, Placement::Cross]).baseline(FLOOR_FUTEX);
//! bench.measure(&row, |peers| {
//!     let (mut mine, mut theirs) = Pipe::duplex()?;
//!     peers.spawn(move || -> Result<(), multiproc::RecvError> {
//!         loop {
//!             let m = theirs.recv_bytes()?; // ends when the parent's side is dropped
//!             let _ = theirs.send_bytes(&m);
//!         }
//!     })?;
//!     Ok(move |n: u64| -> multiproc::BenchResult {
//!         for _ in 0..n {
//!             mine.send_bytes(&[7u8; 64])?;
//!             mine.recv_bytes()?;
//!         }
//!         Ok(())
//!     })
//! })?;
//! let report = bench.report();
//! println!("{}", report.table());
//! assert!(report.measurements.iter().any(|m| m.name == "my.pipe.rt"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod floors;
mod harness;
#[cfg(feature = "plot")]
mod plot;
mod report;
mod stats;

pub use floors::{FLOOR_FUTEX, FLOOR_PIPE, FLOOR_SPIN};
pub use harness::{Bench, BenchPeers, PinnedPeer};
pub use report::{bench_fmt_num, BenchMeasurement, BenchReport};
pub use stats::{bench_sample, bench_timer_cost_ns, BenchBudget, BenchSamples};

use std::fmt;
use std::time::Duration;

/// What an operation or a row's set-up returns: any error, boxed.
pub type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The parent's side of a measured operation: `run(n)` performs `n` operations (round trips,
/// messages, lock and unlock pairs) and returns when they are complete. Any
/// `FnMut(u64) -> BenchResult` is one.
///
/// # Examples
///
/// ```
/// use multiproc::BenchOperation;
/// let mut count = 0u64;
/// let mut op = |n: u64| -> multiproc::BenchResult {
///     count += n;
///     Ok(())
/// };
/// op.run(3)?;
/// assert_eq!(count, 3);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub trait BenchOperation {
    /// Performs `n` operations.
    ///
    /// # Errors
    /// Whatever the operation meets (a closed peer, say); it ends the row.
    fn run(&mut self, n: u64) -> BenchResult;
}

impl<F: FnMut(u64) -> BenchResult> BenchOperation for F {
    fn run(&mut self, n: u64) -> BenchResult {
        self(n)
    }
}

/// Where the measuring processes run.
///
/// # Examples
///
/// ```
/// assert_eq!(multiproc::Placement::Cross.as_str(), "cross");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// This thread and every peer on this thread's first allowed CPU.
    Same,
    /// This thread on its first allowed CPU, peer *k* on the (*k* + 2)-th.
    Cross,
    /// Nobody pinned: the scheduler decides.
    Free,
}

impl Placement {
    /// `same`, `cross` or `free`, as the table shows it.
    ///
    /// # Examples
    ///
    /// See [`Placement`].
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Same => "same",
            Placement::Cross => "cross",
            Placement::Free => "free",
        }
    }

    /// The placement named `s` (`same`, `cross`, `free`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Placement::parse("free"), Some(multiproc::Placement::Free));
    /// assert_eq!(multiproc::Placement::parse("far"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Placement> {
        [Placement::Same, Placement::Cross, Placement::Free].into_iter().find(|p| p.as_str() == s)
    }
}

/// The unit a row reports in. Samples are nanoseconds per operation; a rate inverts them.
///
/// # Examples
///
/// ```
/// use multiproc::BenchUnit;
/// assert_eq!(BenchUnit::MsgPerSec.as_str(), "msg/s");
/// assert!(BenchUnit::Us.is_time() && !BenchUnit::GbPerSec.is_time());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BenchUnit {
    /// Nanoseconds per operation.
    Ns,
    /// Microseconds per operation.
    Us,
    /// Seconds per operation.
    S,
    /// Operations (messages) per second.
    MsgPerSec,
    /// Payload gigabytes per second ([`BenchRow::bytes_per_op`] per operation).
    GbPerSec,
    /// Tasks per second.
    TasksPerSec,
}

impl BenchUnit {
    /// The unit as the table shows it.
    ///
    /// # Examples
    ///
    /// See [`BenchUnit`].
    pub fn as_str(self) -> &'static str {
        match self {
            BenchUnit::Ns => "ns",
            BenchUnit::Us => "us",
            BenchUnit::S => "s",
            BenchUnit::MsgPerSec => "msg/s",
            BenchUnit::GbPerSec => "GB/s",
            BenchUnit::TasksPerSec => "tasks/s",
        }
    }

    /// The unit named `s`, as [`as_str`](Self::as_str) writes it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::BenchUnit::parse("tasks/s"), Some(multiproc::BenchUnit::TasksPerSec));
    /// ```
    pub fn parse(s: &str) -> Option<BenchUnit> {
        [BenchUnit::Ns, BenchUnit::Us, BenchUnit::S, BenchUnit::MsgPerSec, BenchUnit::GbPerSec, BenchUnit::TasksPerSec]
            .into_iter()
            .find(|u| u.as_str() == s)
    }

    /// Whether the unit is a time (lower is better).
    ///
    /// # Examples
    ///
    /// See [`BenchUnit`].
    pub fn is_time(self) -> bool {
        matches!(self, BenchUnit::Ns | BenchUnit::Us | BenchUnit::S)
    }

    /// Nanoseconds in one of this unit, for a time unit.
    fn ns_factor(self) -> Option<f64> {
        match self {
            BenchUnit::Ns => Some(1.0),
            BenchUnit::Us => Some(1e3),
            BenchUnit::S => Some(1e9),
            _ => None,
        }
    }

    /// A sample (nanoseconds per operation) in this unit; `bytes` is one operation's payload.
    fn convert_ns_per_op(self, ns: f64, bytes: u64) -> f64 {
        match self {
            BenchUnit::Ns => ns,
            BenchUnit::Us => ns / 1e3,
            BenchUnit::S => ns / 1e9,
            BenchUnit::MsgPerSec | BenchUnit::TasksPerSec => 1e9 / ns,
            BenchUnit::GbPerSec => bytes as f64 / ns,
        }
    }
}

/// One row: a named measurement at one or more placements.
///
/// # Examples
///
/// ```
/// use multiproc::{BenchRow, BenchUnit, Placement};
/// let row = BenchRow::new("my.stream.64KiB").unit(BenchUnit::GbPerSec).bytes_per_op(65536)
///     .placements(&[Placement::Cross]).min_batch(std::time::Duration::from_millis(5));
/// assert_eq!(row.name(), "my.stream.64KiB");
/// ```
#[derive(Debug, Clone)]
pub struct BenchRow {
    name: String,
    unit: BenchUnit,
    placements: Vec<Placement>,
    baseline: Option<String>,
    bytes_per_op: u64,
    min_batch: Duration,
}

impl BenchRow {
    /// A row in ns per operation at `same`, `cross` and `free`, with no baseline.
    ///
    /// # Examples
    ///
    /// See [`BenchRow`].
    pub fn new(name: impl Into<String>) -> BenchRow {
        BenchRow {
            name: name.into(),
            unit: BenchUnit::Ns,
            placements: vec![Placement::Same, Placement::Cross, Placement::Free],
            baseline: None,
            bytes_per_op: 0,
            min_batch: Duration::ZERO,
        }
    }

    /// The row's name.
    ///
    /// # Examples
    ///
    /// See [`BenchRow`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The unit it reports in.
    ///
    /// # Examples
    ///
    /// See [`BenchRow`].
    pub fn unit(mut self, unit: BenchUnit) -> BenchRow {
        self.unit = unit;
        self
    }

    /// Where it is measured, in this order.
    ///
    /// # Examples
    ///
    /// See [`BenchRow`].
    pub fn placements(mut self, placements: &[Placement]) -> BenchRow {
        self.placements = placements.to_vec();
        self
    }

    /// The row it is compared with (measured at the same placement in the same run), such as
    /// [`FLOOR_FUTEX`].
    ///
    /// # Examples
    ///
    /// See [`Bench`].
    pub fn baseline(mut self, row: &str) -> BenchRow {
        self.baseline = Some(row.to_string());
        self
    }

    /// Payload bytes per operation (for [`BenchUnit::GbPerSec`]).
    ///
    /// # Examples
    ///
    /// See [`BenchRow`].
    pub fn bytes_per_op(mut self, bytes: u64) -> BenchRow {
        self.bytes_per_op = bytes;
        self
    }

    /// The least time one sample takes (a stream whose batches end with an acknowledgement
    /// round trip needs batches long enough to amortize it).
    ///
    /// # Examples
    ///
    /// See [`BenchRow`].
    pub fn min_batch(mut self, d: Duration) -> BenchRow {
        self.min_batch = d;
        self
    }
}

/// Why a row (at one placement) has no measurement.
///
/// # Examples
///
/// ```
/// let e = multiproc::BenchError::PeerSilent { limit: std::time::Duration::from_secs(10) };
/// assert!(e.to_string().contains("10s"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BenchError {
    /// The placement needs more CPUs than this thread may use (a note, not a failure).
    Placement(String),
    /// A peer could not be started.
    Start(crate::StartError),
    /// The set-up or the operation failed.
    Operation(Box<dyn std::error::Error + Send + Sync>),
    /// A peer ended during the measurement.
    PeerDied {
        /// Its pid.
        pid: u32,
        /// How it ended.
        status: crate::ExitStatus,
    },
    /// A batch ran past [`Bench::peer_limit`]: the peers were killed.
    PeerSilent {
        /// The limit.
        limit: Duration,
    },
    /// Pinning, or another system call of the harness, failed.
    Os(std::io::Error),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Placement(why) => write!(f, "placement not possible here: {why}"),
            BenchError::Start(e) => write!(f, "could not start a peer: {e}"),
            BenchError::Operation(e) => write!(f, "the operation failed: {e}"),
            BenchError::PeerDied { pid, status } => write!(f, "peer {pid} ended during the measurement ({status})"),
            BenchError::PeerSilent { limit } => {
                write!(f, "a batch took longer than {limit:?}: the peers were killed (a silent peer?)")
            }
            BenchError::Os(e) => write!(f, "a system call of the harness failed: {e}"),
        }
    }
}

impl std::error::Error for BenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BenchError::Start(e) => Some(e),
            BenchError::Operation(e) => Some(&**e),
            BenchError::Os(e) => Some(e),
            _ => None,
        }
    }
}
