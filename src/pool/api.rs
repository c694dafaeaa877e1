//! [`Pool`]: the public calls (map, imap, starmap, apply and their async forms), close,
//! terminate, join.

use super::manager::{fail_everything, RunState, Shared};
use super::options::AsyncOptions;
use super::result::{AsyncResult, IMapIter};
use super::{PoolBuilder, PoolError, TaskValue};
use crate::process::call::CallToken;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A pool of worker processes (Python's `multiprocessing.Pool`), forked from this process.
///
/// Functions sent to workers are plain `fn` items: a forked worker runs the same program
/// image, so a function pointer is valid there (closures created after the workers started
/// would not be). Arguments and results are any owned serde types ([`TaskValue`]) and travel
/// through shared-memory pipes.
///
/// * A worker killed mid-task (SIGKILL, segfault, OOM killer) fails exactly that task with
///   [`PoolError::WorkerDied`], which names the task's input index; the pool starts a
///   replacement and every other task completes (POOL-B1). `map` never hangs.
/// * Work goes to idle workers first, and a chunk queued behind a long task is taken back for
///   a worker that becomes idle: `n` long tasks on `Pool(n)` run at once, and a stuck worker
///   delays only its own task.
/// * [`terminate`](Pool::terminate) (and dropping the pool) resolves every pending result with
///   [`PoolError::Terminated`] (POOL-B2).
/// * An initializer that fails makes [`Pool::builder`]`.build()` return that error once (POOL-B3).
/// * Workers die with the pool's process (parent-death signal): no orphans.
///
/// Workers are forked from the pool's own manager thread, so the fork caveats of
/// [`Process`](crate::Process) apply: a worker must not rely on a lock that another thread of
/// the parent may have held at the moment of the fork.
///
/// # Examples
///
/// ```
/// use multiproc::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::new(5)?;
/// assert_eq!(pool.map(square, 1..=6)?, vec![1, 4, 9, 16, 25, 36]);
/// # Ok::<(), multiproc::PoolError>(())
/// ```
pub struct Pool {
    pub(super) shared: Arc<Shared>,
    pub(super) manager: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Pool")
            .field("processes", &self.shared.config.processes)
            .field("state", &st.run)
            .field("pending_chunks", &st.pending.len())
            .finish()
    }
}

