//! Proxies of synchronisation objects, values and arrays, and of registered types.

use super::{dec, enc, ms, Handle};
use crate::manager::client::ManagerError;
use crate::manager::custom::Shared;
use crate::manager::protocol::{Op, Reply};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::time::Duration;

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
    /// assert!(!l.acquire_timeout(std::time::Duration::from_millis(5))?);
    /// l.release()?;
    /// assert!(l.release().is_err()); // "release unlocked lock"
    /// # Ok::<(), multiproc::ManagerError>(())
    /// ```
    LockProxy
);

/// `acquire`, `try_acquire`, `acquire_timeout` and `release`: the same calls on a lock and a
/// semaphore (`$release` documents what `release` refuses).
macro_rules! acquire_methods {
    ($release:literal) => {
        /// `acquire()`.
        pub fn acquire(&self) -> Result<(), ManagerError> {
            self.h.flag(Op::Acquire(None)).map(drop)
        }
        /// `acquire(False)`.
        pub fn try_acquire(&self) -> Result<bool, ManagerError> {
            self.h.flag(Op::Acquire(Some(0)))
        }
        /// `acquire(timeout=t)`.
        pub fn acquire_timeout(&self, t: Duration) -> Result<bool, ManagerError> {
            self.h.flag(Op::Acquire(ms(t)))
        }
        #[doc = $release]
        pub fn release(&self) -> Result<(), ManagerError> {
            self.h.unit(Op::Release)
        }
    };
}

impl LockProxy {
    acquire_methods!("`release()` ([`ManagerError::NotHeld`] if not held).");
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
    /// assert!(e.is_set()? && e.wait_timeout(std::time::Duration::ZERO)?);
    /// # Ok::<(), multiproc::ManagerError>(())
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
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.h.flag(Op::Wait(None)).map(drop)
    }
    /// `e.wait(t)`: whether it is set.
    pub fn wait_timeout(&self, t: Duration) -> Result<bool, ManagerError> {
        self.h.flag(Op::Wait(ms(t)))
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
    /// assert!(s.try_acquire()? && !s.try_acquire()?);
    /// s.release()?;
    /// assert!(s.release().is_err());
    /// # Ok::<(), multiproc::ManagerError>(())
    /// ```
    SemaphoreProxy
);

impl SemaphoreProxy {
    acquire_methods!("`release()` ([`ManagerError::NotHeld`] above a bounded semaphore's bound).");
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
    /// assert!(!c.wait_timeout(std::time::Duration::from_millis(5))?); // nobody notifies
    /// c.notify_all()?;
    /// c.release()?;
    /// # Ok::<(), multiproc::ManagerError>(())
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
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.h.flag(Op::Wait(None)).map(drop)
    }
    /// `c.wait(t)`: whether it was notified.
    pub fn wait_timeout(&self, t: Duration) -> Result<bool, ManagerError> {
        self.h.flag(Op::Wait(ms(t)))
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
    /// # Ok::<(), multiproc::ManagerError>(())
    /// ```
    BarrierProxy
);

impl BarrierProxy {
    /// `b.wait()`: this party's arrival index ([`ManagerError::Broken`] if broken).
    pub fn wait(&self) -> Result<u32, ManagerError> {
        Ok(self.h.count(Op::Wait(None))? as u32)
    }
    /// `b.wait(t)`; running out breaks the barrier.
    pub fn wait_timeout(&self, t: Duration) -> Result<u32, ManagerError> {
        Ok(self.h.count(Op::Wait(ms(t)))? as u32)
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
    /// # Ok::<(), multiproc::ManagerError>(())
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
    /// # Ok::<(), multiproc::ManagerError>(())
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
