//! The layering rules of `docs/ARCHITECTURE.md`, checked by reading the sources (the third,
//! no import loops, is `tests/import_loops.rs`).
//!
//!
//! 1. **No upward imports.** Layers, bottom-up: `sys`, `loom` (with the `wait` toolkit and the
//!    `codec` beside it), `shm`, `sync`, `queue`, `process`, `pool` (then `manager`). A file under `src/<layer>/` may name `crate::<other>` only for an
//!    `<other>` at or below its own layer; `loom` may use `sys`, `sys` uses no other module. Every
//!    `crate::x` path counts, including each item of a `crate::{a, b::c}` group; comment lines
//!    are ignored. A name the crate root re-exports (`crate::Process`, `crate::wait(..)`)
//!    counts as the layer of the file that defines it, so the root is no way around the rule;
//!    a `crate::x` that resolves to nothing fails too.
//! 2. **Only `sys` calls libc.** Outside `src/sys/` (the command, `cli/`, whose raw baselines
//!    call libc on purpose, is a package of its own and not scanned), a `libc::name(` or `libc::name::<…>(` call of a
//!    function (lower-case name followed by `(`) fails. Types (`libc::pid_t`, `libc::timespec`)
//!    and constants (`libc::SIGKILL`) may be named anywhere. (`use libc::getpid; getpid()` would
//!    slip through; clippy's `disallowed-methods` covers the worst of those.)

mod source;

use source::{code, code_lines, first_ident, rust_files, Sources};
use std::path::Path;

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
    ("bench", 8),
];

fn rank(name: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// The first path segment of every `crate::…` path in `code` (groups expanded), and whether
/// a `::` follows it (a module path) or not (a name the crate root re-exports, or the root's
/// own item).
fn crate_paths(code: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = code;
    let seg = |s: &str| {
        let s = s.trim();
        let id = first_ident(s);
        let module = s[id.len()..].trim_start().starts_with("::");
        (id, module)
    };
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
                if c != ',' || depth > 0 {
                    item.push(c);
                }
            }
            items.push(item);
            out.extend(items.iter().map(|s| seg(s)).filter(|(s, _)| !s.is_empty()));
        } else {
            out.push(seg(rest));
        }
    }
    out
}

/// The layer a `crate::name` path reaches: the module's rank for a module path, else the rank
/// of the layer whose file defines what the root re-exports under `name` (so `crate::Process`
/// in `sync/` is caught as the upward use it is). `None`: not a layer (the `fuzz` hooks).
fn target_rank(s: &Sources, name: &str, module_path: bool) -> Result<Option<u32>, String> {
    if module_path {
        if let Some(r) = rank(name) {
            return Ok(Some(r));
        }
    }
    let file = s.resolve(&[], &format!("crate::{name}"), 0).ok_or_else(|| format!("unresolved crate::{name}"))?;
    let layer = file
        .strip_prefix(&s.src)
        .unwrap()
        .iter()
        .next()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string());
    Ok(layer.as_deref().and_then(rank))
}

#[test]
fn layering_no_upward_imports() {
    let s = Sources::read();
    let mut violations = Vec::new();
    for &(layer, my_rank) in LAYERS {
        let mut files = Vec::new();
        rust_files(&s.src.join(layer), &mut files);
        let single = s.src.join(format!("{layer}.rs"));
        if single.is_file() {
            files.push(single);
        }
        for f in files {
            for (target, module_path) in crate_paths(&code(&f)) {
                let r = match target_rank(&s, &target, module_path) {
                    Ok(Some(r)) => r,
                    Ok(None) => continue, // crate::fuzz and the like
                    Err(why) => {
                        violations.push(format!("{}: {why}", f.display()));
                        continue;
                    }
                };
                let upward = r > my_rank || (layer == "sys" && target != "sys");
                if upward {
                    violations.push(format!("{}: {layer} uses crate::{target} (layer {r})", f.display()));
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
        if rel.starts_with("sys") {
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
    let names = |code: &str| {
        crate_paths(code).into_iter().map(|(n, m)| format!("{n}{}", if m { "::" } else { "" })).collect::<Vec<_>>()
    };
    assert_eq!(names("use crate::{loom::atomic::X, shm::{A, B}, pool};"), ["loom::", "shm::", "pool"]);
    assert_eq!(names("x = mycrate::a; crate::queue::Q::new()"), ["queue::"]);
    assert_eq!(names("use crate::{Process, shm::X}; crate::wait(&x)"), ["Process", "shm::", "wait"]);
    // Root names resolve to the layer that defines them.
    let s = Sources::read();
    assert_eq!(target_rank(&s, "Process", false), Ok(rank("process")));
    assert_eq!(target_rank(&s, "Queue", false), Ok(rank("queue")));
    assert_eq!(target_rank(&s, "wait", false), Ok(rank("wait")));
    assert_eq!(target_rank(&s, "shm", true), Ok(rank("shm")));
    assert!(target_rank(&s, "NoSuchName", false).is_err());
    assert_eq!(libc_calls("unsafe { libc::getpid() }; libc::pid_t; libc::SIGKILL"), ["getpid"]);
    assert_eq!(libc_calls("libc::syscall::<i64>(1)"), ["syscall"]);
    assert!(libc_calls("let t: libc::timespec = x; let p: libc::pid_t = 1;").is_empty());
}
