//! Per-input outcomes (for fuzzing harnesses): [`Pool::imap_outcomes`] and
//! [`Pool::imap_unordered_outcomes`] yield one [`TaskOutcome`] per input, with its index,
//! whatever happened to it (a value, the task's error, its worker's death, its time limit),
//! and never stop the run early.
//!
//! Chunks of more than one item run as usual; a chunk that fails (its worker died, a task in it
//! failed, it ran past its limit) is run again item by item, each on its own, so that each
//! input gets its own outcome: the crashing input is named exactly, the others get their real
//! results. Items of such a chunk that had finished before the failure run twice.

use super::chunk::{Delivery, Sink};
use super::jobs::{decode_chunk, run_callback, submit_to, BadChunk};
use super::options::PoolOptions;
use super::state::Shared;
use super::{Pool, PoolError, PoolTimeoutError, TaskValue, TryPoolError};
use crate::process::call::CallToken;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// One input's outcome: its index in the input and what became of it.
///
/// # Examples
///
/// ```
/// # fn half(x: u32) -> u32 { assert!(x % 2 == 0, "odd"); x / 2 }
/// let pool = multiproc::Pool::new(1)?;
/// let o = pool.imap_outcomes(half, [3])?.next().unwrap();
/// assert_eq!(o.index, 0);
/// assert!(matches!(o.result, Err(multiproc::PoolError::Remote(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TaskOutcome<R> {
    /// The input's index (0-based, in the order the inputs were given).
    pub index: usize,
    /// Its value, or why there is none: [`PoolError::Remote`] (the task returned an error or
    /// panicked), [`PoolError::WorkerDied`] (its worker died running it: a crash, with the
    /// signal), [`PoolError::TimeLimit`] (it ran past its limit), or the pool's own end.
    pub result: Result<R, PoolError>,
}

/// What a sink tells the iterator: the first input index and the count of a chunk (or a
/// re-run item), its results, and whether it was a re-run (not to be split again).
type Msg<R> = (usize, usize, Result<Vec<R>, PoolError>, bool);

/// Re-submits inputs `first..first + n`, one per chunk.
type Retry = Box<dyn FnMut(usize, usize) -> Result<(), PoolError> + Send>;

/// The iterator of [`Pool::imap_outcomes`] and [`Pool::imap_unordered_outcomes`]: exactly one
/// [`TaskOutcome`] per input, in input order or as they complete.
pub struct Outcomes<R> {
    rx: mpsc::Receiver<Msg<R>>,
    ordered: bool,
    /// Inputs whose outcome has not been yielded.
    left: usize,
    /// Ordered: the next index to yield.
    next: usize,
    /// Outcomes received and not yet yielded (ordered: by index).
    parked: BTreeMap<usize, Result<R, PoolError>>,
    /// Unordered: outcomes in arrival order.
    queue: VecDeque<(usize, Result<R, PoolError>)>,
    /// Which inputs have an outcome (received), so that a pool that ends fails only the rest.
    settled: Vec<bool>,
    retry: Retry,
}

impl<R> std::fmt::Debug for Outcomes<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes").field("ordered", &self.ordered).field("left", &self.left).finish()
    }
}

impl Pool {
    /// Runs `f` over `items` and yields one [`TaskOutcome`] per input, in input order, going on
    /// to the end whatever happens to any input: for a fuzzing harness, one outcome per input
    /// (its value, its error, the signal that killed its worker, its time limit). Chunks of
    /// one item by default; with larger chunks, a chunk that fails is run again item by item so
    /// that each input still gets its own outcome (see the module docs in `outcomes.rs`).
    ///
    /// # Errors
    /// [`PoolError::NotRunning`], [`PoolError::Codec`] (an argument that cannot be encoded).
    ///
    /// # Examples
    ///
    /// ```
    /// fn target(x: u8) -> u8 {
    ///     if x == 3 {
    ///         std::process::abort(); // a crash: the worker dies
    ///     }
    ///     x * 2
    /// }
    /// let pool = multiproc::Pool::new(2)?;
    /// for o in pool.imap_outcomes(target, 0..6)? {
    ///     match o.result {
    ///         Ok(v) => assert_eq!(v, o.index as u8 * 2),
    ///         Err(multiproc::PoolError::WorkerDied { signal, .. }) => {
    ///             assert_eq!((o.index, signal), (3, Some(libc::SIGABRT)));
    ///         }
    ///         Err(e) => panic!("{e}"),
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_outcomes<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Outcomes<R>, PoolError> {
        self.imap_outcomes_with(f, items, PoolOptions::new())
    }

