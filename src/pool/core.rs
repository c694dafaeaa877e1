//! `Pool`: the manager thread, dispatch, worker death, and the public calls.

use super::link::{self, Doorbell, Link, WorkerExit, WorkerProc};
use super::result::{AsyncResult, ChunkMsg, IMapIter, Slot};
use super::wire::{FromWorker, ToWorker};
use super::{PoolError, RemoteError};
use crate::process::call::{CallKey, CallToken};
use crate::shm::WordArray;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How many chunks a worker may hold at once: one running and one waiting in its pipe, so it
/// never idles between tasks while the parent is slow to dispatch.
const PIPELINE: usize = 2;

/// How often the manager thread looks at worker liveness and control flags when no message
/// arrives.
const TICK: Duration = Duration::from_millis(20);

/// Called once per finished chunk of a job, with the chunk's index and its encoded results.
type Sink = Box<dyn FnMut(usize, Result<Vec<u8>, PoolError>) + Send>;

/// A success callback, run once in the parent's pool thread.
type Callback<T> = Option<Box<dyn FnOnce(&T) + Send>>;

/// An error callback, run once in the parent's pool thread.
type ErrorCallback = Option<Box<dyn FnOnce(&PoolError) + Send>>;

/// An initializer run in every worker before its first task.
type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum RunState {
    Running,
    /// `close()` was called: no new work; workers stop once every job is done.
    Closed,
    /// `terminate()` was called or the pool was dropped.
    Terminated,
    /// A worker's initializer failed (POOL-B3).
    Broken(RemoteError),
}

struct Chunk {
    job: u64,
    index: usize,
    call: CallToken,
    args: Vec<u8>,
}

struct Job {
    chunks_left: usize,
    sink: Sink,
}

struct Worker {
    proc: WorkerProc,
    link: Arc<Link>,
    /// Dispatched chunks without a result yet, in the order the worker receives them.
    outstanding: VecDeque<(u64, Chunk)>,
    /// The initializer has run and the worker takes tasks.
    ready: bool,
    /// Chunks completed by this process (for `maxtasksperchild`).
    done: usize,
}

struct State {
    run: RunState,
    workers: Vec<Option<Worker>>,
    pending: VecDeque<Chunk>,
    jobs: HashMap<u64, Job>,
    next_job: u64,
    next_seq: u64,
}

