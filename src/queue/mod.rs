//! Queues and pipes in shared memory: the SPSC byte ring (`ring/`), `Pipe`/`Connection`
//! (`pipe/`), the lock-free `ArrayQueue`
//! (`array_queue/`), and `Queue`/`SimpleQueue`/`JoinableQueue` over a locked ring
//! (`locked/`), `Broadcast` (`broadcast/`); `doorbell.rs` is the sequence-word wake-up the queues share.

mod broadcast;
pub(crate) mod crc32c;
pub(crate) mod doorbell;
mod pipe;
mod ready;
pub(crate) mod ring;

pub use broadcast::{
    Broadcast, BroadcastRecvError, BroadcastRecvTimeoutError, PublishError, PublishTimeoutError, Subscriber,
    TryBroadcastRecvError, TryPublishError,
};
#[cfg(feature = "serde")]
pub use pipe::ConnectionIter;
#[cfg(feature = "serde")]
pub(crate) use pipe::{decode_with_handles, encode_with_handles};
pub(crate) use pipe::{ByteStream, ExportFail, Exported, RecvFail, SendFail, EXPORT_WORDS};
pub use pipe::{
    Connection, Pipe, PipeBuilder, PollError, PollTimeoutError, RecvError, RecvLoan, RecvTimeoutError, SendError,
    SendLoan, SendTimeoutError, Shareable, TryPollError, TryRecvError, TrySendError, WaitStrategy,
};
pub(crate) use ready::lock_for_fork as lock_ready_for_fork;
#[cfg(feature = "async")]
pub use ready::Readable;
pub use ready::ReadyFd;

#[cfg(feature = "serde")]
pub(crate) use doorbell::SharedBell;
mod locked;
#[cfg(feature = "serde")]
pub use locked::{Consumer, Producer};
pub use locked::{
    GetError, GetLoan, GetTimeoutError, JoinableQueue, PutError, PutLoan, PutTimeoutError, Queue, QueueBuilder,
    QueueIter, SimpleQueue, TaskDoneError, TryGetError, TryPutError, DEFAULT_CAPACITY,
};

pub(crate) mod array_queue;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use array_queue::ArrayQueueDebug;
pub use array_queue::{
    ArrayQueue, ArrayQueueBuilder, PopError, PopTimeoutError, PushError, PushTimeoutError, TryPopError, TryPushError,
    STUCK_AFTER, UNRECORDED_AFTER,
};
