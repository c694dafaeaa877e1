//! Queues and pipes in shared memory: the SPSC byte ring (`ring.rs`), `Pipe`/`Connection`
//! (`pipe.rs`), `wait` over several connections (`wait.rs`), the lock-free `ArrayQueue`
//! (`array_queue.rs`), and `Queue`/`SimpleQueue`/`JoinableQueue` (`queue.rs`).

// --- pipe work (ring, Pipe/Connection, wait) ---
mod pipe;
pub(crate) mod ring;
mod wait;
pub use pipe::{Connection, Pipe, PipeBuilder, PipeError, RecvError, SendError, WaitStrategy};
pub use wait::{wait, Waitable};
// --- end pipe work ---
// --- queue work (Queue, SimpleQueue, JoinableQueue, ArrayQueue) ---
mod doorbell;
#[cfg(feature = "serde")]
pub(crate) use doorbell::SharedBell;
#[cfg(feature = "serde")]
mod mpmc;
#[cfg(feature = "serde")]
pub use mpmc::{JoinableQueue, Queue, QueueBuilder, QueueError, SimpleQueue, DEFAULT_CAPACITY};
pub(crate) mod array_queue;
pub use array_queue::{ArrayQueue, Full, STUCK_AFTER, UNRECORDED_AFTER};
// --- end queue work ---
