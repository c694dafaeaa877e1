//! The process's default arena: small objects created without an explicit segment
//! (`Semaphore::new`, `Lock::new`, …) are packed into shared anonymous chunks instead of one
//! mapping each.
//!
//! A chunk is never reused internally (bump allocation), but its mapping is released once no
//! object in it is alive anywhere in this process, so creating and dropping objects in a loop
//! costs bounded memory. Objects larger than an eighth of a chunk get a segment of their own.

use super::segment::{Segment, ShmObject, ShmRef};
use super::ShmError;
use std::sync::{Mutex, MutexGuard};

/// Size of one arena chunk.
const CHUNK: usize = 64 * 1024;

/// The chunk new objects go into. The lock is held only for a bump allocation or an `mmap`, and
/// by `Process::start` across `fork` ([`lock_for_fork`]), so a child never inherits it held by a
/// thread that did not come along.
static CURRENT: Mutex<Option<Segment>> = Mutex::new(None);

/// The arena, locked: hold it across `fork` and drop it on both sides.
pub(crate) struct ForkGuard(#[allow(dead_code)] MutexGuard<'static, Option<Segment>>);

/// Locks the default arena for a `fork` (see [`ForkGuard`]).
pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(CURRENT.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Allocates a zeroed `T` in the default arena.
pub(crate) fn alloc_default<T: ShmObject>() -> Result<ShmRef<T>, ShmError> {
    let size = std::mem::size_of::<T>();
    if size > CHUNK / 8 {
        return Segment::anonymous(size + std::mem::align_of::<T>())?.alloc_object();
    }
    let mut cur = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(seg) = cur.as_ref() {
        match seg.alloc_object::<T>() {
            Err(ShmError::OutOfSpace { .. }) => {}
            other => return other,
        }
    }
    let seg = Segment::anonymous(CHUNK)?;
    let obj = seg.alloc_object::<T>()?;
    *cur = Some(seg);
    Ok(obj)
}
