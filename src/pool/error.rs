//! Errors of the pool.

use crate::codec::CodecError;
use crate::shm::ShmError;
use std::fmt;
use std::sync::Arc;

/// A task's failure as it happened in the worker: its kind, message and, for a panic, where.
///
/// `kind` is the Rust type name of the error the function returned (for example
/// `core::num::error::ParseIntError`) or `"panic"`; `message` is its `Display` text or the
/// panic message; `location` is `file:line:column` of the panic when the worker saw it.
///
/// # Examples
///
/// ```
/// fn check(s: String) -> u32 { s.parse().expect("a number") }
/// let pool = multiproc::Pool::new(1)?;
/// match pool.apply(check, "x".to_string()) {
///     Err(multiproc::PoolError::Remote(e)) => assert_eq!(e.kind, "panic"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RemoteError {
    /// Type name of the error, or `"panic"`, or `"result too large"` for a chunk whose encoded
    /// results do not fit one pool message (1 GiB).
    pub kind: String,
    /// The error's `Display` text or the panic message.
    pub message: String,
    /// Where the panic happened, when known.
    pub location: Option<String>,
}

impl RemoteError {
    /// A failure of `kind` (`"panic"`, `"codec"`, `"pool"`, …) with its message.
    pub(crate) fn new(kind: &str, message: impl Into<String>) -> RemoteError {
        RemoteError { kind: kind.to_owned(), message: message.into(), location: None }
    }
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

/// Why a worker (or the pool's manager thread) could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// The worker process could not be created.
    Process(crate::StartError),
    /// Its pipes could not be created.
    /// The pool's shared words could not be mapped.
    Shm(ShmError),
    /// The manager thread could not be started.
    Thread(std::io::Error),
    /// A worker ended before it reported that it was ready.
    DiedDuringStartup,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Process(e) => write!(f, "worker process: {e}"),
            SpawnError::Shm(e) => write!(f, "pool shared memory: {e}"),
            SpawnError::Thread(e) => write!(f, "pool manager thread: {e}"),
            SpawnError::DiedDuringStartup => f.write_str("a worker died during start-up"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Process(e) => Some(e),
            SpawnError::Shm(e) => Some(e),
            SpawnError::Thread(e) => Some(e),
            SpawnError::DiedDuringStartup => None,
        }
    }
}

crate::forms::error_forms! {
    /// Why a pool call or an [`AsyncResult`](crate::AsyncResult) produced no value.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pool, PoolError};
    ///
    /// let pool = Pool::new(1)?;
    /// pool.close();
    /// assert!(matches!(pool.map(u64::count_ones, [1u64]), Err(PoolError::NotRunning)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone)]
    pub enum PoolError;
    /// Why [`AsyncResult::try_get`](crate::AsyncResult::try_get) (or a `try_next` of an
    /// `imap` iterator) returned no value: not ready yet, or one of [`PoolError`]'s reasons.
    #[derive(Debug, Clone)]
    pub enum TryPoolError {
        /// The result is not ready yet (POOL-21: Python's `successful()` raises here).
        WouldBlock => "the result is not ready yet", is_would_block
    }
    /// Why a timed wait for a pool result returned no value: not ready when the time ran out
    /// (the task goes on and a later `get` can still return its value: POOL-8), or one of
    /// [`PoolError`]'s reasons.
    #[derive(Debug, Clone)]
    pub enum PoolTimeoutError {
        /// The result was not ready before the time ran out.
        Timeout => "result not ready before the timeout", is_timeout
    }
    {
        /// The task's function panicked in the worker (Python re-raises the original
        /// exception; we keep its kind, message and location).
        Remote(RemoteError) [(e)] => ("task failed in worker: {e}"), source e;
        /// The worker running this task died (SIGKILL, segfault, OOM killer, `exit`) before it
        /// finished: the task failed, the pool replaced the worker, and other tasks go on
        /// (POOL-B1). `index` and `len` name the failed chunk's items (`index..index + len` of
        /// the input; with chunk size 1, or for `apply`, `len` is 1): for a fuzzing harness,
        /// the input that killed the worker.
        WorkerDied {
            /// The worker's pid.
            pid: i32,
            /// The signal that killed it, if a signal did.
            signal: Option<i32>,
            /// Its exit code, if it exited.
            code: Option<i32>,
            /// Index in the input of the first item of the chunk that was running.
            index: usize,
            /// Number of items in that chunk.
            len: usize,
        } [{ pid, signal, code, index, len }] => ("{}", worker_died(*pid, *signal, *code, *index, *len));
        /// The task ran past its time limit ([`PoolBuilder::time_limit`](crate::PoolBuilder::time_limit),
        /// [`PoolOptions::time_limit`](crate::PoolOptions::time_limit)): its worker was killed
        /// with its process group and replaced; other tasks go on (POOL-B4). `index` and `len`
        /// name the chunk's items, as for [`WorkerDied`](PoolError::WorkerDied).
        TimeLimit {
            /// The killed worker's pid.
            pid: i32,
            /// Index in the input of the first item of the chunk that was running.
            index: usize,
            /// Number of items in that chunk.
            len: usize,
            /// The chunk's limit (the per-task limit times `len`).
            limit: std::time::Duration,
        } [{ pid, index, len, limit }] => ("{}", time_limit(*pid, *index, *len, *limit));
        /// The pool was terminated (explicitly or by being dropped) before the task finished
        /// (POOL-B2).
        Terminated => ("pool terminated before the task finished");
        /// The pool does not accept new work: it was closed or terminated (Python's
        /// "Pool not running").
        NotRunning => ("pool not running (closed or terminated)");
        /// The initializer failed in a worker; the pool is broken (POOL-B3).
        InitializerFailed(RemoteError) [(e)] => ("pool initializer failed: {e}"), source e;
        /// An argument or a result could not be encoded, or decoded (POOL-5, POOL-17). `remote`
        /// says whether it happened in the worker (decoding arguments, encoding results).
        Codec {
            /// What went wrong.
            error: CodecError,
            /// Whether the worker reported it.
            remote: bool,
        } [{ error, remote }] => ("{}{error}", if *remote { "in the worker: " } else { "" }), source error;
        /// A worker process could not be started.
        Spawn(Arc<SpawnError>) [(e)] => ("could not start a worker: {e}"), source e;
        /// A pool parameter is invalid (for example zero processes: POOL-12).
        InvalidArgument(&'static str) [(what)] => ("invalid pool argument: {what}");
    }
}

/// The text of a `TimeLimit` error.
fn time_limit(pid: i32, index: usize, len: usize, limit: std::time::Duration) -> String {
    let what = if len == 1 {
        format!("the task for item {index}")
    } else {
        format!("the chunk of items {index}..{}", index + len)
    };
    format!("{what} ran past its time limit of {limit:?}: worker {pid} was killed")
}

/// The text of a `WorkerDied` error.
fn worker_died(pid: i32, signal: Option<i32>, code: Option<i32>, index: usize, len: usize) -> String {
    let how = match (signal, code) {
        (Some(s), _) => format!("worker {pid} died (signal {s})"),
        (None, c) => format!("worker {pid} exited (code {})", c.unwrap_or(-1)),
    };
    if len == 1 {
        format!("{how} while running the task for item {index}")
    } else {
        format!("{how} while running the chunk of items {index}..{}", index + len)
    }
}

impl PoolError {
    pub(crate) fn spawn(e: SpawnError) -> PoolError {
        PoolError::Spawn(Arc::new(e))
    }

    pub(crate) fn local_codec(error: CodecError) -> PoolError {
        PoolError::Codec { error, remote: false }
    }
}
