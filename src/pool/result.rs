//! Results of asynchronous pool calls: [`AsyncResult`] and the `imap` iterators.

use super::{PoolError, PoolTimeoutError, TryPoolError};
use crate::forms::{Timeout, WouldBlock};
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where the manager thread puts a finished job's value.
pub(crate) struct Slot<T> {
    value: Mutex<Option<Result<T, PoolError>>>,
    ready: Condvar,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Arc<Slot<T>> {
        Arc::new(Slot { value: Mutex::new(None), ready: Condvar::new() })
    }

    /// Stores the outcome (first one wins) and wakes every waiter (at once, or when the
    /// manager thread leaves its [`deferring_wakeups`] section).
    pub(crate) fn fill(self: &Arc<Self>, v: Result<T, PoolError>)
    where
        T: Send + 'static,
    {
        let mut g = self.value.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(v);
        }
        drop(g);
        let me = self.clone();
        defer_or_run(Box::new(move || me.ready.notify_all()));
    }

    /// Waits until filled or `deadline`; returns the guard.
    fn wait_until(&self, deadline: Option<Instant>) -> std::sync::MutexGuard<'_, Option<Result<T, PoolError>>> {
        let mut g = self.value.lock().unwrap_or_else(|p| p.into_inner());
        while g.is_none() {
            match deadline {
                None => g = self.ready.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    g = self.ready.wait_timeout(g, d - now).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
        }
        g
    }
}

/// A held-back notification.
type Wake = Box<dyn FnOnce()>;

thread_local! {
    /// Wake-ups held back while the manager thread holds the pool's state lock.
    static DEFERRED: std::cell::RefCell<Option<Vec<Wake>>> = const { std::cell::RefCell::new(None) };
}

fn defer_or_run(wake: Wake) {
    let wake = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            list.push(wake);
            None
        }
        None => Some(wake),
    });
    if let Some(wake) = wake {
        wake();
    }
}

/// Runs `f` (which takes and releases the pool's state lock) and only then wakes the callers
/// whose results it filled.
///
/// Woken while the manager still held the lock, a caller on the same CPU preempted it, went
/// for the lock for its next submission, blocked, and handed the CPU back: two context
/// switches per result for nothing. The values are stored at once (under each slot's mutex);
/// only the notification waits, so no waiter can miss it.
pub(crate) fn deferring_wakeups<R>(f: impl FnOnce() -> R) -> R {
    /// Runs the held-back wake-ups when `f` ends, also by a panic (the pool then ends, and
    /// the callers must hear of it, not wait on a list nobody runs).
    struct RunDeferred;
    impl Drop for RunDeferred {
        fn drop(&mut self) {
            let wakes = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
            for wake in wakes {
                wake();
            }
        }
    }
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
    let _run = RunDeferred;
    f()
}

/// The result of an asynchronous pool call (`apply_async`, `map_async`, `starmap_async`).
///
/// Dropping it does not cancel the task. Callbacks given at submission run in the parent's pool
/// thread before the result becomes ready.
///
/// # Examples
///
/// ```
/// use multiproc::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::new(2)?;
/// let r = pool.apply_async(square, 7)?;
/// assert_eq!(r.get()?, 49);
/// assert!(r.ready());
/// assert!(r.successful()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncResult<T> {
    slot: Arc<Slot<T>>,
}

impl<T> std::fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish()
    }
}

impl<T> AsyncResult<T> {
    pub(crate) fn new(slot: Arc<Slot<T>>) -> AsyncResult<T> {
        AsyncResult { slot }
    }

