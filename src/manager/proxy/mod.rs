//! Typed proxies: each is a handle on one object in the server (its address, key and id).
//! This file: the handle, the wire helpers and the collections (dict, list, namespace, queue);
//! `sync.rs`: locks, events, semaphores, conditions, barriers, values, arrays, registered types.
//! Proxies are `Clone`, and plain data: a forked child uses them as they are, and a spawned
//! one receives them as arguments; each process opens its own connection on first use.

use super::client::{ManagerError, ManagerTimeoutError, Remote, TryManagerError};
use super::protocol::{ObjectId, Op, Reply, Request};
use crate::codec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::time::Duration;

/// What every proxy holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Handle {
    pub(crate) remote: Remote,
    pub(crate) id: ObjectId,
}

impl Handle {
    fn op(&self, op: Op) -> Result<Reply, ManagerError> {
        self.remote.call(&Request::Call(self.id, op))
    }

    /// An operation that waits in the server until its limit: `Timeout` when it passed.
    fn timed(&self, op: Op) -> Result<Reply, ManagerTimeoutError> {
        self.remote.call_timed(&Request::Call(self.id, op))
    }

    /// A waiting operation whose server answers `false` when its limit passed (acquire, wait).
    fn timed_flag(&self, op: Op) -> Result<(), ManagerTimeoutError> {
        match self.timed(op)? {
            Reply::Bool(true) => Ok(()),
            Reply::Bool(false) => Err(ManagerTimeoutError::Timeout),
            _ => Err(ManagerTimeoutError::Unsupported),
        }
    }

    /// The four forms of a waiting operation `make(limit)` answered with a flag.
    fn flag_forms(&self, make: impl FnOnce(Option<u64>) -> Op, wait: Wait) -> Result<(), ManagerTimeoutError> {
        self.timed_flag(make(wait.wire()))
    }

    fn unit(&self, op: Op) -> Result<(), ManagerError> {
        match self.op(op)? {
            Reply::Unit => Ok(()),
            _ => Err(ManagerError::Unsupported),
        }
    }

    fn flag(&self, op: Op) -> Result<bool, ManagerError> {
        match self.op(op)? {
            Reply::Bool(b) => Ok(b),
            _ => Err(ManagerError::Unsupported),
        }
    }

    fn count(&self, op: Op) -> Result<u64, ManagerError> {
        match self.op(op)? {
            Reply::Count(n) => Ok(n),
            _ => Err(ManagerError::Unsupported),
        }
    }

    fn value<T: DeserializeOwned>(&self, op: Op) -> Result<T, ManagerError> {
        match self.op(op)? {
            Reply::Bytes(b) => dec(&b),
            _ => Err(ManagerError::Unsupported),
        }
    }

    fn maybe<T: DeserializeOwned>(&self, op: Op) -> Result<Option<T>, ManagerError> {
        match self.op(op)? {
            Reply::MaybeBytes(b) => b.map(|b| dec(&b)).transpose(),
            _ => Err(ManagerError::Unsupported),
        }
    }

    /// A reply's list of encoded values, as they are.
    pub(super) fn raw_list(&self, op: Op) -> Result<Vec<Vec<u8>>, ManagerError> {
        match self.op(op)? {
            Reply::List(l) => Ok(l),
            _ => Err(ManagerError::Unsupported),
        }
    }

    fn list<T: DeserializeOwned>(&self, op: Op) -> Result<Vec<T>, ManagerError> {
        match self.op(op)? {
            Reply::List(l) | Reply::Snapshot(l, _) => l.iter().map(|b| dec(b)).collect(),
            _ => Err(ManagerError::Unsupported),
        }
    }
}

pub(super) fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, ManagerError> {
    Ok(codec::encode(v)?)
}

pub(super) fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, ManagerError> {
    Ok(codec::decode(b)?)
}

/// A timeout for the wire, in milliseconds (`None`: for ever, also for `Duration::MAX`).
pub(super) fn ms(d: Duration) -> Option<u64> {
    u64::try_from(d.as_millis()).ok().filter(|&m| m < u64::MAX / 2)
}

/// A deadline for the wire: the time left, in milliseconds (a past one: `Some(0)`, look once).
pub(super) fn ms_until(deadline: std::time::Instant) -> Option<u64> {
    ms(deadline.saturating_duration_since(std::time::Instant::now()))
}

/// The limit of a timed form on the wire: a zero timeout still looks once and reports
/// `Timeout`, the try form's `Some(0)` on the server.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    Forever,
    Now,
    Millis(Option<u64>),
}

impl Wait {
    pub(super) fn wire(self) -> Option<u64> {
        match self {
            Wait::Forever => None,
            Wait::Now => Some(0),
            Wait::Millis(m) => m,
        }
    }
}

macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident $(<$($g:ident),*>)?) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize)]
        #[serde(bound = "")]
        pub struct $name $(<$($g),*>)? {
            h: Handle,
            #[serde(skip)]
            _t: PhantomData<fn() -> ($($($g,)*)?)>,
        }

        impl $(<$($g),*>)? Clone for $name $(<$($g),*>)? {
            fn clone(&self) -> Self {
                $name { h: self.h.clone(), _t: PhantomData }
            }
        }

        impl $(<$($g),*>)? std::fmt::Debug for $name $(<$($g),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("id", &self.h.id).field("address", &self.h.remote.address).finish()
            }
        }

        impl $(<$($g),*>)? $name $(<$($g),*>)? {
            pub(crate) fn from_handle(h: Handle) -> Self {
                $name { h, _t: PhantomData }
            }
        }
    };
}

pub(super) use proxy_type;

mod sync;
pub use sync::{ArrayProxy, BarrierProxy, ConditionProxy, EventProxy, LockProxy, Proxy, SemaphoreProxy, ValueProxy};

proxy_type!(
    /// A `dict` in the manager's server (Python's `manager.dict()`): keys in insertion order.
    /// Made by [`Manager::dict`](super::Manager::dict).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let d = m.dict::<String, u32>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.get("a")?, Some(1));
    /// assert_eq!(d.update_with("a".into(), |v| v.unwrap_or(0) + 1)?, 2); // atomic (MGR-B1)
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    DictProxy<K, V>
);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// `d[k]`, or `None` (Python's `d.get(k)`). The key may be borrowed, as with a `HashMap`:
    /// `d.get("a")` for a `DictProxy<String, _>` (borrowed and owned forms encode alike).
    pub fn get<Q: Serialize + ?Sized>(&self, k: &Q) -> Result<Option<V>, ManagerError>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.h.maybe(Op::Get(enc(k)?))
    }
    /// `d[k] = v`.
    pub fn insert(&self, k: K, v: V) -> Result<(), ManagerError> {
        self.h.unit(Op::Set(enc(&k)?, enc(&v)?))
    }
    /// `d.pop(k, None)` / `del d[k]`: the removed value.
    pub fn remove<Q: Serialize + ?Sized>(&self, k: &Q) -> Result<Option<V>, ManagerError>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.h.maybe(Op::Remove(enc(k)?))
    }
    /// `k in d`.
    pub fn contains_key<Q: Serialize + ?Sized>(&self, k: &Q) -> Result<bool, ManagerError>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.h.flag(Op::Contains(enc(k)?))
    }
    /// `len(d)`.
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.h.count(Op::Len)? as usize)
    }
    /// `len(d) == 0`.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }
    /// `list(d.keys())`, in insertion order.
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        self.h.list(Op::Keys)
    }
    /// `list(d.values())`.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        self.h.list(Op::Values)
    }
    /// `list(d.items())` (also Python's `d.copy()`, as pairs).
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        match self.h.op(Op::Items)? {
            Reply::Pairs(p) => p.iter().map(|(k, v)| Ok((dec(k)?, dec(v)?))).collect(),
            _ => Err(ManagerError::Unsupported),
        }
    }
    /// `d.update(pairs)`, in one call.
    pub fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        let p = pairs.into_iter().map(|(k, v)| Ok((enc(&k)?, enc(&v)?))).collect::<Result<_, ManagerError>>()?;
        self.h.unit(Op::Update(p))
    }
    /// `d.setdefault(k, v)`: the value now under `k`.
    pub fn setdefault(&self, k: K, v: V) -> Result<V, ManagerError> {
        self.h.value(Op::SetDefault(enc(&k)?, enc(&v)?))
    }
    /// `d.popitem()`: the last inserted pair.
    pub fn popitem(&self) -> Result<Option<(K, V)>, ManagerError> {
        match self.h.op(Op::PopItem)? {
            Reply::MaybePair(p) => p.map(|(k, v)| Ok((dec(&k)?, dec(&v)?))).transpose(),
            _ => Err(ManagerError::Unsupported),
        }
    }
    /// `d.clear()`.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.h.unit(Op::Clear)
    }
    /// Atomically replaces `d[k]` by `f(d.get(k))` and returns it: what Python's
    /// `d[k] += 1` (two calls, racy: MGR-B1) should be. Retries `f` if another process
    /// changed the entry meanwhile (compare-and-set on the entry's version).
    pub fn update_with(&self, k: K, mut f: impl FnMut(Option<V>) -> V) -> Result<V, ManagerError> {
        let key = enc(&k)?;
        loop {
            let (now, version) = match self.h.op(Op::GetVersioned(key.clone()))? {
                Reply::Versioned(b, v) => (b.map(|b| dec(&b)).transpose()?, v),
                _ => return Err(ManagerError::Unsupported),
            };
            let new = f(now);
            if self.h.flag(Op::CompareSet(key.clone(), version, enc(&new)?))? {
                return Ok(new);
            }
        }
    }
}

