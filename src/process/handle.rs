//! The [`Process`] handle: identity, waiting and reaping, signals, the sentinel, `close`.

use super::current::{lock, ACTIVE};
use super::report::{Report, ReportAreas};
use super::{
    ChildOutcome, ExitStatus, JoinError, JoinTimeoutError, ProcFail, ProcessBuilder, ProcessError, TryJoinError,
};
use crate::shm::ShmRef;
use crate::sys::clock::Deadline;
use crate::sys::process as sys;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(super) type Target = Box<dyn FnOnce() -> (i32, Option<String>) + Send + 'static>;

/// What the child runs.
pub(super) enum Entry {
    /// A closure (fork only).
    Closure(Target),
    /// A `fn` item with encoded arguments (every start method).
    #[cfg(feature = "serde")]
    Fn(super::spawn::FnEntry),
}

/// Who can tell the child's exit status.
#[derive(Default)]
pub(super) enum Origin {
    /// Our own child: `waitpid`.
    #[default]
    Own,
    /// A fork server's child: the server reports its status.
    #[cfg(feature = "serde")]
    Server(super::spawn::ServerChild),
}

pub(super) struct Inner {
    pub(super) name: String,
    /// This child's number among its creator's children (the last part of its identity).
    pub(super) number: u32,
    pub(super) daemon: bool,
    pub(super) group: bool,
    pub(super) method: super::StartMethod,
    /// The program a `Spawn` child runs (default: this one).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // spawning needs serde arguments
    pub(super) executable: Option<std::path::PathBuf>,
    /// The fork server of a `ForkServer` child (default: the global one).
    #[cfg(feature = "serde")]
    pub(super) server: Option<super::ForkServer>,
    pub(super) state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) target: Option<Entry>,
    pub(super) origin: Origin,
    /// The process that called `start` (only it may wait for the child).
    pub(super) creator: libc::pid_t,
    pub(super) pid: Option<libc::pid_t>,
    /// Set at start; dropped by `close`. Shared so that a waiter can poll it unlocked.
    pub(super) pidfd: Option<Arc<OwnedFd>>,
    /// Set at start; dropped once read (after reaping).
    pub(super) report: Option<ShmRef<Report>>,
    pub(super) status: Option<ExitStatus>,
    pub(super) closed: bool,
}

