//! # multiproc
//!
//! Python's `multiprocessing` for Linux systems code: processes, a process pool, queues, pipes,
//! locks, semaphores, events, conditions, barriers and shared values, all built on shared
//! memory and futexes, and tough enough for fuzzing harnesses whose children die at any
//! instruction.
//!
//! (The tutorial grows with each layer; see `README.md` and `docs/GUIDE.md`.)
//!
//! ## Layers
//!
//! `sys` (every system call) and `loom` (the atomics/futex shim) → [`shm`] (segments) →
//! `sync` → `queue` → `process` → `pool`. A layer only uses the layers below it.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(target_os = "linux"))]
compile_error!("multiproc supports Linux only (futex, memfd, pidfd and robust mutexes)");

#[allow(unused_imports)] // not every build uses every shim item
pub(crate) mod loom;
pub(crate) mod sys;

pub mod pool;
pub mod process;
pub mod queue;
pub mod shm;
pub mod sync;

pub use pool::*;
pub use process::*;
pub use queue::*;
pub use shm::{Segment, ShmError, ShmSafe};
pub use sync::*;

// Always built (hidden) so that `cargo test` can replay the fuzz corpora on stable.
#[doc(hidden)]
pub mod fuzz;
