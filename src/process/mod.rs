//! Processes (fork start method): [`Process`], its [`ExitStatus`] with the child's failure
//! text, process groups, the parent-death signal for daemons, [`current_process`],
//! [`parent_process`], [`active_children`] and [`cpu_count`].
//!
//! # A short tour
//!
//! A [`Process`] runs a closure in a forked child. The closure may return `()`, an `i32` exit
//! code, or a `Result<_, E: Display>` (see [`ChildOutcome`]); [`Process::join`] reaps the child
//! and returns its [`ExitStatus`], which speaks Python's `exitcode` convention (0, 1 for a panic
//! or an `Err`, −N for signal N) and also carries **why** the child failed:
//!
//! ```
//! use multiproc::{Process, ProcessError};
//!
//! let p = Process::new(|| -> Result<(), String> { Err("disk full".into()) });
//! p.start()?;
//! let status = p.join()?;
//! assert_eq!(status.exitcode(), 1);
//! assert_eq!(status.message(), Some("disk full"));          // the Err's Display
//!
//! let p = Process::builder()
//!     .name("worker-1")
//!     .start(|| assert_eq!(multiproc::current_process().name(), "worker-1"))?;
//! assert!(p.join()?.success());
//! # Ok::<(), ProcessError>(())
//! ```
//!
//! * A **panic** gives exit code 1 and the message `panicked at <file>:<line>:<col>: <message>`
//!   (the panic is also printed on the child's stderr, as usual). An **`Err(e)`** gives exit
//!   code 1 and `e.to_string()`. `std::process::exit(8)` in the child gives 8.
//! * **Timeouts**: [`Process::join_timeout`], [`Process::join_deadline`] and
//!   [`Process::try_join`] return `Ok(None)` while the child still runs.
//! * **Signals**: [`Process::terminate`] (SIGTERM, exit code −15) and [`Process::kill`]
//!   (SIGKILL, −9). With [`Builder::process_group`] the child leads its own process group and
//!   [`Process::terminate_tree`]/[`Process::kill_tree`] take its descendants too.
//! * **Daemons** ([`Builder::daemon`]) are SIGKILLed by the kernel when their parent dies
//!   (`PR_SET_PDEATHSIG`), and may not start children of their own.
//! * The [`Process::sentinel`] is a pidfd that becomes readable when the child ends: put it in
//!   `poll`/`epoll` next to your other descriptors.
//!
//! # How the child leaves
//!
//! The child runs the closure under `catch_unwind`, writes its failure text (if any) to a
//! 4 KiB shared report area, flushes Rust's `stdout` (errors ignored), and leaves with
//! `_exit`: it never returns into the caller's stack, runs no destructors of the parent's
//! objects and no `atexit` handlers. Threads the child spawned and did not join are killed by
//! `_exit` (Rust has no Python-style "non-daemon thread" to wait for: join them yourself).
//!
//! # Forking a multi-threaded parent
//!
//! `fork` copies only the calling thread. Any lock another thread held at that instant stays
//! locked forever in the child. In the child, therefore:
//! * **safe**: async-signal-safe calls, this crate's shared-memory objects, and heap allocation
//!   (glibc's `malloc` is made fork-safe by glibc's own `atfork` handlers);
//! * **not safe** if another thread might have held the lock: any `std::sync::Mutex`/`RwLock`
//!   shared with other threads, `std::env::set_var`, the panic hook (a thread panicking at the
//!   moment of the fork), and the default shared-memory arena (`Lock::new()` and friends
//!   allocate from it).
//!
//! [`Process::start`] holds std's `stdout` and `stderr` locks and this crate's own bookkeeping
//! (the current-process record, the active-children registry, the report-area pool) across
//! the `fork`, so those are consistent and usable in the child: `println!` in the child is safe
//! even while other threads print. In a single-threaded parent none of this matters. If you
//! cannot rule it out, create what the child needs before forking and keep the child's work
//! simple.
//!
//! # Failure semantics
//!
//! See the Process section of `docs/FAILURE.md`: a child killed at any instruction is reported
//! as `−signal` with no message; a daemon dies with its parent; the report area is untrusted.

#![deny(unsafe_code)]

#[cfg(feature = "serde")]
pub(crate) mod call;
mod report;

use crate::shm::{ShmError, ShmRef};
use crate::sys::clock::Deadline;
use crate::sys::process as sys;
use report::{Kind, Pool, Report};
use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest accepted process name, in bytes.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, ProcessError, MAX_NAME_LEN};
///
/// let long = "x".repeat(MAX_NAME_LEN + 1);
/// assert!(matches!(Process::builder().name(long).target(|| ()), Err(ProcessError::NameTooLong { .. })));
/// ```
pub const MAX_NAME_LEN: usize = 255;

