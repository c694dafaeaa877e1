//! The pool's state: what the manager thread and the callers share (`Shared`, under one
//! lock: `State`), each worker's record (`Worker`), and the pool's configuration.

use super::chunk::{Chunk, Delivery, Handoff, Job};
use super::link::{Doorbell, Link, WorkerProc};
use super::{PoolError, RemoteError, SpawnError};
use crate::process::call::CallKey;
use crate::shm::WordArray;
use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// An initializer run in every worker before its first task.
pub(super) type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RunState {
    Running,
    /// `close()` was called: no new work; workers stop once every job is done.
    Closed,
    /// `terminate()` was called or the pool was dropped.
    Terminated,
    /// A worker's initializer failed (POOL-B3).
    Broken(RemoteError),
}

pub(super) struct Worker {
    pub(super) proc: WorkerProc,
    pub(super) link: Arc<Link>,
    /// Dispatched chunks without a result yet, in the order the worker receives them.
    pub(super) outstanding: VecDeque<(u64, Chunk)>,
    /// The initializer has run and the worker takes tasks.
    pub(super) ready: bool,
    /// Chunks completed by this process (for `maxtasksperchild`).
    pub(super) done: usize,
    /// A chunk this worker was asked to skip (its cancel word) that it has not answered for
    /// yet: it gets no new chunk until it does, so it can never run a chunk twice.
    pub(super) cancel_pending: Option<u64>,
    /// The chunk this worker was killed for running past its time limit.
    pub(super) timed_out: Option<u64>,
}

pub(super) struct State {
    pub(super) run: RunState,
    pub(super) workers: Vec<Option<Worker>>,
    pub(super) pending: VecDeque<Chunk>,
    pub(super) jobs: HashMap<u64, Job>,
    pub(super) next_job: u64,
    pub(super) next_seq: u64,
    /// The worker the next dispatch round starts at (so the first slots rotate).
    pub(super) next_worker: usize,
    /// A worker started ahead of need, in no slot yet: the next dead worker's replacement
    /// (it takes the slot at once, and a new spare is started off the manager's thread:
    /// `spares.rs`).
    pub(super) spare: Option<Worker>,
    /// Whether the pool keeps a spare: from its first worker death on (a pool whose workers
    /// never die pays nothing; a fuzzing harness's, whose workers crash in streams, heals in
    /// the time of a message). Cleared when a spare dies before it was needed, so that a
    /// spare that cannot live is never restarted in a loop (POOL-B3).
    pub(super) want_spare: bool,
    /// Outcomes filed under the lock, delivered by the [`StateGuard`] once it has let the
    /// lock go (see `chunk.rs`).
    pub(super) handoffs: Vec<Handoff>,
    /// The manager thread has ended, after delivering everything it filed (for a `join`
    /// that finds another thread joining that thread).
    pub(super) manager_ended: bool,
    /// Since when the empty slots' starts have failed, with no worker left (`refill`).
    pub(super) starts_failing_since: Option<std::time::Instant>,
}

impl State {
    pub(super) fn new(processes: usize) -> State {
        State {
            run: RunState::Running,
            workers: (0..processes).map(|_| None).collect(),
            pending: VecDeque::new(),
            jobs: HashMap::new(),
            next_job: 0,
            next_seq: 1,
            next_worker: 0,
            spare: None,
            want_spare: false,
            handoffs: Vec::new(),
            manager_ended: false,
            starts_failing_since: None,
        }
    }
}

pub(super) struct Config {
    pub(super) processes: usize,
    pub(super) maxtasksperchild: Option<usize>,
    pub(super) initializer: Option<Initializer>,
    /// An initializer given as a `fn` call (every start method).
    pub(super) init_call: Option<crate::process::FnCall>,
    pub(super) pipe_capacity: usize,
    pub(super) method: crate::StartMethod,
    /// The default time limit per task (`PoolBuilder::time_limit`).
    pub(super) time_limit: Option<Duration>,
    /// Workers put their signal state back after each chunk (`PoolBuilder::reset_signals`).
    pub(super) reset_signals: bool,
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Signalled when a job finishes or the pool stops (for `join`).
    pub(super) idle: Condvar,
    pub(super) config: Config,
    pub(super) key: CallKey,
    /// One word per worker slot: the dispatch number of the chunk that worker is running.
    pub(super) claims: WordArray,
    /// One word per worker slot: the dispatch number of a chunk it must skip (taken back).
    pub(super) cancels: WordArray,
    /// One word per worker slot: when (CLOCK_MONOTONIC nanoseconds) it claimed the chunk its
    /// claim word names, written just before the claim (for time limits).
    pub(super) starts: WordArray,
    /// Wakes the manager thread on close and terminate.
    pub(super) bell: Doorbell,
    /// Rings `bell` when a worker ends (`None` if its thread could not start: the manager's
    /// tick still finds deaths).
    pub(super) deaths: Option<super::deaths::DeathWatch>,
    /// The thread that starts spares, once the pool wants one.
    pub(super) spares: SpareMaker,
    /// The manager thread (set as it starts): the thread callbacks run on, which `join` and
    /// `terminate` must not wait for.
    pub(super) manager_thread: std::sync::OnceLock<std::thread::ThreadId>,
}

