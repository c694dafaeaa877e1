//! Messages between the pool's manager thread and its workers (postcard over a duplex pipe).

use super::RemoteError;
use crate::process::call::CallToken;
use serde::{Deserialize, Serialize};

/// Parent → worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run one chunk. `seq` is the dispatch number the worker writes into its claim slot
    /// before running, so that after a death the parent knows whether this chunk had started.
    Run { seq: u64, call: CallToken, args: Vec<u8> },
    /// Finish: exit with code 0.
    Stop,
}

/// Worker → parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The initializer (if any) succeeded; the worker takes tasks.
    Ready,
    /// The initializer failed; the worker exits.
    InitFailed(RemoteError),
    /// A chunk finished: the encoded `Vec<R>` or the failure.
    Done { seq: u64, outcome: Result<Vec<u8>, TaskFailure> },
}

/// Why a chunk produced no value, as the worker reports it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum TaskFailure {
    /// The function returned an error or panicked.
    Remote(RemoteError),
    /// The arguments could not be decoded or the results encoded in the worker.
    Serialization(String),
}

impl From<TaskFailure> for super::PoolError {
    fn from(f: TaskFailure) -> super::PoolError {
        match f {
            TaskFailure::Remote(e) => super::PoolError::Remote(e),
            TaskFailure::Serialization(m) => super::PoolError::Serialization(m),
        }
    }
}
