//! What a measurement gives ([`BenchMeasurement`]) and what a run gives ([`BenchReport`]): the
//! table, JSON (the schema `multiproc bench --json` writes), CSV, and the ratio of each row to
//! its baseline measured in the same run.

use super::{BenchSamples, BenchUnit, Placement};
use std::fmt::Write as _;

/// One row at one placement: its statistics in the row's unit.
///
/// For a rate (msg/s, GB/s, tasks/s) the percentiles are those of the per-operation times,
/// converted: `p99` is then the rate of the slowest 1 % of batches, and `p25`/`p75` are given low
/// to high.
///
/// # Examples
///
/// ```
/// use multiproc::{BenchMeasurement, BenchSamples, BenchUnit, Placement};
/// let s = BenchSamples::new(vec![100.0, 200.0, 300.0], 1000);
/// let m = BenchMeasurement::from_samples("my.op", Placement::Cross, BenchUnit::Ns, 0, &s, None);
/// assert_eq!((m.median, m.samples, m.batch), (200.0, 3, 1000));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BenchMeasurement {
    /// The row's name.
    pub name: String,
    /// Where it ran.
    pub placement: Placement,
    /// The unit of every figure below.
    pub unit: BenchUnit,
    /// The median (p50).
    pub median: f64,
    /// The 90th percentile (`None`: not measured here, e.g. read from an old JSON file).
    pub p90: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
    /// The 99.9th percentile.
    pub p999: Option<f64>,
    /// The quartiles: the spread `multiproc bench --compare` judges by (low, high).
    pub p25: Option<f64>,
    /// See `p25`.
    pub p75: Option<f64>,
    /// The fastest and slowest sample (low, high).
    pub min: Option<f64>,
    /// See `min`.
    pub max: Option<f64>,
    /// How many samples (batches) were timed.
    pub samples: usize,
    /// Operations per sample.
    pub batch: u64,
    /// The row this one is compared with (same placement, same run).
    pub baseline: Option<String>,
    /// `median / baseline's median` (time units converted), once resolved.
    pub ratio: Option<f64>,
    /// Every sample in the row's unit, ascending (for plots; empty when read back from JSON).
    pub values: Vec<f64>,
}

impl BenchMeasurement {
    /// The statistics of `samples` for row `name`; `bytes_per_op` converts to GB/s.
    ///
    /// # Examples
    ///
    /// See [`BenchMeasurement`].
    pub fn from_samples(
        name: &str,
        placement: Placement,
        unit: BenchUnit,
        bytes_per_op: u64,
        samples: &BenchSamples,
        baseline: Option<&str>,
    ) -> BenchMeasurement {
        let conv = |ns: f64| unit.convert_ns_per_op(ns, bytes_per_op);
        let at = |p: f64| samples.percentile(p).map(conv);
        let low_high = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
            _ => (None, None),
        };
        let (p25, p75) = low_high(at(0.25), at(0.75));
        let (min, max) = low_high(at(0.0), at(1.0));
        let mut values: Vec<f64> = samples.ns_per_op().iter().map(|&x| conv(x)).collect();
        values.sort_by(f64::total_cmp);
        BenchMeasurement {
            name: name.to_string(),
            placement,
            unit,
            median: at(0.5).unwrap_or(f64::NAN),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            p25,
            p75,
            min,
            max,
            samples: samples.ns_per_op().len(),
            batch: samples.batch(),
            baseline: baseline.map(str::to_string),
            ratio: None,
            values,
        }
    }
}

/// The measurements of a run, with the notes on what was skipped or failed.
///
/// # Examples
///
/// ```
/// use multiproc::{BenchMeasurement, BenchReport, BenchSamples, BenchUnit, Placement};
/// let base = BenchSamples::new(vec![100.0; 5], 1);
/// let mine = BenchSamples::new(vec![250.0; 5], 1);
/// let mut r = BenchReport::default();
/// r.measurements.push(BenchMeasurement::from_samples("floor", Placement::Cross, BenchUnit::Ns, 0, &base, None));
/// r.measurements.push(BenchMeasurement::from_samples("mine", Placement::Cross, BenchUnit::Ns, 0, &mine, Some("floor")));
/// r.resolve_baselines();
/// assert_eq!(r.measurements[1].ratio, Some(2.5));
/// assert!(r.table().contains("2.50×"));
/// assert!(r.to_csv().starts_with("name,placement,unit,median"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    /// Every measurement, in the order they were made.
    pub measurements: Vec<BenchMeasurement>,
    /// What was skipped (a placement this machine lacks the CPUs for) or failed, one line each.
    pub notes: Vec<String>,
}

