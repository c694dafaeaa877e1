//! The marker for user data that may live in shared memory.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Plain data that another process may read and write in a shared mapping.
///
/// A crashed or buggy peer can leave **any** bytes in shared memory, so only types that are
/// valid for every bit pattern may live there: no `bool`, `char`, enums, references, pointers,
/// `NonZero*`, file descriptors or other process-local handles. The layout proofs come from
/// [`zerocopy`]: a type is `ShmSafe` when it is [`FromBytes`] (every bit pattern is valid),
/// [`IntoBytes`] (no padding, so no uninitialized bytes leak into the segment), [`Immutable`]
/// (no interior mutability the crate doesn't know about), `Copy` and `'static`.
///
/// Primitive numbers, arrays of them, and your own `#[repr(C)]` structs qualify:
///
/// # Examples
///
/// ```
/// use multiproc::ShmSafe;
/// use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
///
/// #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
///
/// fn assert_shm_safe<T: ShmSafe>() {}
/// assert_shm_safe::<Point>();
/// assert_shm_safe::<[u32; 4]>();
/// ```
///
/// A `bool` is not valid for every bit pattern, so this does not compile:
///
/// ```compile_fail
/// fn assert_shm_safe<T: multiproc::ShmSafe>() {}
/// assert_shm_safe::<bool>();
/// ```
pub trait ShmSafe: FromBytes + IntoBytes + Immutable + KnownLayout + Copy + Send + Sync + 'static {}

impl<T> ShmSafe for T where T: FromBytes + IntoBytes + Immutable + KnownLayout + Copy + Send + Sync + 'static {}
