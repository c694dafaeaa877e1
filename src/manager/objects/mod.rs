//! The objects a manager's server keeps, and what each operation does to them. This file: the
//! `Object` trait, the waiting helper and the collections (dict, list, queue); `sync.rs`:
//! locks, events, semaphores, conditions, barriers, values and arrays.
//!
//! Each object guards its own state with a `std::sync::Mutex` (the server is one process: the
//! clients reach it through calls), and blocking operations wait on the object's `Condvar`
//! without holding anything else, so one client blocked in `acquire` or `get` never stops the
//! others. Values are encoded bytes: equality (dict keys, `list.index`) is equality of
//! encodings, which is value equality for integers, strings, tuples and other types with one
//! encoding per value (not for floats' `-0.0`/`NaN`).
//!
//! A client that goes away ([`Object::client_gone`]) releases what it held: manager locks,
//! and its place at a barrier (which breaks it, as a dead party breaks the crate's `Barrier`).

use super::protocol::{Failure, Op, Reply};

mod sync;
use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
pub(crate) use sync::{Array, Barrier, Condition, Event, Lock, Semaphore, Value};

/// Identifies a client connection in the server.
pub(crate) type ClientId = u64;

/// Who is calling: the client's id, and a check whether it went away meanwhile (a blocking
/// call gives up then, so that the server notices the death and releases what it held).
pub(crate) struct Caller<'a> {
    pub(crate) id: ClientId,
    pub(crate) gone: &'a dyn Fn() -> bool,
}

/// How often a blocked call looks whether its client went away.
const GONE_SLICE: Duration = Duration::from_millis(100);

/// A server-side object.
pub(crate) trait Object: Send + Sync {
    /// Runs `op` for `caller`.
    fn call(&self, caller: &Caller<'_>, op: Op) -> Result<Reply, Failure>;

    /// `client` disconnected (or died): release what it held.
    fn client_gone(&self, _client: ClientId) {}
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits on `cv` until `done` says so, `timeout_ms` passes or the caller went away; returns
/// the guard and whether `done` held.
fn wait_until<'a, T>(
    cv: &Condvar,
    mut g: MutexGuard<'a, T>,
    caller: &Caller<'_>,
    timeout_ms: Option<u64>,
    mut done: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
    loop {
        if done(&mut g) {
            return (g, true);
        }
        let now = Instant::now();
        let slice = match deadline {
            Some(d) if now >= d => return (g, false),
            Some(d) => (d - now).min(GONE_SLICE),
            None => GONE_SLICE,
        };
        let (g2, timed_out) = cv.wait_timeout(g, slice).unwrap_or_else(|p| p.into_inner());
        g = g2;
        if timed_out.timed_out() && (caller.gone)() {
            return (g, false);
        }
    }
}

/// A list index from the protocol (negative counts from the end, as in Python).
fn index(i: i64, len: usize) -> Result<usize, Failure> {
    let i = if i < 0 { len as i64 + i } else { i };
    usize::try_from(i).ok().filter(|&i| i < len).ok_or(Failure::NotFound)
}

/// An insertion-ordered map of encoded keys to encoded values, each with a version (for
/// compare-and-set).
#[derive(Default)]
struct Ordered {
    keys: Vec<Vec<u8>>,
    map: HashMap<Vec<u8>, (Vec<u8>, u64)>,
    next_version: u64,
}

impl Ordered {
    fn set(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.next_version += 1;
        let version = self.next_version;
        if self.map.insert(k.clone(), (v, version)).is_none() {
            self.keys.push(k);
        }
    }

    fn remove(&mut self, k: &[u8]) -> Option<Vec<u8>> {
        let (v, _) = self.map.remove(k)?;
        self.keys.retain(|x| x != k);
        Some(v)
    }

