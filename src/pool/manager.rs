//! The pool's manager thread (its state is `state.rs`): dispatching chunks to workers (and taking queued
//! ones back from busy workers), reading results, replacing dead workers, shutting down.
//!
//! # Dispatch
//! A worker holds at most [`PIPELINE`] chunks: one running and one waiting in its pipe, so it
//! never idles between two chunks while the manager is slow to answer. Chunks go first to
//! workers that hold none, then a second to each, so `n` long tasks on `Pool(n)` run at once.
//! When nothing is pending and a worker is idle while another holds a chunk it has not started
//! (queued behind a long or stuck task), the manager takes that chunk back ([`steal`]) and gives
//! it to the idle worker: a stuck worker delays only its own chunk.

use super::chunk::Delivery;
use super::link::{self, Down, Link, WorkerExit};
use super::state::{fail_everything, RunState, Shared, State, Worker};
use super::wire::{self, FromWorker, Outcome, ToWorker};
use super::{PoolError, SpawnError};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How many chunks a worker may hold at once: one running and one waiting in its pipe.
const PIPELINE: usize = 2;

/// How often the manager thread looks at worker liveness and control flags when no message
/// arrives.
const TICK: Duration = Duration::from_millis(20);

/// Sends queued chunks to workers that have room, idle workers first; then, if nothing is
/// left and a worker is still idle, takes back chunks that busy workers have not started.
/// Runs under the state lock, so the chunks of one worker are sent in dispatch order.
pub(super) fn dispatch(shared: &Shared, st: &mut State) {
    assign(shared, st);
    if st.pending.is_empty() && steal(shared, st) {
        assign(shared, st);
    }
}

/// Whether worker `w` may take one more chunk now, with `depth` chunks allowed.
fn has_room(w: &Worker, depth: usize, max: Option<usize>) -> bool {
    let quota_left = max.map_or(usize::MAX, |m| m.saturating_sub(w.done + w.outstanding.len()));
    w.ready && w.cancel_pending.is_none() && w.timed_out.is_none() && w.outstanding.len() < depth && quota_left > 0
}

fn assign(shared: &Shared, st: &mut State) {
    let max = shared.config.maxtasksperchild;
    let n = st.workers.len();
    let start = st.next_worker;
    st.next_worker = (start + 1) % n.max(1);
    for depth in 1..=PIPELINE {
        for k in 0..n {
            if st.pending.is_empty() {
                return;
            }
            let i = (start + k) % n;
            if !st.workers[i].as_ref().is_some_and(|w| has_room(w, depth, max)) {
                continue;
            }
            let Some(chunk) = st.pending.pop_front() else { return };
            let seq = st.next_seq;
            st.next_seq += 1;
            let limit_ns = chunk.limit.map_or(0, |l| nanos(l).max(1));
            let slot = u32::try_from(i).expect("a pool's size fits in u32");
            let head = wire::header(&ToWorker::Run { seq, call: chunk.call, limit_ns, slot });
            let w = st.workers[i].as_mut().expect("checked above");
            // A worker with nothing outstanding is reading its pipe: the send may wait for
            // room. One with a chunk running reads nothing until that task ends (perhaps
            // never, a task stopped or looping until its time limit), and this thread holds
            // the pool's lock, which the time limits and `terminate` need: a chunk queued
            // behind a running one goes only if it fits now, else it waits here for a worker.
            let sent = if depth == 1 {
                w.link.send_parts(&head, &chunk.args).map(|()| true)
            } else {
                w.link.try_send_parts(&head, &chunk.args)
            };
            match sent {
                Ok(true) => w.outstanding.push_back((seq, chunk)),
                // Not now, or the worker is gone (the manager will notice and replace it): the
                // chunk goes back to the front of the queue (its number unused, harmlessly).
                Ok(false) | Err(()) => st.pending.push_front(chunk),
            }
        }
    }
}

