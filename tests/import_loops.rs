//! No two files of `src/` import each other in a loop. The file-level graph of `use`
//! statements and `crate::`/`super::` paths (resolved through re-exports to the file that
//! defines each name; re-exports in `mod.rs` are not uses) has no cycle: every directory reads
//! bottom-up. A loop is reported with the names that close it.

mod source;

use source::{defined_names, expand_use, use_statements, Sources};
use std::path::PathBuf;

/// Strongly connected components of more than one file (Tarjan).
fn loops(nodes: &[PathBuf], edges: &[(PathBuf, PathBuf, String)]) -> Vec<Vec<PathBuf>> {
    struct T<'a> {
        nodes: &'a [PathBuf],
        next: Vec<Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on: Vec<bool>,
        count: usize,
        out: Vec<Vec<PathBuf>>,
    }
    impl T<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.count);
            self.low[v] = self.count;
            self.count += 1;
            self.stack.push(v);
            self.on[v] = true;
            for w in self.next[v].clone() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(i) if self.on[w] => self.low[v] = self.low[v].min(i),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on[w] = false;
                    comp.push(self.nodes[w].clone());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let at = |p: &PathBuf| nodes.iter().position(|n| n == p);
    let mut next = vec![Vec::new(); nodes.len()];
    for (a, b, _) in edges {
        if let (Some(i), Some(j)) = (at(a), at(b)) {
            next[i].push(j);
        }
    }
    let n = nodes.len();
    let mut t = T {
        nodes,
        next,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on: vec![false; n],
        count: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn layering_no_import_loops_between_files() {
    let s = Sources::read();
    let edges = s.graph();
    let nodes: Vec<PathBuf> = s.files.iter().map(|(p, _, _)| p.clone()).collect();
    let found = loops(&nodes, &edges);
    let show = |comp: &Vec<PathBuf>| {
        let rel = |p: &PathBuf| p.strip_prefix(&s.src).unwrap().display().to_string();
        let inner: Vec<String> = edges
            .iter()
            .filter(|(a, b, _)| comp.contains(a) && comp.contains(b))
            .map(|(a, b, n)| format!("    {} -> {} ({n})", rel(a), rel(b)))
            .collect();
        format!("{:?}\n{}", comp.iter().map(rel).collect::<Vec<_>>(), inner.join("\n"))
    };
    assert!(
        found.is_empty(),
        "files that import each other in a loop:\n{}",
        found.iter().map(show).collect::<Vec<_>>().join("\n")
    );
    // The graph is not empty by accident: the checker sees the uses it must.
    let has = |a: &str, b: &str| edges.iter().any(|(x, y, _)| x.ends_with(a) && y.ends_with(b));
    assert!(has("process/start.rs", "process/launch/fork.rs"), "the checker lost track of `launch::fork::launch`");
    assert!(has("process/launch/fork.rs", "process/child.rs"), "the checker lost track of `super::super::child`");
    assert!(has("pool/jobs.rs", "pool/chunk.rs"));
}

#[test]
fn layering_loop_checker_finds_a_loop() {
    let p = |s: &str| PathBuf::from(s);
    let e = |a: &str, b: &str| (p(a), p(b), String::new());
    let nodes = [p("a"), p("b"), p("c"), p("d")];
    assert_eq!(loops(&nodes, &[e("a", "b"), e("b", "c"), e("c", "a"), e("c", "d")]), [vec![p("a"), p("b"), p("c")]]);
    assert!(loops(&nodes, &[e("a", "b"), e("b", "c"), e("a", "c")]).is_empty());
    assert_eq!(expand_use("super::{a::{B, C}, d as e}"), ["super::a::B", "super::a::C", "super::d"]);
    assert_eq!(
        use_statements("pub(crate) use x::y;\nuse a::{b,\n c};\nlet used = 1;"),
        [(true, "x::y".to_string()), (false, "a::{b,  c}".to_string())]
    );
    assert_eq!(defined_names("pub(super) fn f() {}\nstruct S;\n    fn inner() {}\npub(crate) mod m;"), ["f", "S", "m"]);
}