impl BenchReport {
    /// Fills each `ratio` from the baseline measured at the same placement in this report (time
    /// units are converted into each other; other units must match).
    ///
    /// # Examples
    ///
    /// See [`BenchReport`].
    pub fn resolve_baselines(&mut self) {
        let snapshot: Vec<(String, Placement, BenchUnit, f64)> =
            self.measurements.iter().map(|m| (m.name.clone(), m.placement, m.unit, m.median)).collect();
        for m in &mut self.measurements {
            let Some(b) = &m.baseline else { continue };
            let base = snapshot.iter().find(|(n, p, _, _)| n == b && *p == m.placement);
            m.ratio = base.and_then(|&(_, _, unit, median)| {
                let (mine, theirs) = match (m.unit.ns_factor(), unit.ns_factor()) {
                    (Some(a), Some(b)) => (m.median * a, median * b),
                    _ if m.unit == unit => (m.median, median),
                    _ => return None,
                };
                (theirs > 0.0).then(|| mine / theirs)
            });
        }
    }

    /// The table people read: name, placement, median, p99, unit, samples, batch, baseline, ratio.
    ///
    /// # Examples
    ///
    /// See [`BenchReport`].
    pub fn table(&self) -> String {
        let ms = &self.measurements;
        let mut out = String::new();
        let w = ms.iter().map(|m| m.name.len()).max().unwrap_or(4).max(4);
        let bw = ms.iter().filter_map(|m| m.baseline.as_ref().map(String::len)).max().unwrap_or(8).max(8);
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:>9}  {:>9}  {:<7}  {:>7}  {:>8}  {:<bw$}  {:>6}",
            "name", "place", "median", "p99", "unit", "samples", "batch", "baseline", "ratio"
        );
        for m in ms {
            let p99 = if m.unit.is_time() { m.p99 } else { None };
            let _ = writeln!(
                out,
                "{:<w$}  {:<5}  {:>9}  {:>9}  {:<7}  {:>7}  {:>8}  {:<bw$}  {:>6}",
                m.name,
                m.placement.as_str(),
                bench_fmt_num(m.median),
                p99.map_or("-".into(), bench_fmt_num),
                m.unit.as_str(),
                m.samples,
                m.batch,
                m.baseline.as_deref().unwrap_or("-"),
                m.ratio.map_or("-".into(), |r| format!("{r:.2}×")),
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }

    /// `{"results": [{"name", "placement", "unit", "median", "p99", "p25", "p75", "baseline",
    /// "ratio"}, …]}`: the schema of `multiproc bench --json` (`p99` is `null` for rates).
    ///
    /// # Examples
    ///
    /// ```
    /// let j = multiproc::BenchReport::default().to_json();
    /// assert_eq!(j, "{\"results\": [\n]}\n");
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"results\": [");
        for (i, m) in self.measurements.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let p99 = if m.unit.is_time() { m.p99 } else { None };
            let _ = write!(
                out,
                "\n  {{\"name\": {}, \"placement\": {}, \"unit\": {}, \"median\": {}, \"p99\": {}, \"p25\": {}, \
                 \"p75\": {}, \"baseline\": {}, \"ratio\": {}}}",
                json_str(&m.name),
                json_str(m.placement.as_str()),
                json_str(m.unit.as_str()),
                json_num(Some(m.median)),
                json_num(p99),
                json_num(m.p25),
                json_num(m.p75),
                m.baseline.as_deref().map_or("null".into(), json_str),
                json_num(m.ratio),
            );
        }
        out.push_str("\n]}\n");
        out
    }

    /// One line per measurement, with every percentile: `name,placement,unit,median,p90,p99,
    /// p999,p25,p75,min,max,samples,batch,baseline,ratio` (empty where there is no figure).
    ///
    /// # Examples
    ///
    /// See [`BenchReport`].
    pub fn to_csv(&self) -> String {
        let mut out =
            String::from("name,placement,unit,median,p90,p99,p999,p25,p75,min,max,samples,batch,baseline,ratio\n");
        let num = |x: Option<f64>| x.filter(|v| v.is_finite()).map_or(String::new(), |v| v.to_string());
        for m in &self.measurements {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&m.name),
                m.placement.as_str(),
                m.unit.as_str(),
                num(Some(m.median)),
                num(m.p90),
                num(m.p99),
                num(m.p999),
                num(m.p25),
                num(m.p75),
                num(m.min),
                num(m.max),
                m.samples,
                m.batch,
                m.baseline.as_deref().map_or(String::new(), csv_field),
                num(m.ratio),
            );
        }
        out
    }
}

