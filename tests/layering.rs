//! The layering rules of `docs/ARCHITECTURE.md`, checked by reading the sources.
//!
//! 1. **No upward imports.** Layers, bottom-up: `sys`, `loom` (with the `wait` toolkit and the
//!    `codec` beside it), `shm`, `sync`, `queue`, `process`, `pool` (then `manager`). A file under `src/<layer>/` may name `crate::<other>` only for an
//!    `<other>` at or below its own layer; `loom` may use `sys`, `sys` uses no other module. Every
//!    `crate::x` path counts, including each item of a `crate::{a, b::c}` group; comment lines
//!    are ignored.
//! 2. **Only `sys` calls libc.** Outside `src/sys/` (and outside the command, `src/bin/`, whose
//!    raw baselines call libc on purpose), a `libc::name(` or `libc::name::<…>(` call of a
//!    function (lower-case name followed by `(`) fails. Types (`libc::pid_t`, `libc::timespec`)
//!    and constants (`libc::SIGKILL`) may be named anywhere. (`use libc::getpid; getpid()` would
//!    slip through; clippy's `disallowed-methods` covers the worst of those.)

use std::path::{Path, PathBuf};

/// Layers bottom-up, with the rank each one has. `sys` and `loom` share the bottom, but `sys`
/// may not use `loom` (checked separately).
const LAYERS: &[(&str, u32)] = &[
    ("sys", 0),
    ("loom", 1),
    ("wait", 1),
    ("codec", 1),
    ("forms", 1),
    ("shm", 2),
    ("sync", 3),
    ("queue", 4),
    ("process", 5),
    ("connection", 5),
    ("pool", 6),
    ("manager", 7),
];

fn rank(name: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Source lines with comment lines (`//`, `//!`, `///`) and trailing `//` comments removed.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.find(" //").map_or(l, |c| &l[..c]).to_string()))
        .collect()
}

/// The first path segment of every `crate::…` path in `code` (groups expanded).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let preceded = rest[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[i + "crate::".len()..];
        if preceded {
            continue; // e.g. `mycrate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                    _ => {}
                }
                if depth == 0 && c != ',' {
                    item.push(c);
                }
            }
            items.push(item);
            out.extend(items.iter().map(|s| first_ident(s.trim())).filter(|s| !s.is_empty()));
        } else {
            out.push(first_ident(rest));
        }
    }
    out
}

fn first_ident(s: &str) -> String {
    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The whole file with comment lines removed, for patterns that may span lines (`crate::{…}`).
fn code(path: &Path) -> String {
    code_lines(path).into_iter().map(|(_, l)| l).collect::<Vec<_>>().join("\n")
}

#[test]
fn layering_no_upward_imports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for &(layer, my_rank) in LAYERS {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        let single = src.join(format!("{layer}.rs"));
        if single.is_file() {
            files.push(single);
        }
        for f in files {
            for target in crate_paths(&code(&f)) {
                let Some(r) = rank(&target) else { continue }; // crate::fuzz and the like
                let upward = r > my_rank || (layer == "sys" && target != "sys");
                if upward {
                    violations.push(format!("{}: {layer} uses crate::{target}", f.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "upward imports:\n{}", violations.join("\n"));
}

/// `libc::name(` or `libc::name::<…>(` with a lower-case `name`.
fn libc_calls(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("libc::") {
        let preceded = rest[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[i + "libc::".len()..];
        let name = first_ident(rest);
        if preceded || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            continue;
        }
        let after = rest[name.len()..].trim_start();
        let after = if let Some(t) = after.strip_prefix("::<") { t.split_once('>').map_or("", |x| x.1) } else { after };
        if after.trim_start().starts_with('(') {
            out.push(name);
        }
    }
    out
}

#[test]
fn layering_only_sys_calls_libc() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel.starts_with("sys") || rel.starts_with("bin") {
            continue;
        }
        for (n, line) in code_lines(&f) {
            for call in libc_calls(&line) {
                violations.push(format!("{}:{n}: libc::{call}", f.display()));
            }
        }
    }
    assert!(violations.is_empty(), "libc calls outside src/sys:\n{}", violations.join("\n"));
}

/// The `loom` names in a `cfg` of `line` that are not under `test`: only `all(test, loom)` and
/// `all(test, not(loom))` (the loom shim's switch) may appear, so that a downstream build with
/// `RUSTFLAGS=--cfg loom` never swaps the crate's internals or loses items.
fn bare_loom_cfgs(line: &str) -> usize {
    if !(line.contains("cfg(") || line.contains("cfg_attr(") || line.contains("cfg!(")) {
        return 0;
    }
    let allowed = ["all(test, loom)", "all(test, not(loom)"];
    let mut rest = line.to_string();
    for a in allowed {
        rest = rest.replace(a, "");
    }
    rest.matches("loom").count() - rest.matches("loom::").count()
}

#[test]
fn layering_no_bare_cfg_loom() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for f in files {
        for (n, line) in code_lines(&f) {
            if bare_loom_cfgs(&line) > 0 {
                violations.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    assert!(violations.is_empty(), "bare cfg(loom) (use cfg(all(test, loom))):\n{}", violations.join("\n"));
}

#[test]
fn layering_checker_sees_what_it_must() {
    assert_eq!(bare_loom_cfgs("#[cfg(loom)]"), 1);
    assert_eq!(bare_loom_cfgs("#[cfg(not(loom))]"), 1);
    assert_eq!(bare_loom_cfgs("#[cfg_attr(loom, allow(dead_code))]"), 1);
    assert_eq!(bare_loom_cfgs("#[cfg(any(not(loom), test))]"), 1);
    assert_eq!(bare_loom_cfgs("#[cfg(all(test, loom))]"), 0);
    assert_eq!(bare_loom_cfgs("#[cfg(all(test, not(loom)))]"), 0);
    assert_eq!(bare_loom_cfgs("#[cfg(not(all(test, loom)))]"), 0);
    assert_eq!(crate_paths("use crate::{loom::atomic::X, shm::{A, B}, pool};"), ["loom", "shm", "pool"]);
    assert_eq!(crate_paths("x = mycrate::a; crate::queue::Q::new()"), ["queue"]);
    assert_eq!(libc_calls("unsafe { libc::getpid() }; libc::pid_t; libc::SIGKILL"), ["getpid"]);
    assert_eq!(libc_calls("libc::syscall::<i64>(1)"), ["syscall"]);
    assert!(libc_calls("let t: libc::timespec = x; let p: libc::pid_t = 1;").is_empty());
}
