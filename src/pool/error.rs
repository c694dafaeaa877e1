//! Errors of the pool.

use std::fmt;

/// A task's failure as it happened in the worker: its kind, message and, for a panic, where.
///
/// `kind` is the Rust type name of the error the function returned (for example
/// `core::num::error::ParseIntError`) or `"panic"`; `message` is its `Display` text or the
/// panic message; `location` is `file:line:column` of the panic when the worker saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteError {
    /// Type name of the error, or `"panic"`.
    pub kind: String,
    /// The error's `Display` text or the panic message.
    pub message: String,
    /// Where the panic happened, when known.
    pub location: Option<String>,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(loc) = &self.location {
            write!(f, " (at {loc})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {}

/// Why a pool call or an [`AsyncResult`](crate::AsyncResult) produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// The task's function returned an error or panicked in the worker (Python re-raises the
    /// original exception; we keep its kind, message and location).
    Remote(RemoteError),
    /// The worker running this task died (SIGKILL, segfault, OOM killer, `exit`) before it
    /// finished: the task failed, the pool replaced the worker, and other tasks go on (POOL-B1).
    WorkerDied {
        /// The worker's pid.
        pid: i32,
        /// The signal that killed it, if a signal did.
        signal: Option<i32>,
        /// Its exit code, if it exited.
        code: Option<i32>,
    },
    /// The pool was terminated (explicitly or by being dropped) before the task finished
    /// (POOL-B2).
    Terminated,
    /// The pool does not accept new work: it was closed or terminated (Python's
    /// "Pool not running").
    NotRunning,
    /// `get_timeout`/`get_deadline` ran out before the result was ready; the task goes on and a
    /// later `get` can still return its value (POOL-8).
    Timeout,
    /// `successful()` was asked before the result was ready (POOL-21).
    NotReady,
    /// The initializer failed in a worker; the pool is broken (POOL-B3).
    InitializerFailed(RemoteError),
    /// An argument could not be serialized, or a result could not be serialized in the worker
    /// or deserialized in the parent (POOL-5, POOL-17).
    Serialization(String),
    /// A worker process could not be started.
    Spawn(String),
    /// A pool parameter is invalid (for example zero processes: POOL-12).
    InvalidArgument(&'static str),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Remote(e) => write!(f, "task failed in worker: {e}"),
            PoolError::WorkerDied { pid, signal: Some(s), .. } => {
                write!(f, "worker {pid} died (signal {s}) while running the task")
            }
            PoolError::WorkerDied { pid, code, .. } => {
                write!(f, "worker {pid} exited (code {}) while running the task", code.unwrap_or(-1))
            }
            PoolError::Terminated => f.write_str("pool terminated before the task finished"),
            PoolError::NotRunning => f.write_str("pool not running (closed or terminated)"),
            PoolError::Timeout => f.write_str("result not ready before the timeout"),
            PoolError::NotReady => f.write_str("result is not ready yet"),
            PoolError::InitializerFailed(e) => write!(f, "pool initializer failed: {e}"),
            PoolError::Serialization(e) => write!(f, "serialization failed: {e}"),
            PoolError::Spawn(e) => write!(f, "could not start a worker: {e}"),
            PoolError::InvalidArgument(what) => write!(f, "invalid pool argument: {what}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Remote(e) | PoolError::InitializerFailed(e) => Some(e),
            _ => None,
        }
    }
}
