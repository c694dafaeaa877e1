//! The cross-process measurement framework: rows, placements, sampling, baselines and output.
//!
//! A family of rows is one file (`floor.rs`, later `sync.rs`, `queue.rs`, `pool.rs`,
//! `process.rs`) exporting `fn rows() -> Vec<Row>`; [`all_rows`] concatenates them. A row says
//! how to build a [`Driver`] for a placement; the driver runs `n` operations per call and the
//! framework times batches of them (see `docs/BENCHMARKS.md`).

mod batch;
mod broadcast;
mod capi;
mod compare;
mod exec;
mod floor;
mod integrity;
mod loan;
mod manager;
mod named;
mod pool;
mod process;
mod python;
mod queue;
mod sync;

use crate::raw::{self, CpuMask};
use std::io;
use std::time::{Duration, Instant};

use multiproc::{bench_fmt_num, bench_sample, bench_timer_cost_ns, Bench, BenchBudget, BenchReport};
pub(crate) use multiproc::{BenchMeasurement as Measurement, BenchUnit as Unit, Placement};

/// The mask a child forked for placement `p` applies to itself (the command's raw children;
/// the library's `BenchPeers` does the same for its own).
pub(crate) fn child_mask(p: Placement, ctx: &Ctx) -> Option<CpuMask> {
    match p {
        Placement::Same => Some(CpuMask::single(0)),
        Placement::Cross => Some(CpuMask::single(1)),
        Placement::Free => Some(ctx.original_mask),
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

/// Options of `multiproc bench`.
#[derive(Debug, Default)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) json: Option<std::path::PathBuf>,
    /// `--compare OLD.json`: an earlier run to put each row next to.
    pub(crate) compare: Option<std::path::PathBuf>,
    pub(crate) filter: Option<String>,
    /// `--csv PATH`: every measurement with every percentile, one line each.
    pub(crate) csv: Option<std::path::PathBuf>,
    /// `--plot DIR`: a histogram and a CDF per measurement, as SVG.
    pub(crate) plot: Option<std::path::PathBuf>,
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
    rows.extend(python::rows());
    rows.extend(pool::rows());
    rows.extend(exec::rows());
    rows.extend(manager::rows());
    rows.extend(capi::rows());
    rows
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

/// The rows the library measures itself (`Bench::floors_only`): the command lists them for
/// `FILTER` and baselines, and takes their measurements from the library.
const LIBRARY_FLOORS: [&str; 3] = [multiproc::FLOOR_SPIN, multiproc::FLOOR_FUTEX, multiproc::FLOOR_PIPE];

/// `multiproc bench`: measures, prints the table, optionally writes JSON, CSV and SVGs. Returns
/// the process exit code.
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
    let budget = if opts.quick { BenchBudget::quick() } else { BenchBudget::full() };
    let mut lib = Bench::new().map_err(io::Error::other)?.budget(budget);
    let timer_ns = bench_timer_cost_ns();
    let ctx = Ctx { quick: opts.quick, original_mask, timer_ns };
    let started = Instant::now();
    println!(
        "multiproc bench ({}): {} usable CPU(s); timer cost (Instant::now pair, median) {:.0} ns; \
         batches ≥ 100 × timer",
        if opts.quick { "quick" } else { "full" },
        original_mask.count(),
        timer_ns
    );
    let mut report = BenchReport::default();
    let mut failed = false;
    for row in &rows {
        if LIBRARY_FLOORS.contains(&row.name) {
            eprint!("  measuring {} (library floor) …", row.name);
            let before = lib.report();
            let r = lib.floors_only(&[row.name]).map(|_| ());
            let after = lib.report();
            report.measurements.extend(after.measurements[before.measurements.len()..].iter().cloned());
            report.notes.extend(after.notes[before.notes.len()..].iter().cloned());
            eprintln!(" {}", if r.is_ok() { "done" } else { "failed" });
            failed |= r.is_err();
            continue;
        }
        for &p in row.placements {
            if let Err(why) = placement_possible(p, &original_mask) {
                report.notes.push(format!("{} [{}] skipped: {}", row.name, p.as_str(), why));
                continue;
            }
            eprint!("  measuring {} [{}] …", row.name, p.as_str());
            match measure(&ctx, &budget, row, p) {
                Ok(m) => {
                    eprintln!(" {}", bench_fmt_num(m.median));
                    report.measurements.push(m);
                }
                // A row whose program is not on this machine (python3): a note, not a failure.
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    eprintln!(" skipped");
                    report.notes.push(format!("{} [{}] skipped: {}", row.name, p.as_str(), e));
                }
                Err(e) => {
                    eprintln!(" failed");
                    report.notes.push(format!("{} [{}] FAILED: {}", row.name, p.as_str(), e));
                    failed = true;
                }
            }
        }
    }
    report.resolve_baselines();
    print!("{}", report.table());
    println!("({} measurements in {:.1} s)", report.measurements.len(), started.elapsed().as_secs_f64());
    if let (Some(old), Some(path)) = (&old, &opts.compare) {
        println!("\ncompared with {}:", path.display());
        print!("{}", compare::table(&report.measurements, old));
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, report.to_json())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &opts.csv {
        std::fs::write(path, report.to_csv())?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &opts.plot {
        let files = report.write_svgs(dir)?;
        println!("wrote {} SVG file(s) into {}", files.len(), dir.display());
    }
    Ok(if failed { 1 } else { 0 })
}

/// Measures one row at one placement: pins the parent, builds the driver (which forks its
/// children), samples with the library's sampler, then drops the driver (reaping the children)
/// and restores the mask.
fn measure(ctx: &Ctx, budget: &BenchBudget, row: &Row, p: Placement) -> io::Result<Measurement> {
    match p {
        Placement::Same | Placement::Cross => CpuMask::single(0).apply()?,
        Placement::Free => ctx.original_mask.apply()?,
    }
    // Last line of defence against a hang: the command dies (children with it) after this.
    raw::alarm(Some(budget.warmup + budget.measure + Duration::from_secs(60)));
    let result = (|| {
        let mut driver = (row.build)(ctx, p)?;
        let mut op = |n: u64| -> multiproc::BenchResult { driver.run(n).map_err(Into::into) };
        bench_sample(&mut op, budget, row.min_batch, ctx.timer_ns, &mut || Ok(())).map_err(io::Error::other)
    })();
    raw::alarm(None);
    ctx.original_mask.apply()?;
    let s = result?;
    Ok(Measurement::from_samples(row.name, p, row.unit, row.bytes_per_op, &s, row.baseline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_adds_baselines_of_filtered_rows() {
        let names: Vec<_> = select(all_rows(), Some("pthread")).iter().map(|r| r.name).collect();
        assert_eq!(names, ["os.pthread_robust.uncontended"]);
        assert!(select(all_rows(), Some("no such row")).is_empty());
    }
}
