//! The cross-process measurement framework: rows, placements, sampling, baselines and output.
//!
//! A family of rows is one file (`floor.rs`, later `sync.rs`, `queue.rs`, `pool.rs`,
//! `process.rs`) exporting `fn rows() -> Vec<Row>`; [`all_rows`] concatenates them. A row says
//! how to build a [`Driver`] for a placement; the driver runs `n` operations per call and the
//! framework times batches of them (see `docs/BENCHMARKS.md`).

mod batch;
mod broadcast;
mod compare;
mod exec;
mod floor;
mod integrity;
mod loan;
mod manager;
mod named;
mod pool;
mod process;
mod queue;
mod sync;

use crate::raw::{self, CpuMask};
use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

/// Where the measuring processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Every process pinned to CPU 0.
    Same,
    /// The parent on CPU 0, the child on CPU 1.
    Cross,
    /// Nobody pinned (the scheduler decides).
    Free,
}

impl Placement {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Placement::Same => "same",
            Placement::Cross => "cross",
            Placement::Free => "free",
        }
    }

    /// The mask a child forked for this placement applies to itself.
    pub(crate) fn child_mask(self, ctx: &Ctx) -> Option<CpuMask> {
        match self {
            Placement::Same => Some(CpuMask::single(0)),
            Placement::Cross => Some(CpuMask::single(1)),
            Placement::Free => Some(ctx.original_mask),
        }
    }
}

/// The unit a row reports in.
#[allow(dead_code)] // `s` and `tasks/s` are for the pool and process rows
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Ns,
    Us,
    S,
    MsgPerSec,
    GbPerSec,
    TasksPerSec,
}

impl Unit {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::S => "s",
            Unit::MsgPerSec => "msg/s",
            Unit::GbPerSec => "GB/s",
            Unit::TasksPerSec => "tasks/s",
        }
    }

    /// Converts a sample (nanoseconds per operation) into this unit; `bytes` is the payload of
    /// one operation (for GB/s).
    fn convert_ns_per_op(self, ns: f64, bytes: u64) -> f64 {
        match self {
            Unit::Ns => ns,
            Unit::Us => ns / 1e3,
            Unit::S => ns / 1e9,
            Unit::MsgPerSec | Unit::TasksPerSec => 1e9 / ns,
            Unit::GbPerSec => bytes as f64 / ns,
        }
    }

    /// Whether the unit is a time (lower is better; p99 is meaningful).
    fn is_time(self) -> bool {
        matches!(self, Unit::Ns | Unit::Us | Unit::S)
    }

    /// Factor to nanoseconds for time units (so that ratios across ns/us/s are right).
    fn ns_factor(self) -> f64 {
        match self {
            Unit::Ns => 1.0,
            Unit::Us => 1e3,
            Unit::S => 1e9,
            _ => 1.0,
        }
    }
}

/// Runs a row's operations; dropping it stops its processes (killing and reaping them if needed).
pub(crate) trait Driver {
    /// Performs `n` operations (round trips, messages, lock+unlock pairs, …) and returns when
    /// they are complete.
    fn run(&mut self, n: u64) -> io::Result<()>;
}

/// One row of the table: a named measurement at one or more placements.
pub(crate) struct Row {
    pub(crate) name: &'static str,
    pub(crate) unit: Unit,
    pub(crate) placements: &'static [Placement],
    /// The row (same placement) this one is compared with.
    pub(crate) baseline: Option<&'static str>,
    /// Payload bytes per operation (GB/s rows).
    pub(crate) bytes_per_op: u64,
    /// Wall time one sample should take at least: larger for streams, whose batches end with a
    /// round trip that must be amortized.
    pub(crate) min_batch: Duration,
    pub(crate) build: fn(&Ctx, Placement) -> io::Result<Box<dyn Driver>>,
}

impl Row {
    /// A row with the common defaults: no payload bytes, no minimum batch time.
    pub(crate) fn new(
        name: &'static str,
        unit: Unit,
        placements: &'static [Placement],
        baseline: Option<&'static str>,
        build: fn(&Ctx, Placement) -> io::Result<Box<dyn Driver>>,
    ) -> Row {
        Row { name, unit, placements, baseline, bytes_per_op: 0, min_batch: Duration::ZERO, build }
    }
}

/// What rows may read about the run.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// `--quick`: rows with a fixed workload (pool maps) shrink it.
    #[allow(dead_code)] // read by the pool rows
    pub(crate) quick: bool,
    pub(crate) original_mask: CpuMask,
    /// Median cost of a pair of `Instant::now()` calls.
    pub(crate) timer_ns: f64,
}