proxy_type!(
    /// A `list` in the manager's server (Python's `manager.list()`). Made by
    /// [`Manager::list`](super::Manager::list). Indices may be negative (from the end).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let l = m.list_from(vec![3u32, 1, 2])?;
    /// l.push(0)?;
    /// l.sort()?;
    /// assert_eq!(l.to_vec()?, [0, 1, 2, 3]);
    /// assert_eq!(l.get(-1)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ListProxy<T>
);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// `l.append(v)`.
    pub fn push(&self, v: T) -> Result<(), ManagerError> {
        self.h.unit(Op::Push(enc(&v)?))
    }
    /// `l.extend(vs)`, in one call.
    pub fn extend(&self, vs: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        let vs = vs.into_iter().map(|v| enc(&v)).collect::<Result<_, _>>()?;
        self.h.unit(Op::Extend(vs))
    }
    /// `l.insert(i, v)`.
    pub fn insert(&self, i: i64, v: T) -> Result<(), ManagerError> {
        self.h.unit(Op::Insert(i, enc(&v)?))
    }
    /// `l[i]` ([`ManagerError::NotFound`] out of range).
    pub fn get(&self, i: i64) -> Result<T, ManagerError> {
        self.h.value(Op::At(i))
    }
    /// `l[i] = v`.
    pub fn set(&self, i: i64, v: T) -> Result<(), ManagerError> {
        self.h.unit(Op::SetAt(i, enc(&v)?))
    }
    /// `l.pop(i)`.
    pub fn remove_at(&self, i: i64) -> Result<T, ManagerError> {
        self.h.value(Op::RemoveAt(i))
    }
    /// `l.pop()`, or `None` when empty.
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        self.h.maybe(Op::Pop)
    }
    /// `l.remove(v)`: the first equal item ([`ManagerError::NotFound`] if none).
    pub fn remove(&self, v: &T) -> Result<(), ManagerError> {
        self.h.unit(Op::RemoveValue(enc(v)?))
    }
    /// `l.index(v)`.
    pub fn index(&self, v: &T) -> Result<usize, ManagerError> {
        Ok(self.h.count(Op::Index(enc(v)?))? as usize)
    }
    /// `l.count(v)`.
    pub fn count(&self, v: &T) -> Result<usize, ManagerError> {
        Ok(self.h.count(Op::Count(enc(v)?))? as usize)
    }
    /// `len(l)`.
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.h.count(Op::Len)? as usize)
    }
    /// `len(l) == 0`.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }
    /// `l.clear()`.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.h.unit(Op::Clear)
    }
    /// `l[:]`: a snapshot.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.h.list(Op::Snapshot)
    }
    /// An iterator over a snapshot taken now (changes made later are not seen by it; a new
    /// iterator sees them).
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>, ManagerError> {
        Ok(self.to_vec()?.into_iter())
    }
    /// Atomically replaces the whole list by what `f` makes of it (retried if another process
    /// changed the list meanwhile).
    pub fn update_with(&self, mut f: impl FnMut(&mut Vec<T>)) -> Result<(), ManagerError> {
        loop {
            let (items, version) = match self.h.op(Op::Snapshot)? {
                Reply::Snapshot(l, v) => (l.iter().map(|b| dec(b)).collect::<Result<Vec<T>, _>>()?, v),
                _ => return Err(ManagerError::Unsupported),
            };
            let mut items = items;
            f(&mut items);
            let new = items.iter().map(|v| enc(v)).collect::<Result<_, _>>()?;
            if self.h.flag(Op::ReplaceAll(version, new))? {
                return Ok(());
            }
        }
    }
    /// `l.reverse()`, atomically.
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.update_with(|v| v.reverse())
    }
}

impl<T: Serialize + DeserializeOwned + Ord> ListProxy<T> {
    /// `l.sort()`, atomically.
    pub fn sort(&self) -> Result<(), ManagerError> {
        self.update_with(|v| v.sort())
    }
}

proxy_type!(
    /// A `Namespace` (Python's `manager.Namespace()`): named fields holding serde values.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let ns = m.namespace()?;
    /// ns.set("name", &"Bob")?;
    /// assert_eq!(ns.get::<String>("name")?, Some("Bob".to_string()));
    /// assert_eq!(ns.names()?, ["name"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    NamespaceProxy
);

