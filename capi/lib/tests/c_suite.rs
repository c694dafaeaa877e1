//! The C side of the C ABI, built with the system compiler and run from `cargo test`:
//! * the header compiles alone as C11 and as C++17 with `-Wall -Wextra -Werror -pedantic`;
//! * the C suite, `capi/tests/c/*.c` (every function, every status), runs linked to `libmultiproc.a`
//!   under AddressSanitizer and UndefinedBehaviorSanitizer;
//! * `examples/c/queue.c`, the example of docs/C.md, builds with the command the README
//!   gives and runs.
//!
//! Each C program runs under a watchdog (`timeout`), so a hang fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Builds `libmultiproc.a` and `libmultiproc.so` (cargo builds a package's library for its
/// tests only in the forms Rust links, so this asks for them) and says where they are: beside
/// this test's `deps` folder, in the same profile.
fn lib_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let target = dir.parent().unwrap();
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            // With the test hook that lets the suite see a panic become MP_INTERNAL.
            cmd.args(["build", "--quiet", "-p", "multiproc-c", "--features", "test-hooks", "--target-dir"])
                .arg(target)
                .current_dir(root());
            if dir.file_name().unwrap() == "release" {
                cmd.arg("--release");
            }
            run(&mut cmd, "building libmultiproc");
            assert!(dir.join("libmultiproc.a").exists(), "libmultiproc.a is not in {}", dir.display());
            dir
        })
        .clone()
}

/// The files of the C suite (with `check.h`, which they share).
const SUITE: &[&str] = &["main.c", "sync.c", "data.c", "conn.c"];

/// The libraries a Rust static library needs (`rustc --print native-static-libs`).
const NATIVE: &[&str] = &["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"];

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_suite");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn header_compiles_as_c11_and_cpp17() {
    let inc = root().join("include");
    let src = scratch("header_only.c");
    std::fs::write(&src, "#include \"multiproc.h\"\nint main(void) { return mp_version() == MP_VERSION ? 0 : 1; }\n")
        .unwrap();
    run(
        Command::new(cc())
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I"])
            .arg(&inc)
            .arg(&src),
        "the header as C11",
    );
    let cpp = scratch("header_only.cpp");
    std::fs::copy(&src, &cpp).unwrap();
    let cxx = std::env::var("CXX").ok().or_else(|| {
        ["c++", "g++", "clang++"]
            .into_iter()
            .find(|c| Command::new(c).arg("--version").output().is_ok())
            .map(String::from)
    });
    let Some(cxx) = cxx else {
        // A machine with only a C compiler (Rust needs one to link) can still run the tests;
        // `.ci/run` installs a C++ compiler and sets MULTIPROC_REQUIRE_CXX, so CI never skips.
        assert!(std::env::var_os("MULTIPROC_REQUIRE_CXX").is_none(), "no C++ compiler (c++, g++, clang++) found");
        eprintln!("note: no C++ compiler here: the header's C++17 check is skipped (the C11 one ran)");
        return;
    };
    run(
        Command::new(cxx)
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I"])
            .arg(&inc)
            .arg(&cpp),
        "the header as C++17",
    );
}

#[test]
fn c_suite_passes_under_asan_and_ubsan() {
    let root = root();
    let exe = scratch("suite");
    run(
        Command::new(cc())
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-fno-omit-frame-pointer"])
            .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-DMP_TEST_HOOKS", "-I"])
            .arg(root.join("include"))
            .args(SUITE.iter().map(|f| root.join("capi/tests/c").join(f)))
            .arg(lib_dir().join("libmultiproc.a"))
            .args(NATIVE)
            .arg("-o")
            .arg(&exe),
        "compiling the C suite",
    );
    let out = run(
        Command::new("timeout")
            .args(["-s", "KILL", "180"])
            .arg(&exe)
            // The Rust side keeps thread-local buffers until its threads end: not leaks.
            .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
            .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
        "the C suite",
    );
    assert!(out.contains("all checks passed"), "{out}");
}

