//! Futex-word state machines: the algorithms behind Semaphore, Event, Barrier and Condition,
//! written against `crate::loom` so that loom can check them.

pub(crate) mod barrier;
pub(crate) mod event;
pub(crate) mod robust;
pub(crate) mod semaphore;
