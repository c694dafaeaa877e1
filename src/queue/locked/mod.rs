//! `Queue<T>`, `SimpleQueue<T>` and `JoinableQueue<T>` (Python's `multiprocessing.Queue`
//! family): MPMC, any serde type (or raw bytes), bounded by a byte capacity (and optionally a
//! `maxsize` in items), with no feeder thread.
//!
//! # Design
//! One anonymous segment holds the queue's state and a byte ring of `capacity` bytes
//! (`state.rs`). All ring access happens under one robust pthread mutex; readers and writers
//! that must wait sleep on two futex sequence words, in bounded slices so that a waker that
//! died before waking cannot strand them.
//!
//! * `put` encodes the value **before** taking the lock (an encoding error is returned and
//!   changes nothing: QUE-B1, QUE-8; the value is captured at `put`: QUE-B3), copies the record
//!   into the ring and then commits it with one store of `tail`. Once `put` returns `Ok`, the
//!   item is in shared memory (QUE-B4); nothing is left to flush, so a child that put 10 MiB
//!   exits and can be joined at once (QUE-B5) as long as the queue's capacity holds it.
//! * `get` reads the record at `head` and commits with one store of `head`.
//! * A process killed while holding the lock leaves at most an uncommitted, invisible record;
//!   the next locker gets "owner died", re-derives the item count by walking the committed
//!   records (validating every length), truncates anything inconsistent, and marks the lock
//!   consistent (QUE-B6: a dead consumer never wedges the others). A consumer killed after its
//!   `get` committed had taken that item: it is lost with the consumer (as documented).
//! * Everything read from shared memory (positions, lengths, counts) is checked: a corrupt
//!   queue yields a `Corrupt` error, never undefined behaviour.
//!
//! # Files
//! `state.rs` (the locked ring), `handle.rs` (`Queue`, its builder, typed put/get),
//! `bytes.rs` (the `Queue<Vec<u8>>` byte path), `loan.rs` (its loans: items written and read
//! in place, under the lock), `batch.rs` (many records under one lock) and
//! `many.rs` (`put_many`/`get_many_into`), `waiting.rs` (sleeping in slices, a getter's spin
//! budget), `simple.rs`, `joinable.rs`, `split.rs` (producer
//! and consumer handles, disconnection), `iter.rs`, `error.rs`.

mod batch;
mod builder;
mod bytes;
mod bytes_many;
mod error;
mod handle;
mod iter;
mod joinable;
mod loan;
#[cfg(feature = "serde")]
mod many;
mod ready;
mod record;
mod simple;
#[cfg(feature = "serde")]
mod split;
mod state;
mod waiting;

pub use builder::QueueBuilder;
pub(crate) use error::QueueFail;
pub use error::{GetError, GetTimeoutError, PutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError};
pub use handle::Queue;
pub use iter::QueueIter;
pub use joinable::JoinableQueue;
pub use loan::{GetLoan, PutLoan};
pub use simple::SimpleQueue;
#[cfg(feature = "serde")]
pub use split::{Consumer, Producer};

/// Default ring capacity: 16 MiB of address space (pages are touched only as the ring fills).
pub const DEFAULT_CAPACITY: usize = 16 << 20;