/// Name of the process that was not started by this crate (Python's `"MainProcess"`).
const MAIN_NAME: &str = "MainProcess";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a [`Process`] operation failed.
///
/// The child's own failure (a panic, an `Err`, a signal) is **not** an error of `join`: it is
/// in the [`ExitStatus`] that `join` returns. [`ExitStatus::exit_ok`] turns it into
/// [`ProcessError::Failed`] when you want `?` to propagate it.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, ProcessError};
///
/// let p = Process::new(|| ());
/// assert!(matches!(p.join(), Err(ProcessError::NotStarted)));
/// p.start()?;
/// assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
/// p.join()?;
/// # Ok::<(), ProcessError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError {
    /// The operation needs a started process (Python: "process not started" / `pid is None`).
    NotStarted,
    /// `start` was called a second time (Python: "cannot start a process twice").
    AlreadyStarted,
    /// The process was [closed](Process::close).
    Closed,
    /// [`Process::close`] on a child that has not been joined yet.
    StillRunning,
    /// A daemonic process tried to start a child (Python: "daemonic processes are not allowed
    /// to have children").
    DaemonicParent,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// [`Process::terminate_tree`]/[`Process::kill_tree`] on a child that was not started with
    /// [`Builder::process_group`]`(true)`.
    NoProcessGroup,
    /// This handle was inherited through `fork` by another process: only the process that
    /// started the child may wait for it or signal it (Python: "can only join a child process").
    NotOurChild,
    /// The child was reaped behind this crate's back (a `waitpid(-1)` elsewhere, or `SIGCHLD`
    /// set to `SIG_IGN`), so its exit status is lost.
    Lost,
    /// `fork` failed (`EAGAIN`: process limit; `ENOMEM`).
    Fork(io::Error),
    /// The report area (one shared page) could not be mapped.
    ReportArea(ShmError),
    /// `pidfd_open` failed for the new child (which has been killed and reaped again).
    Pidfd(io::Error),
    /// Waiting for the child (`poll`/`waitpid`) failed.
    Wait(io::Error),
    /// Sending a signal failed (other than "already gone", which is not an error).
    Signal(io::Error),
    /// The child failed; from [`ExitStatus::exit_ok`].
    Failed(ExitStatus),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::NotStarted => f.write_str("process not started"),
            ProcessError::AlreadyStarted => f.write_str("cannot start a process twice"),
            ProcessError::Closed => f.write_str("process object is closed"),
            ProcessError::StillRunning => f.write_str("cannot close a process that has not been joined"),
            ProcessError::DaemonicParent => f.write_str("daemonic processes are not allowed to have children"),
            ProcessError::NameTooLong { len } => {
                write!(f, "process name is {len} bytes long; the limit is {MAX_NAME_LEN}")
            }
            ProcessError::NoProcessGroup => f.write_str("the process was not started in its own process group"),
            ProcessError::NotOurChild => f.write_str("can only wait for or signal a child of this process"),
            ProcessError::Lost => f.write_str("the child was reaped elsewhere; its exit status is lost"),
            ProcessError::Fork(e) => write!(f, "fork failed: {e}"),
            ProcessError::ReportArea(e) => write!(f, "cannot map the child's report area: {e}"),
            ProcessError::Pidfd(e) => write!(f, "pidfd_open for the new child failed: {e}"),
            ProcessError::Wait(e) => write!(f, "waiting for the child failed: {e}"),
            ProcessError::Signal(e) => write!(f, "signalling the child failed: {e}"),
            ProcessError::Failed(s) => write!(f, "child process failed: {s}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Fork(e) | ProcessError::Pidfd(e) | ProcessError::Wait(e) | ProcessError::Signal(e) => Some(e),
            ProcessError::ReportArea(e) => Some(e),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exit status
// ---------------------------------------------------------------------------------------------

/// How a child ended, and why it failed if it did.
///
/// | child did                          | `exitcode()` | `code()`  | `signal()` | `message()`                  |
/// |------------------------------------|--------------|-----------|------------|------------------------------|
/// | returned `()` / `Ok(())`           | 0            | `Some(0)` | `None`     | `None`                       |
/// | returned `n: i32`                  | `n & 0xff`   | `Some(..)`| `None`     | `None`                       |
/// | returned `Err(e)`                  | 1            | `Some(1)` | `None`     | `Some(e.to_string())`        |
/// | panicked                           | 1            | `Some(1)` | `None`     | `Some("panicked at …: msg")` |
/// | `std::process::exit(8)`            | 8            | `Some(8)` | `None`     | `None`                       |
/// | killed by signal N                 | −N           | `None`    | `Some(N)`  | `None`                       |
///
/// The message comes from the child's shared report area and is untrusted: a child killed
/// while writing it may leave a cut or garbled text (never more than about 4 KiB; longer texts
/// are cut and end with `…`).
///
/// # Examples
///
/// ```
/// use multiproc::Process;
///
/// let p = Process::new(|| -> () { panic!("boom") }); // a closure that never returns needs `-> ()`
/// p.start()?;
/// let s = p.join()?;
/// assert_eq!((s.exitcode(), s.code(), s.signal(), s.success()), (1, Some(1), None, false));
/// assert!(s.panicked() && s.message().unwrap().ends_with("boom"));
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    ended: sys::WaitStatus,
    failure: Option<(Kind, String)>,
}

impl ExitStatus {
    /// The exit code if the child exited (0–255), `None` if a signal killed it.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| 3);
    /// p.start()?;
    /// assert_eq!(p.join()?.code(), Some(3));
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn code(&self) -> Option<i32> {
        match self.ended {
            sys::WaitStatus::Exited(c) => Some(c),
            sys::WaitStatus::Signaled(_) => None,
        }
    }

    /// The signal that killed the child, if one did.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// p.kill()?;
    /// assert_eq!(p.join()?.signal(), Some(9));
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn signal(&self) -> Option<i32> {
        match self.ended {
            sys::WaitStatus::Exited(_) => None,
            sys::WaitStatus::Signaled(s) => Some(s),
        }
    }

    /// Python's `exitcode`: the exit code, or −N for signal N.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// p.terminate()?;
    /// assert_eq!(p.join()?.exitcode(), -15);
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn exitcode(&self) -> i32 {
        match self.ended {
            sys::WaitStatus::Exited(c) => c,
            sys::WaitStatus::Signaled(s) => -s,
        }
    }

