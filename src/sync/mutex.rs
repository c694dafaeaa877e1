//! `Lock` and `RLock`: robust, process-shared pthread mutexes (Python's `multiprocessing.Lock`
//! and `RLock`), with owner-death reporting (LOCK-B1).
//!
//! # Differences from Python
//! * Release is the guard's `Drop`; a guard cannot leave the thread that locked (it is `!Send`),
//!   so releasing a lock one does not hold is impossible rather than an error (LOCK-1, LOCK-5,
//!   LOCK-6). Python's `Lock` may be released by another process (LOCK-4); a robust mutex
//!   cannot, because the kernel's owner-death marking needs an owner.
//! * When the holder dies, the next locker gets [`LockError::OwnerDied`] carrying the guard: it
//!   holds the lock and decides whether the protected data is consistent. Dropping that guard
//!   without [`LockGuard::make_consistent`] makes the lock permanently
//!   [`LockError::Unrecoverable`], which every later locker is told, instead of hanging.
//! * The guard inside an error owns a handle to its lock (a `LockGuard<'static>`), so every
//!   `LockError` is `'static` and `lock()?` works in a function returning
//!   `Result<_, Box<dyn Error>>`; the guard of a successful lock borrows it (no handle clone on
//!   the fast path).

use super::raw::robust::RawRobustMutex;
use crate::loom::atomic::Ordering::Relaxed;
use crate::shm::{self, Segment, ShmError, ShmRef};
use crate::sys::clock::Deadline;
use crate::sys::pthread::{Locked, MutexKind};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

macro_rules! lock_errors {
    ($(
        $(#[$doc:meta])*
        $name:ident { $($(#[$vdoc:meta])* $extra:ident => $msg:literal),* }
    )*) => {$(
        $(#[$doc])*
        ///
        /// `G` is the guard type ([`LockGuard`], [`RLockGuard`], or a data guard of
        /// [`Value`](super::Value) and [`Array`](super::Array)).
        #[non_exhaustive]
        pub enum $name<G> {
            $($(#[$vdoc])* $extra,)*
            /// The previous holder died holding the lock. The lock **is now held** through the
            /// guard inside; call `make_consistent` on it once the protected data is repaired,
            /// or drop it to mark the lock unrecoverable (LOCK-B1).
            OwnerDied(OwnerDied<G>),
            /// An earlier owner died and the lock was released without `make_consistent`: it
            /// can never be taken again.
            Unrecoverable,
            /// This thread already holds this (non-recursive) lock, or already holds a guard on
            /// this value or array: taking it again would deadlock, or give two `&mut` to one
            /// place.
            WouldDeadlock,
            /// The lock object in shared memory is not a valid lock (never initialized, or
            /// corrupt): nothing was handed to glibc.
            Corrupt,
            /// The OS reported another error.
            Os(std::io::Error),
        }

        impl<G> fmt::Debug for $name<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$extra => f.write_str(stringify!($extra)),)*
                    $name::OwnerDied(_) => f.write_str("OwnerDied(..)"),
                    $name::Unrecoverable => f.write_str("Unrecoverable"),
                    $name::WouldDeadlock => f.write_str("WouldDeadlock"),
                    $name::Corrupt => f.write_str("Corrupt"),
                    $name::Os(e) => f.debug_tuple("Os").field(e).finish(),
                }
            }
        }

        impl<G> fmt::Display for $name<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$extra => f.write_str($msg),)*
                    $name::OwnerDied(_) => f.write_str("the previous owner of the lock died holding it"),
                    $name::Unrecoverable => {
                        f.write_str("the lock is unrecoverable (its owner died and it was never repaired)")
                    }
                    $name::WouldDeadlock => f.write_str("this thread already holds the lock (or a guard on its data)"),
                    $name::Corrupt => f.write_str("the lock in shared memory is corrupt or was never initialized"),
                    $name::Os(e) => write!(f, "lock operation failed: {e}"),
                }
            }
        }

        impl<G> std::error::Error for $name<G> {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Os(e) => Some(e),
                    _ => None,
                }
            }
        }
    )*};
}

