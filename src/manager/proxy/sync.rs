//! Proxies of synchronisation objects, values and arrays, and of registered types.

use super::{dec, enc, ms, ms_until, Handle, Wait};
use crate::manager::client::{ManagerError, ManagerTimeoutError, TryManagerError};
use crate::manager::custom::Shared;
use crate::manager::protocol::{Op, Reply};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

proxy_type!(
    /// A `Lock` or `RLock` in the manager's server (Python's `manager.Lock()`): unlike the
    /// crate's [`Lock`](crate::Lock), a manager `Lock` may be released by another process than
    /// the one that acquired it (MGR-7); an `RLock` only by its holder. A client that dies
    /// holding it releases it.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let l = m.lock()?;
    /// l.acquire()?;
    /// assert!(l.acquire_timeout(std::time::Duration::from_millis(5)).unwrap_err().is_timeout());
    /// l.release()?;
    /// assert!(l.release().is_err()); // "release unlocked lock"
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It keeps Python's `acquire`/`release` where the crate's [`Lock`](crate::Lock) hands
    /// out a guard: a manager lock may be released by another process (MGR-7), which a guard
    /// cannot express.
    LockProxy
);

/// `acquire` in its four forms, and `release`: the same calls on a lock and a semaphore
/// (`$release` documents what `release` refuses; `$example` is a doc test).
macro_rules! acquire_methods {
    ($release:literal, $example:literal) => {
        /// `acquire()`, waiting until it is free.
        ///
        /// # Errors
        /// [`ManagerError::ServerGone`].
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn acquire(&self) -> Result<(), ManagerError> {
            self.h.flag_forms(Op::Acquire, Wait::Forever).map_err(ManagerTimeoutError::untimed)
        }
        /// `acquire(False)`.
        ///
        /// # Errors
        /// [`TryManagerError::WouldBlock`] if it is taken, or as [`acquire`](Self::acquire).
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn try_acquire(&self) -> Result<(), TryManagerError> {
            self.h.flag_forms(Op::Acquire, Wait::Now).map_err(ManagerTimeoutError::try_form)
        }
        /// `acquire(timeout=t)`.
        ///
        /// # Errors
        /// [`ManagerTimeoutError::Timeout`] if it stayed taken, or as [`acquire`](Self::acquire).
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), ManagerTimeoutError> {
            self.h.flag_forms(Op::Acquire, Wait::Millis(ms(timeout)))
        }
        /// [`acquire`](Self::acquire), waiting until `deadline`.
        ///
        /// # Errors
        /// As [`acquire_timeout`](Self::acquire_timeout).
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn acquire_deadline(&self, deadline: Instant) -> Result<(), ManagerTimeoutError> {
            self.h.flag_forms(Op::Acquire, Wait::Millis(ms_until(deadline)))
        }
        #[doc = $release]
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn release(&self) -> Result<(), ManagerError> {
            self.h.unit(Op::Release)
        }
    };
}

impl LockProxy {
    acquire_methods!(
        "`release()`.\n\n# Errors\n[`ManagerError::NotHeld`] if nobody holds it.",
        "```\nlet m = multiproc::Manager::start()?;\nlet l = m.lock()?;\nl.try_acquire()?;\nassert!(l.try_acquire().unwrap_err().is_would_block());\nl.release()?;\nl.acquire_deadline(std::time::Instant::now())?;\nl.release()?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```"
    );
}

proxy_type!(
    /// An `Event` in the manager's server.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let e = m.event()?;
    /// e.set()?;
    /// assert!(e.is_set()?);
    /// e.wait_timeout(std::time::Duration::ZERO)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    EventProxy
);