/// Takes back queued (not started) chunks from busy workers while some worker is idle; returns
/// whether any chunk went back to the pending queue.
///
/// A taken chunk's message is still in its worker's pipe: the worker's cancel word names it,
/// and the worker skips it when it gets there (see the Dekker pair in `worker.rs`). A worker
/// that already claimed it runs it, unless it also saw the cancel, in which case it reports
/// `Skipped` and the chunk is queued again then.
fn steal(shared: &Shared, st: &mut State) -> bool {
    let max = shared.config.maxtasksperchild;
    let mut idle = st.workers.iter().flatten().filter(|w| has_room(w, 1, max)).count();
    let mut stole = false;
    for i in 0..st.workers.len() {
        if idle == 0 {
            break;
        }
        let Some(w) = st.workers[i].as_mut() else { continue };
        if w.outstanding.len() < 2 || w.cancel_pending.is_some() {
            continue;
        }
        let Some(&(seq, _)) = w.outstanding.back() else { continue };
        // SeqCst: see `worker.rs` (store our cancel, then load its claim).
        shared.cancels.store(i, seq, Ordering::SeqCst);
        w.cancel_pending = Some(seq);
        // SeqCst: see above.
        if shared.claims.load(i, Ordering::SeqCst) == Some(seq) {
            continue; // it started the chunk (or will skip it and tell us)
        }
        let (_, chunk) = w.outstanding.pop_back().expect("len checked above");
        st.pending.push_front(chunk);
        idle -= 1;
        stole = true;
    }
    stole
}

/// Files one chunk's outcome for its job, to be delivered once the state's lock is let go
/// (`chunk.rs`).
pub(super) fn complete(st: &mut State, job: u64, index: usize, r: Result<Vec<u8>, PoolError>) {
    let Some(j) = st.jobs.get_mut(&job) else { return };
    j.chunks_left -= 1;
    let last = j.chunks_left == 0;
    let handoff = j.handoff(Delivery::Chunk(index, r), last);
    st.handoffs.push(handoff);
    if last {
        st.jobs.remove(&job);
    }
}

/// The manager thread: forks the workers, reads their results, replaces the dead, and stops
/// them when the pool is closed and idle or terminated.
pub(super) fn manager_main(shared: Arc<Shared>, started: mpsc::Sender<Result<(), PoolError>>) {
    let _ = shared.manager_thread.set(std::thread::current().id());
    // Dropped last: after the spare thread's end and every delivery this thread filed.
    let _ended = MarkEnded(&shared);
    // However this thread ends (a panic too), the spare thread ends with it and its spare is
    // reaped; on the normal path `stop` below has done so already (a second call does nothing).
    let _spares = super::spares::StopOnDrop(&shared);
    // Start-up: fork every worker from this thread (so that their parent-death signal follows
    // this thread, which lives as long as the pool) and wait for their `Ready`.
    let startup = (|| {
        for i in 0..shared.config.processes {
            let w = spawn_worker(&shared)?;
            shared.lock().workers[i] = Some(w);
        }
        for i in 0..shared.config.processes {
            let link = shared.lock().workers[i].as_ref().map(|w| w.link.clone());
            let Some(link) = link else { continue };
            match link.recv_with(|b| wire::split::<FromWorker>(b).map(|(m, _)| m)) {
                Ok(Ok(FromWorker::Ready)) => {
                    if let Some(w) = shared.lock().workers[i].as_mut() {
                        w.ready = true;
                    }
                }
                Ok(Ok(FromWorker::InitFailed(e))) => return Err(PoolError::InitializerFailed(e)),
                _ => return Err(PoolError::spawn(SpawnError::DiedDuringStartup)),
            }
        }
        Ok(())
    })();
    let ok = startup.is_ok();
    if let Err(e) = &startup {
        let mut st = shared.lock();
        st.run = match e {
            PoolError::InitializerFailed(r) => RunState::Broken(r.clone()),
            _ => RunState::Terminated,
        };
    }
    let _ = started.send(startup);
    if ok {
        run_loop(&shared);
    }
    // Shut down: no more spares; stop or kill every worker and reap it. The spare thread is
    // joined only after the workers are reaped: a worker it forked (a promoted spare) gets its
    // parent-death signal when that thread ends, which would kill it before its `Stop`.
    super::spares::forbid(&shared);
    let workers: Vec<Worker> = {
        let mut st = shared.lock();
        let spare = st.spare.take();
        st.workers.iter_mut().filter_map(Option::take).chain(spare).collect()
    };
    let graceful = shared.lock().run == RunState::Closed;
    // Killed, a worker that leads a process group (a pool with a time limit) takes its
    // group with it, as at a time limit: what its task started does not outlive the pool.
    for w in &workers {
        if graceful {
            let _ = w.link.send(&wire::header(&ToWorker::Stop));
        } else {
            w.proc.kill_tree();
        }
    }
    for w in workers {
        if !graceful || !w.proc.wait_timeout(Duration::from_secs(5)) {
            w.proc.kill_tree();
        }
        w.proc.reap();
    }
    super::spares::stop(&shared);
}

