//! The errors of processes: one enum per operation (and form, for `join`): `docs/API.md` §4.
//!
//! Inside the module every step returns `ProcFail`, which knows every outcome; the public
//! methods turn it into [`StartError`], the `join` family, or [`ProcessError`].

use super::{StartMethod, MAX_NAME_LEN};
use crate::forms::error_forms;
use crate::shm::ShmError;
use std::fmt;
use std::io;

/// Every outcome of a process step, before the public method picks its error.
#[derive(Debug)]
pub(crate) enum ProcFail {
    NotStarted,
    AlreadyStarted,
    Closed,
    StillRunning,
    DaemonicParent,
    NameTooLong {
        len: usize,
    },
    NoProcessGroup,
    NotOurChild,
    Lost,
    /// The limit of a timed or try `join` passed.
    NotYet,
    ReportArea(ShmError),
    NotSpawnable(StartMethod),
    #[cfg(feature = "serde")]
    Encode(crate::CodecError),
    Boot(BootError),
    ForkServer(ForkServerError),
    Os(io::Error),
}

/// Why a spawned program (or a fork server) did not take its entry: the start failed, and the
/// program was killed and reaped.
///
/// # Examples
///
/// ```
/// use multiproc::{BootError, Process, StartError, StartMethod};
///
/// fn entry(_: ()) {}
/// let p = Process::builder().start_method(StartMethod::Spawn).executable("/bin/true").spawn(entry, ());
/// assert!(matches!(p, Err(StartError::Boot(BootError::Exited { code: Some(0), .. }))));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BootError {
    /// The program ended without taking its entry: a program that does not link this crate,
    /// or whose start-up skipped it (call [`init`](crate::init) first in `main`).
    Exited {
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that ended it, if one did.
        signal: Option<i32>,
    },
    /// It did not answer within [`BOOT_TIMEOUT`](crate::BOOT_TIMEOUT) (it was killed).
    Timeout,
    /// It refused the entry, in its own words (for example: the panic of a fork server's
    /// `init`, or an entry that another build of the program does not have).
    Refused(String),
    /// It answered with bytes that are not the boot protocol.
    Garbage,
    /// An OS call on the way failed (`posix_spawn`, `pidfd_open`, the boot socket).
    Os(io::Error),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Exited { code: Some(c), .. } => {
                write!(f, "it exited with code {c} without taking its entry (call multiproc::init() first in main)")
            }
            BootError::Exited { signal: Some(s), .. } => {
                write!(f, "it was killed by signal {s} before taking its entry")
            }
            BootError::Exited { .. } => f.write_str("it ended without taking its entry"),
            BootError::Timeout => f.write_str("it did not answer in time"),
            BootError::Refused(why) => write!(f, "it refused: {why}"),
            BootError::Garbage => f.write_str("it answered with garbage"),
            BootError::Os(e) => write!(f, "starting it failed: {e}"),
        }
    }
}

impl std::error::Error for BootError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BootError::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// Why the fork server could not start a child or report its exit.
///
/// # Examples
///
/// ```
/// use multiproc::{ForkServerError, StartError};
/// let e = StartError::ForkServer(ForkServerError::Gone);
/// assert_eq!(e.to_string(), "fork server: the fork server is gone");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ForkServerError {
    /// The server is gone (it died, or its socket closed) before it answered or reported.
    Gone,
    /// It did not answer within [`BOOT_TIMEOUT`](crate::BOOT_TIMEOUT).
    Timeout,
    /// It answered with bytes that are not its protocol.
    Garbage,
    /// An OS call on its socket failed.
    Os(io::Error),
}

impl fmt::Display for ForkServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForkServerError::Gone => f.write_str("the fork server is gone"),
            ForkServerError::Timeout => f.write_str("the fork server did not answer in time"),
            ForkServerError::Garbage => f.write_str("the fork server answered with garbage"),
            ForkServerError::Os(e) => write!(f, "the fork server's socket failed: {e}"),
        }
    }
}

