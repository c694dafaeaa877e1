//! `multiproc-peers`: multiproc against its peers, across two real (forked) processes.
//!
//! Every row builds a [`Driver`] that forks its child (pinned per placement) and then performs
//! `n` operations per `run(n)` call. Sampling is the library's (`multiproc::bench_sample`, what
//! `multiproc bench` uses): a warm-up that grows the batch until 300 ms are spent, then batches
//! of ≥ 100 × the timer's cost (≥ 5 ms for streams, whose batches end with an acknowledgement
//! round trip) for 2 s; each batch gives one per-operation sample; median and p99 are taken over
//! the samples. Unlike
//! `multiproc bench`, every (row, placement) is measured `--repeat` times (rounds interleaved,
//! so a noisy minute hits every row alike) and the table shows the median of the medians and
//! the spread (min–max) of the medians.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- [--quick] [--repeat N]
//!     [--filter SUBSTRING] [--json PATH] [--exec SECS]
//! ```
//!
//! After the table, the exec rates of `exec.rs` (AFL++ beside the pool's per-input form),
//! `SECS` seconds each (default 8; 0 skips them; a `--filter` that matches no `exec` skips
//! them too).

mod exec;
#[cfg(feature = "iceoryx2")]
mod iox;
mod ipc;
mod mp;
mod os;
mod rawsync;
mod sys;

use multiproc::{bench_fmt_num as fmt_num, bench_sample, bench_timer_cost_ns, BenchBudget};
use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};
use sys::CpuMask;

/// Where the two processes run. The parent is always pinned to CPU 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both processes on CPU 0.
    Same,
    /// Child on CPU 1.
    Cross,
}

impl Placement {
    fn as_str(self) -> &'static str {
        match self {
            Placement::Same => "same",
            Placement::Cross => "cross",
        }
    }

    /// The mask the forked child applies to itself.
    pub fn child_mask(self) -> CpuMask {
        match self {
            Placement::Same => CpuMask::single(0),
            Placement::Cross => CpuMask::single(1),
        }
    }
}

pub const SAME: Placement = Placement::Same;
pub const CROSS: Placement = Placement::Cross;
pub const BOTH: &[Placement] = &[SAME, CROSS];

/// What one operation is, and so how a sample is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A round trip; reported in ns (lower is better), with p99.
    RoundTrip,
    /// One message of this many bytes streamed one way; reported in msg/s and GB/s.
    Stream(u64),
}

/// Runs a row's operations; dropping it stops and reaps its child.
pub trait Driver {
    /// Performs `n` operations and returns when they are complete.
    fn run(&mut self, n: u64) -> io::Result<()>;
}

pub type Build = fn(Placement) -> io::Result<Box<dyn Driver>>;

/// One row of the table.
pub struct Row {
    pub name: &'static str,
    pub kind: Kind,
    pub placements: &'static [Placement],
    /// The row (at the same placement) that the ratio column divides by.
    pub baseline: Option<&'static str>,
    pub build: Build,
}

pub fn row(
    name: &'static str,
    kind: Kind,
    placements: &'static [Placement],
    baseline: Option<&'static str>,
    build: Build,
) -> Row {
    Row { name, kind, placements, baseline, build }
}

/// Streams end each batch with a round trip: batches last at least this long (as in
/// `multiproc bench`).
const STREAM_BATCH: Duration = Duration::from_millis(5);

fn all_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    rows.extend(os::rows());
    rows.extend(mp::rows());
    rows.extend(ipc::rows());
    #[cfg(feature = "iceoryx2")]
    rows.extend(iox::rows());
    rows.extend(rawsync::rows());
    // Table order: round trips first, then streams by size.
    rows.sort_by_key(|r| match r.kind {
        Kind::RoundTrip => 0,
        Kind::Stream(b) => b,
    });
    rows
}

/// One (row, placement) measurement: median and p99 of per-operation ns.
struct Run {
    median_ns: f64,
    p99_ns: f64,
    samples: usize,
    batch: u64,
}

