//! Pictures of the samples (feature `plot`): one SVG per measurement, a histogram of the samples
//! beside their CDF, drawn with the `svg` crate (see docs/DEPENDENCIES.md).

use super::{bench_fmt_num, BenchMeasurement, BenchReport};
use std::io;
use std::path::{Path, PathBuf};
use svg::node::element::path::Data;
use svg::node::element::{Line, Path as SvgPath, Rectangle, Text};
use svg::Document;

const W: f64 = 900.0;
const H: f64 = 360.0;
/// One panel's plotting area: left, top, width, height.
const PANEL: (f64, f64, f64, f64) = (60.0, 50.0, 360.0, 250.0);
/// Bars of the histogram.
const BINS: usize = 40;

impl BenchReport {
    /// Writes one SVG per measurement into `dir` (made if missing): a histogram of its samples
    /// and their CDF, with the median and p99 marked. Files are named
    /// `<row>.<placement>.svg`; measurements without samples (read back from JSON) are skipped.
    /// Returns the files written.
    ///
    /// # Errors
    /// The first I/O error.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{BenchMeasurement, BenchReport, BenchSamples, BenchUnit, Placement};
    /// let s = BenchSamples::new((1..=200).map(|i| f64::from(i % 37) + 100.0).collect(), 1);
    /// let r = BenchReport { measurements: vec![BenchMeasurement::from_samples("my.op", Placement::Cross, BenchUnit::Ns, 0, &s, None)], notes: vec![] };
    /// let dir = std::env::temp_dir().join(format!("mp-plot-doc-{}", std::process::id()));
    /// let files = r.write_svgs(&dir)?;
    /// assert_eq!(files.len(), 1);
    /// assert!(std::fs::read_to_string(&files[0])?.starts_with("<svg"));
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_svgs(&self, dir: impl AsRef<Path>) -> io::Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        for m in self.measurements.iter().filter(|m| !m.values.is_empty()) {
            let name: String =
                m.name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
            let mut path = dir.join(format!("{name}.{}.svg", m.placement.as_str()));
            // Two names that differ only where the file name cannot follow: number the second.
            let mut k = 2;
            while written.contains(&path) {
                path = dir.join(format!("{name}.{}.{k}.svg", m.placement.as_str()));
                k += 1;
            }
            svg::save(&path, &picture(m))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// The document of one measurement.
fn picture(m: &BenchMeasurement) -> Document {
    let v = &m.values;
    // The axis ends at the 99.9th percentile: one stray sample (a preemption) would otherwise
    // squash the whole distribution into one bar. Samples beyond go into the last bar.
    let (lo, hi) = (v[0], v[((v.len() - 1) as f64 * 0.999).round() as usize]);
    let beyond = v.iter().filter(|&&x| x > hi).count();
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) * 0.01 };
    let x_of = |x: f64, left: f64| left + (x.min(hi) - lo) / span * PANEL.2;
    let mut doc = Document::new()
        .set("xmlns", "http://www.w3.org/2000/svg")
        .set("viewBox", (0, 0, W, H))
        .set("width", W)
        .set("height", H)
        .set("font-family", "sans-serif")
        .set("font-size", 12)
        .add(Rectangle::new().set("width", W).set("height", H).set("fill", "white"));
    let title = format!(
        "{} [{}]: median {} {}, p99 {} {} ({} samples of {} ops)",
        m.name,
        m.placement.as_str(),
        bench_fmt_num(m.median),
        m.unit.as_str(),
        m.p99.map_or("-".into(), bench_fmt_num),
        m.unit.as_str(),
        m.samples,
        m.batch
    );
    doc = doc.add(Text::new(title).set("x", PANEL.0).set("y", 24).set("font-size", 14));
    if beyond > 0 {
        let max = bench_fmt_num(v[v.len() - 1]);
        let text =
            format!("x axis to p99.9; {beyond} sample(s) beyond, up to {max} {}, drawn at its end", m.unit.as_str());
        doc =
            doc.add(Text::new(text).set("x", W - 20.0).set("y", H - 8.0).set("text-anchor", "end").set("fill", "#555"));
    }

    // Histogram (left panel).
    let mut counts = [0usize; BINS];
    for &x in v {
        let b = (((x.min(hi) - lo) / span) * BINS as f64) as usize;
        counts[b.min(BINS - 1)] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64;
    let (left, upper, width, height) = PANEL;
    let bar_w = width / BINS as f64;
    for (i, &c) in counts.iter().enumerate() {
        let h = c as f64 / top * height;
        doc = doc.add(
            Rectangle::new()
                .set("x", left + i as f64 * bar_w)
                .set("y", upper + height - h)
                .set("width", (bar_w - 1.0).max(0.5))
                .set("height", h)
                .set("fill", "#4e79a7"),
        );
    }
    doc = axes(doc, left, lo, hi, m, "samples (count)");

    // CDF (right panel).
    let left2 = left + width + 80.0;
    let mut data = Data::new().move_to((x_of(v[0], left2), upper + height));
    let step = (v.len() / 400).max(1);
    for (i, &x) in v.iter().enumerate().step_by(step).chain(std::iter::once((v.len() - 1, &v[v.len() - 1]))) {
        let q = (i + 1) as f64 / v.len() as f64;
        data = data.line_to((x_of(x, left2), upper + height - q * height));
    }
    doc = doc.add(SvgPath::new().set("d", data).set("fill", "none").set("stroke", "#e15759").set("stroke-width", 2));
    doc = axes(doc, left2, lo, hi, m, "fraction of samples ≤ x");
    for (label, val, dy) in [("median", Some(m.median), 12.0), ("p99", m.p99, 26.0)] {
        let Some(val) = val.filter(|x| x.is_finite()) else { continue };
        for l in [left, left2] {
            let x = x_of(val, l);
            doc = doc.add(
                Line::new()
                    .set("x1", x)
                    .set("x2", x)
                    .set("y1", upper)
                    .set("y2", upper + height)
                    .set("stroke", "#555")
                    .set("stroke-dasharray", "4 3"),
            );
            doc = doc.add(Text::new(label).set("x", x + 3.0).set("y", upper + dy).set("fill", "#555"));
        }
    }
    doc
}

/// The two axes of a panel at `left`, with the range's ends and the unit below.
fn axes(doc: Document, left: f64, lo: f64, hi: f64, m: &BenchMeasurement, y_label: &str) -> Document {
    let (_, upper, width, height) = PANEL;
    let bottom = upper + height;
    doc.add(
        Line::new().set("x1", left).set("x2", left + width).set("y1", bottom).set("y2", bottom).set("stroke", "black"),
    )
    .add(Line::new().set("x1", left).set("x2", left).set("y1", upper).set("y2", bottom).set("stroke", "black"))
    .add(Text::new(bench_fmt_num(lo)).set("x", left).set("y", bottom + 16.0))
    .add(Text::new(bench_fmt_num(hi)).set("x", left + width).set("y", bottom + 16.0).set("text-anchor", "end"))
    .add(Text::new(m.unit.as_str()).set("x", left + width / 2.0).set("y", bottom + 32.0).set("text-anchor", "middle"))
    .add(Text::new(y_label).set("x", left).set("y", upper - 8.0))
}
