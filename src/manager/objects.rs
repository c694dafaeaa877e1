//! The objects a manager's server keeps, and what each operation does to them.
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
use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

#[derive(Default)]
struct LockState {
    owner: Option<ClientId>,
    depth: u32,
}

/// `Lock` and `RLock`: held by a client (connection), released by any client for a `Lock`
/// (Python's manager lock may be released by another process, MGR-7), by its owner for an
/// `RLock`.
pub(crate) struct Lock {
    st: Mutex<LockState>,
    freed: Condvar,
    recursive: bool,
}

impl Lock {
    pub(crate) fn new(recursive: bool) -> Lock {
        Lock { st: Mutex::new(LockState::default()), freed: Condvar::new(), recursive }
    }

    fn acquire(&self, c: &Caller<'_>, timeout: Option<u64>) -> Result<u32, Failure> {
        let client = c.id;
        let g = lock(&self.st);
        let recursive = self.recursive;
        let (mut g, ok) =
            wait_until(&self.freed, g, c, timeout, |s| s.owner.is_none() || (recursive && s.owner == Some(client)));
        if !ok {
            return Err(Failure::Timeout);
        }
        g.owner = Some(client);
        g.depth += 1;
        Ok(g.depth)
    }

    fn release(&self, client: ClientId, all: bool) -> Result<u32, Failure> {
        let mut g = lock(&self.st);
        match g.owner {
            None => return Err(Failure::NotHeld),
            Some(o) if self.recursive && o != client => return Err(Failure::NotHeld),
            Some(_) => {}
        }
        let depth = g.depth;
        g.depth = if all { 0 } else { g.depth - 1 };
        if g.depth == 0 {
            g.owner = None;
            self.freed.notify_all();
        }
        Ok(depth)
    }

    /// Takes the lock back with `depth` levels (after a condition wait), unless the caller
    /// went away meanwhile.
    fn reacquire(&self, c: &Caller<'_>, depth: u32) {
        let g = lock(&self.st);
        let (mut g, ok) = wait_until(&self.freed, g, c, None, |s| s.owner.is_none());
        if ok {
            g.owner = Some(c.id);
            g.depth = depth;
        }
    }

    fn held_by(&self, client: ClientId) -> bool {
        lock(&self.st).owner == Some(client)
    }
}

impl Object for Lock {
    fn call(&self, c: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        match op {
            Op::Acquire(t) => match self.acquire(c, t) {
                Ok(_) => Ok(Reply::Bool(true)),
                Err(Failure::Timeout) => Ok(Reply::Bool(false)),
                Err(e) => Err(e),
            },
            Op::Release => self.release(c.id, false).map(|_| Reply::Unit),
            _ => Err(Failure::WrongOp),
        }
    }

    fn client_gone(&self, client: ClientId) {
        let mut g = lock(&self.st);
        if g.owner == Some(client) {
            // A dead holder's lock is released (the client's calls can no longer finish).
            g.owner = None;
            g.depth = 0;
            self.freed.notify_all();
        }
    }
}

/// `Event`.
#[derive(Default)]
pub(crate) struct Event {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Object for Event {
    fn call(&self, c: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let g = lock(&self.flag);
        match op {
            Op::IsSet => Ok(Reply::Bool(*g)),
            Op::SetFlag => {
                let mut g = g;
                *g = true;
                self.cv.notify_all();
                Ok(Reply::Unit)
            }
            Op::ClearFlag => {
                let mut g = g;
                *g = false;
                Ok(Reply::Unit)
            }
            Op::Wait(t) => Ok(Reply::Bool(wait_until(&self.cv, g, c, t, |f| *f).1)),
            _ => Err(Failure::WrongOp),
        }
    }
}

/// `Semaphore` and `BoundedSemaphore`.
pub(crate) struct Semaphore {
    value: Mutex<u32>,
    cv: Condvar,
    limit: Option<u32>,
}

impl Semaphore {
    pub(crate) fn new(value: u32, bounded: bool) -> Semaphore {
        Semaphore { value: Mutex::new(value), cv: Condvar::new(), limit: bounded.then_some(value) }
    }
}

impl Object for Semaphore {
    fn call(&self, c: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let g = lock(&self.value);
        match op {
            Op::Acquire(t) => {
                let (mut g, ok) = wait_until(&self.cv, g, c, t, |v| *v > 0);
                if ok {
                    *g -= 1;
                }
                Ok(Reply::Bool(ok))
            }
            Op::Release => {
                let mut g = g;
                if self.limit.is_some_and(|l| *g >= l) {
                    return Err(Failure::NotHeld);
                }
                *g = g.saturating_add(1);
                self.cv.notify_one();
                Ok(Reply::Unit)
            }
            Op::GetValue => Ok(Reply::Count(u64::from(*g))),
            _ => Err(Failure::WrongOp),
        }
    }
}

#[derive(Default)]
struct CondState {
    /// Wake-up tokens handed out by `notify` and not yet taken.
    tokens: u64,
    /// Waiters that have not taken a token.
    waiting: u64,
}

/// `Condition` over a manager lock (held by the waiting client).
pub(crate) struct Condition {
    lock: std::sync::Arc<Lock>,
    st: Mutex<CondState>,
    cv: Condvar,
}

impl Condition {
    pub(crate) fn new(lock: std::sync::Arc<Lock>) -> Condition {
        Condition { lock, st: Mutex::new(CondState::default()), cv: Condvar::new() }
    }
}

impl Object for Condition {
    fn call(&self, c: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let the_lock = &*self.lock;
        match op {
            Op::Acquire(_) | Op::Release => the_lock.call(c, op),
            Op::Wait(t) => {
                if !the_lock.held_by(c.id) {
                    return Err(Failure::NotHeld);
                }
                // Count ourselves as waiting before giving the lock up: a notify in between is
                // not lost.
                lock(&self.st).waiting += 1;
                let depth = the_lock.release(c.id, true)?;
                let g = lock(&self.st);
                let (mut g, woken) = wait_until(&self.cv, g, c, t, |s| s.tokens > 0);
                if woken {
                    g.tokens -= 1;
                }
                g.waiting -= 1;
                drop(g);
                the_lock.reacquire(c, depth);
                Ok(Reply::Bool(woken))
            }
            Op::Notify(n) => {
                if !the_lock.held_by(c.id) {
                    return Err(Failure::NotHeld);
                }
                let mut g = lock(&self.st);
                let give = u64::from(n).min(g.waiting.saturating_sub(g.tokens));
                g.tokens += give;
                self.cv.notify_all();
                Ok(Reply::Count(give))
            }
            _ => Err(Failure::WrongOp),
        }
    }

