//! The loop a pool worker process runs.

use super::link::{Doorbell, Link};
use super::wire::{self, FromWorker, Outcome, TaskFailure, ToWorker};
use super::RemoteError;
use crate::process::call::{CallFailure, CallKey};
use crate::process::panics;
use crate::shm::WordArray;
use crate::sys::signals::SignalState;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> RemoteError {
    let message = panics::payload_text(&*payload).to_string();
    // Forgotten, not dropped: a payload whose `Drop` panics would unwind out of the worker's
    // loop, and its task would read as a worker death with no message (a few bytes leak per
    // panicking task instead; `child_main` does the same).
    std::mem::forget(payload);
    RemoteError { kind: "panic".into(), message, location: panics::take_location() }
}

/// The most bytes of encoded results one chunk may send back: a message's limit, less room
/// for its header.
const RESULT_MAX: usize = super::link::MAX_FRAME - 4096;

/// [`RemoteError::kind`] of a chunk whose results are larger than [`RESULT_MAX`].
pub(crate) const RESULT_TOO_LARGE: &str = "result too large";

fn send(link: &Link, bell: &Doorbell, msg: &FromWorker) -> bool {
    send_with_body(link, bell, msg, &[])
}

/// Sends `msg` with `body` after it (a chunk's encoded results).
fn send_with_body(link: &Link, bell: &Doorbell, msg: &FromWorker, body: &[u8]) -> bool {
    let sent = link.send_parts(&wire::header(msg), body).is_ok();
    // After the message is in the ring: the manager's re-check after raising its flag sees
    // it, or we see the flag and wake it (queue::doorbell's Dekker pair).
    bell.notify();
    sent
}

/// What a spawned worker (`Spawn`, `ForkServer`) receives: everything a forked one inherits.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct WorkerArgs {
    pub(crate) up: crate::Connection,
    pub(crate) down: crate::Connection,
    pub(crate) key: CallKey,
    pub(crate) claims: WordArray,
    pub(crate) cancels: WordArray,
    pub(crate) starts: WordArray,
    pub(crate) init: Option<crate::process::FnCall>,
    pub(crate) rules: Rules,
    pub(crate) bell: Doorbell,
}

/// What a worker does beyond running chunks: when it stops, and what it puts back after each.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Rules {
    /// Exit after this many chunks (`maxtasksperchild`).
    pub(crate) maxtasks: Option<usize>,
    /// Put the signal state back after each chunk (`PoolBuilder::reset_signals`).
    pub(crate) reset_signals: bool,
}

/// The entry of a spawned worker.
pub(crate) fn spawned_worker(a: WorkerArgs) -> i32 {
    let link = Link::new(a.up, a.down);
    let call = a.init.map(|c| move || call_result(c.run()));
    let init: Option<&(dyn Fn() -> Result<(), String> + Send + Sync)> = call.as_ref().map(|c| c as _);
    let slot = Slot { claims: &a.claims, cancels: &a.cancels, starts: &a.starts };
    worker_main(&link, &a.key, &slot, init, a.rules, &a.bell)
}

/// The pool's shared word arrays, one word per worker slot: what it claimed, what it must
/// skip, and when it started. Which slot is this worker's comes with each chunk
/// ([`ToWorker::Run`]), so that a spare can take over any slot.
pub(crate) struct Slot<'a> {
    pub(crate) claims: &'a WordArray,
    pub(crate) cancels: &'a WordArray,
    pub(crate) starts: &'a WordArray,
}

std::thread_local! {
    /// The running task's deadline (its time limit from when it started), for `task_deadline`.
    static DEADLINE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// The deadline of the pool task running on this thread: when its time limit
/// ([`PoolBuilder::time_limit`](crate::PoolBuilder::time_limit),
/// [`PoolOptions::time_limit`](crate::PoolOptions::time_limit)) runs out and its worker is
/// killed. `None` outside a pool task, or when the task has no limit. A task that checks it
/// can stop cleanly (return a partial result, say) before the hard kill; for a chunk of
/// several items it is the whole chunk's deadline.
///
/// # Examples
///
/// ```
/// use multiproc::{Pool, PoolOptions};
/// use std::time::{Duration, Instant};
///
/// /// Counts until its own deadline is near, then returns what it has.
/// fn count(_: u8) -> u64 {
///     let stop = multiproc::task_deadline().map(|d| d - Duration::from_millis(100));
///     let mut n = 0u64;
///     while stop.is_some_and(|s| Instant::now() < s) {
///         n += 1;
///     }
///     n
/// }
///
/// let pool = Pool::new(1)?;
/// assert!(multiproc::task_deadline().is_none()); // not in a task
/// let n = pool.apply_with(count, 0, PoolOptions::new().time_limit(Duration::from_millis(400)))?;
/// assert!(n > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn task_deadline() -> Option<std::time::Instant> {
    DEADLINE.with(std::cell::Cell::get)
}

