//! The process pool: [`Pool`], [`AsyncResult`], map / imap / imap_unordered / starmap / apply.
//!
//! A thin layer over the process and pipe layers, with no `unsafe` of its own: two one-way
//! pipes per worker carry tasks and results, a manager thread in the parent reads results,
//! runs callbacks, dispatches queued chunks and replaces dead workers, and one shared-memory
//! word per worker records which chunk it is running so that a worker's death fails exactly
//! that chunk (see [`Pool`]).
#![forbid(unsafe_code)]

//!
//! # Files
//! `api.rs` (making a pool, and its end), `calls.rs` (map, starmap, imap, apply and their
//! forms), `deprecated.rs` (the 0.1 names, for one release), `options.rs`, `builder.rs`, `jobs.rs` (calls become chunks, chunk outcomes
//! become results), `outcomes.rs` (one outcome per input, for fuzzing harnesses), `manager.rs` (the manager thread: dispatch, taking queued chunks back,
//! worker deaths), `worker.rs` (the worker's loop), `link.rs` (pipes and worker processes), `deaths.rs` (the thread that wakes the manager at a worker's death),
//! `wire.rs` (the messages), `result.rs` (`AsyncResult`, `IMapIter`), `error.rs`.

mod api;
mod builder;
mod calls;
mod chunk;
mod deaths;
mod deprecated;
mod error;
mod jobs;
mod link;
mod manager;
mod options;
mod outcomes;
mod result;
mod spares;
mod state;
mod wire;
mod worker;
#[cfg(feature = "test-hooks")]
pub(crate) use worker::hooks::{corrupt_own_results, refuse_starts};

pub use crate::process::call::StarFn;
pub use api::Pool;
pub use builder::PoolBuilder;
pub use error::{PoolError, PoolTimeoutError, RemoteError, SpawnError, TryPoolError};
#[allow(deprecated)]
pub use options::AsyncOptions;
pub use options::PoolOptions;
pub use outcomes::{Outcomes, TaskOutcome};
pub use result::{AsyncResult, IMapIter};
pub use worker::task_deadline;

/// What a task's arguments and results may be: any owned serde type (it travels to another
/// process). Implemented for every such type.
///
/// # Examples
///
/// ```
/// fn assert_task_value<T: multiproc::TaskValue>() {}
/// assert_task_value::<(u64, String, Vec<f32>)>();
/// ```
pub trait TaskValue: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> TaskValue for T {}
