//! `multiproc bench --compare OLD.json`: each row and placement of this run next to the same
//! row of an earlier run, with new/old and whether the change is beyond the rows' own spread,
//! so that a change that slows a row shows in review.
//!
//! The spread of a row is its interquartile range (p25..p75 of its samples, in the row's
//! unit). A change counts when the two ranges do not overlap: each median lies outside the
//! other run's range. That is a deliberately plain rule: on a noisy machine a row whose
//! quartiles moved apart has moved; one whose quartiles still overlap is within noise.

use super::Measurement;
use std::fmt::Write as _;

/// One row of an earlier run, as read back from its JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Old {
    pub(crate) name: String,
    pub(crate) placement: String,
    pub(crate) unit: String,
    pub(crate) median: f64,
    /// The quartiles, when the file has them (files written before they were added do not).
    pub(crate) p25: Option<f64>,
    pub(crate) p75: Option<f64>,
}

/// What a row's change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Better, beyond both spreads.
    Faster,
    /// Worse, beyond both spreads.
    Slower,
    /// The ranges overlap.
    Noise,
    /// One of the runs has no spread for the row: the ratio alone.
    Unknown,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Faster => "better",
            Verdict::Slower => "WORSE",
            Verdict::Noise => "within spread",
            Verdict::Unknown => "no spread to judge",
        }
    }
}

/// Judges `new` against `old` (same row and placement); `higher_is_better` for throughputs.
pub(crate) fn verdict(
    new: (f64, Option<(f64, f64)>),
    old: (f64, Option<(f64, f64)>),
    higher_is_better: bool,
) -> Verdict {
    let (Some((nl, nh)), Some((ol, oh))) = (new.1, old.1) else { return Verdict::Unknown };
    let outside = |x: f64, lo: f64, hi: f64| x < lo.min(hi) || x > lo.max(hi);
    if !(outside(new.0, ol, oh) && outside(old.0, nl, nh)) {
        return Verdict::Noise;
    }
    if (new.0 > old.0) == higher_is_better {
        Verdict::Faster
    } else {
        Verdict::Slower
    }
}

/// The comparison table: every row of this run, matched by name, placement and unit.
pub(crate) fn table(results: &[Measurement], old: &[Old]) -> String {
    let mut out = String::new();
    let w = results.iter().map(|m| m.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "{:<w$}  {:<5}  {:>9}  {:>9}  {:<7}  {:>7}  verdict",
        "name", "place", "new", "old", "unit", "new/old"
    );
    let mut worse = 0;
    for m in results {
        let o =
            old.iter().find(|o| o.name == m.name && o.placement == m.placement.as_str() && o.unit == m.unit.as_str());
        let Some(o) = o else {
            let _ = writeln!(
                out,
                "{:<w$}  {:<5}  {:>9}  {:>9}  {:<7}  {:>7}  new row",
                m.name,
                m.placement.as_str(),
                multiproc::bench_fmt_num(m.median),
                "-",
                m.unit.as_str(),
                "-"
            );
            continue;
        };
        let v = verdict((m.median, m.p25.zip(m.p75)), (o.median, o.p25.zip(o.p75)), !m.unit.is_time());
        worse += usize::from(v == Verdict::Slower);
        let ratio = if o.median > 0.0 { format!("{:.2}×", m.median / o.median) } else { "-".into() };
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:>9}  {:>9}  {:<7}  {:>7}  {}",
            m.name,
            m.placement.as_str(),
            multiproc::bench_fmt_num(m.median),
            multiproc::bench_fmt_num(o.median),
            m.unit.as_str(),
            ratio,
            v.as_str()
        );
    }
    let _ = writeln!(out, "({worse} row(s) worse beyond their spread; for times new/old < 1 is better, for rates > 1)");
    out
}

/// Reads the JSON that `--json` writes (`{"results": [{…}, …]}`, one flat object per row).
/// Rows it cannot read are an error naming them, not skipped silently.
pub(crate) fn parse(text: &str) -> Result<Vec<Old>, String> {
    let body = text.trim();
    let inner = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .map(str::trim)
        .and_then(|b| b.strip_prefix("\"results\""))
        .map(str::trim_start)
        .and_then(|b| b.strip_prefix(':'))
        .map(str::trim)
        .and_then(|b| b.strip_prefix('['))
        .and_then(|b| b.strip_suffix(']'))
        .ok_or("not a `multiproc bench --json` file (expected {\"results\": [...]})")?;
    let mut rows = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let start = rest.find('{').ok_or("expected an object")?;
        let (obj, after) = object(&rest[start..])?;
        rows.push(row(&obj).map_err(|e| format!("row {}: {e}", rows.len() + 1))?);
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(rows)
}

/// A JSON value of a flat object: a string, a number or null.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
    Null,
}

/// The fields of one flat object, in order.
type Fields = Vec<(String, Value)>;

