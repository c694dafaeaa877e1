//! Reading the crate's sources for the structure tests (`layering.rs`, `import_loops.rs`): the
//! files, their code without comments, their module paths, and a resolver from a path to the
//! file that defines what it names (through re-exports).
#![allow(dead_code)] // each test crate uses its part
#![allow(unreachable_pub)] // shared by the test crates through `mod source;`

use std::path::{Path, PathBuf};

pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
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
pub fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.find(" //").map_or(l, |c| &l[..c]).to_string()))
        .collect()
}

pub fn first_ident(s: &str) -> String {
    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The whole file with comment lines removed, for patterns that may span lines (`crate::{…}`).
pub fn code(path: &Path) -> String {
    code_lines(path).into_iter().map(|(_, l)| l).collect::<Vec<_>>().join("\n")
}

/// The module path of a file under `src/` (`process/launch/fork.rs` → `process::launch::fork`;
/// `mod.rs` and `lib.rs` name their directory).
pub fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The file of module `path`, if it is one of ours.
pub fn module_file(src: &Path, path: &[String]) -> Option<PathBuf> {
    if path.is_empty() {
        return Some(src.join("lib.rs"));
    }
    let base = path.iter().fold(src.to_path_buf(), |p, s| p.join(s));
    let file = base.with_extension("rs");
    if file.is_file() {
        return Some(file);
    }
    let m = base.join("mod.rs");
    m.is_file().then_some(m)
}

/// `use` trees expanded into full paths (`a::{b, c::d}` → `a::b`, `a::c::d`); `as` renames
/// keep the original path.
pub fn expand_use(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let prefix = tree[..open].trim_end_matches("::").trim();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let (mut depth, mut item, mut out) = (0, String::new(), Vec::new());
        for c in inner.chars().chain(std::iter::once(',')) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    for p in expand_use(&std::mem::take(&mut item)) {
                        out.push(if prefix.is_empty() { p } else { format!("{prefix}::{p}") });
                    }
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        return out;
    }
    let path = tree.split(" as ").next().unwrap_or("").trim();
    if path.is_empty() {
        Vec::new()
    } else {
        vec![path.to_string()]
    }
}

/// Every `use` statement of `code` (whole statements, possibly over several lines), with
/// whether it is a re-export (`pub use`, `pub(crate) use`, …).
pub fn use_statements(code: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let line_start = rest[..i].rfind('\n').map_or(0, |n| n + 1);
        let head = rest[line_start..i].trim();
        let at_statement = head.is_empty() || head.starts_with("pub") || head.ends_with(']');
        let preceded = rest[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_');
        let Some(end) = rest[i..].find(';') else { break };
        if at_statement && !preceded {
            out.push((head.starts_with("pub"), rest[i + 4..i + end].replace('\n', " ")));
        }
        rest = &rest[i + end + 1..];
    }
    out
}

/// Names a file defines at its top level (items and modules), for resolving a path's last
/// segment to the file that holds it.
pub fn defined_names(code: &str) -> Vec<String> {
    const KINDS: &[&str] = &["struct ", "enum ", "trait ", "fn ", "const ", "static ", "type ", "union ", "mod "];
    let mut out = Vec::new();
    for line in code.lines().filter(|l| !l.starts_with(' ')) {
        let mut l = line.trim_start();
        if let Some(r) = l.strip_prefix("pub") {
            l = r.strip_prefix(|c| c == '(').map_or(r, |r| r.split_once(')').map_or("", |x| x.1)).trim_start();
        }
        for q in ["unsafe ", "async ", "extern \"C\" "] {
            l = l.strip_prefix(q).unwrap_or(l);
        }
        if let Some(k) = KINDS.iter().find(|k| l.starts_with(**k)) {
            out.push(first_ident(&l[k.len()..]));
        }
        if let Some(r) = l.strip_prefix("macro_rules! ") {
            out.push(first_ident(r));
        }
    }
    // Types a macro invocation defines (`error_forms! { pub enum SendError; … }`) are indented.
    for line in code.lines().filter(|l| l.starts_with(' ')) {
        for k in ["pub enum ", "pub struct "] {
            if let Some(r) = line.trim_start().strip_prefix(k) {
                out.push(first_ident(r));
            }
        }
    }
    out
}

/// The sources, read once: each file's code, module path, names and `use` statements.
pub struct Sources {
    pub src: PathBuf,
    pub files: Vec<(PathBuf, Vec<String>, String)>,
}

impl Sources {
    pub fn read() -> Sources {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        paths.retain(|p| !p.strip_prefix(&src).unwrap().starts_with("bin"));
        let files = paths.into_iter().map(|p| (module_of(&src, &p), code(&p), p)).map(|(m, c, p)| (p, m, c)).collect();
        Sources { src, files }
    }

    fn code_of(&self, file: &Path) -> Option<&str> {
        self.files.iter().find(|(p, _, _)| p == file).map(|(_, _, c)| c.as_str())
    }

