//! Managers (Python's `multiprocessing.Manager()` and `BaseManager`): a server process that
//! keeps shared Python-style objects (`dict`, `list`, `Namespace`, `Queue`, locks, …, and your
//! own [`Shared`] types), used from any process through typed proxies.
//!
//! ```
//! use multiproc::Manager;
//! use multiproc::Process;
//!
//! let manager = Manager::start()?;
//! let d = manager.dict::<String, String>()?;
//! let children: Vec<Process> = (0..3)
//!     .map(|i| {
//!         let d = d.clone();
//!         Process::new(move || d.insert(format!("process_{i}"), format!("value {i}")))
//!     })
//!     .collect();
//! for c in &children {
//!     c.start()?;
//! }
//! for c in &children {
//!     c.join()?.exit_ok()?;
//! }
//! assert_eq!(d.len()?, 3);
//! manager.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//! [`Manager::start`] starts the server as a child process (with the default start method, or
//! the builder's) listening on a fresh abstract Unix address with a random authkey: local
//! clients' connections run on shared-memory rings (no socket in the data path, unlike
//! Python). [`Manager::serve`] runs a server in the calling process on an address you choose
//! (TCP for other hosts), and [`Manager::connect`] reaches one. Each process opens its own
//! connections on first use; every call is one message each way.
//!
//! The server keeps values encoded (serde + postcard) and compares them as bytes (see
//! `objects.rs`). Objects live until the server stops. Proxies are plain data (`Clone`,
//! `Serialize`): forked children use them as they are, spawned children receive them as
//! arguments. **Nested proxies** (a proxy stored inside a dict or list proxy) are stored as
//! their handle and work when read back, since a proxy is data (`d.insert(k, queue_proxy)` then
//! `d.get(&k)?.unwrap().put(..)`); the server does not follow them (a `clear` of the outer
//! object does not delete the inner one).
//!
//! # Failure
//! A server that is gone makes every call return [`ManagerError::ServerGone`] at once. A
//! client that dies (even mid-call) is seen by the server as the end of its connection: the
//! server goes on serving the others, releases the manager locks the client held, and breaks
//! a barrier it was waiting at. [`Manager::shutdown`] (or dropping the last handle of the
//! process that started the server) stops the server and reaps it.

mod client;
mod custom;
mod objects;
mod pool;
mod protocol;
mod proxy;
mod server;
mod shared_memory;

#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use objects::Caller;
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use protocol::Failure;
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use server::Registry;

pub use client::{ManagerError, ManagerStartError, ManagerTimeoutError, TryManagerError};
pub use custom::Shared;
pub use pool::PoolProxy;
pub use proxy::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy, NamespaceProxy, Proxy,
    QueueProxy, SemaphoreProxy, ValueProxy,
};
pub use shared_memory::SharedMemoryManager;

use crate::connection::{Address, Listener, ToAddress};
use crate::process::call::CallKey;
use crate::{Event, Process, StartMethod};
use client::Remote;
use protocol::Reply;
pub(crate) use protocol::{Kind, Request};
use proxy::Handle;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How long [`Manager::start`] waits for its server to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A handle on a manager's server (Python's `SyncManager`): makes shared objects and hands
/// out proxies to them. Cheap to clone; send it to children (forked, or spawned: it is plain
/// data) to make more objects there. The server runs while the process that started it holds
/// a handle: dropping the last one stops it (as Python's manager object does when collected),
/// and the proxies then return [`ManagerError::ServerGone`].
///
/// # Examples
///
/// ```
/// use multiproc::Manager;
/// use multiproc::Process;
///
/// let manager = Manager::start()?;
/// let d = manager.dict::<String, String>()?;
/// let children: Vec<Process> = (0..3)
///     .map(|i| {
///         let d = d.clone();
///         Process::new(move || d.insert(format!("process_{i}"), format!("value {i}")))
///     })
///     .collect();
/// for c in &children {
///     c.start()?;
/// }
/// for c in &children {
///     c.join()?.exit_ok()?;
/// }
/// assert_eq!(d.len()?, 3);
/// manager.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
///
/// How the server works and what happens when a client or the server dies: `docs/FAILURE.md`
/// and the GUIDE's manager section.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Manager {
    remote: Remote,
    #[serde(skip)]
    owner: Option<Arc<Owner>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("address", &self.remote.address).field("owner", &self.owner.is_some()).finish()
    }
}

/// The server process of a manager this process started: stopped when the last handle drops
/// (in this process; copies in forked children do nothing).
struct Owner {
    server: Process,
    remote: Remote,
    pid: u32,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if std::process::id() == self.pid {
            stop(&self.remote, &self.server);
        }
    }
}

