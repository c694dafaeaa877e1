//! The process pool: [`Pool`], [`AsyncResult`], map / imap / imap_unordered / starmap / apply.
//!
//! A thin layer over the process and pipe layers, with no `unsafe` of its own: one duplex pipe
//! per worker carries tasks and results (postcard), a manager thread in the parent reads
//! results, runs callbacks, dispatches queued chunks and replaces dead workers, and one
//! shared-memory word per worker records which chunk it is running so that a worker's death
//! fails exactly that chunk (see [`Pool`]).
#![forbid(unsafe_code)]

mod core;
mod error;
mod link;
mod result;
mod wire;
mod worker;

pub use self::core::{Pool, PoolBuilder};
pub use error::{PoolError, RemoteError};
pub use result::{AsyncResult, IMapIter};
