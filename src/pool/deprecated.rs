//! The pool calls that 0.2 renamed or folded into others, kept one release with their old
//! signatures so that code written for 0.1 still builds (with a warning naming the
//! replacement).

#![allow(deprecated)]

use super::options::PoolOptions;
use super::result::AsyncResult;
use super::{Pool, PoolError, TaskValue};
use crate::process::call::CallToken;

impl Pool {
    /// [`map`](Self::map) with an explicit `chunksize`.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    #[deprecated(since = "0.2.0", note = "use `map_with(f, items, PoolOptions::new().chunksize(n))`")]
    pub fn map_chunked<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        self.map_with(f, items, PoolOptions::new().chunksize(chunksize))
    }

    /// [`starmap`](Self::starmap) with an explicit `chunksize`.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    #[deprecated(since = "0.2.0", note = "use `starmap_with(f, items, PoolOptions::new().chunksize(n))`")]
    pub fn starmap_chunked<A: TaskValue, B: TaskValue, R: TaskValue>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        let call = CallToken::star2_ptr(&self.shared.key, f);
        self.map_job(call, items, PoolOptions::new().chunksize(chunksize))?.into_value()
    }

    /// Python's `starmap` for three-argument functions.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    #[deprecated(since = "0.2.0", note = "use `starmap`: it takes functions of one to six arguments")]
    pub fn starmap3<A: TaskValue, B: TaskValue, C: TaskValue, R: TaskValue>(
        &self,
        f: fn(A, B, C) -> R,
        items: impl IntoIterator<Item = (A, B, C)>,
    ) -> Result<Vec<R>, PoolError> {
        let call = CallToken::star3_ptr(&self.shared.key, f);
        self.map_job(call, items, PoolOptions::new())?.into_value()
    }

    /// Like [`map`](Self::map) for a fallible function: the first `Err` fails the call with
    /// [`PoolError::Remote`] carrying the error's type name and `Display` text.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    #[deprecated(
        since = "0.2.0",
        note = "use `map`: a task returning `Result<R, E>` gives `Vec<Result<R, E>>` (E: serde), or panic to fail the call"
    )]
    pub fn try_map<A: TaskValue, R: TaskValue, E: std::fmt::Display>(
        &self,
        f: fn(A) -> Result<R, E>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError> {
        let call = CallToken::try_map(&self.shared.key, f);
        self.map_job(call, items, PoolOptions::new())?.into_value()
    }

    /// [`apply`](Self::apply) for a fallible function.
    ///
    /// # Errors
    /// As [`try_map`](Self::try_map).
    #[deprecated(
        since = "0.2.0",
        note = "use `apply`: a task returning `Result<R, E>` gives it back as its value (E: serde)"
    )]
    pub fn try_apply<A: TaskValue, R: TaskValue, E: std::fmt::Display>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<R, PoolError> {
        self.try_apply_async_with(f, arg, PoolOptions::new())?.into_value()
    }

    /// [`apply_async`](Self::apply_async) for a fallible function (removed in 0.1 without a
    /// deprecation; back for one release so that the compiler names the replacement).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    #[deprecated(
        since = "0.2.0",
        note = "use `apply_async`: a task returning `Result<R, E>` gives it back as its value (E: serde)"
    )]
    pub fn try_apply_async<A: TaskValue, R: TaskValue, E: std::fmt::Display>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<AsyncResult<R>, PoolError> {
        self.try_apply_async_with(f, arg, PoolOptions::new())
    }

    /// [`apply_async`](Self::apply_async) for a fallible function, with options.
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    #[deprecated(
        since = "0.2.0",
        note = "use `apply_async_with`: a task returning `Result<R, E>` gives it back as its value (E: serde)"
    )]
    pub fn try_apply_async_with<A: TaskValue, R: TaskValue, E: std::fmt::Display>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
        options: PoolOptions<R>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let call = CallToken::try_map(&self.shared.key, f);
        self.single(call, arg, options)
    }
}
