//! `AsyncOptions`: Python's `chunksize`, `callback` and `error_callback` keyword arguments.

use super::jobs::{Callback, ErrorCallback};
use super::PoolError;

/// Options of an asynchronous call (Python's `chunksize`, `callback` and `error_callback`
/// keyword arguments): for [`Pool::map_async_with`](crate::Pool::map_async_with), [`Pool::starmap_async_with`](crate::Pool::starmap_async_with),
/// [`Pool::apply_async_with`](crate::Pool::apply_async_with) and [`Pool::try_apply_async_with`](crate::Pool::try_apply_async_with). Callbacks run once, in the
/// parent's pool thread, before the result becomes ready.
///
/// # Examples
///
/// ```
/// use multiproc::{AsyncOptions, Pool};
///
/// fn double(x: u32) -> u32 { x * 2 }
///
/// let pool = Pool::new(2)?;
/// let r = pool.map_async_with(double, 0..4, AsyncOptions::new().chunksize(2).callback(|v: &Vec<u32>| println!("{v:?}")))?;
/// assert_eq!(r.get()?, [0, 2, 4, 6]);
/// # Ok::<(), multiproc::PoolError>(())
/// ```
pub struct AsyncOptions<T> {
    pub(super) chunksize: Option<usize>,
    pub(super) callback: Callback<T>,
    pub(super) error_callback: ErrorCallback,
}

impl<T> std::fmt::Debug for AsyncOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncOptions")
            .field("chunksize", &self.chunksize)
            .field("callback", &self.callback.is_some())
            .field("error_callback", &self.error_callback.is_some())
            .finish()
    }
}

impl<T> Default for AsyncOptions<T> {
    fn default() -> Self {
        AsyncOptions { chunksize: None, callback: None, error_callback: None }
    }
}

impl<T> AsyncOptions<T> {
    /// No options: Python's defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let _o = multiproc::AsyncOptions::<u8>::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Items per chunk for the map family (at least 1; default: Python's rule,
    /// `ceil(len / (4 × processes))`). Ignored by `apply_async`.
    ///
    /// # Examples
    ///
    /// ```
    /// let _o = multiproc::AsyncOptions::<Vec<u8>>::new().chunksize(16);
    /// ```
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// Runs `f` with the value once the call succeeds (POOL-4).
    ///
    /// # Examples
    ///
    /// ```
    /// let _o = multiproc::AsyncOptions::<u8>::new().callback(|v| println!("{v}"));
    /// ```
    pub fn callback(mut self, f: impl FnOnce(&T) + Send + 'static) -> Self {
        self.callback = Some(Box::new(f));
        self
    }

    /// Runs `f` with the error once the call fails (POOL-4, POOL-16).
    ///
    /// # Examples
    ///
    /// ```
    /// let _o = multiproc::AsyncOptions::<u8>::new().error_callback(|e| eprintln!("{e}"));
    /// ```
    pub fn error_callback(mut self, f: impl FnOnce(&PoolError) + Send + 'static) -> Self {
        self.error_callback = Some(Box::new(f));
        self
    }
}
