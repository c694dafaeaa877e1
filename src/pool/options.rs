//! `PoolOptions`: Python's `chunksize`, `callback` and `error_callback` keyword arguments, for
//! the `_with` form of every pool call.

use super::PoolError;

/// A result callback: called with each result the call delivers.
pub(super) type Callback<T> = Option<Box<dyn FnMut(&T) + Send>>;

/// An error callback: called with each failure the call delivers.
pub(super) type ErrorCallback = Option<Box<dyn FnMut(&PoolError) + Send>>;

/// The options of a pool call (Python's `chunksize`, `callback` and `error_callback` keyword
/// arguments), taken by the `_with` form of every call: [`Pool::map_with`](crate::Pool::map_with),
/// [`map_async_with`](crate::Pool::map_async_with), [`starmap_with`](crate::Pool::starmap_with),
/// [`starmap_async_with`](crate::Pool::starmap_async_with), [`imap_with`](crate::Pool::imap_with),
/// [`imap_unordered_with`](crate::Pool::imap_unordered_with), [`apply_with`](crate::Pool::apply_with)
/// and [`apply_async_with`](crate::Pool::apply_async_with).
///
/// `T` is what the call delivers: the whole result list for `map` and `starmap`, the value
/// for `apply`, each item for `imap`. Callbacks run in the parent's pool thread as the result
/// (or each `imap` item) arrives (an `error_callback` for a call that fails while it is
/// queued, or that `terminate` ends, on that caller's thread), before it becomes ready to the caller; a panicking callback
/// is contained. They run without the pool's lock, so a callback may call back into its pool
/// (POOL-B9): submit more work, `close`, `terminate`, or drop the last handle to it. It must
/// not wait for the pool's results (`get`, a blocking `map`): its thread is the one that
/// delivers them.
///
/// ```
/// use multiproc::{Pool, PoolOptions};
/// use std::sync::{mpsc, Arc};
///
/// fn double(x: u32) -> u32 { x * 2 }
///
/// let pool = Arc::new(Pool::new(2)?);
/// let (tx, rx) = mpsc::channel();
/// let p = pool.clone();
/// // The first result's callback submits the next task from the pool's own thread.
/// let opts = PoolOptions::new().callback(move |v: &u32| {
///     let tx = tx.clone();
///     let _ = tx.send(*v);
///     if *v < 8 {
///         let next = PoolOptions::new().callback(move |w: &u32| { let _ = tx.send(*w); });
///         p.apply_async_with(double, *v, next).expect("the pool runs");
///     }
/// });
/// pool.apply_async_with(double, 1, opts)?;
/// assert_eq!(rx.recv()?, 2);
/// assert_eq!(rx.recv()?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Examples
///
/// ```
/// use multiproc::{Pool, PoolOptions};
///
/// fn double(x: u32) -> u32 { x * 2 }
///
/// let pool = Pool::new(2)?;
/// let opts = PoolOptions::new().chunksize(2).callback(|v: &Vec<u32>| println!("{v:?}"));
/// let r = pool.map_async_with(double, 0..4, opts)?;
/// assert_eq!(r.get()?, [0, 2, 4, 6]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PoolOptions<T> {
    pub(super) chunksize: Option<usize>,
    pub(super) time_limit: Option<std::time::Duration>,
    pub(super) callback: Callback<T>,
    pub(super) error_callback: ErrorCallback,
}

/// The former name of [`PoolOptions`].
#[deprecated(since = "0.2.0", note = "renamed `PoolOptions`: every pool call takes them through its `_with` form")]
pub type AsyncOptions<T> = PoolOptions<T>;

impl<T> std::fmt::Debug for PoolOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolOptions")
            .field("chunksize", &self.chunksize)
            .field("time_limit", &self.time_limit)
            .field("callback", &self.callback.is_some())
            .field("error_callback", &self.error_callback.is_some())
            .finish()
    }
}

impl<T> Default for PoolOptions<T> {
    fn default() -> Self {
        PoolOptions { chunksize: None, time_limit: None, callback: None, error_callback: None }
    }
}

impl<T> PoolOptions<T> {
    /// No options: Python's defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let _o = multiproc::PoolOptions::<u8>::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Items per chunk (at least 1). Default: Python's rule, `ceil(len / (4 × processes))`,
    /// for `map` and `starmap`; 1 for `imap`; `apply` sends its one item alone.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn id(x: u8) -> u8 { x }
    /// let pool = multiproc::Pool::new(1)?;
    /// assert_eq!(pool.map_with(id, [1, 2, 3], multiproc::PoolOptions::new().chunksize(2))?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// How long each task of this call may run (overriding the pool's
    /// [`time_limit`](crate::PoolBuilder::time_limit)): a task still running after it has its
    /// worker killed with SIGKILL and fails with [`PoolError::TimeLimit`], naming its items;
    /// the pool replaces the worker. In a pool built with a time limit the workers lead process
    /// groups of their own and the whole group is killed, so the task's own children go too
    /// (a pool without one keeps its workers in the caller's group, under the terminal's job
    /// control as Python's are, and kills only the worker). The limit counts from when the task starts running in a worker, not from the
    /// call; a chunk of `n` items may run for `n` times the limit. The manager looks every
    /// 20 ms, so a task may overrun by that much. A task can read its own deadline with
    /// [`task_deadline`](crate::task_deadline) and stop by itself first.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pool, PoolError, PoolOptions};
    /// use std::time::Duration;
    ///
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// let pool = Pool::new(1)?;
    /// let opts = PoolOptions::new().time_limit(Duration::from_millis(300));
    /// let r = pool.apply_with(nap, 60_000, opts);
    /// assert!(matches!(r, Err(PoolError::TimeLimit { index: 0, len: 1, .. })));
    /// assert_eq!(pool.apply(nap, 1)?, 1); // the pool healed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn time_limit(mut self, limit: std::time::Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Runs `f` with each result the call delivers (Python's `callback`).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async_with(square, 3, multiproc::PoolOptions::new().callback(|v| assert_eq!(*v, 9)))?;
    /// assert_eq!(r.get()?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn callback(mut self, f: impl FnMut(&T) + Send + 'static) -> Self {
        self.callback = Some(Box::new(f));
        self
    }

    /// Runs `f` with each failure the call delivers (Python's `error_callback`, POOL-16).
    ///
    /// # Examples
    ///
    /// ```
    /// fn boom(_: u8) -> u8 { panic!("boom") }
    /// let pool = multiproc::Pool::new(1)?;
    /// let opts = multiproc::PoolOptions::new().error_callback(|e| eprintln!("failed: {e}"));
    /// assert!(pool.apply_async_with(boom, 0, opts)?.get().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn error_callback(mut self, f: impl FnMut(&PoolError) + Send + 'static) -> Self {
        self.error_callback = Some(Box::new(f));
        self
    }
}