    /// Whether the child exited with code 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn success(&self) -> bool {
        self.ended == sys::WaitStatus::Exited(0)
    }

    /// The child's failure text: the panic message with its location, or the `Display` of the
    /// `Err` the closure returned. `None` if it succeeded, exited through
    /// `std::process::exit`, or was killed before reporting.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| -> Result<(), std::io::Error> { Err(std::io::Error::other("no route")) });
    /// p.start()?;
    /// assert_eq!(p.join()?.message(), Some("no route"));
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.failure.as_ref().map(|(_, m)| m.as_str())
    }

    /// Whether the failure text comes from a panic (rather than a returned `Err`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| -> Result<(), String> { Err("no".into()) });
    /// p.start()?;
    /// assert!(!p.join()?.panicked());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn panicked(&self) -> bool {
        matches!(self.failure, Some((Kind::Panic, _)))
    }

    /// `Ok(())` if the child succeeded, else [`ProcessError::Failed`] with this status, so that
    /// `p.join()?.exit_ok()?` propagates a child's failure.
    ///
    /// # Errors
    /// [`ProcessError::Failed`] unless [`success`](Self::success).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| 2);
    /// p.start()?;
    /// let err = p.join()?.exit_ok().unwrap_err();
    /// assert_eq!(err.to_string(), "child process failed: exit code 2");
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn exit_ok(&self) -> Result<(), ProcessError> {
        if self.success() {
            Ok(())
        } else {
            Err(ProcessError::Failed(self.clone()))
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ended {
            sys::WaitStatus::Exited(c) => write!(f, "exit code {c}")?,
            sys::WaitStatus::Signaled(s) => match signal_name(s) {
                Some(n) => write!(f, "killed by signal {s} ({n})")?,
                None => write!(f, "killed by signal {s}")?,
            },
        }
        if let Some(m) = self.message() {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// What the closure may return
// ---------------------------------------------------------------------------------------------

/// What a [`Process`] closure may return, and how it becomes the child's exit status.
///
/// * `()` → exit code 0;
/// * `i32` → that exit code (the kernel keeps the low 8 bits, as for `exit`);
/// * `Result<T, E: Display>` → `T`'s code for `Ok(t)`; exit code 1 and `e.to_string()` as the
///   [failure message](ExitStatus::message) for `Err(e)`.
///
/// A closure that never returns (it always panics or calls `std::process::exit`) must name
/// its return type, `|| -> () { panic!("…") }`: Rust cannot infer one for it.
///
/// # Examples
///
/// ```
/// use multiproc::ChildOutcome;
///
/// assert_eq!(().into_exit(), (0, None));
/// assert_eq!(Ok::<i32, String>(4).into_exit(), (4, None));
/// assert_eq!(Err::<(), _>("bad").into_exit(), (1, Some("bad".to_string())));
/// ```
pub trait ChildOutcome {
    /// The exit code, and the failure text for the parent (`None`: nothing to report).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::ChildOutcome;
    /// assert_eq!(7.into_exit(), (7, None));
    /// ```
    fn into_exit(self) -> (i32, Option<String>);
}

impl ChildOutcome for () {
    fn into_exit(self) -> (i32, Option<String>) {
        (0, None)
    }
}

impl ChildOutcome for i32 {
    fn into_exit(self) -> (i32, Option<String>) {
        (self, None)
    }
}

impl<T: ChildOutcome, E: fmt::Display> ChildOutcome for Result<T, E> {
    fn into_exit(self) -> (i32, Option<String>) {
        match self {
            Ok(t) => t.into_exit(),
            Err(e) => (1, Some(e.to_string())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// This process's record (current_process / parent_process), locked across fork
// ---------------------------------------------------------------------------------------------

struct Me {
    /// `None` in a process this crate did not start: "MainProcess".
    name: Option<String>,
    daemon: bool,
    /// Python's `_identity`: `[]` in main, the parent's identity plus the child's number.
    identity: Vec<u32>,
    /// Children created so far (names `Process-<identity>:<n>`); reset in every child.
    counter: u32,
    /// The parent's pid and name, in a child started by this crate.
    parent: Option<(libc::pid_t, String)>,
}

static ME: Mutex<Me> = Mutex::new(Me { name: None, daemon: false, identity: Vec::new(), counter: 0, parent: None });

/// Started children not yet reaped (Python's `_children`). Locked across fork, cleared in the
/// child.
static ACTIVE: Mutex<Vec<Arc<Inner>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poison only means another thread panicked while holding it; every update below is a
    // single assignment, so the data is consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// This process, as [`current_process`] sees it.
///
/// # Examples
///
/// ```
/// let me = multiproc::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(!me.is_daemon() && me.is_alive());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentProcess {
    name: String,
    pid: u32,
    daemon: bool,
}

impl CurrentProcess {
    /// The name: `"MainProcess"`, or the name the [`Process`] was given.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::current_process().name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (`std::process::id()`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::current_process().pid(), std::process::id());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether this process is a daemonic child (then it may not start children).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!multiproc::current_process().is_daemon());
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// Always `true`: the caller is running.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::current_process().is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        true
    }
}

/// This process: its name (`"MainProcess"` unless this crate started it), pid and daemon flag.
///
/// # Examples
///
/// ```
/// use multiproc::{current_process, Process};
///
/// let p = Process::builder().name("SomeProcess").start(|| {
///     let me = current_process();
///     if me.name() == "SomeProcess" { 0 } else { 1 }
/// })?;
/// assert_eq!(p.join()?.code(), Some(0));
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
pub fn current_process() -> CurrentProcess {
    let me = lock(&ME);
    CurrentProcess {
        name: me.name.clone().unwrap_or_else(|| MAIN_NAME.to_string()),
        pid: std::process::id(),
        daemon: me.daemon,
    }
}

/// The process that started this one, in a child started by [`Process::start`]; `None` in a
/// process this crate did not start (Python: `parent_process()` is `None` in main).
///
/// Its [`is_alive`](ParentProcess::is_alive) and [`join_timeout`](ParentProcess::join_timeout)
/// observe the parent's death (through a pidfd), so a child can notice that it was orphaned.
///
/// # Examples
///
/// ```
/// use multiproc::{parent_process, Process};
///
/// assert!(parent_process().is_none());
/// let me = std::process::id();
/// let p = Process::new(move || {
///     let parent = parent_process().expect("started by Process");
///     if parent.pid() == me && parent.name() == "MainProcess" && parent.is_alive() { 0 } else { 1 }
/// });
/// p.start()?;
/// assert_eq!(p.join()?.code(), Some(0));
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
pub fn parent_process() -> Option<ParentProcess> {
    let (pid, name) = lock(&ME).parent.clone()?;
    // Open first, then check that it is still our parent: if `getppid` still names it after the
    // open, it had not exited when we opened it (reparenting happens at its exit, before its pid
    // can be reused), so the pidfd names our parent and no other process.
    let pidfd = sys::pidfd_open(pid).ok().filter(|_| sys::getppid() == pid);
    Some(ParentProcess { pid, name, pidfd })
}

/// The parent of this process, from [`parent_process`]. Holds a pidfd of the parent (or none
/// if the parent had already died when it was made).
///
/// # Examples
///
/// ```
/// let p = multiproc::Process::new(|| {
///     let parent = multiproc::parent_process().unwrap();
///     // The parent is blocked in join(): still alive; a short wait times out.
///     if parent.join_timeout(std::time::Duration::from_millis(10)).unwrap() { 1 } else { 0 }
/// });
/// p.start()?;
/// assert_eq!(p.join()?.code(), Some(0));
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
#[derive(Debug)]
pub struct ParentProcess {
    pid: libc::pid_t,
    name: String,
    pidfd: Option<OwnedFd>,
}

impl ParentProcess {
    /// The parent's pid (as it was when this process started).
    ///
    /// # Examples
    ///
    /// ```
    /// let me = std::process::id();
    /// let p = multiproc::Process::new(move || (multiproc::parent_process().unwrap().pid() != me) as i32);
    /// p.start()?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// The parent's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| (multiproc::parent_process().unwrap().name() != "MainProcess") as i32);
    /// p.start()?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| (!multiproc::parent_process().unwrap().is_alive()) as i32);
    /// p.start()?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        !matches!(self.wait_until(Some(Deadline::now())), Ok(true))
    }

    /// Waits until the parent has ended.
    ///
    /// # Errors
    /// [`ProcessError::Wait`] if `poll` fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // In a child: exit as soon as the parent is gone.
    /// multiproc::parent_process().unwrap().join()?;
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn join(&self) -> Result<(), ProcessError> {
        self.wait_until(None).map(drop)
    }

    /// Waits up to `timeout` for the parent to end; `Ok(true)` if it has ended.
    ///
    /// # Errors
    /// [`ProcessError::Wait`] if `poll` fails.
    ///
    /// # Examples
    ///
    /// See [`ParentProcess`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ProcessError> {
        self.wait_until(Deadline::after(timeout))
    }

    /// Waits until `deadline` for the parent to end; `Ok(true)` if it has ended.
    ///
    /// # Errors
    /// [`ProcessError::Wait`] if `poll` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| {
    ///     let at = std::time::Instant::now() + std::time::Duration::from_millis(5);
    ///     multiproc::parent_process().unwrap().join_deadline(at).unwrap() as i32
    /// });
    /// p.start()?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<bool, ProcessError> {
        self.wait_until(Deadline::at(deadline))
    }

    fn wait_until(&self, deadline: Option<Deadline>) -> Result<bool, ProcessError> {
        match &self.pidfd {
            None => Ok(true), // it was gone when we looked
            Some(fd) => sys::poll_readable(fd.as_fd(), deadline).map_err(ProcessError::Wait),
        }
    }
}

/// The started children of this process that have not ended yet (Python's
/// `active_children()`). As in Python, this also **reaps** the children that have ended, so
/// that dropped, unjoined [`Process`] handles leave no zombies once this is called.
///
/// # Examples
///
/// ```
/// use multiproc::{active_children, Process};
///
/// let p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
/// assert!(active_children().is_empty());
/// p.start()?;
/// assert_eq!(active_children().iter().map(|c| c.pid()).collect::<Vec<_>>(), vec![p.pid()]);
/// p.kill()?;
/// p.join()?;
/// assert!(active_children().is_empty());
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
pub fn active_children() -> Vec<Process> {
    reap_finished();
    lock(&ACTIVE).iter().map(|inner| Process { inner: inner.clone() }).collect()
}

/// Reaps every registered child that has ended (without blocking).
fn reap_finished() {
    let list: Vec<Arc<Inner>> = lock(&ACTIVE).clone();
    for inner in list {
        let _ = Process { inner }.try_reap();
    }
}

/// The number of CPUs this process may run on (its affinity mask), at least 1. Python's
/// `cpu_count()` counts the machine's CPUs instead; this is what a pool should size itself by.
///
/// # Examples
///
/// ```
/// assert!(multiproc::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    sys::usable_cpus()
}

// ---------------------------------------------------------------------------------------------
// Process
// ---------------------------------------------------------------------------------------------

type Target = Box<dyn FnOnce() -> (i32, Option<String>) + Send + 'static>;

struct Inner {
    name: String,
    /// This child's number among its creator's children (the last part of its identity).
    number: u32,
    daemon: bool,
    group: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    target: Option<Target>,
    /// The process that called `start` (only it may wait for the child).
    creator: libc::pid_t,
    pid: Option<libc::pid_t>,
    /// Set at start; dropped by `close`. Shared so that a waiter can poll it unlocked.
    pidfd: Option<Arc<OwnedFd>>,
    /// Set at start; dropped once read (after reaping).
    report: Option<ShmRef<Report>>,
    status: Option<ExitStatus>,
    closed: bool,
}

/// A child process running a closure (Python's `multiprocessing.Process` with the fork start
/// method).
///
/// Create it with [`Process::new`] or [`Process::builder`], then [`start`](Process::start) it
/// and [`join`](Process::join) it. Handles are cheap to clone and all clones name the same
/// child ([`active_children`] returns such clones).
///
/// **Dropping** a started handle neither kills nor waits for the child: it stays in the
/// active-children registry, and the next [`start`](Process::start) or [`active_children`]
/// call reaps it once it has ended. A daemonic child is killed when this process dies.
///
/// # Examples
///
/// ```
/// use multiproc::Process;
///
/// let p = Process::new(|| println!("hello from the child"));
/// assert_eq!(p.pid(), None);
/// p.start()?;
/// assert!(p.pid().is_some());
/// assert_eq!(p.join()?.exitcode(), 0);
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
#[derive(Clone)]
pub struct Process {
    inner: Arc<Inner>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("Process")
            .field("name", &self.inner.name)
            .field("daemon", &self.inner.daemon)
            .field("pid", &st.pid)
            .field("status", &st.status)
            .field("closed", &st.closed)
            .finish()
    }
}

