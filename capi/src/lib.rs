//! The C ABI of `multiproc`: the functions behind `include/multiproc.h`, built into
//! `libmultiproc.so` and `libmultiproc.a` by the `multiproc-c` package (`capi/lib`).
//!
//! Every function but `mp_last_error`, `mp_status_name` and `mp_version` returns an
//! [`mp_status`], and none lets a Rust panic cross into C (it becomes `MP_INTERNAL`); [`mp_last_error`] gives this thread's message for the last failure.
//! Handles are opaque boxes with a magic word first, so a null or foreign pointer, or a freed
//! one whose memory no new handle of its type has taken, is refused with `MP_INVALID` instead
//! of used (docs/C.md, "Handles" and "Threads", says what it cannot catch). Blocking calls take `timeout_ns`:
//! 0 does not wait, [`MP_FOREVER`] waits as long as it takes. docs/C.md is the guide.

mod array_queue;
mod broadcast;
mod condition;
mod conn;
mod deliver;
mod errors;
mod handle;
mod held;
mod locks;
mod queue;
mod shm;
mod status;
mod sync;

pub use array_queue::*;
pub use broadcast::*;
pub use condition::*;
pub use conn::*;
pub use handle::MP_FOREVER;
pub use locks::*;
pub use queue::*;
pub use shm::*;
pub use status::*;
pub use sync::*;