lock_errors! {
    /// Why [`lock`](Lock::lock) could not take a lock normally.
    LockError {}

    /// Why [`try_lock`](Lock::try_lock) did not take a lock: busy now, or one of
    /// [`LockError`]'s reasons.
    TryLockError {
        /// Another thread or process holds the lock now (Python's `acquire(False)` returning
        /// `False`).
        WouldBlock => "the lock is held by someone else"
    }

    /// Why [`lock_timeout`](Lock::lock_timeout) or [`lock_deadline`](Lock::lock_deadline) did
    /// not take a lock: the time ran out, or one of [`LockError`]'s reasons.
    LockTimeoutError {
        /// The lock stayed busy until the time ran out (Python's `acquire(timeout=t)` returning
        /// `False`).
        Timeout => "timed out waiting for the lock"
    }
}

impl<G> LockError<G> {
    /// An owner-died error carrying `guard`.
    pub(crate) fn owner_died(guard: G) -> LockError<G> {
        LockError::OwnerDied(OwnerDied(guard))
    }

    /// The error of a failed pthread call: `InvalidData` is a corrupt lock object.
    pub(crate) fn from_io(e: std::io::Error) -> LockError<G> {
        if e.kind() == std::io::ErrorKind::InvalidData {
            LockError::Corrupt
        } else {
            LockError::Os(e)
        }
    }

    /// The guard of an owner-died error (`Ok`), or the error, which then carries no guard and
    /// can take any guard type.
    pub(crate) fn split<H>(self) -> Result<G, LockError<H>> {
        match self {
            LockError::OwnerDied(OwnerDied(g)) => Ok(g),
            LockError::Unrecoverable => Err(LockError::Unrecoverable),
            LockError::WouldDeadlock => Err(LockError::WouldDeadlock),
            LockError::Corrupt => Err(LockError::Corrupt),
            LockError::Os(e) => Err(LockError::Os(e)),
        }
    }

    /// The guard of an owner-died error, if this is one (the lock is then held).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// match lock.lock() {
    ///     Ok(_guard) => {}
    ///     Err(e) => match e.into_owner_died() {
    ///         Ok(mut guard) => guard.make_consistent(), // repair the data first
    ///         Err(e) => return Err(e.into()),
    ///     },
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_owner_died(self) -> Result<G, LockError<G>> {
        match self {
            LockError::OwnerDied(OwnerDied(g)) => Ok(g),
            e => Err(e),
        }
    }
}

macro_rules! from_lock_error {
    ($($name:ident),*) => {$(
        impl<G> From<LockError<G>> for $name<G> {
            fn from(e: LockError<G>) -> $name<G> {
                match e {
                    LockError::OwnerDied(d) => $name::OwnerDied(d),
                    LockError::Unrecoverable => $name::Unrecoverable,
                    LockError::WouldDeadlock => $name::WouldDeadlock,
                    LockError::Corrupt => $name::Corrupt,
                    LockError::Os(e) => $name::Os(e),
                }
            }
        }
    )*};
}
from_lock_error!(TryLockError, LockTimeoutError);

impl<G> TryLockError<G> {
    /// Whether the lock was simply busy.
    pub fn is_would_block(&self) -> bool {
        matches!(self, TryLockError::WouldBlock)
    }
}

impl<G> LockTimeoutError<G> {
    /// Whether the time ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockTimeoutError::Timeout)
    }
}

/// The guard of a lock whose previous owner died; see [`LockError::OwnerDied`].
pub struct OwnerDied<G>(G);

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerDied(..)")
    }
}

impl<G> OwnerDied<G> {
    /// Wraps the guard of a lock whose owner died.
    pub(crate) fn new(guard: G) -> OwnerDied<G> {
        OwnerDied(guard)
    }

    /// The guard: the lock is held.
    pub fn into_guard(self) -> G {
        self.0
    }
}

/// How long one lock attempt may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Patience {
    /// Until the lock is taken.
    Forever,
    /// Not at all.
    Now,
    /// Until the deadline (`None` from an overflowing duration: forever).
    Until(Option<Deadline>),
}

