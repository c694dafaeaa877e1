//! A process's record: what it was made with ([`Spec`], and the start method's options) and
//! its life, one enum ([`Life`]) from made to closed. The `Process` handle is an `Arc` of it;
//! the registry of active children holds the same `Arc`s.

use super::entry::Entry;
use super::origin::Origin;
use super::report::Report;
use super::{ExitStatus, StartMethod};
use crate::shm::ShmRef;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

/// What a launcher needs to know of the child it makes.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) name: String,
    /// This child's number among its creator's children (the last part of its identity).
    pub(super) number: u32,
    pub(super) daemon: bool,
    /// Whether the child leads a process group of its own.
    pub(super) group: bool,
}

pub(super) struct Record {
    pub(super) spec: Spec,
    pub(super) method: StartMethod,
    /// The program a `Spawn` child runs (default: this one).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // spawning needs serde arguments
    pub(super) executable: Option<std::path::PathBuf>,
    /// The fork server of a `ForkServer` child (default: the global one).
    #[cfg(feature = "serde")]
    pub(super) server: Option<super::ForkServer>,
    pub(super) life: Mutex<Life>,
}

/// A process's life. Every operation of the handle is one `match` on it.
pub(super) enum Life {
    /// Made, not started: what it will run.
    Ready(Entry),
    /// `start` is running a launcher (the record's lock is not held meanwhile, except across
    /// a `fork`, so that the child's copy is consistent).
    Starting,
    /// Started, not reaped yet.
    Running(Running),
    /// Reaped: its status (the pidfd stays, so that a sentinel taken earlier stays valid).
    Exited(Exited),
    /// A start that failed after its entry was spent (a child was made and then killed):
    /// not startable again, nothing to wait for.
    Failed,
    /// Closed with [`Process::close`](crate::Process::close).
    Closed,
}

/// A started child.
pub(super) struct Running {
    /// The process that called `start` (only it may wait for the child).
    pub(super) creator: libc::pid_t,
    pub(super) pid: libc::pid_t,
    /// Shared so that a waiter can poll it without the record's lock.
    pub(super) pidfd: Arc<OwnedFd>,
    /// Where the child writes why it failed; read and given back once it is reaped.
    pub(super) report: ShmRef<Report>,
    pub(super) origin: Origin,
}

/// A reaped child.
pub(super) struct Exited {
    pub(super) creator: libc::pid_t,
    pub(super) pid: libc::pid_t,
    pub(super) pidfd: Arc<OwnedFd>,
    pub(super) status: ExitStatus,
}

impl Life {
    /// The child's pid, once started.
    pub(super) fn pid(&self) -> Option<libc::pid_t> {
        match self {
            Life::Running(r) => Some(r.pid),
            Life::Exited(e) => Some(e.pid),
            _ => None,
        }
    }
}
