//! The `multiproc` command: `bench` (cross-process measurements) and `shm` (named segments).
//!
//! Arguments are parsed by hand so that library users never pull in an argument parser.

mod bench;
mod raw;

use std::process::ExitCode;

const USAGE: &str = "\
multiproc: tools for the multiproc crate

USAGE:
    multiproc bench [--quick] [--json PATH] [--csv PATH] [--plot DIR] [--compare OLD.json] [FILTER]
    multiproc shm list
    multiproc shm clean
    multiproc --help

COMMANDS:
    bench        Measure cross-process latencies and throughputs; print a table with each
                 row's median, p99, placement (same: both processes on CPU 0, cross: CPU 0 and
                 CPU 1, free: unpinned) and its ratio to its baseline row measured in the same run.
                   --quick        small per-row budgets (the whole table in about 40 s)
                   --json PATH    also write the results as JSON to PATH
                   --csv PATH     also write every percentile of every row as CSV to PATH
                   --plot DIR     also write a histogram and a CDF per row and placement
                                  as SVG files into DIR
                   --compare OLD  put each row next to the same row of an earlier --json
                                  file: new/old, and whether the change is beyond both
                                  rows' spread (their p25..p75 do not overlap)
                   FILTER         only rows whose name contains FILTER (plus their baselines)
    shm list     Show the named segments of ours in /dev/shm and whether their creator lives
    shm clean    Remove the named segments of ours whose creator has died

EXIT STATUS:
    0 success, 1 a measurement or an operation failed, 2 bad usage
";

/// A usage error: printed with a hint, exit status 2.
fn usage_error(msg: &str) -> u8 {
    eprintln!("multiproc: {msg}\nRun `multiproc --help` for usage.");
    2
}

fn main() -> ExitCode {
    if std::env::var_os(raw::NOOP_ENV).is_some() {
        return ExitCode::SUCCESS; // the os.posix_spawn.rt baseline's child
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ExitCode::from(run(&args))
}

/// Runs the command line `args` (without the program name) and returns the exit status.
fn run(args: &[&str]) -> u8 {
    match args {
        [] => usage_error("missing command"),
        ["-h" | "--help" | "help", ..] => {
            print!("{USAGE}");
            0
        }
        ["bench", rest @ ..] => match parse_bench(rest) {
            Ok(opts) => match bench::run(&opts) {
                Ok(code) => code as u8,
                Err(e) => {
                    eprintln!("multiproc bench: {e}");
                    1
                }
            },
            Err(Help) => {
                print!("{USAGE}");
                0
            }
            Err(Usage(msg)) => usage_error(&msg),
        },
        ["shm", "list"] => shm_list(),
        ["shm", "clean"] => shm_clean(),
        ["shm", "-h" | "--help"] => {
            print!("{USAGE}");
            0
        }
        ["shm", other, ..] if other.starts_with('-') => usage_error(&format!("unknown flag `{other}` for `shm`")),
        ["shm", other] => usage_error(&format!("unknown shm command `{other}` (expected `list` or `clean`)")),
        ["shm", _, extra, ..] => usage_error(&format!("unexpected argument `{extra}`")),
        ["shm"] => usage_error("`shm` needs a command: `list` or `clean`"),
        [flag, ..] if flag.starts_with('-') => usage_error(&format!("unknown flag `{flag}`")),
        [cmd, ..] => usage_error(&format!("unknown command `{cmd}` (expected `bench` or `shm`)")),
    }
}

enum ParseError {
    Help,
    Usage(String),
}
use ParseError::{Help, Usage};

fn parse_bench(args: &[&str]) -> Result<bench::Options, ParseError> {
    let mut opts = bench::Options::default();
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--quick" => opts.quick = true,
            "--json" => match it.next() {
                Some(p) if !p.is_empty() => opts.json = Some(p.into()),
                _ => return Err(Usage("`--json` needs a PATH".into())),
            },
            "--csv" => match it.next() {
                Some(p) if !p.is_empty() => opts.csv = Some(p.into()),
                _ => return Err(Usage("`--csv` needs a PATH".into())),
            },
            "--plot" => match it.next() {
                Some(p) if !p.is_empty() => opts.plot = Some(p.into()),
                _ => return Err(Usage("`--plot` needs a DIR".into())),
            },
            "--compare" => match it.next() {
                Some(p) if !p.is_empty() => opts.compare = Some(p.into()),
                _ => return Err(Usage("`--compare` needs the PATH of an earlier `--json` file".into())),
            },
            "-h" | "--help" => return Err(Help),
            _ if a.starts_with("--json=") => opts.json = Some(a["--json=".len()..].into()),
            _ if a.starts_with("--compare=") => opts.compare = Some(a["--compare=".len()..].into()),
            _ if a.starts_with("--csv=") => opts.csv = Some(a["--csv=".len()..].into()),
            _ if a.starts_with("--plot=") => opts.plot = Some(a["--plot=".len()..].into()),
            _ if a.starts_with('-') => return Err(Usage(format!("unknown flag `{a}` for `bench`"))),
            _ if opts.filter.is_some() => return Err(Usage(format!("unexpected second FILTER `{a}`"))),
            _ => opts.filter = Some(a.to_string()),
        }
    }
    Ok(opts)
}