/// One lock attempt's outcome: `Ok(Some(guard))`, `Ok(None)` (busy, or the time ran out), or
/// an error whose owner-died guard owns its handles.
pub(crate) type Attempt<G, H> = Result<Option<G>, LockError<H>>;

/// The outcome of a blocking attempt.
///
/// `inline(always)`, its one rare error built out of line: with the `io::Error` built in
/// place LLVM judged it too big to inline (as the crate grew, with no change here), and the
/// out-of-line call with its large return value cost 8–10 ns of `lock.uncontended`'s 18.
#[inline(always)]
pub(crate) fn blocking<G, H>(r: Attempt<G, H>) -> Result<G, LockError<H>> {
    match r {
        Ok(Some(g)) => Ok(g),
        // A wait without deadline only returns busy on a broken mutex.
        Ok(None) => Err(returned_without_the_lock()),
        Err(e) => Err(e),
    }
}

#[cold]
#[inline(never)]
fn returned_without_the_lock<H>() -> LockError<H> {
    LockError::Os(std::io::Error::other("lock wait returned without the lock"))
}

/// The outcome of a `try_` attempt.
#[inline]
pub(crate) fn trying<G, H>(r: Attempt<G, H>) -> Result<G, TryLockError<H>> {
    match r {
        Ok(Some(g)) => Ok(g),
        Ok(None) => Err(TryLockError::WouldBlock),
        Err(e) => Err(e.into()),
    }
}

/// The outcome of a timed attempt.
#[inline]
pub(crate) fn timed<G, H>(r: Attempt<G, H>) -> Result<G, LockTimeoutError<H>> {
    match r {
        Ok(Some(g)) => Ok(g),
        Ok(None) => Err(LockTimeoutError::Timeout),
        Err(e) => Err(e.into()),
    }
}

/// The lock a guard holds: borrowed on the fast path, owned (a clone of the handle) by the
/// guard inside an owner-died error, so that the error is `'static`.
pub(crate) enum Held<'a, L> {
    Borrowed(&'a L),
    Owned(L),
}

impl<L> std::ops::Deref for Held<'_, L> {
    type Target = L;
    #[inline]
    fn deref(&self) -> &L {
        match self {
            Held::Borrowed(l) => l,
            Held::Owned(l) => l,
        }
    }
}

/// Turns a pthread outcome into an [`Attempt`]; an owner-died error carries an owned guard.
#[inline]
fn outcome<G, H>(r: std::io::Result<Locked>, guard: impl FnOnce() -> G, owned: impl FnOnce() -> H) -> Attempt<G, H> {
    match r {
        Ok(Locked::Acquired) => Ok(Some(guard())),
        Ok(Locked::OwnerDied) => Err(LockError::OwnerDied(OwnerDied(owned()))),
        Ok(Locked::NotRecoverable) => Err(LockError::Unrecoverable),
        Ok(Locked::Busy) => Ok(None),
        Ok(Locked::Deadlock) => Err(LockError::WouldDeadlock),
        Err(e) => Err(LockError::from_io(e)),
    }
}