/// One measured line.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    pub(crate) name: String,
    pub(crate) placement: Placement,
    pub(crate) unit: Unit,
    pub(crate) median: f64,
    pub(crate) p99: Option<f64>,
    /// The quartiles of the samples, in the row's unit (the spread `--compare` judges by).
    pub(crate) p25: Option<f64>,
    pub(crate) p75: Option<f64>,
    pub(crate) samples: usize,
    pub(crate) batch: u64,
    pub(crate) baseline: Option<String>,
    pub(crate) ratio: Option<f64>,
}

/// Options of `multiproc bench`.
#[derive(Debug, Default)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) json: Option<std::path::PathBuf>,
    /// `--compare OLD.json`: an earlier run to put each row next to.
    pub(crate) compare: Option<std::path::PathBuf>,
    pub(crate) filter: Option<String>,
}

/// Every row, in table order.
pub(crate) fn all_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    rows.extend(floor::rows());
    rows.extend(process::rows());
    rows.extend(sync::rows());
    rows.extend(queue::rows());
    rows.extend(batch::rows());
    rows.extend(batch::queue_rows());
    rows.extend(loan::rows());
    rows.extend(integrity::rows());
    rows.extend(named::rows());
    rows.extend(broadcast::rows());
    rows.extend(pool::rows());
    rows.extend(exec::rows());
    rows.extend(manager::rows());
    rows
}

/// The sorted per-operation samples (ns) of one placement of one row, and the batch size used.
struct Samples {
    ns: Vec<f64>,
    batch: u64,
}

/// Per-placement budgets.
struct Budget {
    warmup: Duration,
    measure: Duration,
    max_samples: usize,
}

impl Budget {
    fn new(quick: bool) -> Budget {
        if quick {
            Budget { warmup: Duration::from_millis(60), measure: Duration::from_millis(400), max_samples: 20_000 }
        } else {
            Budget { warmup: Duration::from_millis(300), measure: Duration::from_secs(2), max_samples: 200_000 }
        }
    }
}