impl NamespaceProxy {
    /// `ns.field`, or `None` if it has none.
    pub fn get<V: DeserializeOwned>(&self, field: &str) -> Result<Option<V>, ManagerError> {
        self.h.maybe(Op::Get(enc(field)?))
    }
    /// `ns.field = v`.
    pub fn set<V: Serialize + ?Sized>(&self, field: &str, v: &V) -> Result<(), ManagerError> {
        self.h.unit(Op::Set(enc(field)?, enc(v)?))
    }
    /// `del ns.field`; whether it had it.
    pub fn remove(&self, field: &str) -> Result<bool, ManagerError> {
        Ok(matches!(self.h.op(Op::Remove(enc(field)?))?, Reply::MaybeBytes(Some(_))))
    }
    /// `hasattr(ns, field)`.
    pub fn has(&self, field: &str) -> Result<bool, ManagerError> {
        self.h.flag(Op::Contains(enc(field)?))
    }
    /// The field names, in the order they were first set.
    pub fn names(&self) -> Result<Vec<String>, ManagerError> {
        self.h.list(Op::Keys)
    }
}

proxy_type!(
    /// A `Queue` in the manager's server (Python's `manager.Queue(maxsize)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let q = m.queue_with_maxsize::<u32>(2)?; // as `Queue::with_maxsize(2)`
    /// q.put(&5)?;
    /// q.put(&6)?;
    /// assert!(q.full()?);
    /// assert!(q.try_put(&7).unwrap_err().is_would_block());
    /// assert_eq!((q.get()?, q.get()?), (5, 6));
    /// assert!(q.get_timeout(std::time::Duration::from_millis(10)).unwrap_err().is_timeout());
    /// q.put_deadline(&8, std::time::Instant::now())?;
    /// assert_eq!(q.try_get()?, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    QueueProxy<T>
);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// `q.put(v)`, waiting while full (as [`Queue::put`](crate::Queue::put)).
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`], [`ManagerError::Codec`].
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn put(&self, v: &T) -> Result<(), ManagerError> {
        self.put_wait(v, Wait::Forever).map_err(ManagerTimeoutError::untimed)
    }
    /// `q.put_nowait(v)`.
    ///
    /// # Errors
    /// [`TryManagerError::WouldBlock`] if the queue is full, or as [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn try_put(&self, v: &T) -> Result<(), TryManagerError> {
        self.put_wait(v, Wait::Now).map_err(ManagerTimeoutError::try_form)
    }
    /// `q.put(v, timeout=t)`.
    ///
    /// # Errors
    /// [`ManagerTimeoutError::Timeout`] if the queue stayed full, or as [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn put_timeout(&self, v: &T, timeout: Duration) -> Result<(), ManagerTimeoutError> {
        self.put_wait(v, Wait::Millis(ms(timeout)))
    }
    /// [`put`](Self::put), waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn put_deadline(&self, v: &T, deadline: std::time::Instant) -> Result<(), ManagerTimeoutError> {
        self.put_wait(v, Wait::Millis(ms_until(deadline)))
    }
    fn put_wait(&self, v: &T, wait: Wait) -> Result<(), ManagerTimeoutError> {
        match self.h.timed(Op::Put(enc(v)?, wait.wire()))? {
            Reply::Unit => Ok(()),
            _ => Err(ManagerTimeoutError::Unsupported),
        }
    }
    /// `q.get()`, waiting while empty.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`], [`ManagerError::Codec`].
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn get(&self) -> Result<T, ManagerError> {
        self.get_wait(Wait::Forever).map_err(ManagerTimeoutError::untimed)
    }
    /// `q.get_nowait()`.
    ///
    /// # Errors
    /// [`TryManagerError::WouldBlock`] if the queue is empty, or as [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn try_get(&self) -> Result<T, TryManagerError> {
        self.get_wait(Wait::Now).map_err(ManagerTimeoutError::try_form)
    }
    /// `q.get(timeout=t)`.
    ///
    /// # Errors
    /// [`ManagerTimeoutError::Timeout`] if the queue stayed empty, or as [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerTimeoutError> {
        self.get_wait(Wait::Millis(ms(timeout)))
    }
    /// [`get`](Self::get), waiting until `deadline` for an item.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn get_deadline(&self, deadline: std::time::Instant) -> Result<T, ManagerTimeoutError> {
        self.get_wait(Wait::Millis(ms_until(deadline)))
    }
    fn get_wait(&self, wait: Wait) -> Result<T, ManagerTimeoutError> {
        match self.h.timed(Op::Take(wait.wire()))? {
            Reply::Bytes(b) => Ok(codec::decode(&b)?),
            _ => Err(ManagerTimeoutError::Unsupported),
        }
    }
    /// `q.qsize()`.
    pub fn qsize(&self) -> Result<usize, ManagerError> {
        Ok(self.h.count(Op::QSize)? as usize)
    }
    /// `q.empty()`.
    pub fn empty(&self) -> Result<bool, ManagerError> {
        Ok(self.qsize()? == 0)
    }
    /// `q.full()`.
    pub fn full(&self) -> Result<bool, ManagerError> {
        let max = self.h.count(Op::Parties)? as usize;
        Ok(max > 0 && self.qsize()? >= max)
    }
}