/// Every function the header declares is called by the C suite, and every status is expected
/// there (`MP_INTERNAL` through the `test-hooks` function `mp_debug_panic`).
#[test]
fn c_suite_covers_every_function_and_status() {
    let root = root();
    let header = std::fs::read_to_string(root.join("include/multiproc.h")).unwrap();
    let suite: String =
        SUITE.iter().map(|f| std::fs::read_to_string(root.join("capi/tests/c").join(f)).unwrap()).collect();
    let mut functions = Vec::new();
    for line in header.lines() {
        if let Some(rest) = line
            .strip_prefix("mp_status ")
            .or_else(|| line.strip_prefix("const char *"))
            .or_else(|| line.strip_prefix("uint32_t "))
        {
            if let Some(name) = rest.split('(').next().filter(|n| n.starts_with("mp_")) {
                functions.push(name.to_string());
            }
        }
    }
    assert!(functions.len() > 60, "found only {} functions in the header", functions.len());
    let missing: Vec<_> = functions.iter().filter(|f| !suite.contains(&format!("{f}("))).collect();
    assert!(missing.is_empty(), "not called by the C suite (capi/tests/c): {missing:?}");
    let statuses: Vec<&str> =
        header.lines().filter_map(|l| l.trim().strip_prefix("MP_")).filter_map(|l| l.split(" = ").next()).collect();
    assert!(statuses.len() >= 16, "{statuses:?}");
    let unexpected: Vec<_> = statuses.iter().filter(|s| !suite.contains(&format!(", MP_{s})"))).collect();
    assert!(unexpected.is_empty(), "never expected by the C suite: {unexpected:?}");
}

/// The example of docs/C.md, exactly as printed there, builds with the command the README
/// gives and runs to its end (exit 0).
#[test]
fn the_c_example_of_the_docs_builds_with_the_readme_command_and_runs() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("docs/C.md")).unwrap();
    let block = doc.split("```c\n").nth(1).and_then(|b| b.split("```").next()).expect("a ```c block in docs/C.md");
    assert_eq!(
        block,
        std::fs::read_to_string(root.join("examples/c/queue.c")).unwrap(),
        "docs/C.md shows examples/c/queue.c: keep them the same"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let command = readme
        .lines()
        .find(|l| l.starts_with("cc ") && l.contains("examples/c/queue.c"))
        .expect("the README's cc command for examples/c/queue.c");
    let src = scratch("queue_from_docs.c");
    std::fs::write(&src, block).unwrap();
    let exe = scratch("queue_from_docs");
    let command = command
        .replace("target/release/", &format!("{}/", lib_dir().display()))
        .replace("examples/c/queue.c", &src.display().to_string())
        .replace("-o queue && ./queue", &format!("-o {0} && timeout -s KILL 60 {0}", exe.display()));
    let out = run(Command::new("sh").arg("-c").arg(&command).current_dir(&root), "the README's command");
    assert!(out.contains("total 55"), "{out}");
}

/// Every function in the header carries its documentation: what it does, its errors, and
/// whether (and how long) it blocks.
#[test]
fn every_header_function_says_its_errors_and_whether_it_blocks() {
    let header = std::fs::read_to_string(root().join("include/multiproc.h")).unwrap();
    let mut doc = String::new();
    let mut in_doc = false;
    let mut checked = 0;
    let mut bad = Vec::new();
    for line in header.lines() {
        if line.trim_start().starts_with("/**") {
            in_doc = true;
            doc.clear();
        }
        if in_doc {
            doc.push_str(line);
            doc.push('\n');
            if line.contains("*/") {
                in_doc = false;
            }
            continue;
        }
        let decl = ["mp_status ", "const char *", "uint32_t "].iter().find_map(|p| line.strip_prefix(p));
        let Some(name) = decl.and_then(|rest| rest.split('(').next()).filter(|n| n.starts_with("mp_")) else {
            continue;
        };
        checked += 1;
        let d = doc.to_lowercase();
        let errors = d.contains("errors:") || ["mp_last_error", "mp_status_name", "mp_version"].contains(&name);
        let blocking = d.contains("block") || d.contains("wait");
        if !errors || !blocking || d.trim().len() < 40 {
            bad.push(name.to_string());
        }
        doc.clear();
    }
    assert!(checked > 60, "found only {checked} functions");
    assert!(bad.is_empty(), "functions whose docs lack what they do, their errors or their blocking: {bad:?}");
}