/// A child process running a closure (Python's `multiprocessing.Process` with the fork start
/// method).
///
/// Create it with [`Process::new`] or [`Process::builder`], then [`start`](Process::start) it
/// and [`join`](Process::join) it. Handles are cheap to clone and all clones name the same
/// child ([`active_children`](crate::active_children) returns such clones).
///
/// **Dropping** a started handle neither kills nor waits for the child: it stays in the
/// active-children registry, and the next [`start`](Process::start) or [`active_children`](crate::active_children)
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Process {
    pub(super) inner: Arc<Inner>,
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
        match ProcessBuilder::default().target(f) {
            Ok(p) => p,
            Err(_) => unreachable!("a default builder has no name to reject"),
        }
    }

    /// Starts `f(args)` in a child with the default start method ([`get_start_method`](crate::get_start_method)):
    /// `ProcessBuilder::default().spawn(f, args)`. The arguments are any serde values, shared objects
    /// (`Queue`, `Lock`, …) included.
    ///
    /// # Errors
    /// As [`ProcessBuilder::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn child(message: String) -> Result<(), String> {
    ///     Err(message)
    /// }
    /// let p = multiproc::Process::spawn(child, "no".to_string())?;
    /// assert_eq!(p.join()?.message(), Some("no"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn spawn<A, R>(f: fn(A) -> R, args: A) -> Result<Process, crate::StartError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        ProcessBuilder::default().spawn(f, args)
    }

    /// The start method this process uses.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Process::new(|| ()).start_method(), multiproc::StartMethod::Fork);
    /// ```
    pub fn start_method(&self) -> super::StartMethod {
        self.inner.method
    }

    /// A [`ProcessBuilder`] for a name, the daemon flag or a process group.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().name("x").target(|| ())?;
    /// assert_eq!(p.name(), "x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::default()
    }

    /// The name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Process::builder().name("n").target(|| ())?.name(), "n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        lock(&self.inner.state).pid.map(|p| p as u32)
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.try_reap().ok().flatten().map(|s| s.exitcode())
    }

    /// Waits for the child to end and reaps it. Joining again returns the same status (as
    /// Python's `exitcode` stays set), from any clone of the handle.
    ///
    /// # Errors
    /// [`JoinError::NotStarted`], [`JoinError::Closed`], [`JoinError::NotOurChild`],
    /// [`JoinError::Lost`], [`JoinError::ForkServer`], [`JoinError::Os`]. A failed *child* is
    /// not an error here: see [`ExitStatus`] and [`ExitStatus::exit_ok`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// let s = p.join()?;
    /// assert_eq!(p.join()?, s);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<ExitStatus, JoinError> {
        self.join_until(None).map_err(ProcFail::join)
    }

    /// Reaps the child if it has ended (Python: `join(0)`).
    ///
    /// # Errors
    /// [`TryJoinError::WouldBlock`] while it runs, or as [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// assert!(p.try_join().unwrap_err().is_would_block());
    /// p.kill()?;
    /// p.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_join(&self) -> Result<ExitStatus, TryJoinError> {
        self.try_reap().and_then(|s| s.ok_or(ProcFail::NotYet)).map_err(ProcFail::try_join)
    }

    /// Waits up to `timeout` for the child to end (Python: `join(timeout)`, then `exitcode is
    /// None` when it still runs; `Duration::MAX` waits forever).
    ///
    /// # Errors
    /// [`JoinTimeoutError::Timeout`] if it still runs, or as [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = multiproc::Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    /// p.start()?;
    /// assert!(p.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// p.terminate()?;
    /// assert_eq!(p.join_timeout(Duration::from_secs(10))?.exitcode(), -15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<ExitStatus, JoinTimeoutError> {
        self.join_until(Deadline::after(timeout)).map_err(ProcFail::join_timeout)
    }

    /// Waits until `deadline` for the child to end.
    ///
    /// # Errors
    /// As [`join_timeout`](Self::join_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// assert!(p.join_deadline(Instant::now() + Duration::from_secs(10))?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<ExitStatus, JoinTimeoutError> {
        self.join_until(Deadline::at(deadline)).map_err(ProcFail::join_timeout)
    }

    /// The one waiting implementation: poll the pidfd (unlocked), then reap under the lock.
    fn join_until(&self, deadline: Option<Deadline>) -> Result<ExitStatus, ProcFail> {
        self.join_until_opt(deadline)?.ok_or(ProcFail::NotYet)
    }

    fn join_until_opt(&self, deadline: Option<Deadline>) -> Result<Option<ExitStatus>, ProcFail> {
        loop {
            let fd = {
                let st = self.started()?;
                if let Some(s) = &st.status {
                    return Ok(Some(s.clone()));
                }
                match (&st.origin, &st.pidfd) {
                    // A fork server's child: its status arrives on this socket after the
                    // server reaped it (one wake-up instead of two).
                    #[cfg(feature = "serde")]
                    (Origin::Server(c), _) => c.wait_fd(),
                    (_, Some(fd)) => fd.clone(),
                    (_, None) => return Err(ProcFail::NotStarted),
                }
            };
            if !sys::poll_readable(fd.as_fd(), deadline).map_err(ProcFail::Os)? {
                return Ok(None);
            }
            if let Some(s) = self.reap(true)? {
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
    fn started(&self) -> Result<MutexGuard<'_, State>, ProcFail> {
        let st = lock(&self.inner.state);
        if st.closed {
            return Err(ProcFail::Closed);
        }
        if st.pid.is_none() {
            return Err(ProcFail::NotStarted);
        }
        if st.creator != sys::getpid() {
            return Err(ProcFail::NotOurChild);
        }
        Ok(st)
    }

    /// Reaps the child if it has ended (`waitpid(WNOHANG)` under the state lock, so exactly
    /// one caller reaps and records the status).
    pub(super) fn try_reap(&self) -> Result<Option<ExitStatus>, ProcFail> {
        self.reap(false)
    }

    /// [`try_reap`](Self::try_reap); `ended_hint`: the pidfd said the child ended.
    fn reap(&self, ended_hint: bool) -> Result<Option<ExitStatus>, ProcFail> {
        #[cfg(not(feature = "serde"))]
        let _ = ended_hint; // only fork-server children (serde) use it
        let status = {
            let mut st = self.started()?;
            if let Some(s) = &st.status {
                return Ok(Some(s.clone()));
            }
            let Some(pid) = st.pid else { return Err(ProcFail::NotStarted) };
            let ended = match &mut st.origin {
                Origin::Own => match sys::waitpid_nohang(pid) {
                    Ok(None) => return Ok(None),
                    Ok(Some(ended)) => ended,
                    Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Err(ProcFail::Lost),
                    Err(e) => return Err(ProcFail::Os(e)),
                },
                #[cfg(feature = "serde")]
                // The pidfd may already say it ended: then the server's report is a moment away.
                Origin::Server(c) => {
                    match c.try_status(if ended_hint { Duration::from_millis(50) } else { Duration::ZERO })? {
                        None => return Ok(None),
                        Some(ended) => ended,
                    }
                }
            };
            let failure = st.report.take().and_then(|r| {
                let failure = r.read();
                ReportAreas::lock().give_back(r);
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
    /// SIGTERM's default action ends the child on the spot: no destructor, no `Drop` of a
    /// shared object, no flush. A child that must clean up first installs a handler that sets a
    /// flag its work loop checks, as Python programs do with `signal.signal(SIGTERM, …)`; the
    /// crate installs none. A forked child inherits the handlers installed before the fork
    /// (pool workers under `Fork` included); a spawned or fork-server child starts with the
    /// default action and installs its own in its entry (or a pool's `initializer_fn`). The
    /// repository's `docs/GUIDE.md` ("Cleaning up on `terminate()`") shows it with the
    /// `signal-hook` crate.
    ///
    /// # Errors
    /// [`ProcessError::NotStarted`], [`ProcessError::Closed`], [`ProcessError::NotOurChild`],
    /// [`ProcessError::Os`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Process;
    ///
    /// let p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// p.terminate()?;
    /// let status = p.join()?;
    /// assert_eq!((status.exitcode(), status.signal()), (-15, Some(15))); // SIGTERM
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.terminate_inner().map_err(ProcFail::process)
    }

    fn terminate_inner(&self) -> Result<(), ProcFail> {
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
        self.kill_inner().map_err(ProcFail::process)
    }

    fn kill_inner(&self) -> Result<(), ProcFail> {
        self.signal(libc::SIGKILL)
    }

    /// Sends SIGTERM to the child's whole process group: the child and every descendant that
    /// stayed in its group. Needs [`ProcessBuilder::process_group`]`(true)`.
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate_tree(&self) -> Result<(), ProcessError> {
        self.terminate_tree_inner().map_err(ProcFail::process)
    }

    fn terminate_tree_inner(&self) -> Result<(), ProcFail> {
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
    /// See [`ProcessBuilder::process_group`].
    pub fn kill_tree(&self) -> Result<(), ProcessError> {
        self.kill_tree_inner().map_err(ProcFail::process)
    }

    fn kill_tree_inner(&self) -> Result<(), ProcFail> {
        self.signal_tree(libc::SIGKILL)
    }

    fn signal(&self, sig: i32) -> Result<(), ProcFail> {
        let st = self.started()?;
        if st.status.is_some() {
            return Ok(()); // reaped: Python ignores this too
        }
        let Some(fd) = &st.pidfd else { return Err(ProcFail::NotStarted) };
        // The pidfd names our child and no other, even if it has exited (unreaped) meanwhile.
        match sys::pidfd_send_signal(fd.as_fd(), sig) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(ProcFail::Os(e)),
            _ => Ok(()),
        }
    }

    fn signal_tree(&self, sig: i32) -> Result<(), ProcFail> {
        if !self.inner.group {
            return Err(ProcFail::NoProcessGroup);
        }
        let pid = {
            let st = self.started()?;
            match st.pid {
                Some(p) => p,
                None => return Err(ProcFail::NotStarted),
            }
        };
        match sys::killpg(pid, sig) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => return Err(ProcFail::Os(e)),
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sentinel(&self) -> Result<Sentinel, ProcessError> {
        self.sentinel_inner().map_err(ProcFail::process)
    }

    fn sentinel_inner(&self) -> Result<Sentinel, ProcFail> {
        let st = lock(&self.inner.state);
        if st.closed {
            return Err(ProcFail::Closed);
        }
        match &st.pidfd {
            Some(fd) => Ok(Sentinel { fd: fd.clone() }),
            None => Err(ProcFail::NotStarted),
        }
    }

    /// Releases the pidfd and the report area (Python's `close()`). Allowed before `start` and
    /// after the child has been joined; a second `close` does nothing. Afterwards
    /// `join`/`terminate`/`kill`/`sentinel`/`start` fail with a `Closed` error and
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
    /// assert!(matches!(p.join(), Err(multiproc::JoinError::Closed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) -> Result<(), ProcessError> {
        self.close_inner().map_err(ProcFail::process)
    }

    fn close_inner(&self) -> Result<(), ProcFail> {
        let mut st = lock(&self.inner.state);
        if st.pid.is_some() && st.status.is_none() && !st.closed {
            return Err(ProcFail::StillRunning);
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