impl EventProxy {
    /// `e.set()`.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.h.unit(Op::SetFlag)
    }
    /// `e.clear()`.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.h.unit(Op::ClearFlag)
    }
    /// `e.is_set()`.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        self.h.flag(Op::IsSet)
    }
    /// `e.wait()`.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`].
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.h.flag_forms(Op::Wait, Wait::Forever).map_err(ManagerTimeoutError::untimed)
    }
    /// `e.wait(0)`: whether it is set now.
    ///
    /// # Errors
    /// [`TryManagerError::WouldBlock`] if it is clear, or as [`wait`](Self::wait).
    pub fn try_wait(&self) -> Result<(), TryManagerError> {
        self.h.flag_forms(Op::Wait, Wait::Now).map_err(ManagerTimeoutError::try_form)
    }
    /// `e.wait(t)`.
    ///
    /// # Errors
    /// [`ManagerTimeoutError::Timeout`] if it stayed clear, or as [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), ManagerTimeoutError> {
        self.h.flag_forms(Op::Wait, Wait::Millis(ms(timeout)))
    }
    /// [`wait`](Self::wait) until `deadline`.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), ManagerTimeoutError> {
        self.h.flag_forms(Op::Wait, Wait::Millis(ms_until(deadline)))
    }
}

proxy_type!(
    /// A `Semaphore` or `BoundedSemaphore` in the manager's server.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let s = m.bounded_semaphore(1)?;
    /// s.try_acquire()?;
    /// assert!(s.try_acquire().is_err());
    /// s.release()?;
    /// assert!(s.release().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    SemaphoreProxy
);

impl SemaphoreProxy {
    acquire_methods!(
        "`release()`.\n\n# Errors\n[`ManagerError::NotHeld`] above a bounded semaphore's bound.",
        "```\nlet m = multiproc::Manager::start()?;\nlet s = m.semaphore(1)?;\ns.acquire()?;\nassert!(s.acquire_timeout(std::time::Duration::from_millis(5)).is_err());\ns.release()?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```"
    );
    /// `s.get_value()`.
    pub fn get_value(&self) -> Result<u32, ManagerError> {
        Ok(self.h.count(Op::GetValue)? as u32)
    }
}

proxy_type!(
    /// A `Condition` (over its own manager lock) in the manager's server.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let c = m.condition()?;
    /// c.acquire()?;
    /// assert!(c.wait_timeout(std::time::Duration::from_millis(5)).unwrap_err().is_timeout()); // nobody notifies
    /// c.notify_all()?;
    /// c.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ConditionProxy
);