/// The median cost of `Instant::now()` twice in a row, in ns.
pub(crate) fn timer_cost_ns() -> f64 {
    let mut v: Vec<f64> = (0..20_001)
        .map(|_| {
            let a = Instant::now();
            let b = Instant::now();
            (b - a).as_nanos() as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Warm-up, batch calibration and sampling of one driver.
fn sample(driver: &mut dyn Driver, budget: &Budget, min_batch: Duration, timer_ns: f64) -> io::Result<Samples> {
    // Warm-up: grow the batch until the warm-up time is spent; the last batch gives the cost of
    // one operation.
    let start = Instant::now();
    let mut n = 1u64;
    let mut per_op_ns;
    loop {
        let t = Instant::now();
        driver.run(n)?;
        per_op_ns = (t.elapsed().as_nanos() as f64 / n as f64).max(0.1);
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
    while ns.len() < budget.max_samples && (start.elapsed() < budget.measure || ns.len() < 5) {
        let t = Instant::now();
        driver.run(batch)?;
        ns.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    ns.sort_by(f64::total_cmp);
    Ok(Samples { ns, batch })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Whether a placement can run here; `Err` holds the note printed instead.
fn placement_possible(p: Placement, mask: &CpuMask) -> Result<(), String> {
    match p {
        Placement::Same if !mask.has(0) => Err("CPU 0 is not in our affinity mask".into()),
        Placement::Cross if !(mask.has(0) && mask.has(1)) => {
            Err(format!("needs CPUs 0 and 1; only {} usable CPU(s)", mask.count()))
        }
        _ => Ok(()),
    }
}

/// Selects the rows matching `filter`, plus (first) the baselines they need.
fn select(rows: Vec<Row>, filter: Option<&str>) -> Vec<Row> {
    let matches = |r: &Row| filter.is_none_or(|f| r.name.contains(f));
    let mut wanted: Vec<&'static str> = rows.iter().filter(|r| matches(r)).map(|r| r.name).collect();
    loop {
        let extra: Vec<&'static str> = rows
            .iter()
            .filter(|r| wanted.contains(&r.name))
            .filter_map(|r| r.baseline)
            .filter(|b| !wanted.contains(b))
            .collect();
        if extra.is_empty() {
            break;
        }
        wanted.extend(extra);
    }
    rows.into_iter().filter(|r| wanted.contains(&r.name)).collect()
}

/// `multiproc bench`: measures, prints the table, optionally writes JSON. Returns the process
/// exit code.
pub(crate) fn run(opts: &Options) -> io::Result<i32> {
    // Read the earlier run first: a bad file fails before minutes of measuring.
    let old = match &opts.compare {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| io::Error::new(e.kind(), format!("--compare {}: {e}", path.display())))?;
            Some(compare::parse(&text).map_err(|e| io::Error::other(format!("--compare {}: {e}", path.display())))?)
        }
        None => None,
    };
    let rows = select(all_rows(), opts.filter.as_deref());
    if rows.is_empty() {
        eprintln!("multiproc bench: no row matches {:?}", opts.filter.as_deref().unwrap_or(""));
        return Ok(2);
    }
    let original_mask = CpuMask::current()?;
    let timer_ns = timer_cost_ns();
    let ctx = Ctx { quick: opts.quick, original_mask, timer_ns };
    let budget = Budget::new(opts.quick);
    let started = Instant::now();
    println!(
        "multiproc bench ({}): {} usable CPU(s); timer cost (Instant::now pair, median) {:.0} ns; \
         batches ≥ 100 × timer",
        if opts.quick { "quick" } else { "full" },
        original_mask.count(),
        timer_ns
    );
    let mut results: Vec<Measurement> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut failed = false;
    for row in &rows {
        for &p in row.placements {
            if let Err(why) = placement_possible(p, &original_mask) {
                notes.push(format!("{} [{}] skipped: {}", row.name, p.as_str(), why));
                continue;
            }
            eprint!("  measuring {} [{}] …", row.name, p.as_str());
            match measure(&ctx, &budget, row, p) {
                Ok(m) => {
                    eprintln!(" {}", fmt_num(m.median));
                    results.push(m);
                }
                Err(e) => {
                    eprintln!(" failed");
                    notes.push(format!("{} [{}] FAILED: {}", row.name, p.as_str(), e));
                    failed = true;
                }
            }
        }
    }
    resolve_baselines(&mut results);
    print!("{}", table(&results));
    for n in &notes {
        println!("note: {n}");
    }
    println!("({} measurements in {:.1} s)", results.len(), started.elapsed().as_secs_f64());
    if let (Some(old), Some(path)) = (&old, &opts.compare) {
        println!("\ncompared with {}:", path.display());
        print!("{}", compare::table(&results, old));
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, json(&results))?;
        println!("wrote {}", path.display());
    }
    Ok(if failed { 1 } else { 0 })
}

/// Measures one row at one placement: pins the parent, builds the driver (which forks its
/// children), samples, then drops the driver (reaping the children) and restores the mask.
fn measure(ctx: &Ctx, budget: &Budget, row: &Row, p: Placement) -> io::Result<Measurement> {
    match p {
        Placement::Same | Placement::Cross => CpuMask::single(0).apply()?,
        Placement::Free => ctx.original_mask.apply()?,
    }
    // Last line of defence against a hang: the command dies (children with it) after this.
    raw::alarm(Some(budget.warmup + budget.measure + Duration::from_secs(60)));
    let result = (|| {
        let mut driver = (row.build)(ctx, p)?;
        sample(driver.as_mut(), budget, row.min_batch, ctx.timer_ns)
    })();
    raw::alarm(None);
    ctx.original_mask.apply()?;
    let s = result?;
    let conv = |ns: f64| row.unit.convert_ns_per_op(ns, row.bytes_per_op);
    let median = conv(percentile(&s.ns, 0.5));
    let p99 = row.unit.is_time().then(|| conv(percentile(&s.ns, 0.99)));
    // Quartiles in the row's unit, low to high (a rate inverts the order of times).
    let (q1, q3) = (conv(percentile(&s.ns, 0.25)), conv(percentile(&s.ns, 0.75)));
    Ok(Measurement {
        name: row.name.to_string(),
        placement: p,
        unit: row.unit,
        median,
        p99,
        p25: Some(q1.min(q3)),
        p75: Some(q1.max(q3)),
        samples: s.ns.len(),
        batch: s.batch,
        baseline: row.baseline.map(str::to_string),
        ratio: None,
    })
}

/// Fills `ratio = median / baseline median` for rows whose baseline was measured at the same
/// placement in this run (time units are converted; other units must match).
pub(crate) fn resolve_baselines(results: &mut [Measurement]) {
    let snapshot = results.to_vec();
    for m in results.iter_mut() {
        let Some(b) = &m.baseline else { continue };
        let base = snapshot.iter().find(|x| &x.name == b && x.placement == m.placement);
        m.ratio = base.and_then(|x| {
            let (mine, theirs) = if m.unit.is_time() && x.unit.is_time() {
                (m.median * m.unit.ns_factor(), x.median * x.unit.ns_factor())
            } else if m.unit == x.unit {
                (m.median, x.median)
            } else {
                return None;
            };
            (theirs > 0.0).then(|| mine / theirs)
        });
    }
}

/// A number with three significant digits (and no exponent for ordinary magnitudes).
pub(crate) fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The human table.
pub(crate) fn table(results: &[Measurement]) -> String {
    let mut out = String::new();
    let w = results.iter().map(|m| m.name.len()).max().unwrap_or(4).max(4);
    let bw = results.iter().filter_map(|m| m.baseline.as_ref().map(|b| b.len())).max().unwrap_or(8).max(8);
    let _ = writeln!(
        out,
        "{:<w$}  {:<5}  {:>9}  {:>9}  {:<7}  {:>7}  {:>8}  {:<bw$}  {:>6}",
        "name", "place", "median", "p99", "unit", "samples", "batch", "baseline", "ratio"
    );
    for m in results {
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:>9}  {:>9}  {:<7}  {:>7}  {:>8}  {:<bw$}  {:>6}",
            m.name,
            m.placement.as_str(),
            fmt_num(m.median),
            m.p99.map_or("-".into(), fmt_num),
            m.unit.as_str(),
            m.samples,
            m.batch,
            m.baseline.as_deref().unwrap_or("-"),
            m.ratio.map_or("-".into(), |r| format!("{r:.2}×")),
        );
    }
    out
}

/// Escapes a string for a JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number, or `null` for NaN/infinity (which JSON cannot carry).
pub(crate) fn json_num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

/// `{"results": [{"name", "placement", "unit", "median", "p99", "p25", "p75", "baseline",
/// "ratio"}, …]}` (`p25`/`p75`: the quartiles, in the row's unit, low to high).
pub(crate) fn json(results: &[Measurement]) -> String {
    let mut out = String::from("{\"results\": [");
    for (i, m) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "\n  {{\"name\": {}, \"placement\": {}, \"unit\": {}, \"median\": {}, \"p99\": {}, \"p25\": {}, \
             \"p75\": {}, \"baseline\": {}, \"ratio\": {}}}",
            json_str(&m.name),
            json_str(m.placement.as_str()),
            json_str(m.unit.as_str()),
            json_num(Some(m.median)),
            json_num(m.p99),
            json_num(m.p25),
            json_num(m.p75),
            m.baseline.as_deref().map_or("null".into(), json_str),
            json_num(m.ratio),
        );
    }
    out.push_str("\n]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, p: Placement, unit: Unit, median: f64, baseline: Option<&str>) -> Measurement {
        Measurement {
            name: name.into(),
            placement: p,
            unit,
            median,
            p99: None,
            p25: None,
            p75: None,
            samples: 1,
            batch: 1,
            baseline: baseline.map(Into::into),
            ratio: None,
        }
    }

    #[test]
    fn ratios_match_name_and_placement_and_convert_time_units() {
        let mut r = vec![
            m("base", Placement::Same, Unit::Us, 2.0, None),
            m("base", Placement::Cross, Unit::Us, 10.0, None),
            m("x", Placement::Same, Unit::Ns, 3000.0, Some("base")),
            m("x", Placement::Free, Unit::Ns, 3000.0, Some("base")),
            m("y", Placement::Same, Unit::MsgPerSec, 5.0, Some("base")),
        ];
        resolve_baselines(&mut r);
        assert_eq!(r[2].ratio, Some(1.5));
        assert_eq!(r[3].ratio, None);
        assert_eq!(r[4].ratio, None);
    }

    #[test]
    fn json_is_escaped_and_nulls_non_finite() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(json_num(Some(f64::NAN)), "null");
        let mut x = m("q\"", Placement::Free, Unit::GbPerSec, 1.5, None);
        x.p99 = Some(f64::INFINITY);
        let j = json(&[x]);
        assert!(j.contains("\"name\": \"q\\\"\""), "{j}");
        assert!(j.contains("\"p99\": null") && j.contains("\"baseline\": null") && j.contains("\"median\": 1.5"));
    }

    #[test]
    fn select_adds_baselines_of_filtered_rows() {
        let names: Vec<_> = select(all_rows(), Some("pthread")).iter().map(|r| r.name).collect();
        assert_eq!(names, ["os.pthread_robust.uncontended"]);
        assert!(select(all_rows(), Some("no such row")).is_empty());
    }
}
