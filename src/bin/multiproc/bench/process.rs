//! Rows of the process layer.
//!
//! `process.start_join`: `Process::new(|| …).start()` + `join()` of a child that does nothing,
//! compared with `os.fork.rt` (target ≤ 1.5 ×, ANCHORS.md).

use super::{Ctx, Driver, Placement, Row, Unit};
use std::io;
use std::time::Duration;

pub(crate) fn rows() -> Vec<Row> {
    vec![Row {
        name: "process.start_join",
        unit: Unit::Us,
        placements: &[Placement::Same, Placement::Free],
        baseline: Some("os.fork.rt"),
        bytes_per_op: 0,
        min_batch: Duration::ZERO,
        build: start_join,
    }]
}

/// Start + join of a do-nothing `Process`; the child inherits the parent's pinning.
struct StartJoin;

fn start_join(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(StartJoin))
}

impl Driver for StartJoin {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            let p = multiproc::Process::new(|| ());
            p.start().map_err(io::Error::other)?;
            let status = p.join().map_err(io::Error::other)?;
            if !status.success() {
                return Err(io::Error::other(format!("child ended with {status}")));
            }
        }
        Ok(())
    }
}
