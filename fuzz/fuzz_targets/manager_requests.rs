//! `cargo +nightly fuzz run manager_requests`: arbitrary messages as an authenticated client's
//! requests to a Manager's server (`multiproc::fuzz::manager_requests`), which must answer each
//! with a reply or an error and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| multiproc::fuzz::manager_requests(data));