/// Sets a [`Process`]'s name, daemon flag and process group before it is made.
///
/// # Examples
///
/// ```
/// use multiproc::Process;
///
/// let p = Process::builder().name("w").daemon(false).process_group(true).target(|| ())?;
/// assert_eq!((p.name(), p.is_daemon()), ("w", false));
/// p.start()?;
/// p.join()?;
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    daemon: Option<bool>,
    group: bool,
}

impl Builder {
    /// The process name (default `Process-<n>`, `n` counting this process's children; in a
    /// child `Process-<parent's n>:<n>`, as in Python). At most [`MAX_NAME_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().name("SomeProcess").target(|| ())?;
    /// assert_eq!(p.name(), "SomeProcess");
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Whether the child is daemonic (default: the creator's own flag, so `false` in main).
    /// A daemonic child gets `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`; strictly, when
    /// the parent **thread** that started it ends) and may not start children.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().daemon(true).target(|| ())?;
    /// assert!(p.is_daemon());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = Some(daemon);
        self
    }

    /// Whether the child leads a new process group (default `false`), which its descendants
    /// inherit, so that [`Process::terminate_tree`]/[`Process::kill_tree`] reach them all.
    ///
    /// The group is set in both parent and child (no race with an early `kill_tree`). A child
    /// in its own group no longer gets the terminal's Ctrl-C (SIGINT goes to the foreground
    /// group only): make it a daemon if it must not outlive you.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().process_group(true).start(|| std::thread::sleep(std::time::Duration::from_secs(60)))?;
    /// p.kill_tree()?;
    /// assert_eq!(p.join()?.exitcode(), -9);
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn process_group(mut self, own_group: bool) -> Builder {
        self.group = own_group;
        self
    }