fn stop(remote: &Remote, server: &Process) {
    let _ = remote.call(&Request::Shutdown);
    if server.join_timeout(Duration::from_secs(5)).is_err() {
        let _ = server.kill();
        let _ = server.join();
    }
}

/// Options of a manager's server (Python's `BaseManager(address, authkey)` and its start
/// method).
#[derive(Debug, Default, Clone)]
pub struct ManagerBuilder {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    method: Option<StartMethod>,
}

impl ManagerBuilder {
    /// The address the server listens on (default: a fresh abstract Unix address, local only;
    /// a TCP address lets other hosts [`connect`](Manager::connect)).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::builder().address("tcp:127.0.0.1:0")?.authkey(b"k").start();
    /// # let _ = m;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn address(mut self, address: impl ToAddress) -> Result<ManagerBuilder, crate::connection::ConnError> {
        self.address = Some(address.to_address()?);
        Ok(self)
    }

    /// The key every client must know (default: random, known to this process and to the
    /// processes it hands the manager to).
    ///
    /// # Examples
    ///
    /// See [`address`](Self::address).
    pub fn authkey(mut self, key: &[u8]) -> ManagerBuilder {
        self.authkey = Some(key.to_vec());
        self
    }

    /// How the server process is started (default: [`get_start_method`](crate::get_start_method)).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::builder().start_method(multiproc::StartMethod::Spawn).start()?;
    /// m.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> ManagerBuilder {
        self.method = Some(method);
        self
    }

    /// Starts the server process and returns once it listens.
    ///
    /// # Errors
    /// [`ManagerError::Start`] if the process cannot be started, or the server could not
    /// listen (an address in use: the message says so).
    ///
    /// # Examples
    ///
    /// See [`Manager::start`].
    pub fn start(self) -> Result<Manager, ManagerError> {
        let mut key = self.authkey.unwrap_or_default();
        if key.is_empty() {
            key = vec![0; 32];
            crate::sys::random::fill(&mut key).map_err(|e| ManagerError::Start(ManagerStartError::Os(e)))?;
        }
        let address = self.address.unwrap_or_else(Address::unique);
        let setup = |e| ManagerError::Start(ManagerStartError::Setup(e));
        let ready = Event::new().map_err(setup)?;
        let answer = crate::Queue::<Address>::new().map_err(setup)?;
        let method = self.method.unwrap_or_else(crate::get_start_method);
        // Not daemonic, so that the server may start a pool's workers (`Manager::pool`), as
        // Python's is not; it still dies with this process: `server_main` asks for the
        // parent-death signal itself (a fork server's child has it from the fork server).
        let parent = (method != StartMethod::ForkServer).then(crate::sys::process::getpid);
        let server = Process::builder()
            .name("SyncManager")
            .start_method(method)
            .spawn(server_main, (address, key.clone(), answer.clone(), ready.clone(), parent))
            .map_err(|e| ManagerError::Start(ManagerStartError::Process(e)))?;
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        while ready.wait_timeout(Duration::from_millis(20)).is_err() {
            if let Ok(status) = server.try_join() {
                return Err(ManagerError::Start(ManagerStartError::Exited(status)));
            }
            if std::time::Instant::now() > deadline {
                let _ = server.kill();
                let _ = server.join();
                return Err(ManagerError::Start(ManagerStartError::Timeout));
            }
        }
        let address = answer.try_get().map_err(|_| ManagerError::ServerGone)?;
        let remote = Remote { address, authkey: key };
        let owner = Owner { server, remote: remote.clone(), pid: std::process::id() };
        Ok(Manager { remote, owner: Some(Arc::new(owner)) })
    }
}

/// The server process: listen, say where, serve until shutdown.
#[allow(clippy::type_complexity)] // the spawn arguments, one tuple
fn server_main(
    (address, key, answer, ready, parent): (Address, Vec<u8>, crate::Queue<Address>, Event, Option<i32>),
) -> Result<(), String> {
    if let Some(parent) = parent {
        use crate::sys::process::{getppid, set_parent_death_signal};
        set_parent_death_signal(libc::SIGKILL).map_err(|e| e.to_string())?;
        if getppid() != parent {
            return Err("the process that started the manager is gone".into());
        }
    }
    let listener = Listener::bind(&address, Some(&key)).map_err(|e| e.to_string())?;
    answer.put(listener.address()).map_err(|e| e.to_string())?;
    ready.set();
    server::serve(&listener, &key);
    Ok(())
}

