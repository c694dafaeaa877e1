//! One fresh child per input, forked by a fork server: AFL's fork-server mode for a target that
//! must start each input from a clean copy of a prepared image ([`ForkServer::run_input`]).
//! The input travels through shared memory ([`InputArea`]), not as an encoded argument: the
//! parent writes it, the child reads it ([`FuzzInput::bytes`]).

use super::{ChildOutcome, ExitStatus, ForkServer, JoinTimeoutError, Process, StartError};
use crate::shm::{SharedMemory, ShmError};
use std::fmt;
use std::time::Duration;

/// Bytes before the input in the area: its length (`u64`, little-endian).
const LEN: usize = 8;

/// Where [`ForkServer::run_input`] puts each input: shared memory of a fixed capacity, written
/// by the parent before each child starts and read by that child.
///
/// # Examples
///
/// ```
/// let area = multiproc::InputArea::new(1 << 16)?;
/// assert_eq!(area.capacity(), 1 << 16);
/// area.set(b"an input")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InputArea {
    shm: SharedMemory,
}

impl InputArea {
    /// An area for inputs of up to `capacity` bytes.
    ///
    /// # Errors
    /// [`ShmError`] if the memory cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::InputArea::new(4096).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(capacity: usize) -> Result<InputArea, ShmError> {
        Ok(InputArea { shm: SharedMemory::anonymous(capacity.saturating_add(LEN))? })
    }

    /// The largest input the area holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::InputArea::new(100)?.capacity(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.shm.len() - LEN
    }

    /// Makes `input` the input of the next child (no child may be running from this area).
    ///
    /// # Errors
    /// [`ShmError::InvalidArgument`] if `input` is longer than [`capacity`](Self::capacity)
    /// (the area keeps its previous input).
    ///
    /// # Examples
    ///
    /// ```
    /// let area = multiproc::InputArea::new(4)?;
    /// assert!(area.set(b"four").is_ok());
    /// assert!(area.set(b"five!").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, input: &[u8]) -> Result<(), ShmError> {
        if input.len() > self.capacity() {
            return Err(ShmError::InvalidArgument { what: "input longer than the area", value: input.len() as u64 });
        }
        self.shm.write_at(LEN, input)?;
        self.shm.write_at(0, &(input.len() as u64).to_le_bytes())
    }
}

/// The input of a child started by [`ForkServer::run_input`]: the argument of its target.
///
/// # Examples
///
/// ```
/// fn target(input: multiproc::FuzzInput) -> i32 {
///     input.bytes().len() as i32
/// }
/// # let _ = target;
/// ```
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FuzzInput {
    shm: SharedMemory,
}

impl FuzzInput {
    /// A copy of the input. The area is shared memory: its length word is checked against the
    /// area (a longer one is cut to what the area holds).
    ///
    /// # Examples
    ///
    /// See [`ForkServer::run_input`].
    pub fn bytes(&self) -> Vec<u8> {
        let mut len = [0u8; LEN];
        if self.shm.read_at(0, &mut len).is_err() {
            return Vec::new();
        }
        let n = (u64::from_le_bytes(len) as usize).min(self.shm.len() - LEN);
        let mut v = vec![0u8; n];
        if self.shm.read_at(LEN, &mut v).is_err() {
            v.clear();
        }
        v
    }
}

/// How one input's child ended ([`ForkServer::run_input`]).
///
/// # Examples
///
/// ```
/// use multiproc::ExecOutcome;
/// let crashed = ExecOutcome::Signaled(libc::SIGSEGV);
/// assert_ne!(crashed, ExecOutcome::Exited(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    /// It exited with this code (0: the target returned normally).
    Exited(i32),
    /// A signal ended it (a crash: SIGSEGV, SIGABRT, …).
    Signaled(i32),
    /// It ran past the time limit and was killed with its process group.
    TimedOut,
}

impl ExecOutcome {
    fn of(s: &ExitStatus) -> ExecOutcome {
        match (s.signal(), s.code()) {
            (Some(sig), _) => ExecOutcome::Signaled(sig),
            (None, c) => ExecOutcome::Exited(c.unwrap_or(-1)),
        }
    }
}

/// Why [`ForkServer::run_input`] has no outcome.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunInputError {
    /// The child could not be started (the fork server is gone, …).
    Start(StartError),
    /// Waiting for the child failed (its status was lost, …); never a time-out.
    Wait(JoinTimeoutError),
}

impl fmt::Display for RunInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunInputError::Start(e) => write!(f, "could not start the input's child: {e}"),
            RunInputError::Wait(e) => write!(f, "could not wait for the input's child: {e}"),
        }
    }
}

impl std::error::Error for RunInputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunInputError::Start(e) => Some(e),
            RunInputError::Wait(e) => Some(e),
        }
    }
}

impl ForkServer {
    /// Runs `target` on the input in `area` in a fresh child forked from this server (a copy of
    /// the image its `init` prepared), waits for it up to `limit`, and says how it ended: one
    /// call per input, as AFL's fork-server mode. The child leads its own process group; past
    /// the limit it is killed with the group. Set the input with [`InputArea::set`] first.
    ///
    /// # Errors
    /// [`RunInputError`] if the child could not be started or waited for.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ExecOutcome, ForkServer, FuzzInput, InputArea};
    /// use std::time::Duration;
    ///
    /// fn target(input: FuzzInput) -> i32 {
    ///     let b = input.bytes();
    ///     if b.starts_with(b"crash") {
    ///         std::process::abort();
    ///     }
    ///     b.len() as i32
    /// }
    ///
    /// let server = ForkServer::builder().start()?;
    /// let area = InputArea::new(1024)?;
    /// for (input, want) in [(&b"abc"[..], ExecOutcome::Exited(3)), (b"crash!", ExecOutcome::Signaled(libc::SIGABRT))] {
    ///     area.set(input)?;
    ///     assert_eq!(server.run_input(target, &area, Duration::from_secs(10))?, want);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_input<R: ChildOutcome>(
        &self,
        target: fn(FuzzInput) -> R,
        area: &InputArea,
        limit: Duration,
    ) -> Result<ExecOutcome, RunInputError> {
        let input = FuzzInput { shm: area.shm.clone() };
        let child: Process =
            self.spawn(Process::builder().process_group(true), target, input).map_err(RunInputError::Start)?;
        let outcome = match child.join_timeout(limit) {
            Ok(s) => Ok(ExecOutcome::of(&s)),
            Err(e) if e.is_timeout() => {
                let _ = child.kill_tree();
                child.join().map(|_| ExecOutcome::TimedOut).map_err(|e| RunInputError::Wait(JoinTimeoutError::from(e)))
            }
            Err(e) => Err(RunInputError::Wait(e)),
        };
        // Whatever happened, nothing the input started outlives it: its group goes (after a
        // timely exit too, where the target left children behind; after a failed wait, the
        // child itself with them).
        let _ = child.kill_tree();
        outcome
    }
}