impl Shared {
    pub(super) fn new(config: Config) -> Result<Shared, PoolError> {
        let words = || WordArray::new(config.processes).map_err(|e| PoolError::spawn(SpawnError::Shm(e)));
        let bell = Doorbell::new().map_err(|e| PoolError::spawn(SpawnError::Shm(e)))?;
        Ok(Shared {
            deaths: super::deaths::DeathWatch::start(bell.clone()).ok(),
            spares: SpareMaker::default(),
            manager_thread: std::sync::OnceLock::new(),
            state: Mutex::new(State::new(config.processes)),
            idle: Condvar::new(),
            key: CallKey::new(),
            claims: words()?,
            cancels: words()?,
            starts: words()?,
            bell,
            config,
        })
    }

    pub(super) fn lock(&self) -> StateGuard<'_> {
        StateGuard { guard: Some(self.state.lock().unwrap_or_else(|p| p.into_inner())) }
    }
}

/// The pool's state, locked; on drop it lets the lock go and then runs the outcomes filed
/// meanwhile ([`State::handoffs`]), so that no sink (and no user callback) runs under the
/// lock, which a callback calling back into its pool would need.
pub(super) struct StateGuard<'a> {
    guard: Option<MutexGuard<'a, State>>,
}

impl StateGuard<'_> {
    /// Waits on `cv` (which is signalled under this lock). Outcomes filed before the wait
    /// stay in the state and are delivered by whichever guard next lets the lock go.
    pub(super) fn wait(mut self, cv: &Condvar) -> Self {
        let guard = self.guard.take().expect("a guard holds its lock until dropped");
        self.guard = Some(cv.wait(guard).unwrap_or_else(|p| p.into_inner()));
        self
    }
}

impl Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.guard.as_ref().expect("a guard holds its lock until dropped")
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("a guard holds its lock until dropped")
    }
}

thread_local! {
    /// An empty vector with room, swapped into the state for the hand-offs a guard takes out,
    /// so that a round of deliveries allocates nothing (the manager delivers every result).
    static SPARE_HANDOFFS: std::cell::Cell<Vec<Handoff>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else { return };
        if guard.handoffs.is_empty() {
            return;
        }
        let mut handoffs = std::mem::replace(&mut guard.handoffs, SPARE_HANDOFFS.take());
        drop(guard);
        // A delivery's callback may lock the state again on this thread: the spare is out of
        // the thread-local meanwhile, so such a nested guard simply starts another vector.
        handoffs.drain(..).for_each(Handoff::run);
        SPARE_HANDOFFS.set(handoffs);
    }
}

/// Fails every job and drops every queued chunk.
pub(super) fn fail_everything(st: &mut State, err: &PoolError) {
    st.pending.clear();
    for w in st.workers.iter_mut().flatten() {
        w.outstanding.clear();
    }
    st.handoffs.extend(st.jobs.drain().map(|(_, job)| job.handoff(Delivery::JobFailed(err.clone()), true)));
}

/// The pool's spare-starting thread and what it is asked (its work is `spares.rs`).
#[derive(Default)]
pub(super) struct SpareMaker {
    pub(super) ask: Mutex<Ask>,
    pub(super) wake: Condvar,
    pub(super) thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the spare thread is asked.
#[derive(Default)]
pub(super) struct Ask {
    /// Start a spare.
    pub(super) wanted: bool,
    /// End the thread.
    pub(super) stop: bool,
}

impl SpareMaker {
    pub(super) fn ask(&self) -> MutexGuard<'_, Ask> {
        self.ask.lock().unwrap_or_else(|p| p.into_inner())
    }
}
