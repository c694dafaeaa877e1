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

pub mod shm;
pub mod sync;
pub mod queue;
pub mod process;
pub mod pool;

pub use shm::{Segment, ShmError, ShmSafe};
pub use sync::*;
pub use queue::*;
pub use process::*;
pub use pool::*;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