    /// Makes the (unstarted) process that will run `f`.
    ///
    /// # Errors
    /// [`ProcessError::NameTooLong`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().target(|| ())?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn target<F, R>(self, f: F) -> Result<Process, ProcessError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        if let Some(n) = &self.name {
            if n.len() > MAX_NAME_LEN {
                return Err(ProcessError::NameTooLong { len: n.len() });
            }
        }
        let (name, number, daemon) = {
            let mut me = lock(&ME);
            me.counter += 1;
            let name = self.name.unwrap_or_else(|| {
                let mut n = String::from("Process-");
                for id in me.identity.iter().chain(std::iter::once(&me.counter)) {
                    if n.len() > "Process-".len() {
                        n.push(':');
                    }
                    n.push_str(&id.to_string());
                }
                n
            });
            (name, me.counter, self.daemon.unwrap_or(me.daemon))
        };
        let target: Target = Box::new(move || f().into_exit());
        let state = State { target: Some(target), ..State::default() };
        Ok(Process { inner: Arc::new(Inner { name, number, daemon, group: self.group, state: Mutex::new(state) }) })
    }

    /// [`target`](Self::target) then [`Process::start`].
    ///
    /// # Errors
    /// Those of both.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().start(|| ())?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn start<F, R>(self, f: F) -> Result<Process, ProcessError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        let p = self.target(f)?;
        p.start()?;
        Ok(p)
    }
}