impl ConditionProxy {
    /// `c.acquire()`.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.h.flag(Op::Acquire(None)).map(drop)
    }
    /// `c.release()`.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.h.unit(Op::Release)
    }
    /// `c.wait()` (the lock must be held; it is held again on return).
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`], [`ManagerError::NotHeld`].
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.h.flag_forms(Op::Wait, Wait::Forever).map_err(ManagerTimeoutError::untimed)
    }
    /// `c.wait(t)`.
    ///
    /// # Errors
    /// [`ManagerTimeoutError::Timeout`] if no notify came (the lock is held again), or as
    /// [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), ManagerTimeoutError> {
        self.h.flag_forms(Op::Wait, Wait::Millis(ms(timeout)))
    }
    /// [`wait`](Self::wait) until `deadline`.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), ManagerTimeoutError> {
        self.h.flag_forms(Op::Wait, Wait::Millis(ms_until(deadline)))
    }
    /// `c.notify(n)`: how many waiters it woke.
    pub fn notify(&self, n: u32) -> Result<u32, ManagerError> {
        Ok(self.h.count(Op::Notify(n))? as u32)
    }
    /// `c.notify_all()`.
    pub fn notify_all(&self) -> Result<u32, ManagerError> {
        self.notify(u32::MAX)
    }
}

proxy_type!(
    /// A `Barrier` in the manager's server. A party whose process dies while waiting breaks it.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let b = m.barrier(1)?;
    /// assert_eq!((b.wait()?, b.parties()?), (0, 1));
    /// b.abort()?;
    /// assert!(b.broken()?);
    /// b.reset()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    BarrierProxy
);

impl BarrierProxy {
    /// `b.wait()`: this party's arrival index.
    ///
    /// # Errors
    /// [`ManagerError::Broken`] if the barrier is (or becomes) broken.
    pub fn wait(&self) -> Result<u32, ManagerError> {
        self.wait_limit(Wait::Forever).map_err(ManagerTimeoutError::untimed)
    }
    /// `b.wait(t)`.
    ///
    /// # Errors
    /// [`ManagerTimeoutError::Timeout`] if the others did not come in time (the barrier is
    /// then broken for everyone, as in Python), or as [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, ManagerTimeoutError> {
        self.wait_limit(Wait::Millis(ms(timeout)))
    }
    /// [`wait`](Self::wait) until `deadline`.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<u32, ManagerTimeoutError> {
        self.wait_limit(Wait::Millis(ms_until(deadline)))
    }
    fn wait_limit(&self, wait: Wait) -> Result<u32, ManagerTimeoutError> {
        match self.h.timed(Op::Wait(wait.wire()))? {
            Reply::Count(n) => Ok(n as u32),
            _ => Err(ManagerTimeoutError::Unsupported),
        }
    }
    /// `b.reset()`.
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.h.unit(Op::Reset)
    }
    /// `b.abort()`.
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.h.unit(Op::Abort)
    }
    /// `b.parties`.
    pub fn parties(&self) -> Result<u32, ManagerError> {
        Ok(self.h.count(Op::Parties)? as u32)
    }
    /// `b.n_waiting`.
    pub fn n_waiting(&self) -> Result<u32, ManagerError> {
        Ok(self.h.count(Op::NWaiting)? as u32)
    }
    /// `b.broken`.
    pub fn broken(&self) -> Result<bool, ManagerError> {
        self.h.flag(Op::Broken)
    }
}

proxy_type!(
    /// A `Value` in the manager's server.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let v = m.value(1u64)?;
    /// v.set(2)?;
    /// assert_eq!(v.update_with(|x| x * 10)?, 20);
    /// assert_eq!(v.get()?, 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ValueProxy<T>
);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// `v.value` / `v.get()`.
    pub fn get(&self) -> Result<T, ManagerError> {
        self.h.value(Op::Load)
    }
    /// `v.value = x` / `v.set(x)`.
    pub fn set(&self, x: T) -> Result<(), ManagerError> {
        self.h.unit(Op::Store(enc(&x)?))
    }
    /// Atomically replaces the value by `f(value)` and returns it (retried if another
    /// process changed it meanwhile).
    pub fn update_with(&self, mut f: impl FnMut(T) -> T) -> Result<T, ManagerError> {
        loop {
            let (now, version) = match self.h.op(Op::GetVersioned(Vec::new()))? {
                Reply::Versioned(Some(b), v) => (dec::<T>(&b)?, v),
                _ => return Err(ManagerError::Unsupported),
            };
            let new = f(now);
            if self.h.flag(Op::CompareSet(Vec::new(), version, enc(&new)?))? {
                return Ok(new);
            }
        }
    }
}

proxy_type!(
    /// An `Array` in the manager's server: a fixed number of items.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let a = m.array(&[0i32, 1])?;
    /// a.set(1, 5)?;
    /// assert_eq!((a.get(1)?, a.len()?, a.to_vec()?), (5, 2, vec![0, 5]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ArrayProxy<T>
);

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// `a[i]`.
    pub fn get(&self, i: usize) -> Result<T, ManagerError> {
        self.h.value(Op::LoadAt(i as u64))
    }
    /// `a[i] = v`.
    pub fn set(&self, i: usize, v: T) -> Result<(), ManagerError> {
        self.h.unit(Op::StoreAt(i as u64, enc(&v)?))
    }
    /// `len(a)`.
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.h.count(Op::Len)? as usize)
    }
    /// `len(a) == 0`.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }
    /// `a[:]`.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.h.list(Op::Snapshot)
    }
}

proxy_type!(
    /// An object of a registered type ([`Shared`](crate::manager::Shared)) in the manager's server: made by
    /// [`Manager::create`](crate::manager::Manager::create).
    ///
    /// # Examples
    ///
    /// See [`Shared`](crate::manager::Shared).
    Proxy<S>
);

impl<S: Shared> Proxy<S> {
    /// Sends `request` to the object and returns its response
    /// ([`ManagerError::Remote`] if its handler panicked).
    pub fn call(&self, request: S::Request) -> Result<S::Response, ManagerError> {
        self.h.value(Op::Custom(enc(&request)?))
    }
}
