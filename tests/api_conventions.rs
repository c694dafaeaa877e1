//! The mechanical rules of `docs/API.md`, checked against the committed public-API listing
//! (`api/public-api.txt`, which `.ci/run` checks against the code with cargo-public-api).
//!
//! * one path per name: no public module but the crate root;
//! * one vocabulary for time: `x_timeout(Duration)` and `x_deadline(Instant)`, always in pairs,
//!   never `_for`/`_until`;
//! * the four forms: a call with a timed form has its blocking form and its try form (except
//!   where `docs/API.md` says "now" means nothing);
//! * errors per form: every `Try…Error` has its *not now* variant, every `…TimeoutError` its
//!   `Timeout`, every error enum is `#[non_exhaustive]`;
//! * `new`, `create` and `open` of a shared-memory object return `ShmError`.

use std::collections::{BTreeMap, BTreeSet};

fn listing() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("api/public-api.txt");
    std::fs::read_to_string(path).expect("api/public-api.txt is committed").lines().map(str::to_owned).collect()
}

/// `(type, method, the rest of the line)` of every inherent or trait method in the listing.
fn methods(lines: &[String]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("pub fn multiproc::").or_else(|| l.strip_prefix("pub unsafe fn multiproc::"))
        else {
            continue;
        };
        // `Type<T>::name<G>(args) -> ret`: the type is up to the first `::` outside `<…>`.
        let mut depth = 0;
        let mut split = None;
        for (i, c) in rest.char_indices() {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                ':' if depth == 0 && rest[i..].starts_with("::") => {
                    split = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(i) = split else { continue }; // a free function
        let ty = rest[..i].split('<').next().unwrap().to_owned();
        let tail = &rest[i + 2..];
        let name: String = tail.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let after = tail[name.len()..].to_owned();
        out.push((ty, name, after));
    }
    out
}

#[test]
fn api_one_path_per_name() {
    let modules: Vec<String> = listing().into_iter().filter(|l| l.starts_with("pub mod ")).collect();
    assert_eq!(modules, ["pub mod multiproc"], "public modules besides the root");
}

#[test]
fn api_one_vocabulary_for_time() {
    let ms = methods(&listing());
    let mut bad = Vec::new();
    for (ty, name, rest) in &ms {
        let timed_arg = rest.contains("core::time::Duration") || rest.contains("std::time::Instant");
        if (name.ends_with("_for") || name.ends_with("_until")) && timed_arg {
            bad.push(format!("{ty}::{name}: say `_timeout(Duration)` / `_deadline(Instant)`"));
        }
        if let Some(base) = name.strip_suffix("_timeout") {
            if ty.ends_with("Error") || name == "with_timeout" {
                continue; // `is_timeout()` helpers; the deprecated `Barrier::with_timeout`
            }
            if !rest.contains("core::time::Duration") {
                bad.push(format!("{ty}::{name} takes no Duration"));
            }
            if !ms
                .iter()
                .any(|(t, n, r)| t == ty && *n == format!("{base}_deadline") && r.contains("std::time::Instant"))
            {
                bad.push(format!("{ty}::{name} has no `{base}_deadline(Instant)`"));
            }
        }
        if let Some(base) = name.strip_suffix("_deadline") {
            if !ms.iter().any(|(t, n, _)| t == ty && *n == format!("{base}_timeout")) {
                bad.push(format!("{ty}::{name} has no `{base}_timeout`"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Calls whose try form would mean nothing (see `docs/API.md` §3), or that are not waits of
/// their own: opening by name waits for a name to appear (its "now" form is `open`), a
/// connection is made or accepted in one go by `connect` (no "now"), and a condition or
/// barrier waits for others by definition.
const NO_TRY_FORM: &[(&str, &str)] = &[
    ("Condition", "wait"),
    ("Condition", "wait_for"),
    ("ConditionProxy", "wait"),
    ("Barrier", "wait"),
    ("BarrierProxy", "wait"),
    ("Client", "connect"),
    ("IMapIter", "next"),
];

#[test]
fn api_every_timed_call_has_all_four_forms() {
    let ms = methods(&listing());
    let has = |ty: &str, name: &str| ms.iter().any(|(t, n, _)| t == ty && n == name);
    let mut bad = Vec::new();
    let timed: BTreeSet<(String, String)> = ms
        .iter()
        .filter(|(t, n, _)| n.ends_with("_timeout") && !t.ends_with("Error") && n != "with_timeout")
        .map(|(t, n, _)| (t.clone(), n.trim_end_matches("_timeout").to_owned()))
        .collect();
    for (ty, base) in &timed {
        if base == "open" {
            continue; // `open` is the "now" form of `open_timeout`
        }
        let iterator_next = ty == "IMapIter" && base == "next"; // `Iterator::next` is the blocking form
        if !iterator_next && !has(ty, base) {
            bad.push(format!("{ty}: `{base}_timeout` without `{base}`"));
        }
        let exempt = NO_TRY_FORM.contains(&(ty.as_str(), base.as_str()));
        let try_name = if ty == "IMapIter" { "try_next".to_owned() } else { format!("try_{base}") };
        if !exempt && !has(ty, &try_name) {
            bad.push(format!("{ty}: `{base}_timeout` without `{try_name}`"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(timed.len() > 30, "the listing lost the timed calls ({} found)", timed.len());
}

/// Every enum's variants, from the listing's `pub Type::Variant` lines.
fn variants(lines: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in lines {
        if let Some(rest) = l.strip_prefix("pub multiproc::") {
            let mut parts = rest.split("::");
            if let (Some(ty), Some(v)) = (parts.next(), parts.next()) {
                let v: String = v.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.entry(ty.split('<').next().unwrap().to_owned()).or_default().insert(v);
            }
        }
    }
    out
}

#[test]
fn api_errors_are_shaped_per_form() {
    let lines = listing();
    let vs = variants(&lines);
    let mut bad = Vec::new();
    let enums: Vec<(bool, String)> = lines
        .iter()
        .filter_map(|l| {
            let ne = l.starts_with("#[non_exhaustive] pub enum multiproc::");
            let name = l.split("pub enum multiproc::").nth(1)?;
            Some((ne, name.split('<').next().unwrap().to_owned()))
        })
        .collect();
    for (non_exhaustive, e) in &enums {
        if !e.ends_with("Error") {
            continue;
        }
        if !non_exhaustive {
            bad.push(format!("{e} is not #[non_exhaustive]"));
        }
        let v = vs.get(e).cloned().unwrap_or_default();
        if e.starts_with("Try") && !v.iter().any(|x| matches!(x.as_str(), "WouldBlock" | "Empty" | "Full")) {
            bad.push(format!("{e} has no not-now variant (WouldBlock, Empty, Full): {v:?}"));
        }
        if e.ends_with("TimeoutError") && !v.contains("Timeout") {
            bad.push(format!("{e} has no Timeout variant: {v:?}"));
        }
        if v.contains("Io") {
            bad.push(format!("{e}: an OS failure is spelt `Os`, not `Io`"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(enums.len() > 40, "the listing lost the error enums");
}

#[test]
fn api_shared_objects_are_made_and_opened_with_one_error() {
    let ms = methods(&listing());
    let mut bad = Vec::new();
    let shared: BTreeSet<&String> =
        ms.iter().filter(|(_, n, r)| n == "open" && r.starts_with("(&str)")).map(|(t, _, _)| t).collect();
    for ty in &shared {
        for (t, n, r) in &ms {
            if t == *ty && matches!(n.as_str(), "new" | "create" | "open" | "open_timeout" | "open_deadline" | "new_in")
            {
                let ret = r.rsplit("->").next().unwrap_or("");
                if !ret.contains("multiproc::ShmError") {
                    bad.push(format!("{t}::{n} returns {ret}"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(shared.len() >= 15, "the listing lost the named objects ({shared:?})");
}
