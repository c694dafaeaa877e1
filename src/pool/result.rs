//! Results of asynchronous pool calls: [`AsyncResult`] and the `imap` iterators.

use super::PoolError;
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
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
    let r = f();
    let wakes = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    for wake in wakes {
        wake();
    }
    r
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
/// # Ok::<(), multiproc::PoolError>(())
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
    pub fn ready(&self) -> bool {
        self.slot.value.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Whether the call completed without error; [`PoolError::NotReady`] before it is ready.
    pub fn successful(&self) -> Result<bool, PoolError> {
        match &*self.slot.value.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Err(PoolError::NotReady),
            Some(r) => Ok(r.is_ok()),
        }
    }

    /// Blocks until the result is ready.
    pub fn wait(&self) {
        drop(self.slot.wait_until(None));
    }

    /// Blocks until the result is ready or `timeout` passes; returns whether it is ready.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait_until(Instant::now().checked_add(timeout)).is_some()
    }

    /// Blocks until the result is ready and returns it, moving it out (no `Clone` needed).
    pub fn into_value(self) -> Result<T, PoolError> {
        let mut g = self.slot.wait_until(None);
        g.take().unwrap_or(Err(PoolError::Terminated))
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Blocks until the result is ready and returns (a clone of) it, or the task's error.
    pub fn get(&self) -> Result<T, PoolError> {
        self.get_until(None)
    }

    /// Like [`get`](Self::get) but gives up with [`PoolError::Timeout`] after `timeout`; the task
    /// goes on and a later `get` can still return its value. `Duration::MAX` waits forever.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PoolError> {
        self.get_until(Instant::now().checked_add(timeout))
    }

    /// Like [`get_timeout`](Self::get_timeout) with an absolute deadline.
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, PoolError> {
        self.get_until(Some(deadline))
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, PoolError> {
        match &*self.slot.wait_until(deadline) {
            Some(r) => r.clone(),
            None => Err(PoolError::Timeout),
        }
    }
}

/// One chunk's outcome, sent from the manager thread to an `imap` iterator.
pub(crate) type ChunkMsg<T> = (usize, Result<Vec<T>, PoolError>);

/// The iterator returned by [`Pool::imap`](crate::Pool::imap) and
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered): yields each result as it arrives
/// (in input order for `imap`). A chunk that failed (its task errored or its worker died)
/// yields one `Err` in its place and the iteration goes on with the next chunk, so with
/// `chunksize` 1 every input item yields exactly one item, in order. If the pool is terminated
/// the iterator yields [`PoolError::Terminated`] once and ends.
pub struct IMapIter<T> {
    rx: mpsc::Receiver<ChunkMsg<T>>,
    ordered: bool,
    chunks_left: usize,
    next_chunk: usize,
    parked: BTreeMap<usize, Result<Vec<T>, PoolError>>,
    current: std::vec::IntoIter<T>,
    failed: bool,
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

impl<T> Iterator for IMapIter<T> {
    type Item = Result<T, PoolError>;

    fn next(&mut self) -> Option<Result<T, PoolError>> {
        loop {
            if let Some(v) = self.current.next() {
                return Some(Ok(v));
            }
            if self.failed || self.chunks_left == 0 {
                return None;
            }
            if self.ordered {
                if let Some(r) = self.parked.remove(&self.next_chunk) {
                    self.next_chunk += 1;
                    if let Some(e) = self.take_chunk(r) {
                        return Some(e);
                    }
                    continue;
                }
            }
            let (idx, r) = match self.rx.recv() {
                Ok(m) => m,
                // The pool went away without finishing this job.
                Err(_) => {
                    self.failed = true;
                    return Some(Err(PoolError::Terminated));
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
                return Some(e);
            }
        }
    }
}