impl Pool {
    /// A pool of `processes` workers (Python's `Pool(processes)`).
    ///
    /// # Errors
    /// As [`PoolBuilder::build`]: zero processes is [`PoolError::InvalidArgument`] (POOL-12).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Pool::new(2)?.processes(), 2);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the other options.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiproc::Pool::builder().processes(1).build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Number of worker processes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Pool::new(3)?.processes(), 3);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.shared.config.processes
    }

    /// Pids of the current workers (replacements included, dead ones excluded).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Pool::new(2)?.worker_pids().len(), 2);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<i32> {
        self.shared.lock().workers.iter().flatten().map(|w| w.proc.pid()).collect()
    }

    /// Applies `f` to every item, in parallel, and returns the results in input order
    /// (Python's `Pool.map`). Items are sent in chunks of Python's default size.
    ///
    /// # Errors
    /// The first failure of any chunk: [`PoolError::Remote`] for a panic in `f`,
    /// [`PoolError::WorkerDied`] (naming the items of the chunk whose worker died),
    /// [`PoolError::Codec`], [`PoolError::NotRunning`], [`PoolError::Terminated`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.map(square, 0..10)?, (0..10).map(square).collect::<Vec<_>>());
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn map<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError> {
        self.map_async(f, items)?.into_value()
    }

    /// [`map`](Self::map) with an explicit `chunksize` (at least 1).
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.map_chunked(square, 0..100, 20)?.len(), 100);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn map_chunked<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        self.map_async_with(f, items, AsyncOptions::new().chunksize(chunksize))?.into_value()
    }

    /// [`map`](Self::map) without waiting: returns an [`AsyncResult`] for the whole list.
    ///
    /// # Errors
    /// [`PoolError::NotRunning`], [`PoolError::Codec`] (an argument that cannot be encoded);
    /// the tasks' own failures come from the result.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let r = pool.map_async(square, [3, 4])?;
    /// assert_eq!(r.get()?, [9, 16]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn map_async<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        self.map_async_with(f, items, AsyncOptions::new())
    }

    /// [`map_async`](Self::map_async) with options: chunk size, and a `callback` run once in
    /// the parent with the whole result list, or an `error_callback` run once with the error
    /// (POOL-4).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// See [`AsyncOptions`].
    pub fn map_async_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        options: AsyncOptions<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), options.chunksize, options.callback, options.error_callback)
    }

    /// Like [`map`](Self::map) for a fallible function: the first `Err` fails the call with
    /// [`PoolError::Remote`] carrying the error's type name and `Display` text.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn parse(s: String) -> Result<u8, std::num::ParseIntError> { s.parse() }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.try_map(parse, ["1".to_string(), "2".into()])?, [1, 2]);
    /// assert!(pool.try_map(parse, ["x".to_string()]).is_err());
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn try_map<A: TaskValue, R: TaskValue, E: std::fmt::Display>(
        &self,
        f: fn(A) -> Result<R, E>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError> {
        let call = CallToken::try_map(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), None, None, None)?.into_value()
    }

    /// Python's `starmap` for two-argument functions: `f(a, b)` for each `(a, b)`.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn mul(a: u32, b: u32) -> u32 { a * b }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.starmap(mul, [(2, 3), (4, 5)])?, [6, 20]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn starmap<A: TaskValue, B: TaskValue, R: TaskValue>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Vec<R>, PoolError> {
        self.starmap_async_with(f, items, AsyncOptions::new())?.into_value()
    }

    /// [`starmap`](Self::starmap) with an explicit `chunksize`.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn mul(a: u32, b: u32) -> u32 { a * b }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.starmap_chunked(mul, (0..10).map(|i| (i, i)), 3)?[9], 81);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn starmap_chunked<A: TaskValue, B: TaskValue, R: TaskValue>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        self.starmap_async_with(f, items, AsyncOptions::new().chunksize(chunksize))?.into_value()
    }

    /// [`starmap`](Self::starmap) without waiting.
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// fn mul(a: u32, b: u32) -> u32 { a * b }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.starmap_async(mul, [(2, 3)])?.get()?, [6]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn starmap_async<A: TaskValue, B: TaskValue, R: TaskValue>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        self.starmap_async_with(f, items, AsyncOptions::new())
    }

    /// [`starmap_async`](Self::starmap_async) with options.
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// fn mul(a: u32, b: u32) -> u32 { a * b }
    /// let pool = multiproc::Pool::new(2)?;
    /// let r = pool.starmap_async_with(mul, [(2, 3)], multiproc::AsyncOptions::new().chunksize(1))?;
    /// assert_eq!(r.get()?, [6]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn starmap_async_with<A: TaskValue, B: TaskValue, R: TaskValue>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
        options: AsyncOptions<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        let call = CallToken::star2(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), options.chunksize, options.callback, options.error_callback)
    }

    /// Python's `starmap` for three-argument functions.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn fma(a: u32, b: u32, c: u32) -> u32 { a * b + c }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.starmap3(fma, [(2, 3, 1)])?, [7]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn starmap3<A: TaskValue, B: TaskValue, C: TaskValue, R: TaskValue>(
        &self,
        f: fn(A, B, C) -> R,
        items: impl IntoIterator<Item = (A, B, C)>,
    ) -> Result<Vec<R>, PoolError> {
        let call = CallToken::star3(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), None, None, None)?.into_value()
    }

    /// Lazy, ordered map (Python's `imap`): an iterator that yields each result, in input order,
    /// as soon as it (and all before it) have arrived. `chunksize` defaults to 1 in Python.
    ///
    /// # Errors
    /// [`PoolError::NotRunning`], [`PoolError::Codec`]; each task's failure is an `Err` item
    /// of the iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let v: Vec<u64> = pool.imap(square, 0..5, 1)?.collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 4, 9, 16]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn imap<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMapIter<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.imap_job(call, items.into_iter().collect(), chunksize.max(1), true)
    }

    /// Like [`imap`](Self::imap) but yields results in completion order (Python's
    /// `imap_unordered`).
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let mut v: Vec<u64> = pool.imap_unordered(square, 0..5, 1)?.collect::<Result<_, _>>()?;
    /// v.sort();
    /// assert_eq!(v, vec![0, 1, 4, 9, 16]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn imap_unordered<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMapIter<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.imap_job(call, items.into_iter().collect(), chunksize.max(1), false)
    }

    /// Calls `f(arg)` in a worker and waits for the result (Python's `apply`). Several
    /// arguments travel as a tuple.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn add((a, b): (u32, u32)) -> u32 { a + b }
    /// let pool = multiproc::Pool::new(1)?;
    /// assert_eq!(pool.apply(add, (2, 3))?, 5);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn apply<A: TaskValue, R: TaskValue>(&self, f: fn(A) -> R, arg: A) -> Result<R, PoolError> {
        self.apply_async(f, arg)?.into_value()
    }

    /// Calls `f(arg)` in a worker without waiting (Python's `apply_async`).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// assert_eq!(pool.apply_async(square, 7)?.get()?, 49);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn apply_async<A: TaskValue, R: TaskValue>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>, PoolError> {
        self.apply_async_with(f, arg, AsyncOptions::new())
    }

    /// [`apply_async`](Self::apply_async) with callbacks (the chunk size is ignored).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async_with(square, 3, multiproc::AsyncOptions::new().callback(|v| assert_eq!(*v, 9)))?;
    /// assert_eq!(r.get()?, 9);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn apply_async_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        arg: A,
        options: AsyncOptions<R>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.single(call, arg, options.callback, options.error_callback)
    }

    /// [`apply`](Self::apply) for a fallible function.
    ///
    /// # Errors
    /// As [`try_map`](Self::try_map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn parse(s: String) -> Result<u8, std::num::ParseIntError> { s.parse() }
    /// let pool = multiproc::Pool::new(1)?;
    /// assert_eq!(pool.try_apply(parse, "7".to_string())?, 7);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn try_apply<A: TaskValue, R: TaskValue, E: std::fmt::Display>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<R, PoolError> {
        self.try_apply_async_with(f, arg, AsyncOptions::new())?.into_value()
    }

    /// [`apply_async`](Self::apply_async) for a fallible function, with options: `callback`
    /// with the value, or `error_callback` with the error (POOL-16).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// fn parse(s: String) -> Result<u8, std::num::ParseIntError> { s.parse() }
    /// let pool = multiproc::Pool::new(1)?;
    /// let opts = multiproc::AsyncOptions::new().error_callback(|e| eprintln!("failed: {e}"));
    /// assert!(pool.try_apply_async_with(parse, "x".to_string(), opts)?.get().is_err());
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn try_apply_async_with<A: TaskValue, R: TaskValue, E: std::fmt::Display>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
        options: AsyncOptions<R>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let call = CallToken::try_map(&self.shared.key, f);
        self.single(call, arg, options.callback, options.error_callback)
    }

    /// Stops accepting work; submitted work still completes (Python's `close`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiproc::Pool::new(1)?;
    /// pool.close();
    /// pool.join();
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn close(&self) {
        let mut st = self.shared.lock();
        if st.run == RunState::Running {
            st.run = RunState::Closed;
        }
        self.shared.bell.ring();
    }

    /// Kills the workers at once; every unfinished result resolves with
    /// [`PoolError::Terminated`] (Python's `terminate`, and what dropping the pool does).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(sleep, 60_000)?;
    /// pool.terminate();
    /// assert!(matches!(r.get(), Err(multiproc::PoolError::Terminated)));
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn terminate(&self) {
        {
            let mut st = self.shared.lock();
            if !matches!(st.run, RunState::Broken(_)) {
                st.run = RunState::Terminated;
            }
            fail_everything(&mut st, &PoolError::Terminated);
            for w in st.workers.iter().flatten() {
                w.proc.kill();
            }
        }
        self.shared.bell.ring();
        self.shared.idle.notify_all();
        self.join_manager();
    }

    /// Waits for the workers to finish and exit (Python's `join`). Call [`close`](Self::close)
    /// or [`terminate`](Self::terminate) first; on a running pool this closes it.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(square, 2)?;
    /// pool.close();
    /// pool.join(); // submitted work finished first
    /// assert_eq!(r.get()?, 4);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn join(&self) {
        self.close();
        {
            let mut st = self.shared.lock();
            while !st.jobs.is_empty() && st.run == RunState::Closed {
                st = self.shared.idle.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        self.join_manager();
    }

    fn join_manager(&self) {
        let h = self.manager.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }
}

impl Drop for Pool {
    /// Terminates the pool, like leaving Python's `with Pool() as p:` block.
    fn drop(&mut self) {
        self.terminate();
    }
}
