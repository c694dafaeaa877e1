//! The manager's server: a [`Listener`] whose every client gets a thread that runs its calls
//! against the object registry, until the client goes away (then what it held is released)
//! or a `Shutdown` request stops the server.

use super::custom;
use super::objects::{self, Caller, ClientId, Object};
use super::protocol::{Failure, Kind, ObjectId, Op, Reply, Request};
use crate::codec;
use crate::connection::Listener;
use crate::loom::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::process::call::CallKey;
use crate::queue::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How often the accept loop looks at the stop flag.
const ACCEPT_SLICE: Duration = Duration::from_millis(50);

pub(crate) struct Registry {
    objects: Mutex<HashMap<ObjectId, Arc<dyn Object>>>,
    /// The lock objects again, typed, for conditions.
    locks: Mutex<HashMap<ObjectId, Arc<objects::Lock>>>,
    /// Clients connected now (their `client_gone` runs on every object when they leave).
    next_id: AtomicU64,
    stop: AtomicBool,
    key: CallKey,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub(crate) fn new(key: CallKey) -> Registry {
        Registry {
            objects: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            key,
        }
    }

    fn create(&self, kind: Kind) -> Result<Reply, Failure> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let obj: Arc<dyn Object> = match kind {
            Kind::Dict | Kind::Namespace => Arc::new(objects::Dict::default()),
            Kind::List(items) => Arc::new(objects::List::new(items)),
            Kind::Queue { maxsize } => Arc::new(objects::Queue::new(maxsize)),
            Kind::Lock { recursive } => {
                let l = Arc::new(objects::Lock::new(recursive));
                lock(&self.locks).insert(id, l.clone());
                l
            }
            Kind::Event => Arc::new(objects::Event::default()),
            Kind::Semaphore { value, bounded } => Arc::new(objects::Semaphore::new(value, bounded)),
            Kind::Condition(lock_id) => {
                let l = lock(&self.locks).get(&lock_id).cloned().ok_or(Failure::NoSuchObject)?;
                Arc::new(objects::Condition::new(l))
            }
            Kind::Barrier(parties) => Arc::new(objects::Barrier::new(parties)),
            Kind::Value(v) => Arc::new(objects::Value::new(v)),
            Kind::Array(items) => Arc::new(objects::Array::new(items)),
            Kind::Custom { create, init } => custom::create(&self.key, create, &init)?,
            Kind::Pool(n) => Arc::new(super::pool::PoolObject::new(n as usize, self.key)?),
        };
        lock(&self.objects).insert(id, obj);
        Ok(Reply::Id(id))
    }

    /// Runs one decoded request for `caller`: what the server answers it.
    pub(crate) fn run(&self, caller: &Caller<'_>, request: Request) -> Result<Reply, Failure> {
        match request {
            Request::Create(kind) => self.create(kind),
            Request::Call(id, op) => self.call(caller, id, op),
            Request::Ping => Ok(Reply::Unit),
            Request::Shutdown => {
                self.stop.store(true, Ordering::Release);
                Ok(Reply::Unit)
            }
        }
    }

    fn call(&self, caller: &Caller<'_>, id: ObjectId, op: Op) -> Result<Reply, Failure> {
        let obj = lock(&self.objects).get(&id).cloned().ok_or(Failure::NoSuchObject)?;
        obj.call(caller, op)
    }

    fn client_gone(&self, client: ClientId) {
        let all: Vec<Arc<dyn Object>> = lock(&self.objects).values().cloned().collect();
        for o in all {
            o.client_gone(client);
        }
    }
}

/// Serves `listener` until a client asks for shutdown. `authkey` derives the key that
/// authenticates registered types' constructors.
pub(crate) fn serve(listener: &Listener, authkey: &[u8]) {
    let reg = Arc::new(Registry::new(CallKey::from_secret(authkey)));
    let clients = AtomicU64::new(1);
    while !reg.stop.load(Ordering::Acquire) {
        let conn = match listener.accept_timeout(ACCEPT_SLICE) {
            Ok(c) => c,
            // A timeout, a client with a wrong key or one that vanished mid-handshake: the
            // server goes on.
            Err(_) => continue,
        };
        let client = clients.fetch_add(1, Ordering::Relaxed);
        let reg = reg.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("multiproc-manager-client-{client}"))
            .spawn(move || serve_client(&reg, client, conn));
        if spawned.is_err() {
            continue; // out of threads: this client sees end of file
        }
    }
}

/// Runs one client's calls until it goes away.
fn serve_client(reg: &Registry, client: ClientId, mut conn: Connection) {
    // End of file (the client went away) or a broken connection ends the loop alike.
    while let Ok(bytes) = conn.recv_bytes() {
        let reply: Result<Reply, Failure> = match codec::decode::<Request>(&bytes) {
            Ok(request) => {
                // The client waits for this reply: anything it sends now, or its end of file,
                // means it went away (`poll` is true for both).
                let gone = || !conn.try_poll().is_err_and(|e| e.is_empty());
                reg.run(&Caller { id: client, gone: &gone }, request)
            }
            Err(_) => Err(Failure::WrongOp),
        };
        let Ok(out) = codec::encode(&reply) else { break };
        if conn.send_bytes(&out).is_err() {
            break;
        }
    }
    reg.client_gone(client);
}
