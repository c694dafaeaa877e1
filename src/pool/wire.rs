//! Messages between the pool's manager thread and its workers (the crate codec over two
//! one-way pipes).

use super::RemoteError;
use crate::process::call::CallToken;
use serde::{Deserialize, Serialize};

/// Parent → worker. A message is this header (postcard) followed by its body: for `Run`,
/// the encoded argument chunk, as raw bytes to the end of the message. Keeping the bulk out of
/// the serde value lets each side write it into the pipe's ring, and read it there, with no
/// copy of its own (`Link::send_parts`, `split`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run one chunk (its arguments are the body). `seq` is the dispatch number the worker
    /// writes into its claim slot before running, so that after a death the parent knows
    /// whether this chunk had started. `limit_ns` (0: none) is the chunk's time limit, for
    /// the task's [`task_deadline`](crate::task_deadline). `slot` is the worker's slot in the
    /// pool's word arrays: a worker learns it from each chunk, so that a spare started before
    /// it was needed can take whichever slot a dead worker left (bounds-checked there).
    Run { seq: u64, call: CallToken, limit_ns: u64, slot: u32 },
    /// Finish: exit with code 0.
    Stop,
}

/// Worker → parent: a header and a body, as [`ToWorker`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The initializer (if any) succeeded; the worker takes tasks.
    Ready,
    /// The initializer failed; the worker exits.
    InitFailed(RemoteError),
    /// A chunk finished: with `Ok`, the body is the encoded `Vec<R>`.
    Done { seq: u64, outcome: Outcome },
    /// The manager took this chunk back before the worker started it (it had been queued
    /// behind a long task while another worker was idle): the worker did not run it.
    Skipped { seq: u64 },
}

/// Why a chunk produced no value, as the worker reports it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum TaskFailure {
    /// The function returned an error or panicked.
    Remote(RemoteError),
    /// The arguments could not be decoded or the results encoded in the worker.
    Codec(crate::codec::CodecError),
}

impl From<TaskFailure> for super::PoolError {
    fn from(f: TaskFailure) -> super::PoolError {
        match f {
            TaskFailure::Remote(e) => super::PoolError::Remote(e),
            TaskFailure::Codec(error) => super::PoolError::Codec { error, remote: true },
        }
    }
}

/// A chunk's outcome in the header of a `Done`: the value itself travels as the body.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The body is the encoded `Vec<R>`.
    Ok,
    /// Why there is no value (the body is empty).
    Err(TaskFailure),
}

/// Encodes a message's header.
pub(crate) fn header<H: Serialize>(h: &H) -> Vec<u8> {
    // Headers are plain enums of integers and strings: encoding cannot fail.
    crate::codec::encode(h).unwrap_or_default()
}

/// Splits a message into its decoded header and its body (the bytes after the header).
pub(crate) fn split<'a, H: Deserialize<'a>>(msg: &'a [u8]) -> Result<(H, &'a [u8]), crate::codec::CodecError> {
    crate::codec::decode_prefix(msg)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_a_header_then_its_body_in_place() {
        let key = crate::process::call::CallKey::new();
        let call = crate::process::call::CallToken::map(&key, |x: u8| x);
        let args: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let mut msg = header(&ToWorker::Run { seq: 9, call, limit_ns: 5, slot: 3 });
        msg.extend_from_slice(&args);
        match split::<ToWorker>(&msg).unwrap() {
            (ToWorker::Run { seq: 9, limit_ns: 5, slot: 3, .. }, body) => assert_eq!(body, &args[..]),
            other => panic!("{other:?}"),
        }
        let done = header(&FromWorker::Done { seq: 3, outcome: Outcome::Ok });
        assert!(matches!(split::<FromWorker>(&done).unwrap(), (FromWorker::Done { seq: 3, outcome: Outcome::Ok }, [])));
        // A truncated header is an error, not a panic.
        assert!(split::<FromWorker>(&done[..1]).is_err());
        assert!(split::<ToWorker>(&[]).is_err());
    }
}
