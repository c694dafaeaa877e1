//! A `Pool` kept by the manager's server (Python's `manager.Pool(n)`, MGR-9): the
//! server object and its proxy.
//!
//! The server cannot know the task's types, so a client sends what a pool worker runs: the
//! task's call token (the trampoline for its argument and result types and the function, as
//! offsets in the binary, tagged with the manager's key) and the arguments already encoded in
//! chunks. The server checks the tag, re-tags the call with its pool's own key, runs the
//! chunks, and sends back each chunk's encoded results, which the client decodes. Client and
//! server must run the same executable (a server started by `Manager::start` does; a remote
//! `serve` in another program gets a tag that does not check and says so).
//!
//! The pool's workers are spawned (`StartMethod::Spawn`): the server has a thread per client,
//! and a fork from a threaded process is what spawn exists to avoid.

use super::client::ManagerError;
use super::objects::{Caller, Object};
use super::protocol::{Failure, Op, Reply};
use super::proxy::Handle;
use crate::process::call::{CallKey, CallToken};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// The server side: a pool and the key clients tag their calls with.
pub(crate) struct PoolObject {
    pool: crate::Pool,
    key: CallKey,
}

impl PoolObject {
    /// A pool of `processes` spawned workers.
    pub(crate) fn new(processes: usize, key: CallKey) -> Result<PoolObject, Failure> {
        let pool =
            crate::Pool::builder()
                .processes(processes.max(1))
                .start_method(crate::StartMethod::Spawn)
                .build()
                .map_err(|e| Failure::Remote(crate::RemoteError::new("pool", format!("cannot start the pool: {e}"))))?;
        Ok(PoolObject { pool, key })
    }
}

impl Object for PoolObject {
    fn call(&self, _: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        match op {
            Op::PoolRun { call, chunks, chunksize, items } => {
                let call = self.pool.retag(&self.key, &call).ok_or_else(|| {
                    Failure::Remote(crate::RemoteError::new("token", "the task does not check: another executable?"))
                })?;
                let out = self
                    .pool
                    .run_encoded(call, chunks, chunksize as usize, items as usize)
                    .map_err(|e| Failure::Remote(crate::RemoteError::new("pool", e.to_string())))?;
                Ok(Reply::List(out))
            }
            _ => Err(Failure::WrongOp),
        }
    }
}

super::proxy::proxy_type!(
    /// A process pool in the manager's server (Python's `manager.Pool(n)`): any process with
    /// the proxy (a child, a spawned process, a client of a remote manager running the same
    /// executable) hands it tasks. Tasks are `fn` items, as for [`Pool`](crate::Pool).
    /// Made by [`Manager::pool`](super::Manager::pool).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let m = multiproc::Manager::start()?;
    /// let pool = m.pool(2)?;
    /// assert_eq!(pool.map(square, vec![1, 2, 3])?, [1, 4, 9]);
    /// assert_eq!(pool.apply(square, 7)?, 49);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    PoolProxy
);

impl PoolProxy {
    /// `pool.map(f, items)`: `f` over every item in the server's workers, results in order.
    ///
    /// # Errors
    /// [`ManagerError::Remote`] with the pool's error (a panic in `f`, a worker that died).
    pub fn map<A, R>(&self, f: fn(A) -> R, items: Vec<A>) -> Result<Vec<R>, ManagerError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let n = items.len();
        let chunksize = n.div_ceil(4).max(1);
        let chunks = items.chunks(chunksize).map(super::proxy::enc).collect::<Result<Vec<_>, _>>()?;
        let call = CallToken::map(&CallKey::from_secret(&self.h.remote.authkey), f);
        let op = Op::PoolRun { call, chunks, chunksize: chunksize as u64, items: n as u64 };
        let mut out = Vec::with_capacity(n);
        for chunk in self.h.raw_list(op)? {
            out.extend(super::proxy::dec::<Vec<R>>(&chunk)?);
        }
        Ok(out)
    }

    /// `pool.apply(f, (arg,))`: `f(arg)` in one of the server's workers.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, ManagerError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.map(f, vec![arg])?.pop().ok_or(ManagerError::Unsupported)
    }
}