impl Process {
    /// An unstarted process that will run `f`, with the default name and daemon flag.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// assert!(p.name().starts_with("Process-"));
    /// ```
    pub fn new<F, R>(f: F) -> Process
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        match Builder::default().target(f) {
            Ok(p) => p,
            Err(_) => unreachable!("a default builder has no name to reject"),
        }
    }

    /// A [`Builder`] for a name, the daemon flag or a process group.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().name("x").target(|| ())?;
    /// assert_eq!(p.name(), "x");
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Process::builder().name("n").target(|| ())?.name(), "n");
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the process is daemonic.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!multiproc::Process::new(|| ()).is_daemon());
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.inner.daemon
    }

    /// The child's pid once started (Python: `pid`, `None` before `start`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// assert_eq!(p.pid(), None);
    /// p.start()?;
    /// assert!(p.pid().unwrap() > 0);
    /// p.join()?;
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        lock(&self.inner.state).pid.map(|p| p as u32)
    }

    /// Forks the child, which runs the closure and exits (see the module docs for how it
    /// leaves). Returns once the child exists; the child may not have run anything yet.
    ///
    /// **Multi-threaded callers**: only async-signal-safe work is safe in the child if other
    /// threads may hold locks it needs (stdout's lock, your mutexes): see "Forking a
    /// multi-threaded parent" in the module docs.
    ///
    /// Before forking, `start` reaps registered children that have ended (as Python does).
    ///
    /// # Errors
    /// [`ProcessError::AlreadyStarted`], [`ProcessError::Closed`],
    /// [`ProcessError::DaemonicParent`] in a daemonic process, [`ProcessError::ReportArea`],
    /// [`ProcessError::Fork`], [`ProcessError::Pidfd`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// assert!(matches!(p.start(), Err(multiproc::ProcessError::AlreadyStarted)));
    /// p.join()?;
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn start(&self) -> Result<(), ProcessError> {
        reap_finished_if_any();
        let inner = &*self.inner;
        // std's stdout and stderr locks are held across the fork too (taken first, as any user
        // code that prints takes them before calling into us): a child forked while another
        // thread was printing would otherwise block forever in its exit-time flush or in its
        // first `println!`. Flushing first also keeps the child from printing the parent's
        // buffered output a second time (Python flushes before forking as well).
        let mut stdout = std::io::stdout().lock();
        let stderr = std::io::stderr().lock();
        let _ = stdout.flush();
        let mut st = lock(&inner.state);
        if st.closed {
            return Err(ProcessError::Closed);
        }
        let Some(target) = st.target.take() else { return Err(ProcessError::AlreadyStarted) };
        let parent_pid = sys::getpid();
        // The registries stay locked across the fork so that the child gets them consistent.
        let mut me = lock(&ME);
        if me.daemon {
            st.target = Some(target);
            return Err(ProcessError::DaemonicParent);
        }
        let mut active = lock(&ACTIVE);
        let mut pool = Pool::lock();
        let report = match pool.take() {
            Ok(r) => r,
            Err(e) => {
                st.target = Some(target);
                return Err(ProcessError::ReportArea(e));
            }
        };
        #[allow(unsafe_code)]
        // SAFETY: the child runs only `child_main`, which never returns (it leaves through
        // `_exit`). The locks this crate needs in the child (ME, ACTIVE, the report pool, this
        // process's state, std's stdout and stderr) are held by this thread across the fork, so
        // they are consistent there. Locks held by *other* threads of a multi-threaded caller
        // are the caller's responsibility, as documented on `start` and in the module docs.
        let forked = unsafe { sys::fork() };
        match forked {
            Err(e) => {
                pool.give_back(report);
                st.target = Some(target);
                Err(ProcessError::Fork(e))
            }
            Ok(sys::Fork::Child) => {
                if inner.daemon {
                    // Die with the parent; if it died before the prctl, leave now.
                    let _ = sys::set_parent_death_signal(libc::SIGKILL);
                    if sys::getppid() != parent_pid {
                        sys::exit_now(1);
                    }
                }
                if inner.group {
                    let _ = sys::setpgid(0, 0);
                }
                let parent_name = me.name.clone().unwrap_or_else(|| MAIN_NAME.to_string());
                let mut identity = std::mem::take(&mut me.identity);
                identity.push(inner.number);
                *me = Me {
                    name: Some(inner.name.clone()),
                    daemon: inner.daemon,
                    identity,
                    counter: 0,
                    parent: Some((parent_pid, parent_name)),
                };
                // The child has no children of its own; the parent's handles are not ours.
                std::mem::forget(std::mem::take(&mut *active));
                pool.for_child();
                drop(pool);
                drop(active);
                drop(me);
                drop(st);
                drop(stderr);
                drop(stdout);
                child_main(target, report)
            }
            Ok(sys::Fork::Parent(pid)) => {
                drop(pool);
                drop(me);
                drop(stderr);
                drop(stdout);
                if inner.group {
                    // Also here, so that a kill_tree right after start already finds the group.
                    // Errors mean the child already did it or already died: both fine.
                    let _ = sys::setpgid(pid, pid);
                }
                let pidfd = match sys::pidfd_open(pid) {
                    Ok(fd) => fd,
                    Err(e) => {
                        drop(active);
                        drop(st);
                        let _ = sys::kill(pid, libc::SIGKILL);
                        if sys::waitpid_blocking(pid).is_ok() {
                            Pool::lock().give_back(report);
                        }
                        drop(target);
                        return Err(ProcessError::Pidfd(e));
                    }
                };
                active.push(self.inner.clone());
                drop(active);
                st.creator = parent_pid;
                st.pid = Some(pid);
                st.pidfd = Some(Arc::new(pidfd));
                st.report = Some(report);
                drop(st);
                // The parent's copy of what the closure captured, dropped with no lock held (its
                // destructors may call back into this module).
                drop(target);
                Ok(())
            }
        }
    }

    /// Whether the child has been started and has not ended. Reaps it if it has ended (no
    /// blocking). `false` before `start`, after `close`, and in a process that merely inherited
    /// this handle through `fork`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// assert!(!p.is_alive());
    /// p.start()?;
    /// assert!(p.is_alive());
    /// p.kill()?;
    /// p.join()?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        matches!(self.try_reap(), Ok(None))
    }

    /// Python's `exitcode`: `None` before start and while the child runs, else its
    /// [`ExitStatus::exitcode`]. Reaps the child if it has ended (no blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| 7);
    /// assert_eq!(p.exitcode(), None);
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(7));
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.try_reap().ok().flatten().map(|s| s.exitcode())
    }

    /// Waits for the child to end and reaps it. Joining again returns the same status (as
    /// Python's `exitcode` stays set), from any clone of the handle.
    ///
    /// # Errors
    /// [`ProcessError::NotStarted`], [`ProcessError::Closed`], [`ProcessError::NotOurChild`],
    /// [`ProcessError::Lost`], [`ProcessError::Wait`]. A failed *child* is not an error here:
    /// see [`ExitStatus`] and [`ExitStatus::exit_ok`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// let s = p.join()?;
    /// assert_eq!(p.join()?, s);
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn join(&self) -> Result<ExitStatus, ProcessError> {
        match self.join_until(None)? {
            Some(s) => Ok(s),
            None => unreachable!("an untimed join only returns once the child has ended"),
        }
    }

    /// Reaps the child if it has ended; `Ok(None)` at once while it runs (Python: `join(0)`).
    ///
    /// # Errors
    /// As [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// assert_eq!(p.try_join()?, None);
    /// p.kill()?;
    /// p.join()?;
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn try_join(&self) -> Result<Option<ExitStatus>, ProcessError> {
        self.try_reap()
    }

    /// Waits up to `timeout` for the child to end; `Ok(None)` if it still runs (Python:
    /// `join(timeout)` then `exitcode is None`).
    ///
    /// # Errors
    /// As [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = multiproc::Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    /// p.start()?;
    /// assert_eq!(p.join_timeout(Duration::from_millis(10))?, None);
    /// p.terminate()?;
    /// assert_eq!(p.join_timeout(Duration::from_secs(10))?.map(|s| s.exitcode()), Some(-15));
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>, ProcessError> {
        self.join_until(Deadline::after(timeout))
    }

    /// Waits until `deadline` for the child to end; `Ok(None)` if it still runs.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// assert!(p.join_deadline(Instant::now() + Duration::from_secs(10))?.is_some());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<Option<ExitStatus>, ProcessError> {
        self.join_until(Deadline::at(deadline))
    }

    /// The one waiting implementation: poll the pidfd (unlocked), then reap under the lock.
    fn join_until(&self, deadline: Option<Deadline>) -> Result<Option<ExitStatus>, ProcessError> {
        loop {
            let fd = {
                let st = self.started()?;
                if let Some(s) = &st.status {
                    return Ok(Some(s.clone()));
                }
                match &st.pidfd {
                    Some(fd) => fd.clone(),
                    None => return Err(ProcessError::NotStarted),
                }
            };
            if !sys::poll_readable(fd.as_fd(), deadline).map_err(ProcessError::Wait)? {
                return Ok(None);
            }
            if let Some(s) = self.try_reap()? {
                return Ok(Some(s));
            }
            // Readable but not yet reapable should not happen for an exited child; loop
            // defensively, without spinning hot (the deadline still bounds it).
            if deadline.is_some_and(|d| d.has_passed()) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The state, checked: started, not closed, and ours.
    fn started(&self) -> Result<MutexGuard<'_, State>, ProcessError> {
        let st = lock(&self.inner.state);
        if st.closed {
            return Err(ProcessError::Closed);
        }
        if st.pid.is_none() {
            return Err(ProcessError::NotStarted);
        }
        if st.creator != sys::getpid() {
            return Err(ProcessError::NotOurChild);
        }
        Ok(st)
    }

    /// Reaps the child if it has ended (`waitpid(WNOHANG)` under the state lock, so exactly
    /// one caller reaps and records the status).
    fn try_reap(&self) -> Result<Option<ExitStatus>, ProcessError> {
        let status = {
            let mut st = self.started()?;
            if let Some(s) = &st.status {
                return Ok(Some(s.clone()));
            }
            let Some(pid) = st.pid else { return Err(ProcessError::NotStarted) };
            let ended = match sys::waitpid_nohang(pid) {
                Ok(None) => return Ok(None),
                Ok(Some(ended)) => ended,
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Err(ProcessError::Lost),
                Err(e) => return Err(ProcessError::Wait(e)),
            };
            let failure = st.report.take().and_then(|r| {
                let failure = r.read();
                Pool::lock().give_back(r);
                failure
            });
            let status = ExitStatus { ended, failure };
            st.status = Some(status.clone());
            status
        };
        lock(&ACTIVE).retain(|i| !Arc::ptr_eq(i, &self.inner));
        Ok(Some(status))
    }

    /// Sends SIGTERM to the child (Python's `terminate()`; its exit code becomes −15 unless it
    /// handles the signal). A child that has already ended is not an error.
    ///
    /// Only the child itself is signalled: its own children are orphaned and keep running, as
    /// in Python. Use [`terminate_tree`](Self::terminate_tree) to reach them.
    ///
    /// # Errors
    /// [`ProcessError::NotStarted`], [`ProcessError::Closed`], [`ProcessError::NotOurChild`],
    /// [`ProcessError::Signal`].
    ///
    /// # Examples
    ///
    /// See [`ExitStatus::exitcode`].
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGKILL to the child (Python's `kill()`; exit code −9). A child that has already
    /// ended is not an error.
    ///
    /// # Errors
    /// As [`terminate`](Self::terminate).
    ///
    /// # Examples
    ///
    /// See [`ExitStatus::signal`].
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.signal(libc::SIGKILL)
    }

    /// Sends SIGTERM to the child's whole process group: the child and every descendant that
    /// stayed in its group. Needs [`Builder::process_group`]`(true)`.
    ///
    /// This also works after the child was reaped, to clean up descendants that outlived it
    /// (a group exists while any member does; the kernel does not reuse its id meanwhile).
    /// A group with no members left is not an error.
    ///
    /// # Errors
    /// [`ProcessError::NoProcessGroup`] and those of [`terminate`](Self::terminate).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().process_group(true).start(|| std::thread::sleep(std::time::Duration::from_secs(60)))?;
    /// p.terminate_tree()?;
    /// assert_eq!(p.join()?.exitcode(), -15);
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn terminate_tree(&self) -> Result<(), ProcessError> {
        self.signal_tree(libc::SIGTERM)
    }

    /// Sends SIGKILL to the child's whole process group (see
    /// [`terminate_tree`](Self::terminate_tree)): no grandchild is left behind.
    ///
    /// # Errors
    /// As [`terminate_tree`](Self::terminate_tree).
    ///
    /// # Examples
    ///
    /// See [`Builder::process_group`].
    pub fn kill_tree(&self) -> Result<(), ProcessError> {
        self.signal_tree(libc::SIGKILL)
    }

    fn signal(&self, sig: i32) -> Result<(), ProcessError> {
        let st = self.started()?;
        if st.status.is_some() {
            return Ok(()); // reaped: Python ignores this too
        }
        let Some(fd) = &st.pidfd else { return Err(ProcessError::NotStarted) };
        // The pidfd names our child and no other, even if it has exited (unreaped) meanwhile.
        match sys::pidfd_send_signal(fd.as_fd(), sig) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(ProcessError::Signal(e)),
            _ => Ok(()),
        }
    }

    fn signal_tree(&self, sig: i32) -> Result<(), ProcessError> {
        if !self.inner.group {
            return Err(ProcessError::NoProcessGroup);
        }
        let pid = {
            let st = self.started()?;
            match st.pid {
                Some(p) => p,
                None => return Err(ProcessError::NotStarted),
            }
        };
        match sys::killpg(pid, sig) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => return Err(ProcessError::Signal(e)),
            _ => {}
        }
        // The child itself, in case it moved to another group.
        self.signal(sig)
    }

    /// The child's pidfd, readable (`POLLIN`) once the child has ended: wait on it with
    /// `poll`/`epoll` together with other descriptors (Python's `sentinel`). It stays valid
    /// (and readable) after the child is reaped, until [`close`](Self::close).
    ///
    /// # Errors
    /// [`ProcessError::NotStarted`], [`ProcessError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let p = multiproc::Process::new(|| ());
    /// assert!(p.sentinel().is_err());
    /// p.start()?;
    /// let s = p.sentinel()?;
    /// assert!(s.as_raw_fd() >= 0);
    /// p.join()?;
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn sentinel(&self) -> Result<Sentinel, ProcessError> {
        let st = lock(&self.inner.state);
        if st.closed {
            return Err(ProcessError::Closed);
        }
        match &st.pidfd {
            Some(fd) => Ok(Sentinel { fd: fd.clone() }),
            None => Err(ProcessError::NotStarted),
        }
    }

    /// Releases the pidfd and the report area (Python's `close()`). Allowed before `start` and
    /// after the child has been joined; a second `close` does nothing. Afterwards
    /// `join`/`terminate`/`kill`/`sentinel`/`start` fail with [`ProcessError::Closed`] and
    /// `is_alive` is `false` (Python raises there; a `bool` query stays a `bool`).
    ///
    /// # Errors
    /// [`ProcessError::StillRunning`] if the child was started and not reaped yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// p.join()?;
    /// p.close()?;
    /// p.close()?;
    /// assert!(matches!(p.join(), Err(multiproc::ProcessError::Closed)));
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn close(&self) -> Result<(), ProcessError> {
        let mut st = lock(&self.inner.state);
        if st.pid.is_some() && st.status.is_none() && !st.closed {
            return Err(ProcessError::StillRunning);
        }
        st.closed = true;
        let target = st.target.take();
        st.pidfd = None;
        st.report = None;
        drop(st);
        drop(target); // user destructors run with no lock held
        Ok(())
    }
}