struct Config {
    processes: usize,
    maxtasksperchild: Option<usize>,
    initializer: Option<Initializer>,
    pipe_capacity: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job finishes or the pool stops (for `join`).
    idle: Condvar,
    config: Config,
    key: CallKey,
    /// One word per worker slot: the dispatch number of the chunk that worker is running.
    claims: WordArray,
    /// Wakes the manager thread on close and terminate.
    bell: Doorbell,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pool of worker processes (Python's `multiprocessing.Pool`), forked from this process.
///
/// Functions sent to workers are plain `fn` items: a forked worker runs the same program
/// image, so a function pointer is valid there (closures created after the workers started
/// would not be). Arguments and results travel through shared-memory pipes with postcard.
///
/// * A worker killed mid-task (SIGKILL, segfault, OOM killer) fails exactly that task with
///   [`PoolError::WorkerDied`]; the pool starts a replacement and every other task completes
///   (POOL-B1). `map` never hangs.
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
    shared: Arc<Shared>,
    manager: Mutex<Option<JoinHandle<()>>>,
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

/// Builds a [`Pool`] with options (Python's `Pool(processes, initializer, initargs,
/// maxtasksperchild)`).
///
/// # Examples
///
/// ```
/// use multiproc::Pool;
///
/// fn inc(x: i32) -> i32 { x + 1 }
///
/// let pool = Pool::builder().processes(2).maxtasksperchild(10).initializer(|| Ok::<(), String>(())).build()?;
/// assert_eq!(pool.map(inc, vec![1, 2, 3])?, vec![2, 3, 4]);
/// # Ok::<(), multiproc::PoolError>(())
/// ```
pub struct PoolBuilder {
    processes: Option<usize>,
    maxtasksperchild: Option<usize>,
    initializer: Option<Initializer>,
    pipe_capacity: usize,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("maxtasksperchild", &self.maxtasksperchild)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

impl PoolBuilder {
    /// Number of worker processes (default: the number of usable CPUs); at least 1.
    pub fn processes(mut self, n: usize) -> PoolBuilder {
        self.processes = Some(n);
        self
    }

    /// Replace each worker after it has completed `n` chunks (at least 1).
    pub fn maxtasksperchild(mut self, n: usize) -> PoolBuilder {
        self.maxtasksperchild = Some(n);
        self
    }

    /// Run `init` in every worker before its first task. The closure is captured before the
    /// workers are forked, so unlike task functions it may be any closure. If it returns an
    /// error or panics, [`build`](Self::build) fails with [`PoolError::InitializerFailed`].
    pub fn initializer<E: std::fmt::Display>(
        mut self,
        init: impl Fn() -> Result<(), E> + Send + Sync + 'static,
    ) -> PoolBuilder {
        self.initializer = Some(Arc::new(move || init().map_err(|e| e.to_string())));
        self
    }

    /// Capacity in bytes of each worker's pipe ring (larger messages are streamed through it).
    pub fn pipe_capacity(mut self, bytes: usize) -> PoolBuilder {
        self.pipe_capacity = bytes;
        self
    }

    /// Starts the workers and waits until every one of them has run its initializer.
    ///
    /// # Errors
    /// [`PoolError::InvalidArgument`] for zero processes or `maxtasksperchild(0)`,
    /// [`PoolError::Spawn`] if a worker cannot be forked (those already started are killed),
    /// [`PoolError::InitializerFailed`] if the initializer fails in a worker.
    pub fn build(self) -> Result<Pool, PoolError> {
        let processes = self.processes.unwrap_or_else(crate::sys::process::usable_cpus);
        if processes == 0 {
            return Err(PoolError::InvalidArgument("number of processes must be at least 1"));
        }
        if self.maxtasksperchild == Some(0) {
            return Err(PoolError::InvalidArgument("maxtasksperchild must be at least 1"));
        }
        let claims = WordArray::new(processes).map_err(|e| PoolError::Spawn(e.to_string()))?;
        let bell = Doorbell::new().map_err(|e| PoolError::Spawn(e.to_string()))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                run: RunState::Running,
                workers: (0..processes).map(|_| None).collect(),
                pending: VecDeque::new(),
                jobs: HashMap::new(),
                next_job: 0,
                next_seq: 1,
            }),
            idle: Condvar::new(),
            config: Config {
                processes,
                maxtasksperchild: self.maxtasksperchild,
                initializer: self.initializer,
                pipe_capacity: self.pipe_capacity,
            },
            key: CallKey::new(),
            claims,
            bell,
        });
        let (started_tx, started_rx) = mpsc::channel();
        let manager = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("multiproc-pool".into())
                .spawn(move || manager_main(shared, started_tx))
                .map_err(|e| PoolError::Spawn(e.to_string()))?
        };
        let pool = Pool { shared, manager: Mutex::new(Some(manager)) };
        match started_rx.recv() {
            Ok(Ok(())) => Ok(pool),
            Ok(Err(e)) => {
                pool.terminate();
                Err(e)
            }
            Err(_) => {
                pool.terminate();
                Err(PoolError::Spawn("pool manager thread ended during start-up".into()))
            }
        }
    }
}

/// Python's default `chunksize` for the map family: `ceil(len / (4 * processes))`.
fn default_chunksize(len: usize, processes: usize) -> usize {
    if len == 0 {
        return 1;
    }
    len.div_ceil(4 * processes).max(1)
}

impl Pool {
    /// A pool of `processes` workers (Python's `Pool(processes)`).
    ///
    /// # Errors
    /// As [`PoolBuilder::build`]: zero processes is [`PoolError::InvalidArgument`] (POOL-12).
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the other options.
    pub fn builder() -> PoolBuilder {
        PoolBuilder { processes: None, maxtasksperchild: None, initializer: None, pipe_capacity: 1 << 20 }
    }

    /// Number of worker processes.
    pub fn processes(&self) -> usize {
        self.shared.config.processes
    }

    /// Pids of the current workers (replacements included, dead ones excluded).
    pub fn worker_pids(&self) -> Vec<i32> {
        self.shared.lock().workers.iter().flatten().map(|w| w.proc.pid()).collect()
    }

