//! Entry points for the cargo-fuzz targets in `fuzz/` (built only with `--cfg fuzzing`), and
//! for the corpus replay in `tests/fuzz_corpus.rs`.

/// Feeds arbitrary bytes to the segment-header validation: must return, never panic or read
/// out of bounds, whatever the input.
pub fn validate_header(bytes: &[u8]) {
    let mapping_len = bytes.len() as u64;
    let _ = crate::shm::validate_header(bytes, mapping_len);
}