/// Marks the manager thread ended (`State::manager_ended`) however it ends. If it ends by a
/// panic (a bug), the pool ends with it: the jobs left fail with `Terminated` and new ones are
/// refused, instead of waiting for a thread that is gone.
struct MarkEnded<'a>(&'a Shared);

impl Drop for MarkEnded<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        if st.run == RunState::Running {
            st.run = RunState::Terminated;
        }
        fail_everything(&mut st, &PoolError::Terminated);
        drop(st); // delivers those failures
        self.0.lock().manager_ended = true;
        self.0.idle.notify_all();
    }
}

fn run_loop(shared: &Arc<Shared>) {
    // When the workers' liveness was last looked at. Each look costs each worker a syscall or
    // two (`try_exit`), once per round of messages, so it is made only when there is
    // something to find: the death watch saw a worker end, a link's peer has gone, or a tick
    // has passed (a worker the death watch cannot see is still found then).
    let mut last_sweep = std::time::Instant::now();
    // Links whose worker has hung up (after its last complete message) and is not reaped yet.
    // They are left out of the wait, which they would end at once: the manager would spin
    // until the exit can be reaped, taking a CPU from the fork server that has to report it.
    // The death watch rings when the exit can be reaped; the tick is the fallback.
    let mut hung: Vec<Arc<Link>> = Vec::new();
    loop {
        {
            let st = shared.lock();
            match st.run {
                RunState::Terminated | RunState::Broken(_) => return,
                RunState::Closed if st.jobs.is_empty() => return,
                _ => {}
            }
        }
        let links: Vec<(usize, Arc<Link>)> = shared
            .lock()
            .workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| Some((i, w.as_ref()?.link.clone())))
            .filter(|(_, l)| !hung.iter().any(|h| Arc::ptr_eq(h, l)))
            .collect();
        // Read without the state lock: a worker blocked sending a large result must always be
        // able to make progress.
        let mut inbox: Vec<(usize, Decoded)> = Vec::new();
        let mut hung_up = false;
        // Links whose live worker wrote what cannot be read (a task scribbling over the
        // worker's memory can reach its ring): the worker is killed below, and its death
        // fails the chunk it had claimed, as any death does.
        let mut corrupt: Vec<Arc<Link>> = Vec::new();
        for i in link::wait_readable(&links, &shared.bell, TICK) {
            let Some((_, l)) = links.iter().find(|(j, _)| *j == i) else { continue };
            // A hang-up alone is not an exit (the process may still be flushing): the liveness
            // pass below reaps it once it has exited. Each message is decoded where it lies in
            // the ring (its result bytes copied out once, into the value that keeps them).
            loop {
                match l.try_recv_with(decode) {
                    Ok(Some(m)) => inbox.push((i, m)),
                    Ok(None) => break,
                    Err(down) => {
                        hung_up = true;
                        hung.push(l.clone());
                        if down == Down::Corrupt {
                            corrupt.push(l.clone());
                        }
                        break;
                    }
                }
            }
        }
        let death_seen = shared.deaths.as_ref().is_none_or(super::deaths::DeathWatch::take_seen);
        let sweep = hung_up || death_seen || last_sweep.elapsed() >= TICK;
        if sweep {
            last_sweep = std::time::Instant::now();
        }
        super::result::deferring_wakeups(|| {
            let mut st = shared.lock();
            for (i, m) in inbox {
                handle_decoded(shared, &mut st, i, m);
            }
            for w in st.workers.iter().flatten().filter(|w| corrupt.iter().any(|c| Arc::ptr_eq(c, &w.link))) {
                w.proc.kill_tree();
            }
            if sweep {
                // Liveness: reap exited workers.
                for i in 0..st.workers.len() {
                    let exited = st.workers[i].as_ref().and_then(|w| w.proc.try_exit());
                    if let Some(exit) = exited {
                        handle_exit(shared, &mut st, i, exit);
                    }
                }
                refill(shared, &mut st);
                super::spares::check(&mut st);
                hung.retain(|h| st.workers.iter().flatten().any(|w| Arc::ptr_eq(&w.link, h)));
                settle_hung(shared, &mut st, &hung);
            }
            enforce_time_limits(shared, &mut st);
            dispatch(shared, &mut st);
            if st.want_spare
                && st.spare.is_none()
                && st.run == RunState::Running
                && !super::spares::request(shared, spawn_worker)
            {
                st.want_spare = false;
            }
            if st.jobs.is_empty() {
                shared.idle.notify_all();
            }
        });
    }
}