fn measure(row: &Row, p: Placement, budget: &BenchBudget, timer_ns: f64, original: &CpuMask) -> io::Result<Run> {
    CpuMask::single(0).apply()?;
    sys::alarm(Some(budget.warmup + budget.measure + Duration::from_secs(60)));
    let min_batch = match row.kind {
        Kind::RoundTrip => Duration::ZERO,
        Kind::Stream(_) => STREAM_BATCH,
    };
    // The library's sampler (`multiproc::bench_sample`), as `multiproc bench` uses it.
    let result = (|| {
        let mut driver = (row.build)(p)?;
        let mut op = |n: u64| -> multiproc::BenchResult { driver.run(n).map_err(Into::into) };
        bench_sample(&mut op, budget, min_batch, timer_ns, &mut || Ok(())).map_err(io::Error::other)
    })();
    sys::alarm(None);
    original.apply()?;
    let s = result?;
    let at = |q: f64| s.percentile(q).unwrap_or(f64::NAN);
    Ok(Run { median_ns: at(0.5), p99_ns: at(0.99), samples: s.ns_per_op().len(), batch: s.batch() })
}

/// The repeats of one (row, placement), summarized.
struct Summary {
    name: &'static str,
    kind: Kind,
    placement: Placement,
    baseline: Option<&'static str>,
    /// Per-repeat medians and p99s (ns per operation).
    medians: Vec<f64>,
    p99s: Vec<f64>,
    samples: usize,
    batch: u64,
    failed: Option<String>,
}

fn median_of(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

impl Summary {
    fn ns(&self) -> f64 {
        median_of(&self.medians)
    }

    /// The figure reported: ns for round trips, msg/s for streams.
    fn value(&self) -> f64 {
        match self.kind {
            Kind::RoundTrip => self.ns(),
            Kind::Stream(_) => 1e9 / self.ns(),
        }
    }

    fn spread(&self) -> (f64, f64) {
        let conv = |ns: f64| match self.kind {
            Kind::RoundTrip => ns,
            Kind::Stream(_) => 1e9 / ns,
        };
        let lo = self.medians.iter().copied().map(conv).fold(f64::INFINITY, f64::min);
        let hi = self.medians.iter().copied().map(conv).fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    fn gb_per_s(&self) -> Option<f64> {
        match self.kind {
            Kind::RoundTrip => None,
            Kind::Stream(b) => Some(b as f64 / self.ns()),
        }
    }
}

/// `value / baseline value` at the same placement (for streams: throughput ratio, > 1 is
/// faster than the baseline; for round trips: latency ratio, < 1 is faster).
fn ratio(s: &Summary, all: &[Summary]) -> Option<f64> {
    let b = s.baseline?;
    let base = all.iter().find(|x| x.name == b && x.placement == s.placement && !x.medians.is_empty())?;
    (!s.medians.is_empty()).then(|| s.value() / base.value())
}

fn table(all: &[Summary]) -> String {
    let mut out = String::new();
    let w = all.iter().map(|s| s.name.len()).max().unwrap_or(4);
    let bw = all.iter().filter_map(|s| s.baseline.map(str::len)).max().unwrap_or(8).max(8);
    let header = ["median", "p99", "unit", "min–max of medians", "GB/s", "baseline", "ratio"];
    let _ = writeln!(
        out,
        "{:<w$}  {:<5}  {:>9}  {:>9}  {:<5}  {:>19}  {:>6}  {:<bw$}  {:>6}",
        "name", "place", header[0], header[1], header[2], header[3], header[4], header[5], header[6]
    );
    for s in all {
        if let Some(e) = &s.failed {
            let _ = writeln!(out, "{:<w$}  {:<5}  FAILED: {e}", s.name, s.placement.as_str());
            continue;
        }
        let unit = match s.kind {
            Kind::RoundTrip => "ns",
            Kind::Stream(_) => "msg/s",
        };
        let p99 = match s.kind {
            Kind::RoundTrip => fmt_num(median_of(&s.p99s)),
            Kind::Stream(_) => "-".into(),
        };
        let (lo, hi) = s.spread();
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:>9}  {:>9}  {:<5}  {:>19}  {:>6}  {:<bw$}  {:>6}",
            s.name,
            s.placement.as_str(),
            fmt_num(s.value()),
            p99,
            unit,
            format!("{}–{}", fmt_num(lo), fmt_num(hi)),
            s.gb_per_s().map_or("-".into(), |g| format!("{g:.2}")),
            s.baseline.unwrap_or("-"),
            ratio(s, all).map_or("-".into(), |r| format!("{r:.2}×")),
        );
    }
    out
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn json(all: &[Summary], header: &str) -> String {
    let mut out = format!("{{\"run\": \"{}\", \"results\": [", header.replace('"', "'"));
    for (i, s) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (kind, bytes) = match s.kind {
            Kind::RoundTrip => ("round_trip", 64),
            Kind::Stream(b) => ("stream", b),
        };
        let list = |v: &[f64]| v.iter().map(|x| json_num(*x)).collect::<Vec<_>>().join(", ");
        let _ = write!(
            out,
            "\n  {{\"name\": \"{}\", \"kind\": \"{kind}\", \"bytes\": {bytes}, \"placement\": \"{}\", \
             \"median_ns_per_op\": {}, \"p99_ns_per_op\": {}, \"repeat_medians_ns\": [{}], \
             \"repeat_p99s_ns\": [{}], \"msg_per_s\": {}, \"gb_per_s\": {}, \"baseline\": {}, \"ratio\": {}, \
             \"samples\": {}, \"batch\": {}, \"failed\": {}}}",
            s.name,
            s.placement.as_str(),
            json_num(s.ns()),
            json_num(median_of(&s.p99s)),
            list(&s.medians),
            list(&s.p99s),
            json_num(1e9 / s.ns()),
            s.gb_per_s().map_or("null".into(), json_num),
            s.baseline.map_or("null".into(), |b| format!("\"{b}\"")),
            ratio(s, all).map_or("null".into(), json_num),
            s.samples,
            s.batch,
            s.failed.as_ref().map_or("null".into(), |e| format!("\"{}\"", e.replace('"', "'"))),
        );
    }
    out.push_str("\n]}\n");
    out
}

