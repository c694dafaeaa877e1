//! The calls that run work on a [`Pool`]: `map`, `starmap`, `imap`, `imap_unordered` and
//! `apply`, each blocking and `_async` where Python has both, and each with one `_with` form
//! that takes [`PoolOptions`] (Python's keyword arguments). Every combination exists.

use super::options::PoolOptions;
use super::result::{AsyncResult, IMapIter};
use super::{Pool, PoolError, TaskValue};
use crate::process::call::{CallToken, StarFn};

impl Pool {
    /// Applies `f` to every item, in parallel, and returns the results in input order
    /// (Python's `Pool.map`). Items are sent in chunks of Python's default size.
    ///
    /// An iterator that states its exact length (a range, a vector's or a slice's iterator,
    /// `map` over one) is read chunk by chunk while the first chunks already run; any other is
    /// collected first, as Python does, since its length sets the chunk size.
    ///
    /// A task that fails returns an `Err` of its own type inside `R` (a `Result` is a value
    /// like any other); a task that panics fails the call with [`PoolError::Remote`].
    ///
    /// # Errors
    /// The first failure of any chunk: [`PoolError::Remote`] for a panic in `f`,
    /// [`PoolError::WorkerDied`] (naming the items of the chunk whose worker died),
    /// [`PoolError::Codec`], [`PoolError::NotRunning`], [`PoolError::Terminated`];
    /// [`PoolError::InvalidArgument`] if the iterator yields more or fewer items than the
    /// exact length it stated (POOL-B8).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.map(square, 0..10)?, (0..10).map(square).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError> {
        self.map_async_with(f, items, PoolOptions::new())?.into_value()
    }

    /// [`map`](Self::map) with [`PoolOptions`] (Python's `chunksize=`).
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let opts = multiproc::PoolOptions::new().chunksize(20);
    /// assert_eq!(pool.map_with(square, 0..100, opts)?.len(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        options: PoolOptions<Vec<R>>,
    ) -> Result<Vec<R>, PoolError> {
        self.map_async_with(f, items, options)?.into_value()
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_async<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        self.map_async_with(f, items, PoolOptions::new())
    }

    /// [`map_async`](Self::map_async) with [`PoolOptions`]: chunk size, and a `callback` run
    /// with the whole result list, or an `error_callback` run with the error (POOL-4).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// See [`PoolOptions`].
    pub fn map_async_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        options: PoolOptions<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.map_job(call, items, options)
    }

    /// Python's `starmap`: `f(a, b, …)` for each tuple `(a, b, …)` of `items`, for functions of
    /// one to six arguments ([`StarFn`]).
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn mul(a: u32, b: u32) -> u32 { a * b }
    /// fn fma(a: u32, b: u32, c: u32) -> u32 { a * b + c }
    /// let pool = multiproc::Pool::new(2)?;
    /// assert_eq!(pool.starmap(mul, [(2, 3), (4, 5)])?, [6, 20]);
    /// assert_eq!(pool.starmap(fma, [(2, 3, 1)])?, [7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap<Args: TaskValue, F: StarFn<Args>>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<Vec<F::Output>, PoolError>
    where
        F::Output: TaskValue,
    {
        self.starmap_async_with(f, items, PoolOptions::new())?.into_value()
    }

    /// [`starmap`](Self::starmap) with [`PoolOptions`].
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn mul(a: u32, b: u32) -> u32 { a * b }
    /// let pool = multiproc::Pool::new(2)?;
    /// let opts = multiproc::PoolOptions::new().chunksize(3);
    /// assert_eq!(pool.starmap_with(mul, (0..10).map(|i| (i, i)), opts)?[9], 81);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap_with<Args: TaskValue, F: StarFn<Args>>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
        options: PoolOptions<Vec<F::Output>>,
    ) -> Result<Vec<F::Output>, PoolError>
    where
        F::Output: TaskValue,
    {
        self.starmap_async_with(f, items, options)?.into_value()
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap_async<Args: TaskValue, F: StarFn<Args>>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<AsyncResult<Vec<F::Output>>, PoolError>
    where
        F::Output: TaskValue,
    {
        self.starmap_async_with(f, items, PoolOptions::new())
    }

    /// [`starmap_async`](Self::starmap_async) with [`PoolOptions`].
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// fn mul(a: u32, b: u32) -> u32 { a * b }
    /// let pool = multiproc::Pool::new(2)?;
    /// let r = pool.starmap_async_with(mul, [(2, 3)], multiproc::PoolOptions::new().chunksize(1))?;
    /// assert_eq!(r.get()?, [6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap_async_with<Args: TaskValue, F: StarFn<Args>>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
        options: PoolOptions<Vec<F::Output>>,
    ) -> Result<AsyncResult<Vec<F::Output>>, PoolError>
    where
        F::Output: TaskValue,
    {
        let call = CallToken::star(&self.shared.key, f);
        self.map_job(call, items, options)
    }

    /// Lazy, ordered map (Python's `imap`, chunk size 1): an iterator that yields each result,
    /// in input order, as soon as it (and all before it) have arrived. Inputs are read as
    /// [`map`](Self::map) reads them.
    ///
    /// # Errors
    /// [`PoolError::NotRunning`]; each task's failure is an `Err` item of the iterator, as is
    /// an item that cannot be encoded ([`PoolError::Codec`], once for its chunk, in the
    /// chunk's place; the iteration goes on past it, as in Python). An iterator that does not
    /// keep its stated length ends the iteration with [`PoolError::InvalidArgument`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let v: Vec<u64> = pool.imap(square, 0..5)?.collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<IMapIter<R>, PoolError> {
        self.imap_with(f, items, PoolOptions::new())
    }

    /// [`imap`](Self::imap) with [`PoolOptions`]: the callbacks run with each item as it
    /// arrives.
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let it = pool.imap_with(square, 0..6, multiproc::PoolOptions::new().chunksize(2))?;
    /// assert_eq!(it.collect::<Result<Vec<_>, _>>()?, [0, 1, 4, 9, 16, 25]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        options: PoolOptions<R>,
    ) -> Result<IMapIter<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.imap_job(call, items, true, options)
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
    /// let mut v: Vec<u64> = pool.imap_unordered(square, 0..5)?.collect::<Result<_, _>>()?;
    /// v.sort();
    /// assert_eq!(v, vec![0, 1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_unordered<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<IMapIter<R>, PoolError> {
        self.imap_unordered_with(f, items, PoolOptions::new())
    }

    /// [`imap_unordered`](Self::imap_unordered) with [`PoolOptions`].
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let it = pool.imap_unordered_with(square, 0..4, multiproc::PoolOptions::new().chunksize(4))?;
    /// assert_eq!(it.count(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_unordered_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        options: PoolOptions<R>,
    ) -> Result<IMapIter<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.imap_job(call, items, false, options)
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<A: TaskValue, R: TaskValue>(&self, f: fn(A) -> R, arg: A) -> Result<R, PoolError> {
        self.apply_async_with(f, arg, PoolOptions::new())?.into_value()
    }

    /// [`apply`](Self::apply) with [`PoolOptions`] (the callbacks run with the value or the
    /// error before `apply_with` returns).
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let v = pool.apply_with(square, 4, multiproc::PoolOptions::new().callback(|v| assert_eq!(*v, 16)))?;
    /// assert_eq!(v, 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        arg: A,
        options: PoolOptions<R>,
    ) -> Result<R, PoolError> {
        self.apply_async_with(f, arg, options)?.into_value()
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_async<A: TaskValue, R: TaskValue>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>, PoolError> {
        self.apply_async_with(f, arg, PoolOptions::new())
    }

    /// [`apply_async`](Self::apply_async) with [`PoolOptions`] (callbacks, POOL-16).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
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
    pub fn apply_async_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        arg: A,
        options: PoolOptions<R>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.single(call, arg, options)
    }
}
