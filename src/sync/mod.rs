//! Synchronization primitives in shared memory: `Lock`, `RLock`, `Condition`, `Value`, `Array`
//! (robust pthread mutexes), and `Semaphore`, `BoundedSemaphore`, `Event`, `Barrier` (our own
//! futex state machines in `raw/`).
//!
//! Files: `mutex.rs` (Lock, RLock, guards, LockError), `condition.rs`, `value.rs` (Value,
//! ValueError), `array.rs` (Array), `raw_value.rs` (RawValue, RawArray), `semaphore.rs`,
//! `event.rs`, `barrier.rs`, `shareable_list.rs` (Python's `ShareableList`); futex state machines and their loom models live in `raw/`.

mod array;
mod barrier;
mod condition;
mod event;
mod guarded;
mod mutex;
pub(crate) mod raw;
mod raw_value;
mod semaphore;
mod shareable_list;
mod value;

pub use array::*;
pub use barrier::*;
pub use condition::*;
pub use event::*;
pub(crate) use guarded::lock_for_fork as lock_guarded_for_fork;
pub use guarded::DataGuard;
pub use mutex::*;
pub use raw_value::*;
pub use semaphore::*;
pub use shareable_list::{ShareableItem, ShareableList};
pub use value::*;