    /// Queues the `n` chunks of a new job whose outcome goes to `sink`.
    ///
    /// Chunks are taken from `chunks` one at a time and dispatched at once, so workers start on
    /// the first chunk while the caller is still encoding the rest (encoding a million
    /// integers takes milliseconds, which used to pass with every worker idle). A chunk that
    /// fails to encode fails the job through `sink`, like a failed task; chunks already sent
    /// still run, and their results are dropped.
    fn submit(
        &self,
        call: CallToken,
        n: usize,
        chunks: impl IntoIterator<Item = Result<Vec<u8>, PoolError>>,
        sink: Sink,
    ) -> Result<(), PoolError> {
        let job = {
            let mut st = self.shared.lock();
            match &st.run {
                RunState::Running => {}
                RunState::Broken(e) => return Err(PoolError::InitializerFailed(e.clone())),
                RunState::Closed | RunState::Terminated => return Err(PoolError::NotRunning),
            }
            let job = st.next_job;
            st.next_job += 1;
            if n == 0 {
                drop(st);
                let mut sink = sink;
                sink(0, Ok(postcard::to_allocvec(&Vec::<()>::new()).unwrap_or_default()));
                return Ok(());
            }
            st.jobs.insert(job, Job { chunks_left: n, sink });
            job
        };
        let mut chunks = chunks.into_iter();
        for index in 0..n {
            let next =
                chunks.next().unwrap_or_else(|| Err(PoolError::Serialization("fewer chunks than announced".into())));
            let mut st = self.shared.lock();
            if !st.jobs.contains_key(&job) {
                return Ok(()); // terminated meanwhile: the job has its outcome already
            }
            match next {
                Ok(args) => {
                    st.pending.push_back(Chunk { job, index, call, args });
                    dispatch(&self.shared, &mut st);
                }
                Err(e) => {
                    st.pending.retain(|c| c.job != job);
                    if let Some(mut j) = st.jobs.remove(&job) {
                        (j.sink)(index, Err(e));
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The chunk size for `len` items (`None`: Python's default rule) and the lazily encoded
    /// chunks of `items`.
    fn chunks<'a, A: Serialize>(
        &self,
        items: &'a [A],
        chunksize: Option<usize>,
    ) -> (usize, impl Iterator<Item = Result<Vec<u8>, PoolError>> + 'a) {
        let size = chunksize.unwrap_or_else(|| default_chunksize(items.len(), self.processes())).max(1);
        let encoded =
            items.chunks(size).map(|c| postcard::to_allocvec(c).map_err(|e| PoolError::Serialization(e.to_string())));
        (items.len().div_ceil(size), encoded)
    }

    fn map_job<A, R>(
        &self,
        call: CallToken,
        items: Vec<A>,
        chunksize: Option<usize>,
        callback: Callback<Vec<R>>,
        error_callback: ErrorCallback,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let (n, chunks) = self.chunks(&items, chunksize);
        let slot = Slot::new();
        let out = slot.clone();
        let mut parts: Vec<Option<Vec<R>>> = (0..n).map(|_| None).collect();
        let mut left = n;
        let mut failed = false;
        let mut callback = callback;
        let mut error_callback = error_callback;
        let sink: Sink = Box::new(move |index, r| {
            if failed {
                return;
            }
            let decoded = r.and_then(|bytes| {
                postcard::from_bytes::<Vec<R>>(&bytes).map_err(|e| PoolError::Serialization(e.to_string()))
            });
            match decoded {
                Ok(v) => {
                    if let Some(p) = parts.get_mut(index) {
                        *p = Some(v);
                    }
                    left = left.saturating_sub(1);
                    if left == 0 || n == 0 {
                        let all: Vec<R> = parts.drain(..).flatten().flatten().collect();
                        if let Some(cb) = callback.take() {
                            run_callback(|| cb(&all));
                        }
                        out.fill(Ok(all));
                    }
                }
                Err(e) => {
                    failed = true;
                    if let Some(cb) = error_callback.take() {
                        run_callback(|| cb(&e));
                    }
                    out.fill(Err(e));
                }
            }
        });
        self.submit(call, n, chunks, sink)?;
        Ok(AsyncResult::new(slot))
    }

    fn imap_job<A, R>(
        &self,
        call: CallToken,
        items: Vec<A>,
        chunksize: usize,
        ordered: bool,
    ) -> Result<IMapIter<R>, PoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let (n, chunks) = self.chunks(&items, Some(chunksize));
        let (tx, rx) = mpsc::channel::<ChunkMsg<R>>();
        let sink: Sink = Box::new(move |index, r| {
            let decoded = r.and_then(|bytes| {
                postcard::from_bytes::<Vec<R>>(&bytes).map_err(|e| PoolError::Serialization(e.to_string()))
            });
            let _ = tx.send((index, decoded));
        });
        if n == 0 {
            return Ok(IMapIter::new(rx, 0, ordered));
        }
        self.submit(call, n, chunks, sink)?;
        Ok(IMapIter::new(rx, n, ordered))
    }

    /// Applies `f` to every item, in parallel, and returns the results in input order
    /// (Python's `Pool.map`). Items are sent in chunks of Python's default size.
    ///
    /// # Errors
    /// The first failure of any chunk: [`PoolError::Remote`] for a panic in `f`,
    /// [`PoolError::WorkerDied`], [`PoolError::Serialization`], [`PoolError::NotRunning`],
    /// [`PoolError::Terminated`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.map(square, 0..10)?, (0..10).map(square).collect::<Vec<_>>());
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn map<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async(f, items)?.into_value()
    }

    /// [`map`](Self::map) with an explicit `chunksize` (at least 1).
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::map(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), Some(chunksize), None, None)?.into_value()
    }

    /// [`map`](Self::map) without waiting: returns an [`AsyncResult`] for the whole list.
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::map(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), None, None, None)
    }

    /// [`map_async`](Self::map_async) with a `callback` run once in the parent with the whole
    /// result list, or an `error_callback` run once with the error (POOL-4).
    pub fn map_async_with<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        callback: impl FnOnce(&Vec<R>) + Send + 'static,
        error_callback: impl FnOnce(&PoolError) + Send + 'static,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::map(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), None, Some(Box::new(callback)), Some(Box::new(error_callback)))
    }

    /// Like [`map`](Self::map) for a fallible function: the first `Err` fails the call with
    /// [`PoolError::Remote`] carrying the error's type name and `Display` text.
    pub fn try_map<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        E: std::fmt::Display,
    {
        let call = CallToken::try_map(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), None, None, None)?.into_value()
    }

    /// Python's `starmap` for two-argument functions: `f(a, b)` for each `(a, b)`.
    pub fn starmap<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.starmap_async(f, items)?.into_value()
    }

    /// [`starmap`](Self::starmap) with an explicit `chunksize`.
    pub fn starmap_chunked<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::star2(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), Some(chunksize), None, None)?.into_value()
    }

    /// [`starmap`](Self::starmap) without waiting.
    pub fn starmap_async<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::star2(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), None, None, None)
    }

    /// Python's `starmap` for three-argument functions.
    pub fn starmap3<A, B, C, R>(
        &self,
        f: fn(A, B, C) -> R,
        items: impl IntoIterator<Item = (A, B, C)>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        C: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::star3(&self.shared.key, f);
        self.map_job(call, items.into_iter().collect(), None, None, None)?.into_value()
    }

    /// Lazy, ordered map (Python's `imap`): an iterator that yields each result, in input order,
    /// as soon as it (and all before it) have arrived. `chunksize` defaults to 1 in Python.
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
    pub fn imap<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMapIter<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::map(&self.shared.key, f);
        self.imap_job(call, items.into_iter().collect(), chunksize.max(1), true)
    }

    /// Like [`imap`](Self::imap) but yields results in completion order (Python's
    /// `imap_unordered`).
    pub fn imap_unordered<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMapIter<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::map(&self.shared.key, f);
        self.imap_job(call, items.into_iter().collect(), chunksize.max(1), false)
    }

    /// Calls `f(arg)` in a worker and waits for the result (Python's `apply`). Several
    /// arguments travel as a tuple.
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, arg)?.into_value()
    }

    /// Calls `f(arg)` in a worker without waiting (Python's `apply_async`).
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let call = CallToken::map(&self.shared.key, f);
        self.single(call, arg, None, None)
    }

    /// [`apply_async`](Self::apply_async) for a fallible function, with optional callbacks run
    /// in the parent: `callback` with the value, or `error_callback` with the error (POOL-16).
    pub fn try_apply_async<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
        callback: Callback<R>,
        error_callback: ErrorCallback,
    ) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        E: std::fmt::Display,
    {
        let call = CallToken::try_map(&self.shared.key, f);
        self.single(call, arg, callback, error_callback)
    }

    /// [`apply`](Self::apply) for a fallible function.
    pub fn try_apply<A, R, E>(&self, f: fn(A) -> Result<R, E>, arg: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        E: std::fmt::Display,
    {
        self.try_apply_async(f, arg, None, None)?.into_value()
    }

    fn single<A, R>(
        &self,
        call: CallToken,
        arg: A,
        callback: Callback<R>,
        error_callback: ErrorCallback,
    ) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let args =
            postcard::to_allocvec(std::slice::from_ref(&arg)).map_err(|e| PoolError::Serialization(e.to_string()))?;
        let slot = Slot::new();
        let out = slot.clone();
        let mut callback = callback;
        let mut error_callback = error_callback;
        let sink: Sink = Box::new(move |_, r| {
            let decoded = r.and_then(|bytes| {
                let mut v =
                    postcard::from_bytes::<Vec<R>>(&bytes).map_err(|e| PoolError::Serialization(e.to_string()))?;
                v.pop().ok_or_else(|| PoolError::Serialization("worker returned no value".into()))
            });
            match &decoded {
                Ok(v) => {
                    if let Some(cb) = callback.take() {
                        run_callback(|| cb(v))
                    }
                }
                Err(e) => {
                    if let Some(cb) = error_callback.take() {
                        run_callback(|| cb(e))
                    }
                }
            }
            out.fill(decoded);
        });
        self.submit(call, 1, [Ok(args)], sink)?;
        Ok(AsyncResult::new(slot))
    }

    /// Stops accepting work; submitted work still completes (Python's `close`).
    pub fn close(&self) {
        let mut st = self.shared.lock();
        if st.run == RunState::Running {
            st.run = RunState::Closed;
        }
        self.shared.bell.ring();
    }

    /// Kills the workers at once; every unfinished result resolves with
    /// [`PoolError::Terminated`] (Python's `terminate`, and what dropping the pool does).
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

