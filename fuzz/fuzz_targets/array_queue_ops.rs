//! `cargo +nightly fuzz run array_queue_ops`: arbitrary bytes into `multiproc::fuzz::array_queue_ops`, which must
//! return without panicking, hanging or touching memory out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| multiproc::fuzz::array_queue_ops(data));