    /// [`imap_outcomes`](Self::imap_outcomes) with [`PoolOptions`] (chunk size, time limit;
    /// `callback` runs with each value, `error_callback` with each input's failure).
    ///
    /// # Errors
    /// As [`imap_outcomes`](Self::imap_outcomes).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// fn target(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    /// let pool = multiproc::Pool::new(2)?;
    /// let opts = multiproc::PoolOptions::new().chunksize(4).time_limit(Duration::from_millis(500));
    /// let outcomes: Vec<_> = pool.imap_outcomes_with(target, [1, 2, 60_000, 3], opts)?.collect();
    /// assert!(outcomes[2].result.as_ref().is_err_and(|e| matches!(e, multiproc::PoolError::TimeLimit { index: 2, len: 1, .. })));
    /// assert_eq!(outcomes[3].result.as_ref().ok(), Some(&3)); // re-run on its own after the chunk's failure
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_outcomes_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        options: PoolOptions<R>,
    ) -> Result<Outcomes<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.outcomes_job(call, items.into_iter().collect(), true, options)
    }

    /// [`imap_outcomes`](Self::imap_outcomes) in completion order.
    ///
    /// # Errors
    /// As [`imap_outcomes`](Self::imap_outcomes).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let mut seen: Vec<_> = pool.imap_unordered_outcomes(square, [1, 2, 3])?.map(|o| (o.index, o.result.unwrap())).collect();
    /// seen.sort();
    /// assert_eq!(seen, [(0, 1), (1, 4), (2, 9)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_unordered_outcomes<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Outcomes<R>, PoolError> {
        self.imap_unordered_outcomes_with(f, items, PoolOptions::new())
    }

    /// [`imap_unordered_outcomes`](Self::imap_unordered_outcomes) with [`PoolOptions`].
    ///
    /// # Errors
    /// As [`imap_outcomes`](Self::imap_outcomes).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(2)?;
    /// let opts = multiproc::PoolOptions::new().chunksize(2);
    /// assert_eq!(pool.imap_unordered_outcomes_with(square, 0..10, opts)?.count(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_unordered_outcomes_with<A: TaskValue, R: TaskValue>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        options: PoolOptions<R>,
    ) -> Result<Outcomes<R>, PoolError> {
        let call = CallToken::map(&self.shared.key, f);
        self.outcomes_job(call, items.into_iter().collect(), false, options)
    }

    fn outcomes_job<A: TaskValue, R: TaskValue>(
        &self,
        call: CallToken,
        items: Vec<A>,
        ordered: bool,
        options: PoolOptions<R>,
    ) -> Result<Outcomes<R>, PoolError> {
        let PoolOptions { chunksize, time_limit, callback, error_callback } = options;
        let size = chunksize.unwrap_or(1).max(1);
        let len = items.len();
        let (tx, rx) = mpsc::channel::<Msg<R>>();
        let callbacks = Arc::new(std::sync::Mutex::new((callback, error_callback)));
        let sink = move |first: usize, n: usize, rerun: bool| -> Sink {
            let (tx, callbacks) = (tx.clone(), callbacks.clone());
            Box::new(move |d| {
                let r = match d {
                    Delivery::Chunk(_, r) => decode_chunk::<R>(r),
                    // The pool ended: this job's inputs fail (and are not re-run), and no
                    // callback runs, as in Python. No lock is taken either: this may be
                    // delivered on a thread whose callback is running (one that ended the
                    // pool). Only this job's inputs: a result delivered after it, for an
                    // input of another job, is still that input's outcome.
                    Delivery::JobFailed(e) => {
                        let _ = tx.send((first, n, Err(e), true));
                        return;
                    }
                };
                // Callbacks see final outcomes only: a failed chunk of several items is re-run.
                let last = rerun || n == 1 || r.is_ok();
                if last {
                    let mut cbs = callbacks.lock().unwrap_or_else(|p| p.into_inner());
                    match (&r, &mut *cbs) {
                        (Ok(vs), (Some(cb), _)) => vs.iter().for_each(|v| run_callback(|| cb(v))),
                        (Err(e), (_, Some(cb))) => (0..n).for_each(|_| run_callback(|| cb(e))),
                        _ => {}
                    }
                }
                let _ = tx.send((first, n, r, rerun));
            })
        };
        let (shape, chunks) = self.chunks(&items, Some(size));
        // One job per chunk, so that each sink knows its inputs.
        let mut chunks = chunks;
        for c in 0..shape.0 {
            let first = c * size;
            let n = size.min(len - first);
            let encoded =
                chunks.next().unwrap_or_else(|| Err(PoolError::local_codec(crate::codec::CodecError::invalid(false))));
            submit_to(&self.shared, call, (1, n, n), [encoded], sink(first, n, false), time_limit, BadChunk::EndsJob)?;
        }
        drop(chunks);
        let shared: Arc<Shared> = self.shared.clone();
        let retry: Retry = Box::new(move |first, n| {
            for i in first..(first + n).min(items.len()) {
                let one = crate::codec::encode(&items[i..=i]).map_err(PoolError::local_codec);
                submit_to(&shared, call, (1, 1, 1), [one], sink(i, 1, true), time_limit, BadChunk::EndsJob)?;
            }
            Ok(())
        });
        Ok(Outcomes {
            rx,
            ordered,
            left: len,
            next: 0,
            parked: BTreeMap::new(),
            queue: VecDeque::new(),
            settled: vec![false; len],
            retry,
        })
    }
}