    fn items(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.keys.iter().map(|k| (k.clone(), self.map[k].0.clone())).collect()
    }
}

/// `dict` and `Namespace`.
#[derive(Default)]
pub(crate) struct Dict(Mutex<Ordered>);

impl Object for Dict {
    fn call(&self, _: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let mut d = lock(&self.0);
        Ok(match op {
            Op::Get(k) => Reply::MaybeBytes(d.map.get(&k).map(|(v, _)| v.clone())),
            Op::GetVersioned(k) => match d.map.get(&k) {
                Some((v, ver)) => Reply::Versioned(Some(v.clone()), *ver),
                None => Reply::Versioned(None, 0),
            },
            Op::Set(k, v) => {
                d.set(k, v);
                Reply::Unit
            }
            Op::CompareSet(k, version, v) => {
                let now = d.map.get(&k).map_or(0, |(_, ver)| *ver);
                if now != version {
                    return Ok(Reply::Bool(false));
                }
                d.set(k, v);
                Reply::Bool(true)
            }
            Op::Remove(k) => Reply::MaybeBytes(d.remove(&k)),
            Op::Contains(k) => Reply::Bool(d.map.contains_key(&k)),
            Op::Len => Reply::Count(d.keys.len() as u64),
            Op::Keys => Reply::List(d.keys.clone()),
            Op::Values => Reply::List(d.keys.iter().map(|k| d.map[k].0.clone()).collect()),
            Op::Items => Reply::Pairs(d.items()),
            Op::Update(pairs) => {
                for (k, v) in pairs {
                    d.set(k, v);
                }
                Reply::Unit
            }
            Op::SetDefault(k, v) => {
                if let Some((have, _)) = d.map.get(&k) {
                    return Ok(Reply::Bytes(have.clone()));
                }
                d.set(k, v.clone());
                Reply::Bytes(v)
            }
            Op::PopItem => {
                let Some(k) = d.keys.last().cloned() else { return Ok(Reply::MaybePair(None)) };
                let v = d.remove(&k).expect("listed");
                Reply::MaybePair(Some((k, v)))
            }
            Op::Clear => {
                *d = Ordered { next_version: d.next_version, ..Ordered::default() };
                Reply::Unit
            }
            _ => return Err(Failure::WrongOp),
        })
    }
}

/// `list`.
pub(crate) struct List(Mutex<(Vec<Vec<u8>>, u64)>);

impl List {
    pub(crate) fn new(items: Vec<Vec<u8>>) -> List {
        List(Mutex::new((items, 0)))
    }
}

impl Object for List {
    fn call(&self, _: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let mut g = lock(&self.0);
        let (l, version) = &mut *g;
        let changes = !matches!(op, Op::At(_) | Op::Len | Op::Index(_) | Op::Count(_) | Op::Snapshot);
        let r = match op {
            Op::Push(v) => {
                l.push(v);
                Reply::Unit
            }
            Op::Extend(vs) => {
                l.extend(vs);
                Reply::Unit
            }
            Op::Insert(i, v) => {
                let at = if i < 0 { (l.len() as i64 + i).max(0) as usize } else { (i as usize).min(l.len()) };
                l.insert(at, v);
                Reply::Unit
            }
            Op::At(i) => Reply::Bytes(l[index(i, l.len())?].clone()),
            Op::SetAt(i, v) => {
                let i = index(i, l.len())?;
                l[i] = v;
                Reply::Unit
            }
            Op::RemoveAt(i) => Reply::Bytes(l.remove(index(i, l.len())?)),
            Op::Pop => Reply::MaybeBytes(l.pop()),
            Op::RemoveValue(v) => {
                let i = l.iter().position(|x| *x == v).ok_or(Failure::NotFound)?;
                l.remove(i);
                Reply::Unit
            }
            Op::Index(v) => Reply::Count(l.iter().position(|x| *x == v).ok_or(Failure::NotFound)? as u64),
            Op::Count(v) => Reply::Count(l.iter().filter(|x| **x == v).count() as u64),
            Op::Len => Reply::Count(l.len() as u64),
            Op::Clear => {
                l.clear();
                Reply::Unit
            }
            Op::Snapshot => Reply::Snapshot(l.clone(), *version),
            Op::ReplaceAll(seen, items) => {
                if seen != *version {
                    return Ok(Reply::Bool(false));
                }
                *l = items;
                Reply::Bool(true)
            }
            _ => return Err(Failure::WrongOp),
        };
        if changes {
            *version += 1;
        }
        Ok(r)
    }
}

/// `Queue`.
pub(crate) struct Queue {
    q: Mutex<VecDeque<Vec<u8>>>,
    maxsize: Option<usize>,
    changed: Condvar,
}

impl Queue {
    pub(crate) fn new(maxsize: Option<usize>) -> Queue {
        Queue { q: Mutex::new(VecDeque::new()), maxsize: maxsize.filter(|&m| m > 0), changed: Condvar::new() }
    }
}

impl Object for Queue {
    fn call(&self, c: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let g = lock(&self.q);
        match op {
            Op::Put(v, t) => {
                let max = self.maxsize;
                let (mut g, ok) = wait_until(&self.changed, g, c, t, |q| max.is_none_or(|m| q.len() < m));
                if !ok {
                    return Err(Failure::Timeout);
                }
                g.push_back(v);
                self.changed.notify_all();
                Ok(Reply::Unit)
            }
            Op::Take(t) => {
                let (mut g, ok) = wait_until(&self.changed, g, c, t, |q| !q.is_empty());
                if !ok {
                    return Err(Failure::Timeout);
                }
                let v = g.pop_front().expect("not empty");
                self.changed.notify_all();
                Ok(Reply::Bytes(v))
            }
            Op::QSize => Ok(Reply::Count(g.len() as u64)),
            Op::Parties => Ok(Reply::Count(self.maxsize.unwrap_or(0) as u64)),
            _ => Err(Failure::WrongOp),
        }
    }
}