    /// Whether the call has completed (successfully or not).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(square, 3)?;
    /// r.wait();
    /// assert!(r.ready());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready(&self) -> bool {
        self.slot.value.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Whether the call completed without error (Python's `successful()`).
    ///
    /// # Errors
    /// [`WouldBlock`] before the result is ready (Python raises `ValueError`, POOL-21).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(square, 3)?;
    /// r.wait();
    /// assert!(r.successful()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn successful(&self) -> Result<bool, WouldBlock> {
        match &*self.slot.value.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Err(WouldBlock),
            Some(r) => Ok(r.is_ok()),
        }
    }

    /// Blocks until the result is ready (Python's `wait()`).
    ///
    /// # Examples
    ///
    /// See [`ready`](Self::ready).
    pub fn wait(&self) {
        drop(self.slot.wait_until(None));
    }

    /// Returns at once: `Ok` if the result is ready.
    ///
    /// # Errors
    /// [`WouldBlock`] if it is not.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(sleep, 10_000)?;
    /// assert!(r.try_wait().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_wait(&self) -> Result<(), WouldBlock> {
        if self.ready() {
            Ok(())
        } else {
            Err(WouldBlock)
        }
    }

    /// Blocks until the result is ready or `timeout` passes (Python's `wait(timeout)`;
    /// `Duration::MAX` waits forever).
    ///
    /// # Errors
    /// [`Timeout`] if it was not ready in time.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// pool.apply_async(square, 3)?.wait_timeout(std::time::Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_deadline_opt(Instant::now().checked_add(timeout))
    }

    /// Blocks until the result is ready or `deadline` passes.
    ///
    /// # Errors
    /// [`Timeout`] if it was not ready in time.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(sleep, 10_000)?;
    /// assert!(r.wait_deadline(std::time::Instant::now()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.wait_deadline_opt(Some(deadline))
    }

    fn wait_deadline_opt(&self, deadline: Option<Instant>) -> Result<(), Timeout> {
        match self.slot.wait_until(deadline).is_some() {
            true => Ok(()),
            false => Err(Timeout),
        }
    }

    /// Blocks until the result is ready and returns it, moving it out (no `Clone` needed).
    ///
    /// # Errors
    /// The task's failure (see [`PoolError`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// assert_eq!(pool.apply_async(square, 3)?.into_value()?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_value(self) -> Result<T, PoolError> {
        let mut g = self.slot.wait_until(None);
        g.take().unwrap_or(Err(PoolError::Terminated))
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Blocks until the result is ready and returns (a clone of) it, or the task's error
    /// (Python's `get()`).
    ///
    /// # Errors
    /// The task's failure (see [`PoolError`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(square, 3)?;
    /// assert_eq!(r.get()?, 9);
    /// assert_eq!(r.get()?, 9); // as often as you like
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, PoolError> {
        match &*self.slot.wait_until(None) {
            Some(r) => r.clone(),
            None => Err(PoolError::Terminated),
        }
    }

    /// The result if it is ready now.
    ///
    /// # Errors
    /// [`TryPoolError::WouldBlock`] if it is not, or the task's failure.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(sleep, 10_000)?;
    /// assert!(r.try_get().unwrap_err().is_would_block());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryPoolError> {
        match &*self.slot.value.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(r) => r.clone().map_err(TryPoolError::from),
            None => Err(TryPoolError::WouldBlock),
        }
    }

    /// Like [`get`](Self::get), giving up after `timeout` (Python's `get(timeout)`); the task
    /// goes on and a later `get` can still return its value (POOL-8). `Duration::MAX` waits
    /// forever.
    ///
    /// # Errors
    /// [`PoolTimeoutError::Timeout`] if it was not ready in time, or the task's failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// assert_eq!(pool.apply_async(square, 3)?.get_timeout(std::time::Duration::from_secs(10))?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PoolTimeoutError> {
        self.get_until(Instant::now().checked_add(timeout))
    }

    /// Like [`get_timeout`](Self::get_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = multiproc::Pool::new(1)?;
    /// let r = pool.apply_async(sleep, 10_000)?;
    /// assert!(r.get_deadline(std::time::Instant::now()).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, PoolTimeoutError> {
        self.get_until(Some(deadline))
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, PoolTimeoutError> {
        match &*self.slot.wait_until(deadline) {
            Some(r) => r.clone().map_err(PoolTimeoutError::from),
            None => Err(PoolTimeoutError::Timeout),
        }
    }
}

/// What an `imap` job's sink sends its iterator.
pub(crate) enum ChunkMsg<T> {
    /// Chunk `index` finished: its results, decoded, or why it failed.
    Chunk(usize, Result<Vec<T>, PoolError>),
    /// The whole job failed at once (the pool ended, or a chunk could not be queued): no other
    /// chunk will report.
    JobFailed(PoolError),
}

/// The iterator returned by [`Pool::imap`](crate::Pool::imap) and
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered): yields each result as it arrives
/// (in input order for `imap`). A chunk that failed (its task errored, its worker died, or
/// one of its items could not be encoded) yields one `Err` in its place and the iteration
/// goes on with the next chunk, so with `chunksize` 1 every input item yields exactly one
/// item, in order. A failure of the whole job ends it: if the pool is terminated the iterator
/// yields [`PoolError::Terminated`] once and ends, and if the input iterator does not keep
/// its stated length, [`PoolError::InvalidArgument`], once, after the results that came
/// before it (for `imap`, those before it in order: later ones that had already arrived are
/// dropped, though a `callback` saw them on arrival).
pub struct IMapIter<T> {
    rx: mpsc::Receiver<ChunkMsg<T>>,
    ordered: bool,
    chunks_left: usize,
    next_chunk: usize,
    parked: BTreeMap<usize, Result<Vec<T>, PoolError>>,
    current: std::vec::IntoIter<T>,
    failed: bool,
    /// Why the whole job failed at once ([`ChunkMsg::JobFailed`]): yielded after whatever
    /// had arrived before it in order, and then the end.
    ended_with: Option<PoolError>,
}

impl<T> std::fmt::Debug for IMapIter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMapIter").field("ordered", &self.ordered).field("chunks_left", &self.chunks_left).finish()
    }
}

