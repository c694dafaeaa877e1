//! A C program and a Rust program, started as two programs, share a named `Queue`, `Lock`
//! and `Broadcast` and see each other's messages: `examples/c/peer.c` against the example
//! `rust_peer` (which cargo builds for the tests).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

#[test]
fn c_and_rust_share_a_queue_a_lock_and_a_broadcast() {
    let root = root();
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let target = profile_dir.parent().unwrap();
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "--quiet", "-p", "multiproc-c", "--lib", "--example", "rust_peer", "--target-dir"])
        .arg(target)
        .current_dir(&root);
    if profile_dir.file_name().unwrap() == "release" {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building libmultiproc and rust_peer");

    let peer = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_peer");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("examples/c/peer.c"))
        .arg(profile_dir.join("libmultiproc.a"))
        .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-o"])
        .arg(&peer)
        .output()
        .unwrap();
    assert!(out.status.success(), "compiling examples/c/peer.c:\n{}", String::from_utf8_lossy(&out.stderr));

    let out = Command::new("timeout")
        .args(["-s", "KILL", "120"])
        .arg(profile_dir.join("examples/rust_peer"))
        .arg("--")
        .arg(&peer)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "rust_peer with the C peer failed:\n{text}");
    assert!(text.contains("saw each other's messages"), "{text}");
}