/// An initializer call's outcome as the worker reports it.
pub(crate) fn call_result((code, failure): (i32, Option<String>)) -> Result<(), String> {
    match (code, failure) {
        (_, Some(message)) => Err(message),
        (0, None) => Ok(()),
        (code, None) => Err(format!("exit code {code}")),
    }
}

/// Runs in the worker; returns its exit code.
#[allow(clippy::too_many_arguments)] // two callers (a forked worker in manager.rs, a spawned one here), each argument a distinct piece of the worker's context
pub(crate) fn worker_main(
    link: &Link,
    key: &CallKey,
    slot: &Slot<'_>,
    init: Option<&(dyn Fn() -> Result<(), String> + Send + Sync)>,
    rules: Rules,
    bell: &Doorbell,
) -> i32 {
    // Panic locations are recorded by the process layer's hook (installed before the fork,
    // so nothing here takes std's hook lock); the parent reports them instead of us printing.
    panics::set_quiet();
    #[cfg(feature = "test-hooks")]
    let _shown = hooks::ResultsShown::new(link);
    if let Some(init) = init {
        let failure = match panic::catch_unwind(AssertUnwindSafe(init)) {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(RemoteError { kind: "initializer error".into(), message, location: None }),
            Err(p) => Some(panic_error(p)),
        };
        if let Some(e) = failure {
            send(link, bell, &FromWorker::InitFailed(e));
            return 1;
        }
    }
    // The state to put back after each chunk: as the initializer left it.
    let signals = match rules.reset_signals.then(SignalState::save).transpose() {
        Ok(s) => s,
        Err(e) => {
            let message = format!("cannot read the signal state (reset_signals): {e}");
            send(link, bell, &FromWorker::InitFailed(RemoteError::new("pool", message)));
            return 1;
        }
    };
    if !send(link, bell, &FromWorker::Ready) {
        return 1;
    }
    let mut done = 0usize;
    loop {
        // The chunk is read where it lies in the pipe's ring (no copy), and released once
        // the task has run and its result is encoded.
        let step = link.recv_with(|bytes| run_one(link, key, slot, bell, signals.as_ref(), bytes));
        match step {
            Ok(Step::Ran) => {}
            Ok(Step::Skipped) => continue,
            Ok(Step::Exit(code)) => return code,
            // The parent closed the pipe or died: nothing more to do.
            Err(()) => return 0,
        }
        done += 1;
        if rules.maxtasks.is_some_and(|m| done >= m) {
            return 0;
        }
    }
}

/// What one message made the worker do.
enum Step {
    /// Ran a chunk and reported it.
    Ran,
    /// Skipped a chunk the manager took back (and said so).
    Skipped,
    /// Stop, with this exit code.
    Exit(i32),
}