/// Runs a user callback on the manager thread. A panic in it is reported on stderr and goes no
/// further (as Python reports an exception in a callback and carries on): unwinding would end
/// the manager thread, and with it every pending result would wait forever.
fn run_callback(f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not a string)".into());
        eprintln!("multiproc: a pool callback panicked (ignored; the result is still delivered): {msg}");
    }
}

/// Fails every job and drops every queued chunk.
fn fail_everything(st: &mut State, err: &PoolError) {
    st.pending.clear();
    for w in st.workers.iter_mut().flatten() {
        w.outstanding.clear();
    }
    for (_, mut job) in st.jobs.drain() {
        (job.sink)(usize::MAX, Err(err.clone()));
    }
}

/// Sends queued chunks to workers that have room. Runs under the state lock, so the chunks of
/// one worker are sent in dispatch order.
fn dispatch(shared: &Shared, st: &mut State) {
    let max = shared.config.maxtasksperchild;
    for i in 0..st.workers.len() {
        loop {
            if st.pending.is_empty() {
                return;
            }
            let Some(w) = st.workers[i].as_mut() else { break };
            let quota_left = max.map_or(usize::MAX, |m| m.saturating_sub(w.done + w.outstanding.len()));
            if !w.ready || w.outstanding.len() >= PIPELINE || quota_left == 0 {
                break;
            }
            let Some(chunk) = st.pending.pop_front() else { return };
            let seq = st.next_seq;
            st.next_seq += 1;
            let msg = ToWorker::Run { seq, call: chunk.call, args: chunk.args };
            let bytes = postcard::to_allocvec(&msg).unwrap_or_default();
            let ToWorker::Run { args, .. } = msg else { unreachable!() };
            let chunk = Chunk { args, ..chunk };
            let w = st.workers[i].as_mut().expect("checked above");
            if w.link.send(&bytes).is_err() {
                // The worker is gone; the manager will notice and replace it.
                st.pending.push_front(chunk);
                break;
            }
            w.outstanding.push_back((seq, chunk));
        }
    }
}

