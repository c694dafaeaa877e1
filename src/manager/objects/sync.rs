//! The server's synchronisation objects, values and arrays.

use super::{lock, wait_until, Caller, ClientId, Object};
use crate::manager::protocol::{Failure, Op, Reply};
use std::sync::{Condvar, Mutex};

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
                    // Timed out: that breaks the barrier for everyone, as in Python; this
                    // party is told it timed out, the others that it is broken.
                    self.break_it(&mut g);
                    return Err(Failure::Timeout);
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
