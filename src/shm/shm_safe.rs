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
/// Without a `zerocopy` dependency of your own, use the crate's re-export and tell the derives
/// where it is:
///
/// ```
/// use multiproc::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
///
/// #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
/// #[zerocopy(crate = "multiproc::zerocopy")]
/// #[repr(C)]
/// struct Sample { t: u64, value: f64 }
///
/// let v = multiproc::Value::new(Sample { t: 1, value: 0.5 })?;
/// assert_eq!(v.get()?.t, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Which types work: integers, floats, arrays of `ShmSafe` types, and `#[repr(C)]` (or
/// `#[repr(transparent)]`) structs of them without padding (add explicit padding fields).
/// What does not: `bool`, `char`, enums, `Option`, references, pointers, `NonZero*`, `String`,
/// `Vec` (use a `Queue<T>` or a fixed-size array).
///
/// A `bool` is not valid for every bit pattern, so this does not compile:
///
/// ```compile_fail
/// fn assert_shm_safe<T: multiproc::ShmSafe>() {}
/// assert_shm_safe::<bool>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory: it is not valid for every bit pattern, or has padding",
    label = "not `ShmSafe`",
    note = "a peer can leave any bytes in shared memory: use `u8` (0/1) for a flag, an integer for an enum or a `char`, a fixed-size array for a string",
    note = "a struct of your own: `#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]` with `#[repr(C)]` and no padding (see `multiproc::zerocopy`)"
)]
pub trait ShmSafe: FromBytes + IntoBytes + Immutable + KnownLayout + Copy + Send + Sync + 'static {}

impl<T> ShmSafe for T where T: FromBytes + IntoBytes + Immutable + KnownLayout + Copy + Send + Sync + 'static {}
