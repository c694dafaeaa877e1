//! The `multiproc` command: `bench` (cross-process measurements) and `shm` (named segments).
fn main() {}
