//! Start methods (Python's `set_start_method`, `get_start_method`, `get_context`).

use super::lock::lock;
use std::fmt;
use std::sync::Mutex;

/// How a child process is created (Python's start methods).
///
/// | method | how | fits |
/// |---|---|---|
/// | [`Fork`](Self::Fork) (default) | `fork()`: the child is a copy of the parent at that instant | single-threaded parents; closures as targets; the cheapest start |
/// | [`Spawn`](Self::Spawn) | a fresh exec of this executable that runs one `fn` entry | any parent, threads included: nothing is inherited but the arguments |
/// | [`ForkServer`](Self::ForkServer) | a single-threaded server (spawned once) forks the children | threaded parents that want fork's start cost; a prepared image ([`ForkServer::builder`](crate::process::ForkServer::builder)) |
///
/// With `Spawn` and `ForkServer` the target must be a plain `fn` item taking serde arguments
/// ([`ProcessBuilder::spawn`](crate::ProcessBuilder::spawn), [`Process::spawn`](crate::Process::spawn)); shared objects (`Queue`,
/// `Lock`, `Value`, …) may be among them: their descriptors travel with the arguments.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, StartMethod};
///
/// fn hello(n: u32) -> i32 {
///     n as i32
/// }
///
/// let p = Process::builder().start_method(StartMethod::Spawn).spawn(hello, 7)?;
/// assert_eq!(p.join()?.exitcode(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum StartMethod {
    /// `fork()` (Python's `'fork'`).
    #[default]
    Fork,
    /// A fresh exec of the current executable (Python's `'spawn'`).
    Spawn,
    /// Forked by a fork server (Python's `'forkserver'`).
    ForkServer,
}

impl StartMethod {
    /// Python's name for it: `"fork"`, `"spawn"` or `"forkserver"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::StartMethod::ForkServer.name(), "forkserver");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }
}

/// The process-wide default, and whether it was set explicitly.
static DEFAULT: Mutex<(StartMethod, bool)> = Mutex::new((StartMethod::Fork, false));

/// Sets the process-wide default start method, once (Python's `set_start_method`). A second
/// call fails unless `force` is given, as in Python.
///
/// # Errors
/// [`StartMethodSetError`] (with the method set) on a second call without `force`.
///
/// # Examples
///
/// ```
/// use multiproc::{get_start_method, set_start_method, StartMethod};
///
/// set_start_method(StartMethod::Fork, false)?;
/// assert!(set_start_method(StartMethod::Spawn, false).is_err());
/// set_start_method(StartMethod::Fork, true)?; // forced
/// assert_eq!(get_start_method(), StartMethod::Fork);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_start_method(method: StartMethod, force: bool) -> Result<(), StartMethodSetError> {
    let mut d = lock(&DEFAULT);
    if d.1 && !force {
        return Err(StartMethodSetError(d.0));
    }
    *d = (method, true);
    Ok(())
}

/// The process-wide default start method (Python's `get_start_method`): `Fork` unless
/// [`set_start_method`] changed it.
///
/// # Examples
///
/// ```
/// let _m: multiproc::StartMethod = multiproc::get_start_method();
/// ```
pub fn get_start_method() -> StartMethod {
    lock(&DEFAULT).0
}

/// A start method to use without changing the default (Python's `get_context(method)`):
/// processes and pools made through it use `method`. The shared objects (`Queue`, `Lock`, …)
/// are the same under every method, so they are made as usual.
///
/// # Examples
///
/// ```
/// use multiproc::{get_context, StartMethod};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let ctx = get_context(StartMethod::Spawn);
/// let pool = ctx.pool().processes(1).build()?; // `Context::pool` is in the pool module
/// assert_eq!(pool.map(square, [3])?, [9]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn get_context(method: StartMethod) -> Context {
    Context { method }
}

/// A start method chosen for some processes and pools (see [`get_context`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

impl Context {
    /// The context's start method.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{get_context, StartMethod};
    /// assert_eq!(get_context(StartMethod::Spawn).start_method(), StartMethod::Spawn);
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }
}

/// [`set_start_method`](crate::set_start_method) without `force` after the start method was
/// already set (Python's `RuntimeError: context has already been set`); the method it has.
///
/// # Examples
///
/// ```
/// use multiproc::{get_start_method, set_start_method, StartMethodSetError};
/// let now = get_start_method();
/// set_start_method(now, true)?; // force: always works
/// assert!(matches!(set_start_method(now, false), Err(StartMethodSetError(m)) if m == now));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartMethodSetError(pub StartMethod);

impl fmt::Display for StartMethodSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the start method was already set (to {})", self.0.name())
    }
}

impl std::error::Error for StartMethodSetError {}