/// Delivers one chunk's outcome to its job.
fn complete(st: &mut State, job: u64, index: usize, r: Result<Vec<u8>, PoolError>) {
    let done = match st.jobs.get_mut(&job) {
        Some(j) => {
            (j.sink)(index, r);
            j.chunks_left -= 1;
            j.chunks_left == 0
        }
        None => false,
    };
    if done {
        st.jobs.remove(&job);
    }
}

/// The manager thread: forks the workers, reads their results, replaces the dead, and stops
/// them when the pool is closed and idle or terminated.
fn manager_main(shared: Arc<Shared>, started: mpsc::Sender<Result<(), PoolError>>) {
    // Start-up: fork every worker from this thread (so that their parent-death signal follows
    // this thread, which lives as long as the pool) and wait for their `Ready`.
    let startup = (|| {
        for i in 0..shared.config.processes {
            let w = spawn_worker(&shared, i)?;
            shared.lock().workers[i] = Some(w);
        }
        for i in 0..shared.config.processes {
            let link = shared.lock().workers[i].as_ref().map(|w| w.link.clone());
            let Some(link) = link else { continue };
            match link.recv().map(|b| postcard::from_bytes::<FromWorker>(&b)) {
                Ok(Ok(FromWorker::Ready)) => {
                    if let Some(w) = shared.lock().workers[i].as_mut() {
                        w.ready = true;
                    }
                }
                Ok(Ok(FromWorker::InitFailed(e))) => return Err(PoolError::InitializerFailed(e)),
                _ => return Err(PoolError::Spawn("worker died during start-up".into())),
            }
        }
        Ok(())
    })();
    let ok = startup.is_ok();
    if let Err(e) = &startup {
        let mut st = shared.lock();
        if let PoolError::InitializerFailed(r) = e {
            st.run = RunState::Broken(r.clone());
        } else {
            st.run = RunState::Terminated;
        }
    }
    let _ = started.send(startup);
    if ok {
        run_loop(&shared);
    }
    // Shut down: stop or kill every worker and reap it.
    let workers: Vec<Worker> = shared.lock().workers.iter_mut().filter_map(Option::take).collect();
    let graceful = shared.lock().run == RunState::Closed;
    for w in &workers {
        if graceful {
            let _ = w.link.send(&postcard::to_allocvec(&ToWorker::Stop).unwrap_or_default());
        } else {
            w.proc.kill();
        }
    }
    for w in workers {
        if !graceful || !w.proc.wait_timeout(Duration::from_secs(5)) {
            w.proc.kill();
        }
        w.proc.reap();
    }
    shared.idle.notify_all();
}