/// Handles one message from the parent (read in place).
fn run_one(
    link: &Link,
    key: &CallKey,
    slot: &Slot<'_>,
    bell: &Doorbell,
    signals: Option<&SignalState>,
    bytes: &[u8],
) -> Step {
    {
        let (seq, call, limit_ns, index, args) = match wire::split::<ToWorker>(bytes) {
            Ok((ToWorker::Run { seq, call, limit_ns, slot: index }, args)) => {
                (seq, call, limit_ns, index as usize, args)
            }
            Ok((ToWorker::Stop, _)) => return Step::Exit(0),
            Err(_) => return Step::Exit(2),
        };
        // Claim before running: after our death the parent knows this chunk had started.
        // SeqCst: Dekker with the manager taking a queued chunk back (`manager::steal`: store
        // the cancel word, then load our claim). Either it sees our claim and leaves the chunk
        // to us, or we see its cancel and skip the chunk; if both see each other, we skip and
        // say so, and it queues the chunk again.
        // The start time first, so that a manager that sees the claim sees when it began.
        // Relaxed: published by the SeqCst claim store below.
        slot.starts.store(index, crate::sys::clock::monotonic_nanos(), Ordering::Relaxed);
        if !slot.claims.store(index, seq, Ordering::SeqCst) {
            return Step::Exit(2); // a slot past the arrays: not a message of our manager's
        }
        // SeqCst: see above.
        if slot.cancels.load(index, Ordering::SeqCst) == Some(seq) {
            if !send(link, bell, &FromWorker::Skipped { seq }) {
                return Step::Exit(0);
            }
            return Step::Skipped;
        }
        let deadline = (limit_ns != 0).then(|| std::time::Instant::now() + std::time::Duration::from_nanos(limit_ns));
        DEADLINE.with(|d| d.set(deadline));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| call.invoke(key, args)));
        DEADLINE.with(|d| d.set(None));
        // Before the result goes: a signal the task left pending and blocked is delivered
        // now, and a death it causes is this chunk's (its claim is still up).
        if signals.is_some_and(|s| s.restore().is_err()) {
            return Step::Exit(3);
        }
        let outcome = match outcome {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(CallFailure::Error { kind, message }))) => {
                Err(TaskFailure::Remote(RemoteError { kind, message, location: None }))
            }
            Ok(Ok(Err(CallFailure::Codec(e)))) => Err(TaskFailure::Codec(e)),
            Ok(Err(_)) => {
                // A token that does not authenticate: a corrupt or forged message. Run nothing.
                return Step::Exit(2);
            }
            Err(p) => Err(TaskFailure::Remote(panic_error(p))),
        };
        let sent = match outcome {
            Ok(results) if results.len() > RESULT_MAX => {
                // Too large for one message: said as this chunk's error, where sending it
                // anyway would fail and end the worker (read as a death with exit code 0).
                let message = format!(
                    "the encoded results are {} bytes; a pool message holds at most {RESULT_MAX}",
                    results.len()
                );
                drop(results);
                let error = RemoteError::new(RESULT_TOO_LARGE, message);
                send(link, bell, &FromWorker::Done { seq, outcome: Outcome::Err(TaskFailure::Remote(error)) })
            }
            Ok(results) => send_with_body(link, bell, &FromWorker::Done { seq, outcome: Outcome::Ok }, &results),
            Err(f) => send(link, bell, &FromWorker::Done { seq, outcome: Outcome::Err(f) }),
        };
        if !sent {
            return Step::Exit(0);
        }
        Step::Ran
    }
}

/// A test's way into a worker: its task can corrupt the ring its results go up
/// (`fuzz::corrupt_pool_results`), as a task writing through a wild pointer could.
#[cfg(feature = "test-hooks")]
pub(crate) mod hooks {
    use super::Link;
    use std::cell::Cell;
    use std::sync::Mutex;

    /// Worker starts still to be refused, process-wide (`fuzz::refuse_pool_starts`). A mutex,
    /// not an atomic: the crate's atomics are loom's in model builds, which have no `const`
    /// constructor for a static.
    static REFUSE_STARTS: Mutex<usize> = Mutex::new(0);

    /// Makes the next `n` worker starts of every pool in this process fail as `fork` does at
    /// the process limit (`EAGAIN`).
    pub(crate) fn refuse_starts(n: usize) {
        *REFUSE_STARTS.lock().unwrap_or_else(|p| p.into_inner()) = n;
    }

    /// Whether this start is to be refused (counting it).
    pub(in crate::pool) fn refuse_start() -> bool {
        let mut left = REFUSE_STARTS.lock().unwrap_or_else(|p| p.into_inner());
        let refuse = *left > 0;
        *left = left.saturating_sub(1);
        refuse
    }

    thread_local! {
        /// The ring this worker sends results into, while `worker_main` runs on this thread
        /// (tasks run on it too).
        static RESULTS: Cell<Option<crate::queue::ring::Ring>> = const { Cell::new(None) };
    }

    /// Publishes a worker's result ring in [`RESULTS`] until dropped, when `worker_main`
    /// returns (the ring is a raw view of memory that the link keeps mapped).
    pub(super) struct ResultsShown;

    impl ResultsShown {
        pub(super) fn new(link: &Link) -> ResultsShown {
            RESULTS.with(|r| r.set(link.tx_ring()));
            ResultsShown
        }
    }

    impl Drop for ResultsShown {
        fn drop(&mut self) {
            RESULTS.with(|r| r.set(None));
        }
    }

    /// Called from a task: corrupts the ring its worker sends results into (its write
    /// position no longer aligned). Does nothing outside a pool worker's thread.
    pub(crate) fn corrupt_own_results() {
        if let Some(ring) = RESULTS.with(Cell::get) {
            ring.scribble(&[0xA5; 64], 3);
        }
    }
}
