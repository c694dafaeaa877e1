//! Spare workers: a pool that has seen a worker die keeps one worker started ahead of need, in
//! no slot. The next death hands the dead worker's slot to the spare at once (its `Ready` has
//! long been in its pipe), so healing costs a message instead of a process start; a thread of
//! the pool's own starts the next spare, so that neither the manager nor the workers wait for
//! the fork. A pool whose workers never die starts no spare and no thread.
//!
//! The thread lives until the pool shuts down: a worker forked from it gets its parent-death
//! signal from this thread's end (as the others do from the manager's), so it must not end
//! while the pool lives. It holds the pool's state only weakly, and the manager stops and joins
//! it before reaping the workers.

use super::state::{fail_everything, RunState, Shared, State, Worker};
use super::wire::{self, FromWorker};
use super::PoolError;
use std::sync::{Arc, Weak};

/// How a worker is started (the manager's `spawn_worker`).
pub(super) type Start = fn(&Shared) -> Result<Worker, PoolError>;

/// Asks for a spare (the pool has none and wants one); starts the thread on first use. False
/// if the thread could not start (the caller stops wanting spares: deaths are then healed by a
/// start on the spot). Called under the state lock; the locks are taken in the order state,
/// then `ask` (then `thread`), here and in the thread, which never waits for the state lock
/// while it holds `ask`.
pub(super) fn request(shared: &Arc<Shared>, start: Start) -> bool {
    let m = &shared.spares;
    {
        let mut ask = m.ask();
        if ask.stop || ask.wanted {
            return true;
        }
        ask.wanted = true;
    }
    let mut thread = m.thread.lock().unwrap_or_else(|p| p.into_inner());
    if thread.is_none() {
        let weak = Arc::downgrade(shared);
        match std::thread::Builder::new().name("multiproc-pool-spares".into()).spawn(move || run(&weak, start)) {
            Ok(t) => *thread = Some(t),
            Err(_) => {
                m.ask().wanted = false;
                return false;
            }
        }
    }
    m.wake.notify_one();
    true
}

/// No spare from now on (the pool is shutting down): the thread ends at its next look.
pub(super) fn forbid(shared: &Shared) {
    shared.spares.ask().stop = true;
    shared.spares.wake.notify_one();
}

/// Ends the thread (waiting for a start under way), once the pool has reaped its workers (a
/// worker forked from this thread dies with it), and reaps a spare it left.
pub(super) fn stop(shared: &Shared) {
    forbid(shared);
    let t = shared.spares.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(t) = t {
        let _ = t.join();
    }
    if let Some(w) = shared.lock().spare.take() {
        w.proc.kill();
        w.proc.reap();
    }
}

/// Calls [`stop`] when dropped: the manager thread holds one, so that a panic in it does not
/// leave the spare thread (and its spare process) behind.
pub(super) struct StopOnDrop<'a>(pub(super) &'a Shared);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        stop(self.0);
    }
}

fn run(weak: &Weak<Shared>, start: Start) {
    loop {
        {
            let Some(shared) = weak.upgrade() else { return };
            let m = &shared.spares;
            let mut ask = m.ask();
            loop {
                if ask.stop {
                    return;
                }
                if ask.wanted {
                    break;
                }
                // Asleep holding `shared`: the manager, which holds it too, joins this thread
                // (`stop`) before it lets go, so this is never the last holder.
                ask = m.wake.wait(ask).unwrap_or_else(|p| p.into_inner());
            }
        }
        let Some(shared) = weak.upgrade() else { return };
        let started = start(&shared);
        let mut st = shared.lock();
        // Taken back under the state lock, in the same hold that hands the spare over (the
        // order state, then ask, is `request`'s too). Earlier, a request made after the spare
        // is visible (the manager promotes it at once) would find `wanted` still set and be
        // dropped; later, the manager, which holds the state lock most of the time, would find
        // no spare yet and ask again, and every death would cost a second start whose worker
        // is killed at once.
        shared.spares.ask().wanted = false;
        match started {
            Ok(w) if st.run == RunState::Running && st.spare.is_none() => st.spare = Some(w),
            Ok(w) => {
                drop(st);
                w.proc.kill();
                w.proc.reap();
                st = shared.lock();
            }
            // No spare now: the next death is healed by a start on the spot.
            Err(_) => st.want_spare = false,
        }
        drop(st);
    }
}

/// Hands slot `i` (its worker just died) to the spare, if there is one and it is alive; false
/// otherwise (the caller starts a replacement on the spot).
pub(super) fn promote(st: &mut State, i: usize) -> bool {
    let Some(spare) = st.spare.take() else { return false };
    if spare.proc.try_exit().is_some() {
        spare.proc.reap();
        return false;
    }
    st.workers[i] = Some(spare);
    true
}

/// Reaps the spare if it died before it was needed (killed from outside, or its initializer
/// failed: that failure is the pool's, as a replacement's would be). No new spare is asked
/// for until the next worker death, so a spare that cannot live is not restarted in a loop.
pub(super) fn check(st: &mut State) {
    if st.spare.as_ref().is_none_or(|w| w.proc.try_exit().is_none()) {
        return;
    }
    let Some(w) = st.spare.take() else { return };
    let failed = match w.link.try_recv_with(|b| wire::split::<FromWorker>(b).map(|(m, _)| m)) {
        Ok(Some(Ok(FromWorker::InitFailed(e)))) => Some(e),
        _ => None,
    };
    w.proc.reap();
    st.want_spare = false;
    if let Some(e) = failed {
        st.run = RunState::Broken(e.clone());
        fail_everything(st, &PoolError::InitializerFailed(e));
    }
}
