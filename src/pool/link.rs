//! The pool's transport and worker processes.
//!
//! Each worker gets two one-way shared-memory pipes ([`Pipe`](crate::Pipe): tasks down,
//! results up), whose messages are length-delimited and never torn: a message cut short by a
//! death is discarded, never delivered. When a worker dies, its end of the "up" pipe reports
//! end of file after the last complete message (the pipe's liveness check). Workers notify a
//! shared [`Doorbell`] word after each message, and the manager thread sleeps on that one word,
//! so a result wakes it as soon as it is written, however many workers there are.

use super::PoolError;
use crate::queue::{Connection, Pipe, TryRecvError, TrySendError};
use crate::wait::Waitable;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Largest message accepted (the pipe streams anything larger than its ring in fragments).
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// Locks `m`, ignoring poisoning (a panic elsewhere leaves a `Connection` usable).
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `head` then `body` into `loan` (sized for both) and publishes it.
fn fill(mut loan: crate::queue::SendLoan<'_>, head: &[u8], body: &[u8]) -> Result<(), ()> {
    loan[..head.len()].copy_from_slice(head);
    loan[head.len()..].copy_from_slice(body);
    loan.commit().map_err(drop)
}

/// One end of a worker's connection (the parent's or the worker's).
#[derive(Debug)]
pub(crate) struct Link {
    tx: Mutex<Connection>,
    rx: Mutex<Connection>,
}

impl Link {
    /// A link over two connection ends (a spawned worker's, received as handles).
    pub(crate) fn new(tx: Connection, rx: Connection) -> Link {
        Link { tx: Mutex::new(tx), rx: Mutex::new(rx) }
    }

    /// Sends one message (blocking while the peer's ring is full); `Err` once the peer is gone.
    pub(crate) fn send(&self, bytes: &[u8]) -> Result<(), ()> {
        lock(&self.tx).send_bytes(bytes).map_err(drop)
    }

    /// Sends `head` and `body` as one message, written into the peer's ring in place (one
    /// copy of each) when it fits a record, else joined first.
    pub(crate) fn send_parts(&self, head: &[u8], body: &[u8]) -> Result<(), ()> {
        let mut tx = lock(&self.tx);
        let len = head.len() + body.len();
        if len > tx.max_loan() {
            let mut joined = Vec::with_capacity(len);
            joined.extend_from_slice(head);
            joined.extend_from_slice(body);
            return tx.send_bytes(&joined).map_err(drop);
        }
        fill(tx.send_loan(len).map_err(drop)?, head, body)
    }

    /// [`send_parts`](Self::send_parts) only if the message fits the peer's ring now, in one
    /// record: `Ok(false)` (nothing sent) when it does not. For a chunk queued behind the
    /// one a worker runs: that worker reads nothing until its task ends, which may be never
    /// (a task stopped or looping until its time limit), and the sender holds the pool's lock.
    pub(crate) fn try_send_parts(&self, head: &[u8], body: &[u8]) -> Result<bool, ()> {
        let mut tx = lock(&self.tx);
        let len = head.len() + body.len();
        if len > tx.max_loan() {
            return Ok(false);
        }
        match tx.try_send_loan(len) {
            Ok(loan) => fill(loan, head, body).map(|()| true),
            Err(TrySendError::Full) => Ok(false),
            Err(_) => Err(()),
        }
    }

    /// A message if one is complete now; `Err` once the peer has gone (after its last
    /// complete message) or the pipe is corrupt.
    pub(crate) fn try_recv(&self) -> Result<Option<Vec<u8>>, Down> {
        match lock(&self.rx).try_recv_bytes() {
            Ok(b) => Ok(Some(b)),
            Err(e) => Down::of(e),
        }
    }

    /// Waits for the next message and hands it to `f` where it lies in the ring (a loan: no
    /// copy, no allocation), releasing it when `f` returns; `Err` once the peer has gone.
    pub(crate) fn recv_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, ()> {
        let mut rx = lock(&self.rx);
        let msg = rx.recv_loan().map_err(drop)?;
        Ok(f(&msg))
    }