/// `d` in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Kills every worker whose running chunk has been running for longer than its limit (with
/// its process group: the task's own children go too). Its death is then handled as any
/// death, and the chunk fails with `TimeLimit`.
fn enforce_time_limits(shared: &Shared, st: &mut State) {
    let mut now = None;
    for (i, slot) in st.workers.iter_mut().enumerate() {
        let Some(w) = slot.as_mut() else { continue };
        if w.timed_out.is_some() {
            continue;
        }
        // Acquire: pairs with the worker's SeqCst claim store, made after its start store.
        let Some(claimed) = shared.claims.load(i, Ordering::Acquire) else { continue };
        let Some(limit) = w.outstanding.iter().find(|(s, _)| *s == claimed).and_then(|(_, c)| c.limit) else {
            continue;
        };
        // The clock only when a running chunk has a limit.
        let now = *now.get_or_insert_with(crate::sys::clock::monotonic_nanos);
        // Relaxed: ordered after the claim load above (the worker stores it first).
        let started = shared.starts.load(i, Ordering::Relaxed).unwrap_or(now);
        if now.saturating_sub(started) > nanos(limit) {
            w.timed_out = Some(claimed);
            // Its group, where it leads one (a pool with a time limit): the task's children go too.
            w.proc.kill_tree();
        }
    }
}

/// A worker's message, decoded, with its body copied out (or why it could not be decoded).
pub(super) type Decoded = Result<(FromWorker, Vec<u8>), crate::codec::CodecError>;

/// Decodes a worker's message where it lies; only a chunk's results are copied out (once,
/// into the value that carries them to the caller).
pub(super) fn decode(bytes: &[u8]) -> Decoded {
    wire::split::<FromWorker>(bytes).map(|(m, body)| (m, body.to_vec()))
}

/// Workers whose link hung up but that live on: a task closed the worker's descriptors (a
/// target calling `close_range`, say) and went on. Such a worker can still write its results
/// into its ring, but it can no longer be sent work, nor be heard from by descriptor. What it
/// wrote since is read here, at each liveness pass; once it has nothing outstanding it is
/// killed, and its exit replaces it. (Before, nothing read it until it exited, which a worker
/// waiting for work never did: its input stayed unresolved for ever.)
fn settle_hung(shared: &Shared, st: &mut State, hung: &[Arc<Link>]) {
    for h in hung {
        let Some(i) = st.workers.iter().position(|w| w.as_ref().is_some_and(|w| Arc::ptr_eq(&w.link, h))) else {
            continue;
        };
        while let Ok(Some(b)) = h.try_recv() {
            handle_message(shared, st, i, &b);
            if st.workers[i].is_none() {
                break;
            }
        }
        if let Some(w) = st.workers[i].as_ref().filter(|w| w.outstanding.is_empty()) {
            w.proc.kill_tree();
        }
    }
}

