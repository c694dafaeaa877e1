//! Shared-memory segments: anonymous (shared with children forked later) and named (for
//! unrelated processes), each with a validated header, a bump allocator for the small objects
//! that live in it, and the [`ShmSafe`] marker for what user data may live there.
//!
//! Shared memory is untrusted input: a crashed or buggy peer can leave any bytes in it. Every
//! offset and length read from a segment is checked against the mapping before use, and opening
//! a segment whose header is garbage returns a [`ShmError`], never undefined behaviour.

mod arena;
pub(crate) mod atomic_bytes;
mod error;
mod header;
mod list;
mod name;
mod named;
mod object;
mod segment;
mod shared_memory;
mod shm_safe;
#[cfg(feature = "serde")] // only the pool uses it
mod words;

pub use error::ShmError;
pub use list::{list_named, NamedSegmentInfo};
pub use segment::Segment;
pub use shared_memory::SharedMemory;
pub use shm_safe::ShmSafe;

pub(crate) use arena::{alloc_default, lock_for_fork};
#[cfg(feature = "test-hooks")]
pub(crate) use header::validate_header;
pub(crate) use header::{ObjectKind, TypeInfo, HEADER_LEN};
pub(crate) use named::{word_usize, Words, DIR_WORDS};
pub(crate) use object::{create_named, named_methods, open_named, Named, Parts};
pub(crate) use segment::{ShmObject, ShmRef};
#[cfg(feature = "serde")]
pub(crate) use words::WordArray;