/// `e` with the item index it names counted in the whole input (its chunk starts at `first`).
fn in_input(e: PoolError, first: usize) -> PoolError {
    match e {
        PoolError::WorkerDied { pid, signal, code, index, len } => {
            PoolError::WorkerDied { pid, signal, code, index: index + first, len }
        }
        PoolError::TimeLimit { pid, index, len, limit } => {
            PoolError::TimeLimit { pid, index: index + first, len, limit }
        }
        e => e,
    }
}

/// What waiting for the next outcome gave.
enum Waited<R> {
    Item(TaskOutcome<R>),
    End,
    TimedOut,
}

impl<R> Outcomes<R> {
    /// Files the outcome of input `i` (once).
    fn settle(&mut self, i: usize, r: Result<R, PoolError>) {
        let Some(s) = self.settled.get_mut(i) else { return };
        if std::mem::replace(s, true) {
            return;
        }
        if self.ordered {
            self.parked.insert(i, r);
        } else {
            self.queue.push_back((i, r));
        }
    }

    /// Files what a sink sent.
    fn take(&mut self, (first, n, r, rerun): Msg<R>) {
        // Each chunk ran as a job of its own: its errors count items from the chunk's start.
        let r = r.map_err(|e| in_input(e, first));
        match r {
            Ok(vs) if vs.len() == n => {
                for (k, v) in vs.into_iter().enumerate() {
                    self.settle(first + k, Ok(v));
                }
            }
            Ok(_) => {
                let e = PoolError::local_codec(crate::codec::CodecError::invalid(true));
                (first..first + n).for_each(|i| self.settle(i, Err(e.clone())));
            }
            Err(e) if n > 1 && !rerun => {
                // A pool that no longer takes work (closed, terminated) cannot run the inputs
                // alone: they keep the chunk's own failure, which names the chunk.
                if (self.retry)(first, n).is_err() {
                    (first..first + n).for_each(|i| self.settle(i, Err(e.clone())));
                }
            }
            Err(e) => (first..first + n).for_each(|i| self.settle(i, Err(e.clone()))),
        }
    }

