//! The [`Process`] handle: identity, waiting and reaping, signals, the sentinel, `close`.

use super::lock::lock;
use super::origin::Origin;
#[cfg(feature = "serde")]
use super::record::Running;
use super::record::{Exited, Life, Record};
use super::registry;
use super::report::ReportAreas;
use super::{ExitStatus, JoinError, JoinTimeoutError, ProcFail, ProcessError, TryJoinError};
use crate::sys::clock::Deadline;
use crate::sys::process as sys;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

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
    pub(super) inner: Arc<Record>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let life = lock(&self.inner.life);
        let status = match &*life {
            Life::Exited(e) => Some(&e.status),
            _ => None,
        };
        f.debug_struct("Process")
            .field("name", &self.inner.spec.name)
            .field("daemon", &self.inner.spec.daemon)
            .field("pid", &life.pid())
            .field("status", &status)
            .field("closed", &matches!(*life, Life::Closed))
            .finish()
    }
}

impl Process {
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

    /// The name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Process::builder().name("n").target(|| ())?.name(), "n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }

    /// Whether the process is daemonic.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!multiproc::Process::new(|| ()).is_daemon());
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.inner.spec.daemon
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
        lock(&self.inner.life).pid().map(|p| p as u32)
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
                let life = self.started()?;
                match &*life {
                    Life::Exited(e) => return Ok(Some(e.status.clone())),
                    // A fork server's child: its status arrives on this socket after the
                    // server reaped it (one wake-up instead of two).
                    #[cfg(feature = "serde")]
                    Life::Running(Running { origin: Origin::Server(c), .. }) => c.wait_fd(),
                    Life::Running(r) => r.pidfd.clone(),
                    _ => return Err(ProcFail::NotStarted),
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

    /// The life, checked: started, not closed, and ours.
    fn started(&self) -> Result<MutexGuard<'_, Life>, ProcFail> {
        let life = lock(&self.inner.life);
        let creator = match &*life {
            Life::Closed => return Err(ProcFail::Closed),
            Life::Ready(_) | Life::Starting | Life::Failed => return Err(ProcFail::NotStarted),
            Life::Running(r) => r.creator,
            Life::Exited(e) => e.creator,
        };
        if creator != sys::getpid() {
            return Err(ProcFail::NotOurChild);
        }
        Ok(life)
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
            let mut life = self.started()?;
            let running = match &mut *life {
                Life::Exited(e) => return Ok(Some(e.status.clone())),
                Life::Running(r) => r,
                _ => return Err(ProcFail::NotStarted),
            };
            let ended = match &mut running.origin {
                Origin::Own => match sys::waitpid_nohang(running.pid) {
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
            let Life::Running(r) = std::mem::replace(&mut *life, Life::Failed) else {
                unreachable!("matched as running above, under the same lock")
            };
            let failure = r.report.read();
            ReportAreas::lock().give_back(r.report);
            let status = ExitStatus { ended, failure };
            *life = Life::Exited(Exited { creator: r.creator, pid: r.pid, pidfd: r.pidfd, status: status.clone() });
            status
        };
        registry::unregister(&self.inner);
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
    /// stayed in its group. Needs [`ProcessBuilder::process_group`](crate::ProcessBuilder::process_group)`(true)`.
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
    /// See [`ProcessBuilder::process_group`](crate::ProcessBuilder::process_group).
    pub fn kill_tree(&self) -> Result<(), ProcessError> {
        self.kill_tree_inner().map_err(ProcFail::process)
    }

    fn kill_tree_inner(&self) -> Result<(), ProcFail> {
        self.signal_tree(libc::SIGKILL)
    }

    fn signal(&self, sig: i32) -> Result<(), ProcFail> {
        let life = self.started()?;
        let Life::Running(r) = &*life else {
            return Ok(()); // reaped: Python ignores this too
        };
        // The pidfd names our child and no other, even if it has exited (unreaped) meanwhile.
        match sys::pidfd_send_signal(r.pidfd.as_fd(), sig) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(ProcFail::Os(e)),
            _ => Ok(()),
        }
    }

    fn signal_tree(&self, sig: i32) -> Result<(), ProcFail> {
        if !self.inner.spec.group {
            return Err(ProcFail::NoProcessGroup);
        }
        let pid = self.started()?.pid().ok_or(ProcFail::NotStarted)?;
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

    /// What to poll to learn that [`try_join`](Self::try_join) will have the status: the
    /// pidfd of our own child, and for a fork server's child the socket its status comes on
    /// (its pidfd turns readable first, while the server may not have reaped it yet: a watcher
    /// that polled the pidfd would find no status, and nothing would wake it again).
    #[cfg(feature = "serde")]
    pub(crate) fn exit_watch(&self) -> Result<Sentinel, ProcFail> {
        {
            if let Life::Running(Running { origin: Origin::Server(c), .. }) = &*lock(&self.inner.life) {
                return Ok(Sentinel { fd: c.wait_fd() });
            }
        } // the lock is released here: `sentinel_inner` takes it again
        self.sentinel_inner()
    }

    fn sentinel_inner(&self) -> Result<Sentinel, ProcFail> {
        match &*lock(&self.inner.life) {
            Life::Closed => Err(ProcFail::Closed),
            Life::Running(r) => Ok(Sentinel { fd: r.pidfd.clone() }),
            Life::Exited(e) => Ok(Sentinel { fd: e.pidfd.clone() }),
            Life::Ready(_) | Life::Starting | Life::Failed => Err(ProcFail::NotStarted),
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
        let mut life = lock(&self.inner.life);
        if matches!(*life, Life::Running(_) | Life::Starting) {
            return Err(ProcFail::StillRunning);
        }
        let old = std::mem::replace(&mut *life, Life::Closed);
        drop(life);
        drop(old); // an unstarted closure's destructors run with no lock held
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

/// Reaps every registered child that has ended (without blocking).
pub(super) fn reap_finished() {
    for inner in registry::active() {
        let _ = Process { inner }.try_reap();
    }
}

/// Reaps ended children before a start, without touching the registry's lock twice when it is
/// empty (the common case in a start/join loop).
pub(super) fn reap_finished_if_any() {
    if !lock(&registry::ACTIVE).is_empty() {
        reap_finished();
    }
}