/// Parses one flat object at the start of `s`; returns its fields and the text after it.
fn object(s: &str) -> Result<(Fields, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("expected `{`")?.trim_start();
    let mut fields = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((fields, r));
        }
        let (key, r) = string(rest)?;
        rest = r.trim_start().strip_prefix(':').ok_or("expected `:`")?.trim_start();
        let (value, r) = if rest.starts_with('"') {
            let (v, r) = string(rest)?;
            (Value::Str(v), r)
        } else if let Some(r) = rest.strip_prefix("null") {
            (Value::Null, r)
        } else {
            let end = rest.find(|c: char| c == ',' || c == '}' || c.is_whitespace()).unwrap_or(rest.len());
            let n = rest[..end].parse::<f64>().map_err(|_| format!("bad number `{}`", &rest[..end]))?;
            (Value::Num(n), &rest[end..])
        };
        fields.push((key, value));
        rest = r.trim_start();
        rest = rest.strip_prefix(',').map_or(rest, str::trim_start);
    }
}

/// Parses a JSON string at the start of `s` (the escapes `json_str` writes).
fn string(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.strip_prefix('"').ok_or("expected a string")?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 2..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let code = u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u escape")?;
                    out.push(char::from_u32(code).ok_or("bad \\u escape")?);
                }
                Some(c) => out.push(c),
                None => return Err("unterminated string".into()),
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

fn row(fields: &[(String, Value)]) -> Result<Old, String> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let text = |k: &str| match get(k) {
        Some(Value::Str(s)) => Ok(s.clone()),
        _ => Err(format!("missing string `{k}`")),
    };
    let num = |k: &str| match get(k) {
        Some(Value::Num(x)) => Some(*x),
        _ => None,
    };
    Ok(Old {
        name: text("name")?,
        placement: text("placement")?,
        unit: text("unit")?,
        median: num("median").ok_or("missing number `median`")?,
        p25: num("p25"),
        p75: num("p75"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Placement, Unit};
    use multiproc::{BenchReport, BenchSamples};

    fn m(name: &str, unit: Unit, median: f64, q: (f64, f64)) -> Measurement {
        let mut m = Measurement::from_samples(name, Placement::Cross, unit, 0, &BenchSamples::new(vec![1.0], 1), None);
        (m.median, m.p25, m.p75) = (median, Some(q.0), Some(q.1));
        m
    }

    fn json(rows: &[Measurement]) -> String {
        BenchReport { measurements: rows.to_vec(), notes: vec![] }.to_json()
    }

    #[test]
    fn the_json_we_write_reads_back() {
        let rows = [m("a\"b", Unit::Ns, 10.0, (9.0, 11.0)), m("c", Unit::GbPerSec, 2.5, (2.0, 3.0))];
        let old = parse(&json(&rows)).unwrap();
        assert_eq!(old.len(), 2);
        assert_eq!(old[0].name, "a\"b");
        assert_eq!((old[0].median, old[0].p25, old[0].p75), (10.0, Some(9.0), Some(11.0)));
        assert_eq!((old[1].unit.as_str(), old[1].placement.as_str()), ("GB/s", "cross"));
        assert!(parse("{\"rows\": []}").is_err());
        assert!(parse("{\"results\": [{\"name\": \"x\"}]}").unwrap_err().contains("row 1"));
        // A file from before the quartiles: read, with no spread.
        let legacy = "{\"results\": [\n  {\"name\": \"x\", \"placement\": \"same\", \"unit\": \"ns\", \"median\": 3, \"p99\": null, \"baseline\": null, \"ratio\": null}\n]}\n";
        assert_eq!(parse(legacy).unwrap()[0].p25, None);
    }

    #[test]
    fn verdicts_need_the_spreads_apart_and_know_which_way_is_better() {
        let q = |m: f64, lo: f64, hi: f64| (m, Some((lo, hi)));
        assert_eq!(verdict(q(12.0, 11.5, 12.5), q(10.0, 9.5, 10.5), false), Verdict::Slower);
        assert_eq!(verdict(q(8.0, 7.5, 8.5), q(10.0, 9.5, 10.5), false), Verdict::Faster);
        assert_eq!(verdict(q(10.4, 9.0, 11.0), q(10.0, 9.5, 10.5), false), Verdict::Noise);
        // Throughput: higher is better.
        assert_eq!(verdict(q(12.0, 11.5, 12.5), q(10.0, 9.5, 10.5), true), Verdict::Faster);
        assert_eq!(verdict((12.0, None), q(10.0, 9.5, 10.5), true), Verdict::Unknown);
    }

    #[test]
    fn the_table_flags_a_slower_row_and_a_new_one() {
        let old = parse(&json(&[m("lock", Unit::Ns, 10.0, (9.8, 10.2))])).unwrap();
        let t = table(&[m("lock", Unit::Ns, 20.0, (19.0, 21.0)), m("new", Unit::Ns, 1.0, (1.0, 1.0))], &old);
        assert!(t.contains("2.00×") && t.contains("WORSE"), "{t}");
        assert!(t.contains("new row"), "{t}");
        assert!(t.contains("(1 row(s) worse"), "{t}");
    }
}