    fn fail_unsettled(&mut self, e: PoolError) {
        for i in 0..self.settled.len() {
            self.settle(i, Err(e.clone()));
        }
    }

    fn pop_ready(&mut self) -> Option<TaskOutcome<R>> {
        let (index, result) = if self.ordered {
            let r = self.parked.remove(&self.next)?;
            self.next += 1;
            (self.next - 1, r)
        } else {
            self.queue.pop_front()?
        };
        self.left -= 1;
        Some(TaskOutcome { index, result })
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Waited<R> {
        loop {
            if let Some(o) = self.pop_ready() {
                return Waited::Item(o);
            }
            if self.left == 0 {
                return Waited::End;
            }
            let got = match deadline {
                None => self.rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(d) => self.rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match got {
                Ok(m) => self.take(m),
                Err(mpsc::RecvTimeoutError::Timeout) => return Waited::TimedOut,
                // Every sender is gone with inputs unsettled. Not while this iterator lives
                // (its `retry` keeps a sender): a pool that ends fails each job instead, also
                // when its thread panics (`MarkEnded`). Kept so that a change there cannot
                // turn into a hang here.
                Err(mpsc::RecvTimeoutError::Disconnected) => self.fail_unsettled(PoolError::Terminated),
            }
        }
    }

    /// The next outcome if it has arrived; `None` at the end.
    ///
    /// # Errors
    /// `Some(Err(TryPoolError::WouldBlock))` if it has not arrived yet (call again).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let mut it = pool.imap_outcomes(square, [2])?;
    /// let o = loop {
    ///     match it.try_next() {
    ///         Some(Err(e)) if e.is_would_block() => std::thread::yield_now(),
    ///         other => break other,
    ///     }
    /// };
    /// assert_eq!(o.unwrap()?.result?, 4);
    /// assert!(it.try_next().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_next(&mut self) -> Option<Result<TaskOutcome<R>, TryPoolError>> {
        match self.next_until(Some(Instant::now())) {
            Waited::Item(o) => Some(Ok(o)),
            Waited::End => None,
            Waited::TimedOut => Some(Err(TryPoolError::WouldBlock)),
        }
    }

    /// The next outcome, waiting at most `timeout`; `None` at the end.
    ///
    /// # Errors
    /// `Some(Err(PoolTimeoutError::Timeout))` if none arrived in time (call again).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = multiproc::Pool::new(1)?;
    /// let mut it = pool.imap_outcomes(square, [3])?;
    /// assert_eq!(it.next_timeout(std::time::Duration::from_secs(10)).unwrap()?.result?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<TaskOutcome<R>, PoolTimeoutError>> {
        self.next_deadline_opt(Instant::now().checked_add(timeout))
    }

    /// The next outcome, waiting until `deadline`; `None` at the end.
    ///
    /// # Errors
    /// As [`next_timeout`](Self::next_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = multiproc::Pool::new(1)?;
    /// let mut it = pool.imap_outcomes(sleep, [10_000])?;
    /// assert!(it.next_deadline(std::time::Instant::now()).unwrap().unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_deadline(&mut self, deadline: Instant) -> Option<Result<TaskOutcome<R>, PoolTimeoutError>> {
        self.next_deadline_opt(Some(deadline))
    }

    fn next_deadline_opt(&mut self, deadline: Option<Instant>) -> Option<Result<TaskOutcome<R>, PoolTimeoutError>> {
        match self.next_until(deadline) {
            Waited::Item(o) => Some(Ok(o)),
            Waited::End => None,
            Waited::TimedOut => Some(Err(PoolTimeoutError::Timeout)),
        }
    }
}

impl<R> Iterator for Outcomes<R> {
    type Item = TaskOutcome<R>;

    fn next(&mut self) -> Option<TaskOutcome<R>> {
        match self.next_until(None) {
            Waited::Item(o) => Some(o),
            // A wait without deadline does not time out.
            Waited::End | Waited::TimedOut => None,
        }
    }
}