    /// [`try_recv`](Self::try_recv) handing the message to `f` in place, as
    /// [`recv_with`](Self::recv_with) does.
    pub(crate) fn try_recv_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Down> {
        let mut rx = lock(&self.rx);
        let r = match rx.try_recv_loan() {
            Ok(msg) => Ok(Some(f(&msg))),
            Err(e) => Down::of(e),
        };
        r
    }

    /// The ring this end writes into (tests: see `worker::corrupt_own_results`).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn tx_ring(&self) -> Option<crate::queue::ring::Ring> {
        lock(&self.tx).tx_ring()
    }
}

/// Why a link gives no more messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Down {
    /// The peer has gone, after its last complete message.
    Gone,
    /// The peer's ring breaks its invariants, or holds what a worker never sends (a
    /// descriptor): the peer is live but cannot be read, so it must be killed.
    Corrupt,
}

impl Down {
    /// `Ok(None)` for an empty pipe, else why nothing more will come.
    fn of<T>(e: TryRecvError) -> Result<Option<T>, Down> {
        match e {
            TryRecvError::Empty => Ok(None),
            TryRecvError::Disconnected => Err(Down::Gone),
            _ => Err(Down::Corrupt),
        }
    }
}

/// Wakes the manager thread out of [`wait_readable`]: workers [`notify`](Doorbell::notify)
/// it after each message they send; the pool's handle [`ring`](Doorbell::ring)s it on close,
/// terminate and new work. One shared word, so the manager sleeps in one futex wait however
/// many workers there are (a `wait` over every worker's pipe stops at 128 words).
pub(crate) type Doorbell = crate::queue::SharedBell;

/// Indices (the `usize` of each pair) of the links with something to read or whose worker is
/// gone, waiting up to `timeout` or until `bell` rings or is notified. Only the manager thread
/// reads from links.
pub(crate) fn wait_readable(links: &[(usize, std::sync::Arc<Link>)], bell: &Doorbell, timeout: Duration) -> Vec<usize> {
    let ready = || -> Vec<usize> { links.iter().filter(|(_, l)| lock(&l.rx).is_ready()).map(|(i, _)| *i).collect() };
    let now = ready();
    if !now.is_empty() || bell.take_rung() {
        return now;
    }
    let woke = bell.wait_for(crate::sys::clock::Deadline::after(timeout), || {
        let r = ready();
        (!r.is_empty() || bell.take_rung()).then_some(r)
    });
    woke.unwrap_or_else(ready)
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkerExit {
    pub(crate) signal: Option<i32>,
    pub(crate) code: Option<i32>,
}

/// A worker process: a daemonic [`Process`](crate::Process) (it dies with the pool's manager
/// thread, which forked it).
#[derive(Debug)]
pub(crate) struct WorkerProc {
    proc: crate::Process,
    pid: i32,
}

fn exit_of(s: &crate::ExitStatus) -> WorkerExit {
    WorkerExit { signal: s.signal(), code: s.code() }
}

impl WorkerProc {
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends SIGKILL (a no-op once the worker has been reaped, so a reused pid is never hit).
    pub(crate) fn kill(&self) {
        let _ = self.proc.kill();
    }

    /// Sends SIGKILL to the worker and, where it leads a process group of its own (a pool with
    /// a time limit), to that group: its task's children go too.
    pub(crate) fn kill_tree(&self) {
        if self.proc.kill_tree().is_err() {
            self.kill();
        }
    }

    /// What turns readable once the worker's exit can be reaped (`try_exit` has it), if it
    /// has one.
    pub(crate) fn sentinel(&self) -> Option<crate::Sentinel> {
        self.proc.exit_watch().ok()
    }

    /// Reaps the worker if it has exited.
    pub(crate) fn try_exit(&self) -> Option<WorkerExit> {
        match self.proc.try_join() {
            Ok(s) => Some(exit_of(&s)),
            Err(e) if e.is_would_block() => None,
            Err(_) => Some(WorkerExit { signal: None, code: None }),
        }
    }

    /// Waits up to `timeout` for the worker to exit; returns whether it did.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> bool {
        !self.proc.join_timeout(timeout).is_err_and(|e| e.is_timeout())
    }

    /// Blocks until the worker is reaped.
    pub(crate) fn reap(&self) {
        let _ = self.proc.join();
    }
}