macro_rules! lock_type {
    ($(#[$doc:meta])* $name:ident, $guard:ident, $kind:expr, $recursive:expr, $okind:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            raw: ShmRef<RawRobustMutex>,
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl shm::Named for $name {
            const KIND: shm::ObjectKind = $okind;

            fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
                Ok($name { raw: seg.object_at(shm::word_usize(w[0])?)? })
            }

            fn segment(&self) -> &Segment {
                self.raw.segment()
            }

            fn words(&self) -> shm::Words {
                [self.raw.offset() as u64, 0, 0, 0, 0, 0]
            }
        }

        impl $name {
            /// A new, unlocked lock in this process's default shared arena, shared with every
            /// child forked afterwards.
            ///
            /// # Errors
            /// [`ShmError`] if the shared memory cannot be mapped or the mutex initialized.
            pub fn new() -> Result<$name, ShmError> {
                $name::init(shm::alloc_default()?)
            }

            /// A new, unlocked lock allocated in `segment`.
            pub fn new_in(segment: &Segment) -> Result<$name, ShmError> {
                $name::init(segment.alloc_object()?)
            }

            /// A new, unlocked lock under `name`, for processes that are not forked from this
            /// one: they call [`open`](Self::open). Created complete before the name appears;
            /// this handle's last clone removes the name unless [`persist`](Self::persist) is
            /// called.
            ///
            /// # Errors
            /// [`ShmError::Exists`] if the name is taken, [`ShmError::InvalidName`], and the
            /// errors of [`Segment::create`].
            ///
            /// # Examples
            ///
            #[doc = concat!("```\nlet name = format!(\"doc-", stringify!($name), "-{}\", std::process::id());\nlet created = multiproc::", stringify!($name), "::create(&name)?;\nlet opened = multiproc::", stringify!($name), "::open(&name)?; // typically in another program\ndrop(opened.lock()?);\ndrop(created.try_lock()?);\n# Ok::<(), Box<dyn std::error::Error>>(())\n```")]
            pub fn create(name: &str) -> Result<$name, ShmError> {
                shm::create_named(name, std::mem::size_of::<RawRobustMutex>() + 64, |seg| {
                    let raw = seg.alloc_object::<RawRobustMutex>()?;
                    raw.init($kind)?;
                    Ok::<_, ShmError>([raw.offset() as u64, 0, 0, 0, 0, 0])
                })
            }

            shm::named_methods!(concat!("```\nlet name = format!(\"doc-", stringify!($name), "-{}\", std::process::id());\nlet created = multiproc::", stringify!($name), "::create(&name)?;\nlet opened = multiproc::", stringify!($name), "::open_timeout(&name, std::time::Duration::from_secs(1))?;\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::", stringify!($name), "::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```"));

            fn init(raw: ShmRef<RawRobustMutex>) -> Result<$name, ShmError> {
                raw.init($kind)?;
                Ok($name { raw })
            }

            /// The mutex's offset in its segment.
            pub(crate) fn offset(&self) -> usize {
                self.raw.offset()
            }

            pub(crate) fn raw(&self) -> &RawRobustMutex {
                &self.raw
            }

            /// How many times the owner holds it (1 for a `Lock`).
            #[allow(dead_code)] // only Condition over an RLock asks
            pub(crate) fn held_depth(&self) -> u32 {
                if $recursive {
                    // Relaxed: read by the owner only.
                    self.raw.depth.load(Relaxed).max(1)
                } else {
                    1
                }
            }

            /// One lock attempt (the four public forms are this with their patience).
            #[inline]
            pub(crate) fn attempt(&self, patience: Patience) -> Attempt<$guard<'_>, $guard<'static>> {
                let deadline = match patience {
                    Patience::Now => None,
                    Patience::Forever => Some(None),
                    Patience::Until(d) => Some(d),
                };
                let r = match deadline {
                    None => self.raw.try_lock(),
                    Some(deadline) => {
                        // The uncontended path returns from here, before any error value is
                        // built: what it knows fits in a register (glibc's answer).
                        let first = self.raw.lock_fast();
                        if first == 0 && !$recursive {
                            return Ok(Some($guard::new(Held::Borrowed(self))));
                        }
                        self.raw.lock_after(first, deadline)
                    }
                };
                if $recursive {
                    // Relaxed: only the owner, holding the mutex, touches `depth`.
                    match r {
                        Ok(Locked::Acquired) if self.raw.depth.fetch_add(1, Relaxed) == 0 => {
                            self.raw.begin_ownership();
                        }
                        Ok(Locked::OwnerDied) => {
                            self.raw.depth.store(1, Relaxed);
                            self.raw.begin_ownership();
                        }
                        _ => {}
                    }
                }
                outcome(r, || $guard::new(Held::Borrowed(self)), || $guard::new(Held::Owned(self.clone())))
            }

            /// Takes the lock, blocking until it is free (Python's `acquire()`).
            ///
            /// # Errors
            /// [`LockError::OwnerDied`] (the lock is held, see there), [`LockError::Unrecoverable`],
            /// [`LockError::WouldDeadlock`] (non-recursive lock already held by this thread),
            /// [`LockError::Corrupt`], [`LockError::Os`].
            #[doc(alias = "acquire")]
            #[inline]
            pub fn lock(&self) -> Result<$guard<'_>, LockError<$guard<'static>>> {
                blocking(self.attempt(Patience::Forever))
            }

            /// Takes the lock if it is free now (Python's `acquire(False)`).
            ///
            /// # Errors
            /// [`TryLockError::WouldBlock`] if someone else holds it, or the errors of
            /// [`lock`](Self::lock).
            pub fn try_lock(&self) -> Result<$guard<'_>, TryLockError<$guard<'static>>> {
                trying(self.attempt(Patience::Now))
            }

            /// Takes the lock, waiting up to `timeout` (Python's `acquire(timeout=t)`;
            /// `Duration::MAX` waits forever).
            ///
            /// # Errors
            /// [`LockTimeoutError::Timeout`] if it stayed busy, or the errors of
            /// [`lock`](Self::lock).
            pub fn lock_timeout(&self, timeout: Duration) -> Result<$guard<'_>, LockTimeoutError<$guard<'static>>> {
                timed(self.attempt(Patience::Until(Deadline::after(timeout))))
            }

            /// Takes the lock, waiting until `deadline`.
            ///
            /// # Errors
            /// As [`lock_timeout`](Self::lock_timeout).
            pub fn lock_deadline(&self, deadline: Instant) -> Result<$guard<'_>, LockTimeoutError<$guard<'static>>> {
                timed(self.attempt(Patience::Until(Deadline::at(deadline))))
            }
        }

        /// Holds the lock; releases it on drop. Not `Send`: the owner is the locking thread.
        #[must_use = "dropping the guard releases the lock at once"]
        pub struct $guard<'a> {
            /// The mutex itself, so that the release needs no walk through the handle. Valid
            /// while `lock` is: it points into the segment that `lock` keeps mapped.
            raw: NonNull<RawRobustMutex>,
            /// Dropped by hand in `drop`, after the release, and only when it owns a handle
            /// (out of line): the borrowed case, the common one, then costs nothing there.
            lock: std::mem::ManuallyDrop<Held<'a, $name>>,
            /// RLock: the process that took the hold (`sys::process::cached_pid`), so that a
            /// copy of the guard in a forked child (a guard kept in memory the fork copied)
            /// leaves the parent's depth alone when it drops. A `Lock` guard needs no such
            /// check (0): the robust mutex refuses an unlock from a thread that does not own
            /// it (`EPERM`), and the guard writes nothing else.
            pid: u32,
            _not_send: PhantomData<*const ()>,
        }

        impl fmt::Debug for $guard<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($guard), "(..)"))
            }
        }

        impl<'a> $guard<'a> {
            #[inline]
            fn new(lock: Held<'a, $name>) -> $guard<'a> {
                let pid = if $recursive { crate::sys::process::cached_pid() } else { 0 };
                $guard { raw: NonNull::from(&*lock.raw), lock: std::mem::ManuallyDrop::new(lock), pid, _not_send: PhantomData }
            }

            /// Marks the lock consistent after an owner died: the protected data has been
            /// repaired. Without this, dropping the guard makes the lock unrecoverable.
            pub fn make_consistent(&mut self) {
                let _ = self.lock.raw.make_consistent();
            }

            /// The lock this guard holds.
            pub(crate) fn owner(&self) -> &$name {
                &self.lock
            }

            /// Ends the guard without unlocking or touching the depth: the caller has taken over
            /// the hold (`Condition::wait` gives every level up by hand). A handle the guard
            /// owns is dropped, where `mem::forget` would leak it (and with it the mapping and
            /// a named lock's name).
            pub(crate) fn disarm(self) {
                let mut this = std::mem::ManuallyDrop::new(self);
                // SAFETY: `this` is never dropped or used again, so its `lock` field is dropped
                // exactly once, here; nothing is unlocked (the guard's own drop never runs).
                unsafe { std::mem::ManuallyDrop::drop(&mut this.lock) };
            }

            /// The same hold with a handle of its own (for errors that give a guard back and
            /// must be `'static`): the lock stays held, nothing is unlocked.
            pub(crate) fn into_owned(self) -> $guard<'static> {
                let this = std::mem::ManuallyDrop::new(self);
                // SAFETY: `this` is never dropped or used again, so its `lock` field is moved
                // out exactly once; the hold it stands for passes to the returned guard.
                let held = unsafe { std::ptr::read(&*this.lock) };
                let lock = match held {
                    Held::Borrowed(l) => l.clone(),
                    Held::Owned(l) => l,
                };
                $guard::new(Held::Owned(lock))
            }
        }

        impl $name {
            /// Test hook (hidden; not a stable API): overwrites bytes of the lock's shared
            /// state (56 bytes: our state words, then glibc's `pthread_mutex_t`), as a corrupt
            /// or hostile peer could. Out-of-range parts are ignored.
            #[cfg(feature = "test-hooks")]
            #[doc(hidden)]
            pub fn debug_corrupt(&self, offset: usize, bytes: &[u8]) {
                self.raw.debug_corrupt(offset, bytes);
            }

            /// A guard for a lock this thread already holds (re-taken by `Condition::wait`).
            /// Calling it without holding the lock would only make the guard's drop fail with
            /// `EPERM` (a robust mutex checks its owner), never corrupt memory.
            pub(crate) fn assume_held(&self) -> $guard<'_> {
                $guard::new(Held::Borrowed(self))
            }

            /// [`assume_held`](Self::assume_held) with an owned handle (for owner-died errors).
            pub(crate) fn assume_held_owned(&self) -> $guard<'static> {
                $guard::new(Held::Owned(self.clone()))
            }
        }

        impl Drop for $guard<'_> {
            #[inline]
            fn drop(&mut self) {
                // SAFETY: `raw` points into the segment that `self.lock` keeps mapped (see
                // the field), and nothing mutable is ever made from it.
                let raw = unsafe { self.raw.as_ref() };
                // A copy in a forked child holds nothing: the hold is the parent thread's.
                let held_here = !$recursive || self.pid == crate::sys::process::cached_pid();
                if held_here {
                    if $recursive {
                        // Relaxed: we own the mutex (see `attempt`).
                        raw.depth.fetch_sub(1, Relaxed);
                    }
                    // SAFETY: a guard exists only while this thread holds the lock (it is
                    // created by a successful lock and is !Send; a forked copy is excluded
                    // above), and it unlocks exactly once, here.
                    unsafe { raw.unlock_held() };
                }
                if let Held::Owned(_) = *self.lock {
                    #[cold]
                    #[inline(never)]
                    fn release_handle(held: &mut std::mem::ManuallyDrop<Held<'_, $name>>) {
                        // SAFETY: called once, from the guard's drop, which never touches the
                        // field again.
                        unsafe { std::mem::ManuallyDrop::drop(held) };
                    }
                    release_handle(&mut self.lock);
                }
            }
        }
    };
}

lock_type!(
    /// A mutual-exclusion lock shared between processes (Python's `multiprocessing.Lock`),
    /// built on a robust process-shared pthread mutex: if the holder dies, the next locker is
    /// told ([`LockError::OwnerDied`]) instead of blocking forever (LOCK-B1).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Lock;
    ///
    /// let lock = Lock::new()?;
    /// {
    ///     let _held = lock.lock().unwrap();
    ///     assert!(matches!(lock.try_lock(), Err(multiproc::TryLockError::WouldDeadlock)));
    /// }
    /// assert!(lock.try_lock().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Lock,
    LockGuard,
    MutexKind::ErrorCheck,
    false,
    shm::ObjectKind::Lock
);

lock_type!(
    /// A recursive lock (Python's `multiprocessing.RLock`): the thread that holds it may take
    /// it again; it is released when every guard is dropped. Robust like [`Lock`].
    ///
    /// # Examples
    ///
    /// ```
    /// let r = multiproc::RLock::new()?;
    /// let a = r.lock().unwrap();
    /// let b = r.lock().unwrap();   // re-entry
    /// drop(b);
    /// drop(a);                      // now released
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    RLock,
    RLockGuard,
    MutexKind::Recursive,
    true,
    shm::ObjectKind::RLock
);
