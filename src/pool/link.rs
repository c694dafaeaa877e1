//! The pool's transport and worker processes.
//!
//! Each worker gets two Unix stream sockets (tasks down, results up) carrying length-prefixed
//! frames. The kernel closes a dead worker's sockets, so the parent sees end-of-file after the
//! last complete frame; a frame cut short by a death is discarded, never delivered.

use super::PoolError;
use crate::sys::clock::Deadline;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

/// Largest frame accepted; anything longer is treated as a corrupt stream.
const MAX_FRAME: usize = 1 << 30;

/// One end of a worker's connection (the parent's or the worker's).
#[derive(Debug)]
pub(crate) struct Link {
    tx: Mutex<UnixStream>,
    rx: UnixStream,
    buf: Mutex<Vec<u8>>,
}

impl Link {
    fn new(tx: UnixStream, rx: UnixStream, nonblocking_rx: bool) -> std::io::Result<Link> {
        rx.set_nonblocking(nonblocking_rx)?;
        Ok(Link { tx: Mutex::new(tx), rx, buf: Mutex::new(Vec::new()) })
    }

    /// Sends one frame (blocking while the peer's buffer is full).
    pub(crate) fn send(&self, bytes: &[u8]) -> Result<(), ()> {
        if bytes.len() > MAX_FRAME {
            return Err(());
        }
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let len = (bytes.len() as u32).to_le_bytes();
        tx.write_all(&len).and_then(|()| tx.write_all(bytes)).map_err(drop)
    }

    /// A complete frame from the buffer, if there is one. Lengths come from the peer: checked.
    fn take_frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, ()> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(());
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let frame = buf[4..4 + len].to_vec();
        buf.drain(..4 + len);
        Ok(Some(frame))
    }

    /// A frame if one is complete now; `Err` once the peer has hung up (after its last
    /// complete frame) or sent garbage.
    pub(crate) fn try_recv(&self) -> Result<Option<Vec<u8>>, ()> {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(f) = Self::take_frame(&mut buf)? {
                return Ok(Some(f));
            }
            let mut chunk = [0u8; 64 * 1024];
            match (&self.rx).read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            }
        }
    }

    /// Waits for the next frame; `Err` once the peer has hung up.
    pub(crate) fn recv(&self) -> Result<Vec<u8>, ()> {
        loop {
            if let Some(f) = self.try_recv()? {
                return Ok(f);
            }
            crate::sys::process::poll_readable(self.rx.as_fd(), None).map_err(drop)?;
        }
    }
}

/// Wakes the manager thread out of [`wait_readable`] (on close, terminate, new work).
#[derive(Debug)]
pub(crate) struct Doorbell {
    tx: UnixStream,
    rx: UnixStream,
}

impl Doorbell {
    pub(crate) fn new() -> std::io::Result<Doorbell> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Doorbell { tx, rx })
    }

    /// Rings; a full buffer means it is already ringing.
    pub(crate) fn ring(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    fn drain(&self) {
        let mut b = [0u8; 64];
        while matches!((&self.rx).read(&mut b), Ok(n) if n > 0) {}
    }
}

/// Indices (the `usize` of each pair) of the links with something to read or a hang-up,
/// waiting up to `timeout` or until `bell` rings.
pub(crate) fn wait_readable(links: &[(usize, std::sync::Arc<Link>)], bell: &Doorbell, timeout: Duration) -> Vec<usize> {
    // Frames may already sit in a buffer from an earlier partial read.
    let buffered: Vec<usize> =
        links.iter().filter(|(_, l)| l.buf.lock().map(|b| b.len() >= 4).unwrap_or(false)).map(|(i, _)| *i).collect();
    if !buffered.is_empty() {
        return buffered;
    }
    let mut fds: Vec<_> = links.iter().map(|(_, l)| l.rx.as_fd()).collect();
    fds.push(bell.rx.as_fd());
    let ready = match crate::sys::process::poll_readable_many(&fds, Deadline::after(timeout)) {
        Ok(ready) => ready.into_iter().filter_map(|k| links.get(k).map(|l| l.0)).collect(),
        Err(_) => links.iter().map(|(i, _)| *i).collect(),
    };
    bell.drain();
    ready
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

    /// Reaps the worker if it has exited.
    pub(crate) fn try_exit(&self) -> Option<WorkerExit> {
        match self.proc.try_join() {
            Ok(Some(s)) => Some(exit_of(&s)),
            Ok(None) => None,
            Err(_) => Some(WorkerExit { signal: None, code: None }),
        }
    }

    /// Waits up to `timeout` for the worker to exit; returns whether it did.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> bool {
        !matches!(self.proc.join_timeout(timeout), Ok(None))
    }

    /// Blocks until the worker is reaped.
    pub(crate) fn reap(&self) {
        let _ = self.proc.join();
    }
}

/// Forks a worker running `body` with its end of a fresh link; returns the process and the
/// parent's end.
pub(crate) fn spawn(
    _capacity: usize,
    body: impl FnOnce(Link) -> i32 + Send + 'static,
) -> Result<(WorkerProc, Link), PoolError> {
    let err = |e: std::io::Error| PoolError::Spawn(e.to_string());
    let (down_parent, down_worker) = UnixStream::pair().map_err(err)?;
    let (up_parent, up_worker) = UnixStream::pair().map_err(err)?;
    let parent_end = Link::new(down_parent, up_parent, true).map_err(err)?;
    let proc = crate::Process::builder()
        .name("PoolWorker")
        .daemon(true)
        .target(move || match Link::new(up_worker, down_worker, false) {
            Ok(l) => body(l),
            Err(_) => 1,
        })
        .map_err(|e| PoolError::Spawn(e.to_string()))?;
    proc.start().map_err(|e| PoolError::Spawn(e.to_string()))?;
    let pid = proc.pid().map_or(-1, |p| p as i32);
    Ok((WorkerProc { proc, pid }, parent_end))
}
