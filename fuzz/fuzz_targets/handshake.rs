//! `cargo +nightly fuzz run handshake`: arbitrary bytes as a peer's side of the connection
//! handshake (`multiproc::fuzz::handshake`), which must end in `Ok` or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| multiproc::fuzz::handshake(data));