/// Reaps ended children before a start, without touching the registry's lock twice when it is
/// empty (the common case in a start/join loop).
fn reap_finished_if_any() {
    if !lock(&ACTIVE).is_empty() {
        reap_finished();
    }
}

/// A child's pidfd from [`Process::sentinel`], usable with `poll`/`epoll` (readable once the
/// child has ended). Keeps the descriptor open while it lives.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// let p = multiproc::Process::new(|| ());
/// p.start()?;
/// let s = p.sentinel()?;
/// let _fd: std::os::fd::BorrowedFd<'_> = s.as_fd(); // hand it to poll/epoll
/// p.join()?;
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sentinel {
    fd: Arc<OwnedFd>,
}

impl AsFd for Sentinel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Sentinel {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

// ---------------------------------------------------------------------------------------------
// The child side
// ---------------------------------------------------------------------------------------------

/// Runs the target in the child and leaves with `_exit`; never returns.
fn child_main(target: Target, report: ShmRef<Report>) -> ! {
    // A panic in this thread writes its message and location to the report (and then prints
    // as usual). Other threads' panics are theirs to handle.
    let me = std::thread::current().id();
    let pid = sys::getpid();
    let hook_report = report.clone();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        // Not in a grandchild forked from this thread: it has its own report, or none.
        if std::thread::current().id() == me && sys::getpid() == pid {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            let text = match info.location() {
                Some(l) => format!("panicked at {l}: {msg}"),
                None => format!("panicked: {msg}"),
            };
            hook_report.write(Kind::Panic, &text);
        }
        previous(info);
    }));
    let code = match panic::catch_unwind(AssertUnwindSafe(target)) {
        Ok((code, failure)) => {
            match failure {
                Some(text) => report.write(Kind::Error, &text),
                None => report.clear(), // e.g. a panic the target caught itself
            }
            code
        }
        Err(payload) => {
            if report.is_empty() {
                report.write(Kind::Panic, "panicked");
            }
            // Dropping a panic payload can panic again; we are leaving anyway.
            std::mem::forget(payload);
            1
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    sys::exit_now(code)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn outcome_mapping() {
        assert_eq!(().into_exit(), (0, None));
        assert_eq!(5.into_exit(), (5, None));
        assert_eq!(Err::<i32, _>("x").into_exit(), (1, Some("x".into())));
        assert_eq!(Ok::<_, String>(Ok::<(), String>(())).into_exit(), (0, None));
    }

    #[test]
    fn status_display() {
        let s = ExitStatus { ended: sys::WaitStatus::Signaled(9), failure: None };
        assert_eq!(s.to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(s.exitcode(), -9);
        let s = ExitStatus { ended: sys::WaitStatus::Exited(1), failure: Some((Kind::Error, "e".into())) };
        assert_eq!(s.to_string(), "exit code 1: e");
    }

    #[test]
    fn name_limit() {
        assert!(matches!(
            Process::builder().name("x".repeat(MAX_NAME_LEN + 1)).target(|| ()),
            Err(ProcessError::NameTooLong { len }) if len == MAX_NAME_LEN + 1
        ));
        assert!(Process::builder().name("x".repeat(MAX_NAME_LEN)).target(|| ()).is_ok());
    }
}
