//! `cargo +nightly fuzz run pipe_frames`: arbitrary bytes into `multiproc::fuzz::pipe_frames`, which must
//! return without panicking, hanging or touching memory out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| multiproc::fuzz::pipe_frames(data));
