//! Replays every committed seed of every fuzz corpus (`fuzz/corpus/<target>/*`) through the
//! matching `multiproc::fuzz` entry point, on stable, as part of `cargo test`: each must return
//! without panicking. (The fuzzer itself needs nightly: `cargo +nightly fuzz run <target>`.)

use std::path::{Path, PathBuf};

/// The entry point of a fuzz target, by corpus directory name.
fn entry_point(target: &str) -> Option<fn(&[u8])> {
    match target {
        "header_validate" => Some(multiproc::fuzz::validate_header),
        "ring_ops" => Some(multiproc::fuzz::ring_ops),
        "pipe_frames" => Some(multiproc::fuzz::pipe_frames),
        "array_queue_ops" => Some(multiproc::fuzz::array_queue_ops),
        "named_open" => Some(multiproc::fuzz::named_open),
        "handshake" => Some(multiproc::fuzz::handshake),
        #[cfg(feature = "serde")]
        "manager_requests" => Some(multiproc::fuzz::manager_requests),
        _ => None,
    }
}

/// Targets whose entry point is not in the library yet: their corpora are present but skipped.
#[cfg(feature = "serde")]
const PENDING: &[&str] = &[];
/// Without serde there is no Manager, and no entry point for its requests.
#[cfg(not(feature = "serde"))]
const PENDING: &[&str] = &["manager_requests"];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    v.sort();
    v
}

#[test]
fn every_corpus_file_replays_through_its_target() {
    let mut replayed = 0;
    for dir in sorted_entries(&fuzz_dir().join("corpus")) {
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(f) = entry_point(&target) else {
            assert!(PENDING.contains(&target.as_str()), "corpus {target} has no fuzz entry point");
            eprintln!("skipping corpus {target}: its multiproc::fuzz entry point is not in this build");
            continue;
        };
        for file in sorted_entries(&dir) {
            let data = std::fs::read(&file).unwrap();
            f(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= 5, "only {replayed} corpus files replayed");
}

#[test]
fn every_fuzz_target_has_a_seed_corpus() {
    for t in sorted_entries(&fuzz_dir().join("fuzz_targets")) {
        let name = t.file_stem().unwrap().to_string_lossy().into_owned();
        let corpus = fuzz_dir().join("corpus").join(&name);
        assert!(corpus.is_dir() && !sorted_entries(&corpus).is_empty(), "fuzz target {name} has no seed corpus");
        assert!(entry_point(&name).is_some() || PENDING.contains(&name.as_str()), "target {name} is not replayed");
    }
}