impl ForkServerError {
    /// What a failed read or write on a socket to the server means: a timed-out read is
    /// `Timeout`, end of file or a broken connection `Gone`, anything else `Os`.
    #[cfg(feature = "serde")]
    pub(crate) fn from_io(e: io::Error) -> ForkServerError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ForkServerError::Timeout,
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                ForkServerError::Gone
            }
            _ => ForkServerError::Os(e),
        }
    }
}

impl std::error::Error for ForkServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ForkServerError::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a process could not be started ([`Process::start`](crate::Process::start), the
/// [`ProcessBuilder`](crate::ProcessBuilder)'s `start`/`spawn`/`target`/`entry`,
/// [`Process::spawn`](crate::Process::spawn), and the [`ForkServer`](crate::ForkServer)'s
/// starts).
///
/// # Examples
///
/// ```
/// use multiproc::{Process, StartError};
///
/// let p = Process::new(|| ());
/// p.start()?;
/// assert!(matches!(p.start(), Err(StartError::AlreadyStarted)));
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// `start` was called a second time (Python: "cannot start a process twice").
    AlreadyStarted,
    /// The process was [closed](crate::Process::close).
    Closed,
    /// A daemonic process tried to start a child (Python: "daemonic processes are not allowed
    /// to have children").
    DaemonicParent,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// A closure target with the `Spawn` or `ForkServer` start method: a fresh image cannot
    /// receive a closure. Use a `fn` item with
    /// [`ProcessBuilder::spawn`](crate::ProcessBuilder::spawn).
    NotSpawnable(StartMethod),
    /// The entry's arguments could not be encoded (or hold a handle that cannot travel).
    #[cfg(feature = "serde")]
    Encode(crate::CodecError),
    /// The report area (one shared page) could not be mapped.
    ReportArea(ShmError),
    /// The spawned program (or the fork server) did not take its entry.
    Boot(BootError),
    /// The fork server could not start the child.
    ForkServer(ForkServerError),
    /// `fork`, `pidfd_open` or another OS call failed (`EAGAIN`: the process limit).
    Os(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::AlreadyStarted => f.write_str("cannot start a process twice"),
            StartError::Closed => f.write_str("process object is closed"),
            StartError::DaemonicParent => f.write_str("daemonic processes are not allowed to have children"),
            StartError::NameTooLong { len } => {
                write!(f, "process name is {len} bytes long; the limit is {MAX_NAME_LEN}")
            }
            StartError::NotSpawnable(m) => {
                write!(f, "the {} start method cannot run a closure: give a fn item to ProcessBuilder::spawn", m.name())
            }
            #[cfg(feature = "serde")]
            StartError::Encode(e) => write!(f, "cannot encode the entry's arguments: {e}"),
            StartError::ReportArea(e) => write!(f, "cannot map the child's report area: {e}"),
            StartError::Boot(e) => write!(f, "the spawned program did not start its entry: {e}"),
            StartError::ForkServer(e) => write!(f, "fork server: {e}"),
            StartError::Os(e) => write!(f, "starting the process failed: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "serde")]
            StartError::Encode(e) => Some(e),
            StartError::ReportArea(e) => Some(e),
            StartError::Boot(e) => Some(e),
            StartError::ForkServer(e) => Some(e),
            StartError::Os(e) => Some(e),
            _ => None,
        }
    }
}

