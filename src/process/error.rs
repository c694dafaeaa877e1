//! `ProcessError`: why an operation on a [`Process`](crate::Process)(super::Process) failed.

use super::{ExitStatus, MAX_NAME_LEN};
use crate::shm::ShmError;
use std::fmt;
use std::io;

/// Why a [`Process`](crate::Process) operation failed.
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
    /// The process was [closed](crate::Process::close).
    Closed,
    /// [`Process::close`](crate::Process::close) on a child that has not been joined yet.
    StillRunning,
    /// A daemonic process tried to start a child (Python: "daemonic processes are not allowed
    /// to have children").
    DaemonicParent,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// [`Process::terminate_tree`](crate::Process::terminate_tree)/[`Process::kill_tree`](crate::Process::kill_tree) on a child that was not started with
    /// [`ProcessBuilder::process_group`](crate::ProcessBuilder::process_group)`(true)`.
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
    /// A closure target with the `Spawn` or `ForkServer` start method: a fresh image cannot
    /// receive a closure. Use a `fn` item with [`ProcessBuilder::spawn`](crate::ProcessBuilder::spawn).
    NotSpawnable(super::StartMethod),
    /// The process-wide start method was already set ([`set_start_method`](crate::set_start_method)
    /// without `force`, as Python's `RuntimeError: context has already been set`).
    StartMethodAlreadySet(super::StartMethod),
    /// The entry's arguments could not be encoded (or hold a handle that cannot travel).
    #[cfg(feature = "serde")]
    Encode(crate::CodecError),
    /// `posix_spawn` of the executable failed.
    Spawn(io::Error),
    /// The spawned program did not take its entry: it exited, or did not answer within
    /// [`BOOT_TIMEOUT`](crate::process::BOOT_TIMEOUT) (it was killed then). Typically an
    /// executable that does not link this crate, or whose start-up skipped it (call
    /// [`init`](crate::init) first in `main`).
    Boot(String),
    /// The fork server is gone, or refused the request.
    ForkServer(String),
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
            ProcessError::NotSpawnable(m) => {
                write!(f, "the {} start method cannot run a closure: give a fn item to ProcessBuilder::spawn", m.name())
            }
            ProcessError::StartMethodAlreadySet(m) => write!(f, "the start method was already set (to {})", m.name()),
            #[cfg(feature = "serde")]
            ProcessError::Encode(e) => write!(f, "cannot encode the entry's arguments: {e}"),
            ProcessError::Spawn(e) => write!(f, "posix_spawn failed: {e}"),
            ProcessError::Boot(w) => write!(f, "the spawned program did not start its entry: {w}"),
            ProcessError::ForkServer(w) => write!(f, "fork server: {w}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Fork(e)
            | ProcessError::Pidfd(e)
            | ProcessError::Wait(e)
            | ProcessError::Signal(e)
            | ProcessError::Spawn(e) => Some(e),
            #[cfg(feature = "serde")]
            ProcessError::Encode(e) => Some(e),
            ProcessError::ReportArea(e) => Some(e),
            _ => None,
        }
    }
}
