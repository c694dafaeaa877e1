//! Registered types (Python's `BaseManager.register`): any type implementing [`Shared`] lives
//! in the server, and a [`Proxy`](super::Proxy) sends it requests.
//!
//! The client names the type by a token of `creator::<T>` (an offset into this program,
//! authenticated with a key derived from the manager's authkey: see `process/call.rs`); the
//! server, a process of the same program, calls it to make the object and then dispatches each
//! request through the object's vtable. A handler that panics fails that call
//! ([`ManagerError::Remote`](super::ManagerError::Remote) with the message); the object stays.

use super::objects::{Caller, Object};
use super::protocol::{Failure, Op, Reply};
use crate::codec;
use crate::process::call::{CallKey, FnToken};
use std::sync::{Arc, Mutex};

/// A type the manager's server can keep and serve (Python's registered `typeid`): its
/// constructor argument, its requests and its responses are serde values.
///
/// # Examples
///
/// ```
/// use multiproc::{Manager, Shared};
///
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl Shared for Counter {
///     type Init = u64;
///     type Request = u64; // how much to add
///     type Response = u64; // the new total
///     fn new(start: u64) -> Self {
///         Counter(start)
///     }
///     fn handle(&mut self, add: u64) -> u64 {
///         self.0 += add;
///         self.0
///     }
/// }
///
/// let m = Manager::start()?;
/// let c = m.create::<Counter>(10)?;
/// assert_eq!(c.call(5)?, 15);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Shared: Send + 'static {
    /// What [`Manager::create`](super::Manager::create) passes to [`new`](Self::new).
    type Init: serde::Serialize + serde::de::DeserializeOwned;
    /// A call's argument.
    type Request: serde::Serialize + serde::de::DeserializeOwned;
    /// A call's result.
    type Response: serde::Serialize + serde::de::DeserializeOwned;

    /// Makes the object, in the server.
    fn new(init: Self::Init) -> Self;

    /// Serves one call, in the server (one call at a time per object).
    fn handle(&mut self, request: Self::Request) -> Self::Response;
}

/// An object of a registered type, its type erased.
trait Erased: Send {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, Failure>;
}

struct Holder<T>(T);

impl<T: Shared> Erased for Holder<T> {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, Failure> {
        let req: T::Request = codec::decode(request)
            .map_err(|e| Failure::Remote(crate::RemoteError::new("codec", format!("bad request: {e}"))))?;
        let out = self.0.handle(req);
        codec::encode(&out)
            .map_err(|e| Failure::Remote(crate::RemoteError::new("codec", format!("cannot encode the response: {e}"))))
    }
}

type Creator = fn(&[u8]) -> Result<Box<dyn Erased>, Failure>;

fn creator<T: Shared>(init: &[u8]) -> Result<Box<dyn Erased>, Failure> {
    let init: T::Init = codec::decode(init)
        .map_err(|e| Failure::Remote(crate::RemoteError::new("codec", format!("bad constructor argument: {e}"))))?;
    Ok(Box::new(Holder(T::new(init))))
}

/// The token that makes a `T` in the server.
pub(crate) fn token<T: Shared>(key: &CallKey) -> FnToken {
    FnToken::of(key, creator::<T> as Creator as usize)
}

/// The server's side: makes the object `create` names.
pub(crate) fn create(key: &CallKey, create: FnToken, init: &[u8]) -> Result<Arc<dyn Object>, Failure> {
    let addr = create
        .address(key)
        .ok_or_else(|| Failure::Remote(crate::RemoteError::new("token", "the type's token does not authenticate")))?;
    #[allow(unsafe_code)]
    // SAFETY: the tag verifies under the key only this manager's clients can derive, and they
    // make tokens only of `creator::<T>` (see `token`), so `addr` is a `Creator` of this
    // program's image.
    let make = unsafe { std::mem::transmute::<usize, Creator>(addr) };
    let obj = std::panic::catch_unwind(|| make(init))
        .map_err(|p| Failure::Remote(crate::RemoteError::new("panic", panic_text(&*p))))??;
    Ok(Arc::new(Custom(Mutex::new(obj))))
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    crate::process::panics::payload_text(p).to_owned()
}

struct Custom(Mutex<Box<dyn Erased>>);

impl Object for Custom {
    fn call(&self, _: &Caller<'_>, op: Op) -> Result<Reply, Failure> {
        let Op::Custom(req) = op else { return Err(Failure::WrongOp) };
        let mut obj = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.call(&req)));
        match r {
            Ok(r) => r.map(Reply::Bytes),
            Err(p) => Err(Failure::Remote(crate::RemoteError::new("panic", panic_text(&*p)))),
        }
    }
}