fn run_loop(shared: &Shared) {
    loop {
        {
            let st = shared.lock();
            match st.run {
                RunState::Terminated | RunState::Broken(_) => return,
                RunState::Closed if st.jobs.is_empty() => return,
                _ => {}
            }
        }
        let links: Vec<(usize, Arc<Link>)> =
            shared.lock().workers.iter().enumerate().filter_map(|(i, w)| Some((i, w.as_ref()?.link.clone()))).collect();
        // Read without the state lock: a worker blocked sending a large result must always be
        // able to make progress.
        let mut inbox: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut hung_up: Vec<usize> = Vec::new();
        for i in link::wait_readable(&links, &shared.bell, TICK) {
            let Some((_, l)) = links.iter().find(|(j, _)| *j == i) else { continue };
            loop {
                match l.try_recv() {
                    Ok(Some(b)) => inbox.push((i, b)),
                    Ok(None) => break,
                    Err(()) => {
                        hung_up.push(i);
                        break;
                    }
                }
            }
        }
        super::result::deferring_wakeups(|| {
            let mut st = shared.lock();
            for (i, bytes) in inbox {
                handle_message(shared, &mut st, i, &bytes);
            }
            // Liveness: reap exited workers (also those whose pipe hung up).
            for i in 0..st.workers.len() {
                let exited = match st.workers[i].as_ref() {
                    Some(w) => w.proc.try_exit(),
                    None => None,
                };
                let Some(exit) = exit_or_hangup(exited, hung_up.contains(&i)) else { continue };
                handle_exit(shared, &mut st, i, exit);
            }
            dispatch(shared, &mut st);
            if st.jobs.is_empty() {
                shared.idle.notify_all();
            }
        });
    }
}

