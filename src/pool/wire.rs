//! Messages between the pool's manager thread and its workers (the crate codec over two
//! one-way pipes).

use super::RemoteError;
use crate::process::call::CallToken;
use serde::{Deserialize, Serialize};

/// Parent → worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run one chunk. `seq` is the dispatch number the worker writes into its claim slot
    /// before running, so that after a death the parent knows whether this chunk had started.
    Run {
        seq: u64,
        call: CallToken,
        #[serde(with = "bytes")]
        args: Vec<u8>,
    },
    /// Finish: exit with code 0.
    Stop,
}

/// Worker → parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The initializer (if any) succeeded; the worker takes tasks.
    Ready,
    /// The initializer failed; the worker exits.
    InitFailed(RemoteError),
    /// A chunk finished: the encoded `Vec<R>` or the failure.
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

/// A chunk's result as it travels: [`Result`] with its bytes encoded as one byte string.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The encoded `Vec<R>`.
    Ok(#[serde(with = "bytes")] Vec<u8>),
    /// Why there is no value.
    Err(TaskFailure),
}

impl From<Result<Vec<u8>, TaskFailure>> for Outcome {
    fn from(r: Result<Vec<u8>, TaskFailure>) -> Outcome {
        match r {
            Ok(v) => Outcome::Ok(v),
            Err(e) => Outcome::Err(e),
        }
    }
}

impl From<Outcome> for Result<Vec<u8>, TaskFailure> {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok(v) => Ok(v),
            Outcome::Err(e) => Err(e),
        }
    }
}

/// `Vec<u8>` fields as one byte string (a length and one copy) instead of serde's default
/// sequence of `u8`s, which postcard encodes and decodes one element at a time: for the
/// argument and result chunks of `map`, that per-byte visit cost more than the work itself.
mod bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn byte_fields_round_trip_as_byte_strings() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let msg = FromWorker::Done { seq: 7, outcome: Outcome::Ok(payload.clone()) };
        let bytes = postcard::to_allocvec(&msg).unwrap();
        // Discriminants, seq, Ok, a 2-byte length, then the payload verbatim.
        assert!(bytes.windows(payload.len()).any(|w| w == &payload[..]));
        match postcard::from_bytes::<FromWorker>(&bytes).unwrap() {
            FromWorker::Done { seq: 7, outcome: Outcome::Ok(v) } => assert_eq!(v, payload),
            other => panic!("{other:?}"),
        }
        // A truncated message is an error, not a panic.
        assert!(postcard::from_bytes::<FromWorker>(&bytes[..bytes.len() - 1]).is_err());
    }
}
