//! What the scheduler moves around: a job's chunks and where their outcomes go. A leaf: the
//! scheduler (`manager.rs`) and the job side (`jobs.rs`) both use these, neither through the
//! other.

use super::PoolError;
use crate::process::call::CallToken;

/// Called once per finished chunk of a job, with the chunk's index and its encoded results
/// (`usize::MAX` and an error when the whole job fails at once).
pub(super) type Sink = Box<dyn FnMut(usize, Result<Vec<u8>, PoolError>) + Send>;

/// One chunk of a job: `items` consecutive input items starting at `first_item`.
pub(super) struct Chunk {
    pub(super) job: u64,
    /// The chunk's number within its job.
    pub(super) index: usize,
    /// Index in the job's input of the chunk's first item.
    pub(super) first_item: usize,
    /// Items in the chunk.
    pub(super) items: usize,
    pub(super) call: CallToken,
    pub(super) args: Vec<u8>,
    /// How long the chunk may run once a worker starts it (the task limit times `items`).
    pub(super) limit: Option<std::time::Duration>,
}

/// A job: where its chunks' outcomes go.
pub(super) struct Job {
    pub(super) chunks_left: usize,
    pub(super) sink: Sink,
}