impl Manager {
    /// Starts a manager's server process (Python's `Manager()`), local to this host.
    ///
    /// # Errors
    /// As [`ManagerBuilder::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let l = m.list::<u8>()?;
    /// l.push(1)?;
    /// assert_eq!(l.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start() -> Result<Manager, ManagerError> {
        ManagerBuilder::default().start()
    }

    /// Options for the server (address, authkey, start method).
    ///
    /// # Examples
    ///
    /// See [`ManagerBuilder::start_method`].
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Runs a server in this process, on `address`, until a client calls
    /// [`shutdown`](Self::shutdown) (Python's `BaseManager(address, authkey).get_server().serve_forever()`).
    ///
    /// # Errors
    /// [`ManagerError::Connect`] if the address cannot be listened on.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Manager;
    ///
    /// let address = multiproc::Address::unique();
    /// let a = address.clone();
    /// let server = std::thread::spawn(move || Manager::serve(&a, b"key"));
    /// let m = loop {
    ///     match Manager::connect(&address, b"key") {
    ///         Ok(m) => break m,
    ///         Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
    ///     }
    /// };
    /// m.dict::<u8, u8>()?.insert(1, 2)?;
    /// m.shutdown()?;
    /// server.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve(address: impl ToAddress, authkey: &[u8]) -> Result<(), ManagerError> {
        let address = address.to_address().map_err(ManagerError::Connect)?;
        let listener = Listener::bind(&address, Some(authkey)).map_err(ManagerError::Connect)?;
        server::serve(&listener, authkey);
        Ok(())
    }

    /// Reaches the server at `address` (Python's `BaseManager(address, authkey).connect()`).
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`] if nobody listens there, [`ManagerError::Connect`] for a
    /// wrong key or another failure.
    ///
    /// # Examples
    ///
    /// See [`serve`](Self::serve).
    pub fn connect(address: impl ToAddress, authkey: &[u8]) -> Result<Manager, ManagerError> {
        let address = address.to_address().map_err(ManagerError::Connect)?;
        let remote = Remote { address, authkey: authkey.to_vec() };
        remote.call(&Request::Ping)?;
        Ok(Manager { remote, owner: None })
    }

    /// Stops the server (its objects are gone; proxies then return
    /// [`ManagerError::ServerGone`]); if this process started it, waits for it to exit.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`] if it was already gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let e = m.event()?;
    /// m.shutdown()?;
    /// assert!(matches!(e.set(), Err(multiproc::ManagerError::ServerGone)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) -> Result<(), ManagerError> {
        match &self.owner {
            Some(o) if o.pid == std::process::id() => {
                self.remote.call(&Request::Ping)?;
                stop(&self.remote, &o.server);
                Ok(())
            }
            _ => self.remote.call(&Request::Shutdown).map(drop),
        }
    }

    /// The address the server listens on.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// assert!(m.address().to_string().starts_with("abstract:"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn address(&self) -> &Address {
        &self.remote.address
    }

    fn make(&self, kind: Kind) -> Result<Handle, ManagerError> {
        match self.remote.call(&Request::Create(kind))? {
            Reply::Id(id) => Ok(Handle { remote: self.remote.clone(), id }),
            _ => Err(ManagerError::Unsupported),
        }
    }

    fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, ManagerError> {
        Ok(crate::codec::encode(v)?)
    }

    /// A new `dict` (Python's `manager.dict()`).
    ///
    /// # Examples
    ///
    /// See [`DictProxy`].
    pub fn dict<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>(
        &self,
    ) -> Result<DictProxy<K, V>, ManagerError> {
        Ok(DictProxy::from_handle(self.make(Kind::Dict)?))
    }

    /// A new, empty `list`.
    ///
    /// # Examples
    ///
    /// See [`ListProxy`].
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>, ManagerError> {
        self.list_from(Vec::new())
    }

    /// A new `list` holding `items` (Python's `manager.list(items)`).
    ///
    /// # Examples
    ///
    /// See [`ListProxy`].
    pub fn list_from<T: Serialize + DeserializeOwned>(&self, items: Vec<T>) -> Result<ListProxy<T>, ManagerError> {
        let items = items.iter().map(Self::encode).collect::<Result<_, _>>()?;
        Ok(ListProxy::from_handle(self.make(Kind::List(items))?))
    }

    /// A new `Namespace`.
    ///
    /// # Examples
    ///
    /// See [`NamespaceProxy`].
    pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
        Ok(NamespaceProxy::from_handle(self.make(Kind::Namespace)?))
    }

    /// A new, unbounded `Queue` (Python's `manager.Queue()`; the local form is
    /// [`Queue::new`](crate::Queue::new)).
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>, ManagerError> {
        Ok(QueueProxy::from_handle(self.make(Kind::Queue { maxsize: None })?))
    }

    /// A new `Queue` holding at most `maxsize` items (Python's `manager.Queue(maxsize)`; the
    /// local form is [`Queue::with_maxsize`](crate::Queue::with_maxsize)). Zero: unbounded.
    ///
    /// # Examples
    ///
    /// See [`QueueProxy`].
    pub fn queue_with_maxsize<T: Serialize + DeserializeOwned>(
        &self,
        maxsize: usize,
    ) -> Result<QueueProxy<T>, ManagerError> {
        let maxsize = (maxsize > 0).then_some(maxsize);
        Ok(QueueProxy::from_handle(self.make(Kind::Queue { maxsize })?))
    }

    /// A new `Lock` (releasable by any client, as Python's manager lock).
    ///
    /// # Examples
    ///
    /// See [`LockProxy`].
    pub fn lock(&self) -> Result<LockProxy, ManagerError> {
        Ok(LockProxy::from_handle(self.make(Kind::Lock { recursive: false })?))
    }

    /// A new `RLock` (recursive; only its holder releases it).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?;
    /// let r = m.rlock()?;
    /// r.acquire()?;
    /// r.acquire()?; // again, by the same client
    /// r.release()?;
    /// r.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rlock(&self) -> Result<LockProxy, ManagerError> {
        Ok(LockProxy::from_handle(self.make(Kind::Lock { recursive: true })?))
    }

    /// A new `Event`.
    ///
    /// # Examples
    ///
    /// See [`EventProxy`].
    pub fn event(&self) -> Result<EventProxy, ManagerError> {
        Ok(EventProxy::from_handle(self.make(Kind::Event)?))
    }

    /// A new `Semaphore(value)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = multiproc::Manager::start()?; // keep it: dropping it stops the server
    /// let s = m.semaphore(2)?;
    /// assert_eq!(s.get_value()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn semaphore(&self, value: u32) -> Result<SemaphoreProxy, ManagerError> {
        Ok(SemaphoreProxy::from_handle(self.make(Kind::Semaphore { value, bounded: false })?))
    }

    /// A new `BoundedSemaphore(value)`.
    ///
    /// # Examples
    ///
    /// See [`SemaphoreProxy`].
    pub fn bounded_semaphore(&self, value: u32) -> Result<SemaphoreProxy, ManagerError> {
        Ok(SemaphoreProxy::from_handle(self.make(Kind::Semaphore { value, bounded: true })?))
    }

    /// A new `Condition` with its own (recursive) manager lock.
    ///
    /// # Examples
    ///
    /// See [`ConditionProxy`].
    pub fn condition(&self) -> Result<ConditionProxy, ManagerError> {
        let lock = self.make(Kind::Lock { recursive: true })?;
        Ok(ConditionProxy::from_handle(self.make(Kind::Condition(lock.id))?))
    }

    /// A new `Barrier(parties)`.
    ///
    /// # Examples
    ///
    /// See [`BarrierProxy`].
    pub fn barrier(&self, parties: u32) -> Result<BarrierProxy, ManagerError> {
        Ok(BarrierProxy::from_handle(self.make(Kind::Barrier(parties))?))
    }

    /// A new `Value` holding `v`.
    ///
    /// # Examples
    ///
    /// See [`ValueProxy`].
    pub fn value<T: Serialize + DeserializeOwned>(&self, v: T) -> Result<ValueProxy<T>, ManagerError> {
        Ok(ValueProxy::from_handle(self.make(Kind::Value(Self::encode(&v)?))?))
    }

    /// A new `Array` holding a copy of `items`.
    ///
    /// # Examples
    ///
    /// See [`ArrayProxy`].
    pub fn array<T: Serialize + DeserializeOwned>(&self, items: &[T]) -> Result<ArrayProxy<T>, ManagerError> {
        let items = items.iter().map(Self::encode).collect::<Result<_, _>>()?;
        Ok(ArrayProxy::from_handle(self.make(Kind::Array(items))?))
    }

    /// A new process pool of `processes` workers in the server (Python's `manager.Pool(n)`);
    /// its workers are spawned, whatever this process's start method.
    ///
    /// # Errors
    /// [`ManagerError::Remote`] if the server cannot start the workers.
    ///
    /// # Examples
    ///
    /// See [`PoolProxy`].
    pub fn pool(&self, processes: usize) -> Result<PoolProxy, ManagerError> {
        let n = u32::try_from(processes).map_err(|_| ManagerError::Unsupported)?;
        Ok(PoolProxy::from_handle(self.make(Kind::Pool(n))?))
    }

    /// A new object of a registered type, made in the server by `S::new(init)`
    /// (Python's `BaseManager.register` + `manager.TypeId(args)`).
    ///
    /// # Errors
    /// [`ManagerError::Remote`] if `S::new` panicked in the server.
    ///
    /// # Examples
    ///
    /// See [`Shared`].
    pub fn create<S: Shared>(&self, init: S::Init) -> Result<Proxy<S>, ManagerError> {
        let create = custom::token::<S>(&CallKey::from_secret(&self.remote.authkey));
        Ok(Proxy::from_handle(self.make(Kind::Custom { create, init: Self::encode(&init)? })?))
    }
}