    /// The file that defines what `path` names, seen from module `here`.
    pub fn resolve(&self, here: &[String], path: &str, depth: u32) -> Option<PathBuf> {
        let segs: Vec<&str> = path.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "self").collect();
        let (mut module, mut i): (Vec<String>, usize) = match *segs.first()? {
            "crate" => (Vec::new(), 1),
            "super" => {
                let mut m = here.to_vec();
                let mut i = 0;
                while segs.get(i) == Some(&"super") {
                    m.pop();
                    i += 1;
                }
                (m, i)
            }
            _ => (here.to_vec(), 0),
        };
        if depth > 16 {
            return None;
        }
        // Down through modules, as far as they go.
        while i < segs.len() {
            let mut next = module.clone();
            next.push(segs[i].to_string());
            if module_file(&self.src, &next).is_none() {
                break;
            }
            module = next;
            i += 1;
        }
        let file = module_file(&self.src, &module)?;
        let Some(&name) = segs.get(i) else { return Some(file) };
        let code = self.code_of(&file)?;
        if defined_names(code).iter().any(|d| d == name) {
            return Some(file);
        }
        // A re-export in that module: follow it.
        for (_, stmt) in use_statements(code) {
            for p in expand_use(&stmt) {
                let last = p.rsplit("::").next().unwrap_or("");
                let target = if last == "*" {
                    format!("{}::{name}", p.trim_end_matches("::*"))
                } else if last == name {
                    p.clone()
                } else {
                    continue;
                };
                if let Some(f) = self.resolve(&module, &target, depth + 1) {
                    return Some(f);
                }
            }
        }
        None
    }

    /// The absolute module path that `path` (seen from `here`) names, if it names a module.
    pub fn module_path(&self, here: &[String], path: &str) -> Option<Vec<String>> {
        let mut m: Vec<String> = here.to_vec();
        let mut segs = path.split("::").map(str::trim).peekable();
        match segs.peek() {
            Some(&"crate") => {
                m.clear();
                segs.next();
            }
            Some(&"super") => {
                while segs.peek() == Some(&"super") {
                    m.pop();
                    segs.next();
                }
            }
            Some(&"self") => {
                segs.next();
            }
            _ => {}
        }
        for s in segs {
            m.push(s.to_string());
        }
        (!m.is_empty() && module_file(&self.src, &m).is_some()).then_some(m)
    }

    /// File → files it uses (resolved), with the names used. Re-exports in `mod.rs` and
    /// `lib.rs` are not uses: they pass a child's names on, downwards.
    pub fn graph(&self) -> Vec<(PathBuf, PathBuf, String)> {
        let mut edges = Vec::new();
        for (file, module, code) in &self.files {
            let is_mod = matches!(file.file_name().and_then(|n| n.to_str()), Some("mod.rs" | "lib.rs"));
            let mut paths: Vec<String> = use_statements(code)
                .into_iter()
                .filter(|(reexport, _)| !(is_mod && *reexport))
                .flat_map(|(_, s)| expand_use(&s))
                .filter(|p| !p.ends_with('*'))
                .collect();
            // A module imported by name (`use super::launch;`) is then used as `launch::x::f`.
            let modules: Vec<String> = paths
                .iter()
                .filter(|p| self.module_path(module, p).is_some())
                .map(|p| p.rsplit("::").next().unwrap_or("").to_string())
                .filter(|alias| !alias.is_empty() && alias != "super" && alias != "crate")
                .collect();
            let mut via_alias = Vec::new();
            for alias in &modules {
                let full =
                    paths.iter().find(|p| p.rsplit("::").next() == Some(alias.as_str())).cloned().unwrap_or_default();
                let needle = format!("{alias}::");
                let mut rest = code.as_str();
                while let Some(i) = rest.find(&needle) {
                    let preceded =
                        rest[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                    let tail: String = rest[i + needle.len()..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    rest = &rest[i + needle.len()..];
                    if !preceded {
                        via_alias.push(format!("{full}::{}", tail.trim_end_matches(':')));
                    }
                }
            }
            paths.extend(via_alias);
            for prefix in ["crate::", "super::"] {
                let mut rest = code.as_str();
                while let Some(i) = rest.find(prefix) {
                    let preceded =
                        rest[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                    let tail: String =
                        rest[i..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                    rest = &rest[i + prefix.len()..];
                    if !preceded {
                        paths.push(tail.trim_end_matches(':').to_string());
                    }
                }
            }
            for p in paths {
                let segs: Vec<&str> = p.split("::").collect();
                // Try the full path, then shorter ones (a method or associated item at the end).
                for k in (1..=segs.len()).rev() {
                    if matches!(segs[k - 1], "crate" | "super" | "self") {
                        break;
                    }
                    let q = segs[..k].join("::");
                    let relative =
                        if matches!(segs[0], "crate" | "super" | "self") { q.clone() } else { format!("self::{q}") };
                    if let Some(target) = self.resolve(module, &relative, 0) {
                        if &target != file && !target.ends_with("lib.rs") {
                            edges.push((file.clone(), target, segs[k - 1].to_string()));
                        }
                        break;
                    }
                }
            }
        }
        edges.sort();
        edges.dedup();
        edges
    }
}
