//! What the scheduler moves around: a job's chunks and where their outcomes go. A leaf: the
//! scheduler (`manager.rs`) and the job side (`jobs.rs`) both use these, neither through the
//! other.
//!
//! # Outcomes are delivered after the pool's lock is let go
//!
//! A job's sink runs the caller's callbacks, and a callback may call back into its pool
//! (submit more work, close it, terminate it, drop the last handle to it: POOL-B9), which
//! takes the pool's lock. So a sink never runs under that lock: code holding it files a
//! [`Handoff`] in the state, and the state's guard runs the hand-offs it holds once it has
//! let the lock go (`state.rs`). A job's sink sits in a cell of its own ([`SinkState`]), so
//! the thread that delivers (the manager thread, or a caller whose submission failed, or one
//! that terminated the pool) needs no other lock.

use super::PoolError;
use crate::process::call::CallToken;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What a job's sink is told.
pub(super) enum Delivery {
    /// Chunk `index` of the job finished: its encoded results, or why it failed.
    Chunk(usize, Result<Vec<u8>, PoolError>),
    /// The whole job failed at once (the pool ended, or a chunk could not be queued): no
    /// chunk of it reports after this.
    JobFailed(PoolError),
}

/// Called once per finished chunk of a job, or once with the failure of the whole job.
pub(super) type Sink = Box<dyn FnMut(Delivery) + Send>;

/// A job's sink, shared between the job's entry in the state and the hand-offs in flight.
pub(super) type SinkCell = Arc<Mutex<SinkState>>;

/// A job's sink and the deliveries waiting for it.
///
/// The sink runs with this cell unlocked: its callback may end the pool, which files a
/// delivery for this same job (its failure) and runs it on this same thread. Whoever finds
/// the sink out (in use on this thread or another) leaves the delivery in `backlog`, and the
/// thread running the sink delivers it next, so a job's deliveries keep their order.
pub(super) struct SinkState {
    /// `None` while a thread runs it, and after the job's last delivery.
    sink: Option<Sink>,
    backlog: VecDeque<(Delivery, bool)>,
    /// The job's last delivery has run: later ones are dropped (a race between the manager's
    /// results and a terminating caller's failure).
    ended: bool,
}

/// A delivery filed under the pool's lock, to run once the lock is let go.
pub(super) struct Handoff {
    cell: SinkCell,
    delivery: Delivery,
    /// The job's last delivery: the sink is dropped after it.
    last: bool,
}

impl Handoff {
    /// Runs the delivery (without the pool's lock held), and any that were left for the sink
    /// while it ran.
    pub(super) fn run(self) {
        let Handoff { cell, mut delivery, mut last } = self;
        let lock = || cell.lock().unwrap_or_else(|p| p.into_inner());
        let mut sink = {
            let mut st = lock();
            if st.ended {
                return;
            }
            match st.sink.take() {
                Some(sink) => sink,
                None => {
                    st.backlog.push_back((delivery, last));
                    return;
                }
            }
        };
        loop {
            if !deliver(&mut sink, delivery) {
                last = true; // the sink is broken: the job ends here
            }
            let mut st = lock();
            if last {
                st.ended = true;
                st.backlog.clear();
                drop(st);
                return; // the sink is dropped here, without the lock
            }
            match st.backlog.pop_front() {
                Some((d, l)) => (delivery, last) = (d, l),
                None => {
                    st.sink = Some(sink);
                    return;
                }
            }
        }
    }
}

/// Runs `sink` on `delivery`; `false` if it panicked. Callbacks are contained already
/// (`run_callback`); what is left is the caller's own code in decoding a result (a value's
/// `Deserialize`), which must neither unwind out of the state's guard (dropping the other
/// jobs' hand-offs) nor leave the job's waiter without an outcome: the sink is told the job
/// failed (a result that could not be decoded), once.
fn deliver(sink: &mut Sink, delivery: Delivery) -> bool {
    let run = |sink: &mut Sink, d: Delivery| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(d)));
    let Err(p) = run(sink, delivery) else { return true };
    let msg = crate::process::panics::payload_text(&*p);
    eprintln!("multiproc: decoding a pool result panicked (the call fails with a codec error): {msg}");
    let failed = Delivery::JobFailed(PoolError::local_codec(crate::codec::CodecError::invalid(true)));
    let _ = run(sink, failed);
    false
}

/// One chunk of a job: `items` consecutive input items starting at `first_item`.
pub(super) struct Chunk {
    pub(super) job: u64,
    /// The chunk's number within its job.
    pub(super) index: usize,
    /// Index in the job's input of the chunk's first item.
    pub(super) first_item: usize,
    /// Items in the chunk.
    pub(super) items: usize,
    pub(super) call: CallToken,
    pub(super) args: Vec<u8>,
    /// How long the chunk may run once a worker starts it (the task limit times `items`).
    pub(super) limit: Option<std::time::Duration>,
}

/// A job: where its chunks' outcomes go.
pub(super) struct Job {
    pub(super) chunks_left: usize,
    sink: SinkCell,
}

impl Job {
    pub(super) fn new(chunks: usize, sink: Sink) -> Job {
        Job {
            chunks_left: chunks,
            sink: Arc::new(Mutex::new(SinkState { sink: Some(sink), backlog: VecDeque::new(), ended: false })),
        }
    }

    /// `delivery` for this job, to be run once the pool's lock is let go; `last` when no
    /// other delivery of the job may follow.
    pub(super) fn handoff(&self, delivery: Delivery, last: bool) -> Handoff {
        Handoff { cell: self.sink.clone(), delivery, last }
    }
}