/// Forks a worker running `body` with its end of a fresh link (rings of `capacity` bytes,
/// rounded to a power of two); returns the process and the parent's end.
///
/// With `group`, the worker leads a process group of its own (`ProcessBuilder::process_group`),
/// so that [`WorkerProc::kill_tree`] reaches the processes its tasks start; without, it stays in
/// ours, where the terminal's job control (Ctrl-C, reading stdin) reaches it as in Python.
pub(crate) fn spawn(
    capacity: usize,
    group: bool,
    body: impl FnOnce(Link) -> i32 + Send + 'static,
) -> Result<(WorkerProc, Link), PoolError> {
    let err = |e: crate::ShmError| PoolError::spawn(super::SpawnError::Shm(e));
    let pipe = Pipe::builder().capacity(capacity.clamp(1 << 12, 1 << 30).next_power_of_two()).max_message(MAX_FRAME);
    let (down_worker, down_parent) = pipe.clone().one_way().map_err(err)?;
    let (up_parent, up_worker) = pipe.one_way().map_err(err)?;
    let parent_end = Link { tx: Mutex::new(down_parent), rx: Mutex::new(up_parent) };
    let proc = crate::Process::builder()
        .name("PoolWorker")
        .daemon(true)
        .process_group(group)
        .target(move || body(Link { tx: Mutex::new(up_worker), rx: Mutex::new(down_worker) }))
        .map_err(|e| PoolError::spawn(super::SpawnError::Process(e)))?;
    // The target (holding the worker's ends) is dropped in the parent once forked, so the
    // worker's death is seen as end of file on `up_parent`.
    proc.start().map_err(|e| PoolError::spawn(super::SpawnError::Process(e)))?;
    let pid = proc.pid().map_or(-1, |p| p as i32);
    Ok((WorkerProc { proc, pid }, parent_end))
}

/// Spawns a worker (`Spawn` or `ForkServer`): a fresh image that runs `entry` on its ends of
/// a new link and everything else `args` builds, received as handles; returns the process and
/// the parent's end. The entry is a parameter so that the transport does not name the worker
/// loop that runs over it.
pub(crate) fn spawn_fresh<A>(
    capacity: usize,
    group: bool,
    method: crate::StartMethod,
    entry: fn(A) -> i32,
    args: impl FnOnce(Connection, Connection) -> A,
) -> Result<(WorkerProc, Link), PoolError>
where
    A: serde::Serialize + serde::de::DeserializeOwned,
{
    let err = |e: crate::ShmError| PoolError::spawn(super::SpawnError::Shm(e));
    let pipe = Pipe::builder()
        .capacity(capacity.clamp(1 << 12, 1 << 30).next_power_of_two())
        .max_message(MAX_FRAME)
        .fd_passing(false);
    let (down_worker, down_parent) = pipe.clone().one_way().map_err(err)?;
    let (up_parent, up_worker) = pipe.one_way().map_err(err)?;
    let parent_end = Link { tx: Mutex::new(down_parent), rx: Mutex::new(up_parent) };
    // The worker's ends travel as descriptors and are dropped here once encoded: only the
    // worker holds them then, so its death is seen as end of file on `up_parent`.
    let proc = crate::Process::builder()
        .name("PoolWorker")
        .daemon(true)
        .process_group(group)
        .start_method(method)
        .spawn(entry, args(up_worker, down_worker))
        .map_err(|e| PoolError::spawn(super::SpawnError::Process(e)))?;
    let pid = proc.pid().map_or(-1, |p| p as i32);
    Ok((WorkerProc { proc, pid }, parent_end))
}
