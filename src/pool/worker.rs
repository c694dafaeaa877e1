//! The loop a pool worker process runs.

use super::link::{Doorbell, Link};
use super::wire::{FromWorker, TaskFailure, ToWorker};
use super::RemoteError;
use crate::process::call::{CallFailure, CallKey};
use crate::shm::WordArray;
use crate::process::panics;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> RemoteError {
    let message = panics::payload_text(&*payload).to_string();
    RemoteError { kind: "panic".into(), message, location: panics::take_location() }
}

fn send(link: &Link, bell: &Doorbell, msg: &FromWorker) -> bool {
    let sent = match postcard::to_allocvec(msg) {
        Ok(b) => link.send(&b).is_ok(),
        Err(_) => false,
    };
    // After the message is in the ring: the manager's re-check after raising its flag sees
    // it, or we see the flag and wake it (queue::doorbell's Dekker pair).
    bell.notify();
    sent
}

/// Runs in the forked worker; returns its exit code.
pub(crate) fn worker_main(
    link: &Link,
    key: &CallKey,
    claims: &WordArray,
    slot: usize,
    init: Option<&(dyn Fn() -> Result<(), String> + Send + Sync)>,
    maxtasks: Option<usize>,
    bell: &Doorbell,
) -> i32 {
    // Panic locations are recorded by the process layer's hook (installed before the fork,
    // so nothing here takes std's hook lock); the parent reports them instead of us printing.
    panics::set_quiet();
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
    if !send(link, bell, &FromWorker::Ready) {
        return 1;
    }
    let mut done = 0usize;
    loop {
        let Ok(bytes) = link.recv() else {
            // The parent closed the pipe or died: nothing more to do.
            return 0;
        };
        let (seq, call, args) = match postcard::from_bytes::<ToWorker>(&bytes) {
            Ok(ToWorker::Run { seq, call, args }) => (seq, call, args),
            Ok(ToWorker::Stop) => return 0,
            Err(_) => return 2,
        };
        // Claim before running: after our death the parent knows this chunk had started.
        // SYNC(release → parent's acquire load in handle_exit).
        claims.store(slot, seq, Ordering::Release);
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| call.invoke(key, &args))) {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(CallFailure::Error { kind, message }))) => {
                Err(TaskFailure::Remote(RemoteError { kind, message, location: None }))
            }
            Ok(Ok(Err(CallFailure::Decode(m)))) => Err(TaskFailure::Serialization(format!("decoding arguments: {m}"))),
            Ok(Ok(Err(CallFailure::Encode(m)))) => Err(TaskFailure::Serialization(format!("encoding results: {m}"))),
            Ok(Err(bad)) => Err(TaskFailure::Serialization(bad.to_string())),
            Err(p) => Err(TaskFailure::Remote(panic_error(p))),
        };
        if !send(link, bell, &FromWorker::Done { seq, outcome: outcome.into() }) {
            return 0;
        }
        done += 1;
        if maxtasks.is_some_and(|m| done >= m) {
            return 0;
        }
    }
}