/// A number with three significant digits (and no exponent for ordinary magnitudes), as the
/// table shows it.
///
/// # Examples
///
/// ```
/// use multiproc::bench_fmt_num;
/// assert_eq!((bench_fmt_num(1234567.0), bench_fmt_num(123.4), bench_fmt_num(1.234)), ("1.23M".into(), "123".into(), "1.23".into()));
/// ```
pub fn bench_fmt_num(x: f64) -> String {
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

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
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

/// A JSON number, or `null` for none, NaN or infinity (which JSON cannot carry).
fn json_num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, p: Placement, unit: BenchUnit, median: f64, baseline: Option<&str>) -> BenchMeasurement {
        let s = BenchSamples::new(vec![1.0], 1);
        let mut m = BenchMeasurement::from_samples(name, p, unit, 0, &s, baseline);
        m.median = median;
        m
    }

    #[test]
    fn ratios_match_name_and_placement_and_convert_time_units() {
        let mut r = BenchReport {
            notes: vec![],
            measurements: vec![
                m("base", Placement::Same, BenchUnit::Us, 2.0, None),
                m("base", Placement::Cross, BenchUnit::Us, 10.0, None),
                m("x", Placement::Same, BenchUnit::Ns, 3000.0, Some("base")),
                m("x", Placement::Free, BenchUnit::Ns, 3000.0, Some("base")),
                m("y", Placement::Same, BenchUnit::MsgPerSec, 5.0, Some("base")),
            ],
        };
        r.resolve_baselines();
        assert_eq!(r.measurements[2].ratio, Some(1.5));
        assert_eq!(r.measurements[3].ratio, None);
        assert_eq!(r.measurements[4].ratio, None);
    }

    #[test]
    fn json_and_csv_are_escaped_and_carry_no_non_finite_number() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        let mut x = m("q\",", Placement::Free, BenchUnit::GbPerSec, 1.5, None);
        x.p99 = Some(f64::INFINITY);
        let r = BenchReport { measurements: vec![x], notes: vec![] };
        let j = r.to_json();
        assert!(j.contains("\"name\": \"q\\\",\""), "{j}");
        assert!(j.contains("\"p99\": null") && j.contains("\"baseline\": null") && j.contains("\"median\": 1.5"));
        let c = r.to_csv();
        assert!(c.lines().nth(1).unwrap().starts_with("\"q\"\",\",free,GB/s,1.5,"), "{c}");
    }

    #[test]
    fn rates_give_their_quartiles_low_to_high() {
        // 1 µs and 2 µs per message: 1 M and 0.5 M msg/s.
        let s = BenchSamples::new(vec![1000.0, 1000.0, 2000.0, 2000.0], 1);
        let m = BenchMeasurement::from_samples("r", Placement::Cross, BenchUnit::MsgPerSec, 0, &s, None);
        assert!(m.p25.unwrap() < m.p75.unwrap() && m.min.unwrap() <= m.max.unwrap());
        assert_eq!((m.min, m.max), (Some(500_000.0), Some(1_000_000.0)));
        assert!(m.values.windows(2).all(|w| w[0] <= w[1]));
    }
}