struct Options {
    quick: bool,
    repeat: usize,
    filter: Option<String>,
    json: Option<std::path::PathBuf>,
    exec_secs: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options { quick: false, repeat: 3, filter: None, json: None, exec_secs: 8 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--repeat" => {
                o.repeat = args.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).ok_or("--repeat N (N ≥ 1)")?
            }
            "--filter" => o.filter = Some(args.next().ok_or("--filter SUBSTRING")?),
            "--json" => o.json = Some(args.next().ok_or("--json PATH")?.into()),
            "--exec" => o.exec_secs = args.next().and_then(|v| v.parse().ok()).ok_or("--exec SECS")?,
            "-h" | "--help" => {
                return Err(
                    "usage: multiproc-peers [--quick] [--repeat N] [--filter SUBSTRING] [--json PATH] [--exec SECS]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(o)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rows: Vec<Row> = all_rows()
        .into_iter()
        .filter(|r| {
            opts.filter.as_deref().is_none_or(|f| r.name.contains(f) || r.baseline.is_some_and(|b| b.contains(f)))
        })
        .collect();
    // A filtered row keeps its baseline.
    let wanted: Vec<&str> = rows.iter().flat_map(|r| [Some(r.name), r.baseline]).flatten().collect();
    let rows: Vec<Row> = all_rows().into_iter().filter(|r| wanted.contains(&r.name)).collect();
    let original = CpuMask::current().expect("sched_getaffinity");
    if !(original.has(0) && original.has(1)) {
        eprintln!("needs CPUs 0 and 1 in the affinity mask (have {} CPU(s))", original.count());
        std::process::exit(2);
    }
    let budget = if opts.quick { BenchBudget::quick() } else { BenchBudget::full() };
    let timer_ns = bench_timer_cost_ns();
    let header = format!(
        "multiproc-peers ({}, {} repeat(s)): {} usable CPU(s); timer cost {:.0} ns; iceoryx2 {}",
        if opts.quick { "quick" } else { "full" },
        opts.repeat,
        original.count(),
        timer_ns,
        if cfg!(feature = "iceoryx2") { "on" } else { "off (feature disabled)" }
    );
    println!("{header}");
    let started = Instant::now();
    let mut all: Vec<Summary> = rows
        .iter()
        .flat_map(|r| {
            r.placements.iter().map(|&p| Summary {
                name: r.name,
                kind: r.kind,
                placement: p,
                baseline: r.baseline,
                medians: Vec::new(),
                p99s: Vec::new(),
                samples: 0,
                batch: 0,
                failed: None,
            })
        })
        .collect();
    for round in 0..opts.repeat {
        for s in all.iter_mut().filter(|s| s.failed.is_none()) {
            let row = rows.iter().find(|r| r.name == s.name).expect("row");
            eprint!("  [{}/{}] {} [{}] …", round + 1, opts.repeat, s.name, s.placement.as_str());
            match measure(row, s.placement, &budget, timer_ns, &original) {
                Ok(r) => {
                    eprintln!(
                        " {} ns/op (p99 {}, {} samples of {})",
                        fmt_num(r.median_ns),
                        fmt_num(r.p99_ns),
                        r.samples,
                        r.batch
                    );
                    s.medians.push(r.median_ns);
                    s.p99s.push(r.p99_ns);
                    s.samples = r.samples;
                    s.batch = r.batch;
                }
                Err(e) => {
                    eprintln!(" FAILED: {e}");
                    s.failed = Some(e.to_string());
                }
            }
        }
    }
    print!("{}", table(&all));
    println!("({} rows × {} repeat(s) in {:.0} s)", all.len(), opts.repeat, started.elapsed().as_secs_f64());
    let run_exec =
        opts.exec_secs > 0 && opts.filter.as_deref().is_none_or(|f| "exec afl++".contains(f) || f.contains("exec"));
    let mut execs = String::new();
    if run_exec {
        eprintln!("exec rates, {} s each:", opts.exec_secs);
        let (rates, skipped) = exec::rates(opts.exec_secs);
        println!("\nexec rates (one afl-fuzz instance on one CPU; the pool on two workers):");
        let rate = |name: &str| rates.iter().find(|r| r.name == name).map(|r| r.execs_per_sec);
        let (persistent, forkserver) = (rate("afl++.persistent"), rate("afl++.forkserver"));
        for r in &rates {
            let vs = match (r.name, persistent, forkserver) {
                ("multiproc.exec.persistent", Some(p), _) => format!("  {:.2}× afl++.persistent", r.execs_per_sec / p),
                ("multiproc.exec.fork", _, Some(f)) => format!("  {:.2}× afl++.forkserver", r.execs_per_sec / f),
                _ => String::new(),
            };
            println!("{:<27} {:>10.0} execs/s  {}{vs}", r.name, r.execs_per_sec, r.note);
            let _ = write!(
                execs,
                "{}{{\"name\": \"{}\", \"execs_per_sec\": {}}}",
                if execs.is_empty() { "" } else { ", " },
                r.name,
                json_num(r.execs_per_sec)
            );
        }
        if let Some(why) = skipped {
            println!("(AFL++ skipped: {why})");
        }
    }
    if let Some(path) = &opts.json {
        let mut j = json(&all, &header);
        if !execs.is_empty() {
            // The exec rates as one more field of the top-level object.
            j.truncate(j.trim_end().len() - 1);
            let _ = writeln!(j, ", \"exec\": [{execs}]}}");
        }
        std::fs::write(path, j).expect("write JSON");
        println!("wrote {}", path.display());
    }
    if all.iter().any(|s| s.failed.is_some()) {
        std::process::exit(1);
    }
}

/// `io::Error` from any displayable error.
pub fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}
