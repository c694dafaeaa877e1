//! The locks a [`Condition`](super::Condition) can use, sealed: what it needs of them (their
//! raw mutex, depth, guards) stays crate-private.

use crate::sync::mutex::{Lock, LockGuard, RLock, RLockGuard};
use crate::sync::raw::robust::RawRobustMutex;

/// The locks a [`Condition`](crate::Condition) can use: [`Lock`] and [`RLock`] (sealed). Its guard type is the
/// lock's own guard ([`LockGuard`] or [`RLockGuard`]).
pub trait ConditionLock: Clone + sealed::Sealed {}

// The sealed trait is unnameable outside the crate, so the crate-private types in its
// methods never reach users.
#[allow(private_interfaces)]
pub(super) mod sealed {
    use super::{Lock, LockGuard, RLock, RLockGuard, RawRobustMutex};
    use crate::loom::atomic::Ordering::Relaxed;
    use crate::shm::{self, Segment, ShmError};

    /// The crate-private operations a condition needs from its lock.
    pub trait Sealed: Sized {
        type G<'a>
        where
            Self: 'a;
        fn raw(&self) -> &RawRobustMutex;
        fn depth(&self) -> u32;
        fn set_depth(&self, d: u32);
        fn guard_raw<'a>(g: &Self::G<'a>) -> *const RawRobustMutex
        where
            Self: 'a;
        fn forge(&self) -> Self::G<'_>;
        fn forge_owned(&self) -> Self::G<'static>;
        /// The guard `g` with a handle of its own (still held).
        fn own<'a>(g: Self::G<'a>) -> Self::G<'static>
        where
            Self: 'a;
        /// Ends `g` without unlocking (the caller gives the hold up by hand), dropping a
        /// handle it owns.
        fn disarm<'a>(g: Self::G<'a>)
        where
            Self: 'a;
        /// A new lock of this kind in `seg` (for a named condition).
        fn new_in(seg: &Segment) -> Result<Self, ShmError>;
        /// The lock at `offset` in `seg` (an opener's view of a named condition's lock).
        fn at(seg: &Segment, offset: u64) -> Result<Self, ShmError>;
        /// Its offset in its segment.
        fn offset(&self) -> usize;
        /// Its segment.
        fn segment(&self) -> &Segment;
        /// What a named condition's header records as its type parameter.
        const NAME: &'static str;
    }

    impl Sealed for Lock {
        type G<'a> = LockGuard<'a>;
        const NAME: &'static str = "Lock";
        fn new_in(seg: &Segment) -> Result<Self, ShmError> {
            Lock::new_in(seg)
        }
        fn at(seg: &Segment, offset: u64) -> Result<Self, ShmError> {
            <Lock as shm::Named>::from_named(seg, &[offset, 0, 0, 0, 0, 0])
        }
        fn offset(&self) -> usize {
            Lock::offset(self)
        }
        fn segment(&self) -> &Segment {
            shm::Named::segment(self)
        }
        fn raw(&self) -> &RawRobustMutex {
            Lock::raw(self)
        }
        fn depth(&self) -> u32 {
            1
        }
        fn set_depth(&self, _: u32) {}
        fn guard_raw<'a>(g: &LockGuard<'a>) -> *const RawRobustMutex
        where
            Self: 'a,
        {
            g.owner().raw()
        }
        fn forge(&self) -> LockGuard<'_> {
            self.assume_held()
        }
        fn forge_owned(&self) -> LockGuard<'static> {
            self.assume_held_owned()
        }
        fn own<'a>(g: LockGuard<'a>) -> LockGuard<'static>
        where
            Self: 'a,
        {
            g.into_owned()
        }
        fn disarm<'a>(g: LockGuard<'a>)
        where
            Self: 'a,
        {
            g.disarm();
        }
    }

    impl Sealed for RLock {
        type G<'a> = RLockGuard<'a>;
        const NAME: &'static str = "RLock";
        fn new_in(seg: &Segment) -> Result<Self, ShmError> {
            RLock::new_in(seg)
        }
        fn at(seg: &Segment, offset: u64) -> Result<Self, ShmError> {
            <RLock as shm::Named>::from_named(seg, &[offset, 0, 0, 0, 0, 0])
        }
        fn offset(&self) -> usize {
            RLock::offset(self)
        }
        fn segment(&self) -> &Segment {
            shm::Named::segment(self)
        }
        fn raw(&self) -> &RawRobustMutex {
            RLock::raw(self)
        }
        fn depth(&self) -> u32 {
            self.held_depth()
        }
        fn set_depth(&self, d: u32) {
            // Relaxed: written by the owner while it holds (or is about to re-hold) the mutex.
            RLock::raw(self).depth.store(d, Relaxed);
        }
        fn guard_raw<'a>(g: &RLockGuard<'a>) -> *const RawRobustMutex
        where
            Self: 'a,
        {
            g.owner().raw()
        }
        fn forge(&self) -> RLockGuard<'_> {
            self.assume_held()
        }
        fn forge_owned(&self) -> RLockGuard<'static> {
            self.assume_held_owned()
        }
        fn own<'a>(g: RLockGuard<'a>) -> RLockGuard<'static>
        where
            Self: 'a,
        {
            g.into_owned()
        }
        fn disarm<'a>(g: RLockGuard<'a>)
        where
            Self: 'a,
        {
            g.disarm();
        }
    }
}

impl ConditionLock for Lock {}

impl ConditionLock for RLock {}
