//! `cargo +nightly fuzz run header_validate`: arbitrary bytes into `multiproc::fuzz::validate_header`, which must
//! return without panicking, hanging or touching memory out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| multiproc::fuzz::validate_header(data));