impl<T> IMapIter<T> {
    pub(crate) fn new(rx: mpsc::Receiver<ChunkMsg<T>>, chunks: usize, ordered: bool) -> IMapIter<T> {
        IMapIter {
            rx,
            ordered,
            chunks_left: chunks,
            next_chunk: 0,
            parked: BTreeMap::new(),
            current: Vec::new().into_iter(),
            failed: false,
            ended_with: None,
        }
    }

    fn take_chunk(&mut self, r: Result<Vec<T>, PoolError>) -> Option<Result<T, PoolError>> {
        self.chunks_left -= 1;
        match r {
            Ok(v) => {
                self.current = v.into_iter();
                None
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl<T> IMapIter<T> {
    /// The next result if it has arrived (Python's `next(timeout=0)`); `None` at the end.
    ///
    /// # Errors
    /// `Some(Err(TryPoolError::WouldBlock))` if the next result has not arrived yet (call
    /// again), or the item's failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let mut it = pool.imap(square, [2])?;
    /// let first = loop {
    ///     match it.try_next() {
    ///         Some(Err(e)) if e.is_would_block() => std::thread::yield_now(),
    ///         other => break other,
    ///     }
    /// };
    /// assert_eq!(first.unwrap()?, 4);
    /// assert!(it.try_next().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_next(&mut self) -> Option<Result<T, TryPoolError>> {
        match self.next_until(Some(Instant::now())) {
            Waited::Item(r) => Some(r.map_err(TryPoolError::from)),
            Waited::End => None,
            Waited::TimedOut => Some(Err(TryPoolError::WouldBlock)),
        }
    }

    /// The next result, waiting at most `timeout` for it (Python's `next(timeout)`); `None` at
    /// the end.
    ///
    /// # Errors
    /// `Some(Err(PoolTimeoutError::Timeout))` if it did not arrive in time (the iteration goes
    /// on: call again), or the item's failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let mut it = pool.imap(square, [3])?;
    /// assert_eq!(it.next_timeout(std::time::Duration::from_secs(10)).unwrap()?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<T, PoolTimeoutError>> {
        self.next_timed(Instant::now().checked_add(timeout))
    }

    /// The next result, waiting until `deadline` for it; `None` at the end.
    ///
    /// # Errors
    /// As [`next_timeout`](Self::next_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = multiproc::Pool::new(1)?;
    /// let mut it = pool.imap(sleep, [10_000])?;
    /// assert!(it.next_deadline(std::time::Instant::now()).unwrap().unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_deadline(&mut self, deadline: Instant) -> Option<Result<T, PoolTimeoutError>> {
        self.next_timed(Some(deadline))
    }

    fn next_timed(&mut self, deadline: Option<Instant>) -> Option<Result<T, PoolTimeoutError>> {
        match self.next_until(deadline) {
            Waited::Item(r) => Some(r.map_err(PoolTimeoutError::from)),
            Waited::End => None,
            Waited::TimedOut => Some(Err(PoolTimeoutError::Timeout)),
        }
    }

    /// The next item, waiting until `deadline` (`None`: forever).
    fn next_until(&mut self, deadline: Option<Instant>) -> Waited<T> {
        loop {
            if let Some(v) = self.current.next() {
                return Waited::Item(Ok(v));
            }
            if self.failed {
                return Waited::End;
            }
            if self.ordered {
                if let Some(r) = self.parked.remove(&self.next_chunk) {
                    self.next_chunk += 1;
                    if let Some(e) = self.take_chunk(r) {
                        return Waited::Item(e);
                    }
                    continue;
                }
            }
            if let Some(e) = self.ended_with.take() {
                self.failed = true;
                return Waited::Item(Err(e));
            }
            if self.chunks_left == 0 {
                return Waited::End;
            }
            let got = match deadline {
                None => self.rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(d) => self.rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            let (idx, r) = match got {
                Ok(ChunkMsg::JobFailed(e)) => {
                    self.ended_with = Some(e);
                    continue;
                }
                Ok(ChunkMsg::Chunk(idx, r)) => (idx, r),
                Err(mpsc::RecvTimeoutError::Timeout) => return Waited::TimedOut,
                // The pool went away without finishing this job.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.failed = true;
                    return Waited::Item(Err(PoolError::Terminated));
                }
            };
            if self.ordered && idx != self.next_chunk {
                self.parked.insert(idx, r);
                continue;
            }
            if self.ordered {
                self.next_chunk += 1;
            }
            if let Some(e) = self.take_chunk(r) {
                return Waited::Item(e);
            }
        }
    }
}

/// What waiting for the next `imap` item gave.
enum Waited<T> {
    Item(Result<T, PoolError>),
    End,
    TimedOut,
}

impl<T> Iterator for IMapIter<T> {
    type Item = Result<T, PoolError>;

    fn next(&mut self) -> Option<Result<T, PoolError>> {
        match self.next_until(None) {
            Waited::Item(r) => Some(r),
            Waited::End => None,
            // A wait without deadline does not time out.
            Waited::TimedOut => None,
        }
    }
}
