//! Python's own figure, measured in the same run: `python.pool.map.trivial` is CPython's
//! `multiprocessing.Pool.map` over the same trivial function, in calls of the same size at
//! most and with the same chunksize rule as `pool.map.trivial` (start method `fork`, one worker
//! per CPU of this process), which takes it as its baseline.
//!
//! One `python3` process serves every sample of the row: it starts its pool once, then maps a
//! batch per line it reads (`n chunksize`) and answers `ok`. A machine without `python3` skips
//! the row (with a note) instead of failing the table.

use super::{Ctx, Driver, Placement, Row, Unit};
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

pub(crate) fn rows() -> Vec<Row> {
    vec![Row {
        min_batch: Duration::from_millis(60),
        ..Row::new("python.pool.map.trivial", Unit::TasksPerSec, &[Placement::Free], None, pool_map)
    }]
}

/// The server: `triv` is `trivial` in `pool.rs` (`x * 3 + 1`). A wrong result answers `bad`.
const SCRIPT: &str = r#"
import multiprocessing as mp, sys
def triv(x):
    return x * 3 + 1
if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(int(sys.argv[1])) as p:
        print("ready", flush=True)
        for line in sys.stdin:
            n, cs = map(int, line.split())
            r = p.map(triv, range(n), chunksize=cs)
            print("ok" if len(r) == n and (n == 0 or r[-1] == triv(n - 1)) else "bad", flush=True)
"#;

struct PyMap {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    procs: usize,
}

impl PyMap {
    fn line(&mut self) -> io::Result<String> {
        let mut s = String::new();
        if self.from.read_line(&mut s)? == 0 {
            return Err(io::Error::other("python3 ended"));
        }
        Ok(s.trim().to_owned())
    }
}

impl Driver for PyMap {
    fn run(&mut self, n: u64) -> io::Result<()> {
        // In calls of the same size as the pool row's (Python's own batches are smaller).
        for (_, n) in super::pool::map_calls(0, n) {
            let cs = super::pool::map_chunksize(n, self.procs);
            writeln!(self.to, "{n} {cs}")?;
            match self.line()?.as_str() {
                "ok" => {}
                other => return Err(io::Error::other(format!("python3 answered {other:?}"))),
            }
        }
        Ok(())
    }
}

impl Drop for PyMap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pool_map(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    // As many workers as `Pool::builder()` starts by default.
    let procs = multiproc::cpu_count().max(1);
    let mut child = match Command::new("python3")
        .args(["-c", SCRIPT, &procs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "python3 is not installed"))
        }
        Err(e) => return Err(e),
    };
    let (Some(to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("python3's pipes"));
    };
    let mut d = PyMap { child, to, from: BufReader::new(from), procs };
    match d.line() {
        Ok(l) if l == "ready" => Ok(Box::new(d)),
        // A python3 without a working multiprocessing (no fork, no semaphores): not ours to
        // measure.
        _ => Err(io::Error::new(io::ErrorKind::Unsupported, "python3's multiprocessing.Pool did not start")),
    }
}
