//! What a process can ask about itself: [`current_process`], [`parent_process`],
//! [`active_children`] (from the registry, `registry.rs`) and [`cpu_count`].

use super::handle::{reap_finished, Process};
use super::lock::lock;
use super::registry::{self, ME};
use super::{JoinError, JoinTimeoutError, ProcFail, TryJoinError, MAIN_NAME};
use crate::sys::clock::Deadline;
use crate::sys::process as sys;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

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
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
///     match parent.join_timeout(std::time::Duration::from_millis(10)) {
///         Err(e) if e.is_timeout() => 0,
///         _ => 1,
///     }
/// });
/// p.start()?;
/// assert_eq!(p.join()?.code(), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        !matches!(self.wait_until(Some(Deadline::now())), Ok(true))
    }

    /// Waits until the parent has ended.
    ///
    /// # Errors
    /// [`JoinError::Os`] if `poll` fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // In a child: exit as soon as the parent is gone.
    /// multiproc::parent_process().unwrap().join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        self.ended(None).map_err(ProcFail::join)
    }

    /// Returns at once: `Ok` if the parent has ended.
    ///
    /// # Errors
    /// [`TryJoinError::WouldBlock`] while it runs, [`TryJoinError::Os`] if `poll` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| multiproc::parent_process().unwrap().try_join().is_err() as i32);
    /// p.start()?;
    /// assert_eq!(p.join()?.exitcode(), 1); // the parent was running
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_join(&self) -> Result<(), TryJoinError> {
        self.ended(Some(Deadline::now())).map_err(ProcFail::try_join)
    }

    /// Waits up to `timeout` for the parent to end.
    ///
    /// # Errors
    /// [`JoinTimeoutError::Timeout`] if it still runs, [`JoinTimeoutError::Os`] if `poll`
    /// fails.
    ///
    /// # Examples
    ///
    /// See [`ParentProcess`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.ended(Deadline::after(timeout)).map_err(ProcFail::join_timeout)
    }

    /// Waits until `deadline` for the parent to end.
    ///
    /// # Errors
    /// As [`join_timeout`](Self::join_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| {
    ///     let at = std::time::Instant::now() + std::time::Duration::from_millis(5);
    ///     multiproc::parent_process().unwrap().join_deadline(at).is_err() as i32
    /// });
    /// p.start()?;
    /// assert_eq!(p.join()?.exitcode(), 1); // timed out: the parent was still there
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        self.ended(Deadline::at(deadline)).map_err(ProcFail::join_timeout)
    }

    /// `Ok` once the parent ended (`NotYet` when the deadline passed first).
    fn ended(&self, deadline: Option<Deadline>) -> Result<(), ProcFail> {
        if self.wait_until(deadline)? {
            Ok(())
        } else {
            Err(ProcFail::NotYet)
        }
    }

    fn wait_until(&self, deadline: Option<Deadline>) -> Result<bool, ProcFail> {
        match &self.pidfd {
            None => Ok(true), // it was gone when we looked
            Some(fd) => sys::poll_readable(fd.as_fd(), deadline).map_err(ProcFail::Os),
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn active_children() -> Vec<Process> {
    reap_finished();
    registry::active().into_iter().map(|inner| Process { inner }).collect()
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
