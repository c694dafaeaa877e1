//! Executions per second, the figure fuzzers compare: AFL++ (`afl-fuzz`, Debian's `afl++`
//! package) on a trivial C target in fork-server and persistent mode, read from its
//! `fuzzer_stats`, beside multiproc's persistent form (`Pool::imap_unordered_outcomes`, one
//! input per task, on `Pool(2)`) and its fork-server form (`ForkServer::run_input`). Skipped with a note where `afl-fuzz`/`afl-cc` are missing.
//!
//! The comparison is of rates, not of work: afl-fuzz also mutates inputs and records coverage
//! for each execution, on one CPU; the pool runs a fixed list of inputs on two workers. It
//! says what a harness built on the crate can sustain next to the tool fuzzers know.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One measured rate.
pub struct Rate {
    pub name: &'static str,
    pub execs_per_sec: f64,
    pub note: &'static str,
}

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// Compiles `src` with afl-cc and fuzzes it for `secs`; the exec rate from `fuzzer_stats`.
fn afl_rate(dir: &Path, src: &str, name: &str, secs: u64) -> Result<f64, String> {
    let bin = dir.join(name);
    let c = Path::new(env!("CARGO_MANIFEST_DIR")).join("afl").join(src);
    let out = Command::new("afl-cc").arg("-O2").arg("-o").arg(&bin).arg(&c).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("afl-cc {src}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let (input, output) = (dir.join(format!("{name}-in")), dir.join(format!("{name}-out")));
    let _ = std::fs::remove_dir_all(&output);
    std::fs::create_dir_all(&input).map_err(|e| e.to_string())?;
    std::fs::write(input.join("seed"), b"seed").map_err(|e| e.to_string())?;
    let status = Command::new("afl-fuzz")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_NO_UI", "1")
        .env("AFL_NO_AFFINITY", "1")
        .args(["-V", &secs.to_string(), "-i"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .arg("--")
        .arg(&bin)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("afl-fuzz on {name} exited with {status}"));
    }
    let stats = std::fs::read_to_string(output.join("default").join("fuzzer_stats")).map_err(|e| e.to_string())?;
    stats
        .lines()
        .find_map(|l| {
            l.strip_prefix("execs_per_sec").and_then(|r| r.split(':').nth(1)).and_then(|v| v.trim().parse().ok())
        })
        .ok_or_else(|| format!("no execs_per_sec in {name}'s fuzzer_stats"))
}

fn target(x: u64) -> u64 {
    if x % 64 == 3 {
        std::hint::black_box(x);
    }
    x.wrapping_mul(3)
}

/// multiproc's persistent form for `secs`: inputs in batches of 10,000 through
/// `imap_unordered_outcomes` on `Pool(2)`.
fn multiproc_rate(secs: u64) -> Result<f64, String> {
    let pool = multiproc::Pool::new(2).map_err(|e| e.to_string())?;
    let (start, mut n, mut next) = (Instant::now(), 0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        let got = pool.imap_unordered_outcomes(target, next..next + 10_000).map_err(|e| e.to_string())?.count();
        n += got as u64;
        next += 10_000;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn fork_target(input: multiproc::FuzzInput) -> i32 {
    i32::from(input.bytes().len() != 8)
}

/// multiproc's fork-per-input form for `secs`: one `ForkServer::run_input` per input, the
/// input (its number) through an `InputArea`.
fn multiproc_fork_rate(secs: u64) -> Result<f64, String> {
    let server = multiproc::ForkServer::builder().start().map_err(|e| e.to_string())?;
    let area = multiproc::InputArea::new(4096).map_err(|e| e.to_string())?;
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        area.set(&n.to_le_bytes()).map_err(|e| e.to_string())?;
        match server.run_input(fork_target, &area, Duration::from_secs(10)).map_err(|e| e.to_string())? {
            multiproc::ExecOutcome::Exited(0) => n += 1,
            other => return Err(format!("input {n}: {other:?}")),
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Every rate, or why AFL++ was skipped (the multiproc rate is measured either way).
pub fn rates(secs: u64) -> (Vec<Rate>, Option<String>) {
    let mut out = Vec::new();
    let mut skipped = None;
    if have("afl-fuzz") && have("afl-cc") {
        let dir = std::env::temp_dir().join(format!("multiproc-peers-afl-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for (src, name, note) in [
            ("forkserver.c", "afl++.forkserver", "afl-fuzz, fork-server mode: a fork per input"),
            ("persistent.c", "afl++.persistent", "afl-fuzz, persistent mode (__AFL_LOOP)"),
        ] {
            eprint!("  {name} ({secs} s) …");
            match afl_rate(&dir, src, name, secs) {
                Ok(r) => {
                    eprintln!(" {r:.0} execs/s");
                    out.push(Rate { name, execs_per_sec: r, note });
                }
                Err(e) => {
                    eprintln!(" FAILED: {e}");
                    skipped = Some(e);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        skipped = Some("afl-fuzz or afl-cc not installed (Debian: apt-get install afl++)".into());
    }
    eprint!("  multiproc.exec.persistent ({secs} s) …");
    match multiproc_rate(secs) {
        Ok(r) => {
            eprintln!(" {r:.0} execs/s");
            out.push(Rate {
                name: "multiproc.exec.persistent",
                execs_per_sec: r,
                note: "Pool(2).imap_unordered_outcomes, one input per task",
            });
        }
        Err(e) => eprintln!(" FAILED: {e}"),
    }
    eprint!("  multiproc.exec.fork ({secs} s) …");
    match multiproc_fork_rate(secs) {
        Ok(r) => {
            eprintln!(" {r:.0} execs/s");
            out.push(Rate {
                name: "multiproc.exec.fork",
                execs_per_sec: r,
                note: "ForkServer::run_input, a fresh fork per input",
            });
        }
        Err(e) => eprintln!(" FAILED: {e}"),
    }
    (out, skipped)
}