fn handle_message(shared: &Shared, st: &mut State, i: usize, bytes: &[u8]) {
    handle_decoded(shared, st, i, decode(bytes));
}

pub(super) fn handle_decoded(shared: &Shared, st: &mut State, i: usize, msg: Decoded) {
    let Some(w) = st.workers[i].as_mut() else { return };
    match msg {
        Ok((FromWorker::Ready, _)) => w.ready = true,
        Ok((FromWorker::InitFailed(e), _)) => {
            st.run = RunState::Broken(e.clone());
            fail_everything(st, &PoolError::InitializerFailed(e));
        }
        Ok((FromWorker::Done { seq, outcome }, body)) => {
            if w.cancel_pending == Some(seq) {
                w.cancel_pending = None; // it had started the chunk: its result is the one
            }
            let Some(pos) = w.outstanding.iter().position(|(s, _)| *s == seq) else { return };
            let Some((_, chunk)) = w.outstanding.remove(pos) else { return };
            w.done += 1;
            let r = match outcome {
                Outcome::Ok => Ok(body),
                Outcome::Err(f) => Err(PoolError::from(f)),
            };
            complete(st, chunk.job, chunk.index, r);
        }
        Ok((FromWorker::Skipped { seq }, _)) => {
            if w.cancel_pending == Some(seq) {
                w.cancel_pending = None;
            }
            // Still ours only if it claimed the chunk before seeing the cancel: queue it again.
            if let Some(pos) = w.outstanding.iter().position(|(s, _)| *s == seq) {
                if let Some((_, chunk)) = w.outstanding.remove(pos) {
                    st.pending.push_front(chunk);
                }
            }
            let _ = shared;
        }
        Err(_) => {
            // A corrupt message: treat the worker as broken; it is killed and its claimed
            // chunk fails (`WorkerDied`, SIGKILL), as any death does.
            w.proc.kill_tree();
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
    // The chunk whose dispatch number the worker claimed had started: it fails, naming its
    // items. Later ones never started: they go back to the front of the queue, in order.
    // Acquire: pairs with the worker's SeqCst claim store.
    let claimed = shared.claims.load(i, Ordering::Acquire).unwrap_or(0);
    let mut requeue = Vec::new();
    for (seq, chunk) in w.outstanding.drain(..) {
        // Killed for running past the limit of a chunk it had just finished (its `Done` came
        // in meanwhile): the chunk it had claimed since is innocent and runs again elsewhere.
        let killed_for_another = w.timed_out.is_some_and(|t| t != seq);
        if seq > claimed || (seq == claimed && killed_for_another) {
            requeue.push(chunk);
        } else if w.timed_out == Some(seq) {
            let err = PoolError::TimeLimit {
                pid: w.proc.pid(),
                index: chunk.first_item,
                len: chunk.items,
                limit: chunk.limit.unwrap_or_default(),
            };
            complete(st, chunk.job, chunk.index, Err(err));
        } else {
            let err = PoolError::WorkerDied {
                pid: w.proc.pid(),
                signal: exit.signal,
                code: exit.code,
                index: chunk.first_item,
                len: chunk.items,
            };
            complete(st, chunk.job, chunk.index, Err(err));
        }
    }
    for chunk in requeue.into_iter().rev() {
        st.pending.push_front(chunk);
    }
    // Release: the slot's words are reset before a replacement can read them.
    shared.claims.store(i, 0, Ordering::Release);
    shared.cancels.store(i, 0, Ordering::Release);
    shared.starts.store(i, 0, Ordering::Release);
    if !wants_workers(st) {
        return;
    }
    st.want_spare = true;
    if super::spares::promote(st, i) {
        // Its `Ready` has long been in its pipe: take it now, so that this round's dispatch
        // already sends it work.
        if let Some(Ok(Some(m))) = st.workers[i].as_ref().map(|w| w.link.try_recv_with(decode)) {
            handle_decoded(shared, st, i, m);
        }
        return;
    }
    match spawn_worker(shared) {
        Ok(nw) => st.workers[i] = Some(nw),
        // The work waiting fails with why (the slot is tried again each sweep: `refill`).
        Err(e) => fail_everything(st, &e),
    }
}

/// Whether the pool still needs its workers: running, or closed with work left.
fn wants_workers(st: &State) -> bool {
    match st.run {
        RunState::Running => true,
        RunState::Closed => !st.jobs.is_empty(),
        _ => false,
    }
}

/// Starts a worker in each slot that a failed start left empty (`fork`'s `EAGAIN`, no
/// memory): once the system allows it again the pool is whole, instead of queueing work for
/// ever on fewer workers, or on none (Python's pool keeps repopulating too). A ready spare
/// fills a slot first. Called each sweep; stops at the first start that fails. If the pool has
/// had no worker at all while starts kept failing for [`START_GRACE`], the work waiting fails
/// with the start's error: it would otherwise wait for a start that may never succeed
/// (Python's waits for ever), while a failure that passes (a moment at the process limit)
/// costs nothing.
fn refill(shared: &Shared, st: &mut State) {
    if !wants_workers(st) {
        return;
    }
    for i in 0..st.workers.len() {
        // A spare started meanwhile (its thread retries too) takes the slot first.
        if st.workers[i].is_none() && !super::spares::promote(st, i) {
            match spawn_worker(shared) {
                Ok(w) => st.workers[i] = Some(w),
                Err(e) => {
                    if st.workers.iter().all(Option::is_none) {
                        let since = *st.starts_failing_since.get_or_insert_with(std::time::Instant::now);
                        if since.elapsed() >= START_GRACE {
                            fail_everything(st, &e);
                        }
                    }
                    return;
                }
            }
        }
    }
    st.starts_failing_since = None;
}

/// How long a pool with no worker keeps work waiting while its starts fail (`refill`).
const START_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts a worker (forked from this thread, or spawned: see `link`); its slot comes with
/// each chunk.
pub(super) fn spawn_worker(shared: &Shared) -> Result<Worker, PoolError> {
    #[cfg(feature = "test-hooks")]
    if super::worker::hooks::refuse_start() {
        let eagain = std::io::Error::from_raw_os_error(libc::EAGAIN);
        return Err(PoolError::spawn(SpawnError::Process(crate::StartError::Os(eagain))));
    }
    let key = shared.key;
    let claims = shared.claims.clone();
    let cancels = shared.cancels.clone();
    let starts = shared.starts.clone();
    let rules =
        super::worker::Rules { maxtasks: shared.config.maxtasksperchild, reset_signals: shared.config.reset_signals };
    let bell = shared.bell.clone();
    let init_call = shared.config.init_call.clone();
    // A group of its own only where time limits will use it (see `link::spawn`).
    let group = shared.config.time_limit.is_some();
    let (proc, link) = if shared.config.method == crate::StartMethod::Fork {
        let init = shared.config.initializer.clone();
        link::spawn(shared.config.pipe_capacity, group, move |link| {
            let call = init_call.map(|c| move || super::worker::call_result(c.run()));
            let init: Option<&(dyn Fn() -> Result<(), String> + Send + Sync)> = match (&init, &call) {
                (Some(f), _) => Some(f.as_ref()),
                (None, Some(c)) => Some(c),
                (None, None) => None,
            };
            let slot = super::worker::Slot { claims: &claims, cancels: &cancels, starts: &starts };
            super::worker::worker_main(&link, &key, &slot, init, rules, &bell)
        })?
    } else {
        link::spawn_fresh(
            shared.config.pipe_capacity,
            group,
            shared.config.method,
            super::worker::spawned_worker,
            move |up, down| super::worker::WorkerArgs {
                up,
                down,
                key,
                claims,
                cancels,
                starts,
                init: init_call,
                rules,
                bell,
            },
        )?
    };
    if let (Some(d), Some(s)) = (&shared.deaths, proc.sentinel()) {
        d.watch(s);
    }
    Ok(Worker {
        proc,
        link: Arc::new(link),
        outstanding: VecDeque::new(),
        ready: false,
        done: 0,
        cancel_pending: None,
        timed_out: None,
    })
}
