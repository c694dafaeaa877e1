//! Queues and pipes in shared memory: the SPSC byte ring (`ring.rs`), `Pipe`/`Connection`
//! (`pipe/`), `wait` over several connections (`wait.rs`), the lock-free `ArrayQueue`
//! (`array_queue/`), and `Queue`/`SimpleQueue`/`JoinableQueue` over a locked ring
//! (`locked/`), `Broadcast` (`broadcast/`); `doorbell.rs` is the sequence-word wake-up the queues share.

mod broadcast;
pub(crate) mod doorbell;
mod pipe;
mod ready;
pub(crate) mod ring;
mod wait;

pub use broadcast::{Broadcast, BroadcastError, Subscriber};
#[cfg(feature = "serde")]
pub use pipe::ConnectionIter;
#[cfg(feature = "serde")]
pub(crate) use pipe::{decode_with_handles, encode_with_handles};
pub use pipe::{Connection, Pipe, PipeBuilder, PipeError, RecvError, SendError, Shareable, WaitStrategy};
pub(crate) use pipe::{Exported, EXPORT_WORDS};
#[cfg(feature = "async")]
pub use ready::Readable;
pub use ready::ReadyFd;
pub use wait::{wait, Waitable};

#[cfg(feature = "serde")]
pub(crate) use doorbell::SharedBell;
mod locked;
#[cfg(feature = "serde")]
pub use locked::{Consumer, Producer};
pub use locked::{JoinableQueue, Queue, QueueBuilder, QueueError, QueueIter, SimpleQueue, DEFAULT_CAPACITY};

pub(crate) mod array_queue;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use array_queue::ArrayQueueDebug;
pub use array_queue::{ArrayQueue, PopError, PushError, STUCK_AFTER, UNRECORDED_AFTER};