error_forms! {
    /// Why a blocking `join` failed. The child's own failure (a panic, an `Err`, a signal) is
    /// **not** an error of `join`: it is in the [`ExitStatus`](crate::ExitStatus) that `join` returns
    /// ([`ExitStatus::exit_ok`](crate::ExitStatus::exit_ok) turns it into an error when you want `?` to propagate it).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{JoinError, Process};
    ///
    /// let p = Process::new(|| ());
    /// assert!(matches!(p.join(), Err(JoinError::NotStarted)));
    /// ```
    #[derive(Debug)]
    pub enum JoinError;
    /// Why `try_join` returned no status: the process is still running, or one of
    /// [`JoinError`]'s reasons.
    #[derive(Debug)]
    pub enum TryJoinError {
        /// The process is still running.
        WouldBlock => "the process is still running", is_would_block
    }
    /// Why `join_timeout`/`join_deadline` returned no status: it was still running when the
    /// time ran out (Python's `join(timeout)` then `exitcode is None`), or one of
    /// [`JoinError`]'s reasons.
    #[derive(Debug)]
    pub enum JoinTimeoutError {
        /// The process was still running when the time ran out.
        Timeout => "timed out waiting for the process to end", is_timeout
    }
    {
        /// The process was never started (Python: "can only join a started process").
        NotStarted => ("process not started");
        /// The process was [closed](crate::Process::close).
        Closed => ("process object is closed");
        /// This handle was inherited through `fork` by another process: only the process that
        /// started the child may wait for it (Python: "can only join a child process").
        NotOurChild => ("can only wait for a child of this process");
        /// The child was reaped behind this crate's back (a `waitpid(-1)` elsewhere, or
        /// `SIGCHLD` set to `SIG_IGN`), so its exit status is lost.
        Lost => ("the child was reaped elsewhere; its exit status is lost");
        /// The fork server that started the child could not report its exit.
        ForkServer(ForkServerError) [(e)] => ("fork server: {e}"), source e;
        /// Waiting for the child (`poll`/`waitpid`) failed.
        Os(io::Error) [(e)] => ("waiting for the child failed: {e}"), source e;
    }
}