fn exit_or_hangup(exited: Option<WorkerExit>, _hung_up: bool) -> Option<WorkerExit> {
    // A hang-up alone is not an exit: the process may still be flushing; the next tick reaps it.
    exited
}

fn handle_message(shared: &Shared, st: &mut State, i: usize, bytes: &[u8]) {
    let Some(w) = st.workers[i].as_mut() else { return };
    match postcard::from_bytes::<FromWorker>(bytes) {
        Ok(FromWorker::Ready) => w.ready = true,
        Ok(FromWorker::InitFailed(e)) => {
            st.run = RunState::Broken(e.clone());
            fail_everything(st, &PoolError::InitializerFailed(e));
        }
        Ok(FromWorker::Done { seq, outcome }) => {
            let Some(pos) = w.outstanding.iter().position(|(s, _)| *s == seq) else { return };
            let Some((_, chunk)) = w.outstanding.remove(pos) else { return };
            w.done += 1;
            let _ = shared;
            complete(st, chunk.job, chunk.index, Result::from(outcome).map_err(PoolError::from));
        }
        Err(_) => {
            // A corrupt message: treat the worker as broken; it is killed and its work redone.
            w.proc.kill();
        }
    }
}

fn handle_exit(shared: &Shared, st: &mut State, i: usize, exit: WorkerExit) {
    let Some(mut w) = st.workers[i].take() else { return };
    // Messages sent before the exit are still in the pipe: deliver them first.
    while let Ok(Some(b)) = w.link.try_recv() {
        st.workers[i] = Some(w);
        handle_message(shared, st, i, &b);
        match st.workers[i].take() {
            Some(back) => w = back,
            None => return,
        }
    }
    w.proc.reap();
    // The chunk whose dispatch number the worker claimed had started: it fails. Later ones
    // never started: they go back to the front of the queue, in order.
    let claimed = shared.claims.load(i, Ordering::Acquire).unwrap_or(0);
    let mut requeue = Vec::new();
    for (seq, chunk) in w.outstanding.drain(..) {
        if seq > claimed {
            requeue.push(chunk);
        } else {
            let err = PoolError::WorkerDied { pid: w.proc.pid(), signal: exit.signal, code: exit.code };
            complete(st, chunk.job, chunk.index, Err(err));
        }
    }
    for chunk in requeue.into_iter().rev() {
        st.pending.push_front(chunk);
    }
    shared.claims.store(i, 0, Ordering::Release);
    let replace = match st.run {
        RunState::Running => true,
        RunState::Closed => !st.jobs.is_empty(),
        _ => false,
    };
    if replace {
        match spawn_worker(shared, i) {
            Ok(nw) => st.workers[i] = Some(nw),
            Err(e) => fail_everything(st, &e),
        }
    }
}

/// Forks worker `i`.
fn spawn_worker(shared: &Shared, i: usize) -> Result<Worker, PoolError> {
    let init = shared.config.initializer.clone();
    let key = shared.key.clone();
    let claims = shared.claims.clone();
    let max = shared.config.maxtasksperchild;
    let bell = shared.bell.clone();
    let (proc, link) = link::spawn(shared.config.pipe_capacity, move |link| {
        super::worker::worker_main(&link, &key, &claims, i, init.as_deref(), max, &bell)
    })?;
    Ok(Worker { proc, link: Arc::new(link), outstanding: VecDeque::new(), ready: false, done: 0 })
}

#[cfg(test)]
mod tests {
    use super::default_chunksize;

    #[test]
    fn pythons_chunksize_rule() {
        // divmod(len, 4 * processes), rounded up.
        assert_eq!(default_chunksize(0, 4), 1);
        assert_eq!(default_chunksize(10, 4), 1);
        assert_eq!(default_chunksize(8500, 5), 425);
        assert_eq!(default_chunksize(8501, 5), 426);
    }
}