    fn client_gone(&self, client: ClientId) {
        self.lock.client_gone(client);
    }
}

#[derive(Default)]
struct BarrierState {
    count: u32,
    /// Bumped when the last party arrives (the waiters pass).
    releases: u64,
    /// Bumped by `reset` (the waiters fail).
    resets: u64,
    broken: bool,
    /// The clients waiting in the current generation.
    waiting: Vec<ClientId>,
}

/// `Barrier`.
pub(crate) struct Barrier {
    parties: u32,
    st: Mutex<BarrierState>,
    cv: Condvar,
}

impl Barrier {
    pub(crate) fn new(parties: u32) -> Barrier {
        Barrier { parties: parties.max(1), st: Mutex::new(BarrierState::default()), cv: Condvar::new() }
    }

    fn break_it(&self, g: &mut BarrierState) {
        g.broken = true;
        self.cv.notify_all();
    }
}

impl Object for Barrier {
    fn call(&self, c: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let mut g = lock(&self.st);
        match op {
            Op::Wait(t) => {
                if g.broken {
                    return Err(Failure::Broken);
                }
                let index = g.count;
                g.count += 1;
                if g.count == self.parties {
                    g.count = 0;
                    g.releases += 1;
                    g.waiting.clear();
                    self.cv.notify_all();
                    return Ok(Reply::Count(u64::from(index)));
                }
                g.waiting.push(c.id);
                let (rel, res) = (g.releases, g.resets);
                let (mut g, woke) = wait_until(&self.cv, g, c, t, |s| s.releases != rel || s.resets != res || s.broken);
                if g.releases != rel {
                    return Ok(Reply::Count(u64::from(index)));
                }
                if !woke {
                    // Timed out: that breaks the barrier for everyone, as in Python.
                    self.break_it(&mut g);
                }
                Err(Failure::Broken)
            }
            Op::Reset => {
                // Current waiters wake without a release: they fail; the barrier is usable again.
                g.count = 0;
                g.broken = false;
                g.resets += 1;
                g.waiting.clear();
                self.cv.notify_all();
                Ok(Reply::Unit)
            }
            Op::Abort => {
                self.break_it(&mut g);
                Ok(Reply::Unit)
            }
            Op::Parties => Ok(Reply::Count(u64::from(self.parties))),
            Op::NWaiting => Ok(Reply::Count(u64::from(g.count))),
            Op::Broken => Ok(Reply::Bool(g.broken)),
            _ => Err(Failure::WrongOp),
        }
    }

    fn client_gone(&self, client: ClientId) {
        let mut g = lock(&self.st);
        if g.waiting.contains(&client) {
            // A party died while waiting: the others must not wait for ever.
            self.break_it(&mut g);
        }
    }
}

/// `Value`.
pub(crate) struct Value(Mutex<(Vec<u8>, u64)>);

impl Value {
    pub(crate) fn new(v: Vec<u8>) -> Value {
        Value(Mutex::new((v, 1)))
    }
}

impl Object for Value {
    fn call(&self, _: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let mut g = lock(&self.0);
        match op {
            Op::Load => Ok(Reply::Bytes(g.0.clone())),
            Op::Store(v) => {
                *g = (v, g.1 + 1);
                Ok(Reply::Unit)
            }
            Op::GetVersioned(_) => Ok(Reply::Versioned(Some(g.0.clone()), g.1)),
            Op::CompareSet(_, version, v) => {
                if version != g.1 {
                    return Ok(Reply::Bool(false));
                }
                *g = (v, g.1 + 1);
                Ok(Reply::Bool(true))
            }
            _ => Err(Failure::WrongOp),
        }
    }
}

/// `Array`.
pub(crate) struct Array(Mutex<Vec<Vec<u8>>>);

impl Array {
    pub(crate) fn new(items: Vec<Vec<u8>>) -> Array {
        Array(Mutex::new(items))
    }
}

impl Object for Array {
    fn call(&self, _: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let mut a = lock(&self.0);
        match op {
            Op::LoadAt(i) => Ok(Reply::Bytes(a.get(i as usize).ok_or(Failure::NotFound)?.clone())),
            Op::StoreAt(i, v) => {
                *a.get_mut(i as usize).ok_or(Failure::NotFound)? = v;
                Ok(Reply::Unit)
            }
            Op::Len => Ok(Reply::Count(a.len() as u64)),
            Op::Snapshot => Ok(Reply::Snapshot(a.clone(), 0)),
            _ => Err(Failure::WrongOp),
        }
    }
}