/// Why an operation on a started [`Process`](crate::Process) (a signal, `sentinel`, `close`)
/// failed.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, ProcessError};
///
/// let p = Process::new(|| ());
/// assert!(matches!(p.kill(), Err(ProcessError::NotStarted)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError {
    /// The operation needs a started process (Python: "process not started" / `pid is None`).
    NotStarted,
    /// The process was [closed](crate::Process::close).
    Closed,
    /// [`Process::close`](crate::Process::close) on a child that has not been joined yet.
    StillRunning,
    /// [`Process::terminate_tree`](crate::Process::terminate_tree)/[`Process::kill_tree`](crate::Process::kill_tree)
    /// on a child that was not started with
    /// [`ProcessBuilder::process_group`](crate::ProcessBuilder::process_group)`(true)`.
    NoProcessGroup,
    /// This handle was inherited through `fork` by another process: only the process that
    /// started the child may signal it.
    NotOurChild,
    /// Sending a signal (other than to a child already gone, which is not an error) or
    /// making the sentinel failed.
    Os(io::Error),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::NotStarted => f.write_str("process not started"),
            ProcessError::Closed => f.write_str("process object is closed"),
            ProcessError::StillRunning => f.write_str("cannot close a process that has not been joined"),
            ProcessError::NoProcessGroup => f.write_str("the process was not started in its own process group"),
            ProcessError::NotOurChild => f.write_str("can only signal a child of this process"),
            ProcessError::Os(e) => write!(f, "process operation failed: {e}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// An outcome the operation cannot have: reported as an OS-level inconsistency.
fn crossed(what: &'static str) -> io::Error {
    io::Error::other(what)
}

impl ProcFail {
    /// As a start's error.
    pub(crate) fn start(self) -> StartError {
        match self {
            ProcFail::AlreadyStarted => StartError::AlreadyStarted,
            ProcFail::Closed => StartError::Closed,
            ProcFail::DaemonicParent => StartError::DaemonicParent,
            ProcFail::NameTooLong { len } => StartError::NameTooLong { len },
            ProcFail::NotSpawnable(m) => StartError::NotSpawnable(m),
            #[cfg(feature = "serde")]
            ProcFail::Encode(e) => StartError::Encode(e),
            ProcFail::ReportArea(e) => StartError::ReportArea(e),
            ProcFail::Boot(e) => StartError::Boot(e),
            ProcFail::ForkServer(e) => StartError::ForkServer(e),
            ProcFail::Os(e) => StartError::Os(e),
            other => StartError::Os(crossed(other.what())),
        }
    }

    /// As a `try_join`'s error (`NotYet`: still running).
    pub(crate) fn try_join(self) -> TryJoinError {
        match self {
            ProcFail::NotYet => TryJoinError::WouldBlock,
            ProcFail::NotStarted => TryJoinError::NotStarted,
            ProcFail::Closed => TryJoinError::Closed,
            ProcFail::NotOurChild => TryJoinError::NotOurChild,
            ProcFail::Lost => TryJoinError::Lost,
            ProcFail::ForkServer(e) => TryJoinError::ForkServer(e),
            ProcFail::Os(e) => TryJoinError::Os(e),
            other => TryJoinError::Os(crossed(other.what())),
        }
    }

    /// As a blocking `join`'s error.
    pub(crate) fn join(self) -> JoinError {
        self.try_join().failure().unwrap_or_else(|| JoinError::Os(crossed("a join without limit ended early")))
    }

    /// As a timed `join`'s error (`NotYet`: the time ran out).
    pub(crate) fn join_timeout(self) -> JoinTimeoutError {
        let e = self.try_join();
        match e.failure() {
            Some(e) => e.into(),
            None => JoinTimeoutError::Timeout,
        }
    }

    /// As the error of a signal, `sentinel` or `close`.
    pub(crate) fn process(self) -> ProcessError {
        match self {
            ProcFail::NotStarted => ProcessError::NotStarted,
            ProcFail::Closed => ProcessError::Closed,
            ProcFail::StillRunning => ProcessError::StillRunning,
            ProcFail::NoProcessGroup => ProcessError::NoProcessGroup,
            ProcFail::NotOurChild => ProcessError::NotOurChild,
            ProcFail::Os(e) => ProcessError::Os(e),
            other => ProcessError::Os(crossed(other.what())),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            ProcFail::NotStarted => "process not started",
            ProcFail::AlreadyStarted => "process already started",
            ProcFail::Closed => "process closed",
            ProcFail::StillRunning => "process still running",
            ProcFail::DaemonicParent => "daemonic parent",
            ProcFail::NameTooLong { .. } => "name too long",
            ProcFail::NoProcessGroup => "no process group",
            ProcFail::NotOurChild => "not our child",
            ProcFail::Lost => "exit status lost",
            ProcFail::NotYet => "not ended yet",
            ProcFail::ReportArea(_) => "report area",
            ProcFail::NotSpawnable(_) => "not spawnable",
            #[cfg(feature = "serde")]
            ProcFail::Encode(_) => "arguments not encodable",
            ProcFail::Boot(_) => "boot failed",
            ProcFail::ForkServer(_) => "fork server",
            ProcFail::Os(_) => "OS error",
        }
    }
}

/// A start's error, back inside the module (a start that runs another start's steps).
impl From<StartError> for ProcFail {
    fn from(e: StartError) -> ProcFail {
        match e {
            StartError::AlreadyStarted => ProcFail::AlreadyStarted,
            StartError::Closed => ProcFail::Closed,
            StartError::DaemonicParent => ProcFail::DaemonicParent,
            StartError::NameTooLong { len } => ProcFail::NameTooLong { len },
            StartError::NotSpawnable(m) => ProcFail::NotSpawnable(m),
            #[cfg(feature = "serde")]
            StartError::Encode(e) => ProcFail::Encode(e),
            StartError::ReportArea(e) => ProcFail::ReportArea(e),
            StartError::Boot(e) => ProcFail::Boot(e),
            StartError::ForkServer(e) => ProcFail::ForkServer(e),
            StartError::Os(e) => ProcFail::Os(e),
        }
    }
}
