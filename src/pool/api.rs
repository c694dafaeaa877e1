//! [`Pool`]: making one, its size, and its end (close, terminate, join). The calls that run
//! work are in `calls.rs`.

use super::state::{fail_everything, RunState, Shared};
use super::PoolError;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A pool of worker processes (Python's `multiprocessing.Pool`), forked from this process.
///
/// Functions sent to workers are plain `fn` items: a forked worker runs the same program
/// image, so a function pointer is valid there (closures created after the workers started
/// would not be). Arguments and results are any owned serde types ([`TaskValue`](super::TaskValue)) and travel
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// Number of worker processes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Pool::new(3)?.processes(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<i32> {
        self.shared.lock().workers.iter().flatten().map(|w| w.proc.pid()).collect()
    }

    /// The spare worker's pid, if the pool has one now (tests only: see `spares.rs`).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn spare_pid(&self) -> Option<i32> {
        self.shared.lock().spare.as_ref().map(|w| w.proc.pid())
    }

    /// Stops accepting work; submitted work still completes (Python's `close`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiproc::Pool::new(1)?;
    /// pool.close();
    /// pool.join();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Panics
    /// If called from one of the pool's own callbacks, which run on the thread `join` would
    /// wait for (Python raises `RuntimeError` there). The pool is closed first; a callback's
    /// panic is reported and contained, and a `join` from another thread then works.
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) {
        self.close();
        assert!(
            !self.on_own_thread(),
            "Pool::join called from one of the pool's callbacks: it would wait for the thread it runs on \
             (the pool is closed; join it from another thread)"
        );
        {
            let mut st = self.shared.lock();
            while !st.jobs.is_empty() && st.run == RunState::Closed {
                st = st.wait(&self.shared.idle);
            }
        }
        self.join_manager();
    }

    /// Whether this is the pool's own thread (the one its callbacks run on).
    fn on_own_thread(&self) -> bool {
        self.shared.manager_thread.get() == Some(&std::thread::current().id())
    }

    /// Waits for the pool's thread to end, unless this is that thread (`terminate`, or the
    /// last handle dropped, from a callback): it ends on its own once the callback returns, and
    /// a later `join` from elsewhere waits for it.
    fn join_manager(&self) {
        if self.on_own_thread() {
            return;
        }
        let h = self.manager.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = h {
            let _ = h.join();
            return;
        }
        // Another thread is joining it: wait until it has delivered its last outcomes too.
        let mut st = self.shared.lock();
        while !st.manager_ended {
            st = st.wait(&self.shared.idle);
        }
    }
}

impl Drop for Pool {
    /// Terminates the pool, like leaving Python's `with Pool() as p:` block.
    fn drop(&mut self) {
        self.terminate();
    }
}