fn shm_list() -> u8 {
    match multiproc::list_named() {
        Ok(list) => {
            if list.is_empty() {
                println!("no named segments of ours in /dev/shm");
                return 0;
            }
            println!("{:<40}  {:<24}  {:>12}  {:>8}  creator", "name", "holds", "bytes", "pid");
            for s in &list {
                let state = match (s.creator_alive, s.temporary) {
                    (true, false) => "alive",
                    (true, true) => "alive, still creating it",
                    (false, false) => "dead (stale)",
                    (false, true) => "died while creating it (stale)",
                };
                println!("{:<40}  {:<24}  {:>12}  {:>8}  {}", s.name, s.object, s.len, s.creator_pid, state);
            }
            0
        }
        Err(e) => {
            eprintln!("multiproc shm list: cannot read /dev/shm: {e}");
            1
        }
    }
}

fn shm_clean() -> u8 {
    match multiproc::Segment::clean_stale() {
        Ok(removed) => {
            for name in &removed {
                println!("removed {name}");
            }
            println!("{} stale segment(s) removed", removed.len());
            0
        }
        Err(e) => {
            eprintln!("multiproc shm clean: cannot read /dev/shm: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_arguments_parse() {
        let o = parse_bench(&["--quick", "--json", "x.json", "pipe"]).ok().unwrap();
        assert!(parse_bench(&["--compare", "old.json"]).ok().unwrap().compare.is_some());
        assert!(matches!(parse_bench(&["--compare"]), Err(Usage(_))));
        assert!(o.quick && o.json.as_deref() == Some("x.json".as_ref()) && o.filter.as_deref() == Some("pipe"));
        assert!(matches!(parse_bench(&["--json"]), Err(Usage(_))));
        let o = parse_bench(&["--csv", "r.csv", "--plot=svgs"]).ok().unwrap();
        assert!(o.csv.as_deref() == Some("r.csv".as_ref()) && o.plot.as_deref() == Some("svgs".as_ref()));
        assert!(matches!(parse_bench(&["--plot"]), Err(Usage(_))));
        assert!(matches!(parse_bench(&["--bogus"]), Err(Usage(_))));
        assert!(matches!(parse_bench(&["a", "b"]), Err(Usage(_))));
        assert!(matches!(parse_bench(&["--help"]), Err(Help)));
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [&[][..], &["frob"], &["--frob"], &["shm"], &["shm", "frob"], &["shm", "list", "x"]] {
            assert_eq!(run(args), 2, "{args:?}");
        }
        assert_eq!(run(&["bench", "--quick", "--frob"]), 2);
        assert_eq!(run(&["bench", "no row has this name"]), 2);
        assert_eq!(run(&["--help"]), 0);
    }

    #[test]
    fn shm_list_shows_a_dead_creators_segment_as_stale() {
        let name = format!("mp-cli-stale-{}", std::process::id());
        let n = name.clone();
        let child = crate::raw::Child::spawn(None, move || match multiproc::Segment::create(&n, 4096) {
            Ok(s) => {
                s.persist(); // as if the creator had been killed before its handle dropped
                0
            }
            Err(_) => 1,
        })
        .unwrap();
        assert_eq!(child.join().unwrap(), 0);
        let full = name.clone();
        let ours =
            |alive| multiproc::list_named().unwrap().into_iter().any(|s| s.name == full && s.creator_alive == alive);
        assert!(ours(false), "the dead creator's segment is listed as stale");
        assert_eq!(run(&["shm", "list"]), 0);
        // Not `run(&["shm", "clean"])`: it would also remove stale segments that tests running
        // beside this one create on purpose. `shm clean` is `Segment::clean_stale()` verbatim.
        multiproc::Segment::unlink(&name).unwrap();
        assert!(!ours(false) && !ours(true), "removed");
    }
}
