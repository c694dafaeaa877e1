//! Rows of the manager layer.
//!
//! * `manager.dict.rt`: a set then a get of a `u64` key and value on a dict proxy, from this
//!   process (a client of the server process, as a child would be), through a local manager
//!   (shared-memory rings), in µs.
//! * `manager.dict.tcp.rt`: the same through a manager listening on 127.0.0.1.
//!
//! Python's `Manager().dict()` set + get: see docs/BENCHMARKS.md (measured the same day).

use super::{Ctx, Driver, Placement, Row, Unit};
use multiproc::{DictProxy, Manager};
use std::io;

pub(crate) fn rows() -> Vec<Row> {
    let row = Row::new;
    vec![
        row("manager.dict.rt", Unit::Us, &[Placement::Free], None, local),
        row("manager.dict.tcp.rt", Unit::Us, &[Placement::Free], Some("manager.dict.rt"), tcp),
    ]
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The calls, made from this process (a client of the server process like any child).
struct DictRt {
    _manager: Manager,
    d: DictProxy<u64, u64>,
}

fn start(manager: Manager) -> io::Result<Box<dyn Driver>> {
    let d: DictProxy<u64, u64> = manager.dict().map_err(err)?;
    Ok(Box::new(DictRt { _manager: manager, d }))
}

fn local(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    start(Manager::start().map_err(err)?)
}

fn tcp(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    start(Manager::builder().address("tcp:127.0.0.1:0").map_err(err)?.start().map_err(err)?)
}

impl Driver for DictRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for i in 0..n {
            self.d.insert(i, i).map_err(err)?;
            if self.d.get(&i).map_err(err)? != Some(i) {
                return Err(io::Error::other("the dict returned a wrong value"));
            }
        }
        Ok(())
    }
}
