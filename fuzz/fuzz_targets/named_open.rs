//! `cargo +nightly fuzz run named_open`: a hostile named object's directory words and bytes
//! into `multiproc::fuzz::named_open`, which opens them as every kind of object and uses them:
//! it must return without panicking, hanging or touching memory out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| multiproc::fuzz::named_open(data));
