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

/// Bytes read per `read` call while frames are small.
const CHUNK: usize = 64 * 1024;

/// One end of a worker's connection (the parent's or the worker's).
#[derive(Debug)]
pub(crate) struct Link {
    tx: Mutex<UnixStream>,
    rx: UnixStream,
    state: Mutex<RxState>,
}

/// Receive-side buffering.
///
/// Small frames arrive many per `read` into `buf` and are taken from `start` on (no shifting
/// of the rest per frame). A frame longer than [`CHUNK`] is read straight into its own
/// allocation (`big`), sized once from its header: no growth copies, no second copy out of a
/// staging buffer. Both paths matter for `map` with large chunks, where the copies were the
/// workers' biggest cost.
#[derive(Debug, Default)]
struct RxState {
    buf: Vec<u8>,
    start: usize,
    /// A large frame being received: its bytes so far and its full length.
    big: Option<(Vec<u8>, usize)>,
}

impl RxState {
    /// Whether `take_frame` would return something (a frame or an error) without reading.
    fn has_frame(&self) -> bool {
        let avail = &self.buf[self.start..];
        avail.len() >= 4 && {
            let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
            len > MAX_FRAME || avail.len() >= 4 + len
        }
    }

    /// A complete frame from `buf`, if there is one. Lengths come from the peer: checked.
    fn take_frame(&mut self) -> Result<Option<Vec<u8>>, ()> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > MAX_FRAME {
            return Err(());
        }
        if avail.len() >= 4 + len {
            let frame = avail[4..4 + len].to_vec();
            self.start += 4 + len;
            if self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            }
            return Ok(Some(frame));
        }
        if len > CHUNK {
            // Switch to direct reading: move the part we have into the frame's own buffer.
            let mut frame = Vec::with_capacity(len);
            frame.extend_from_slice(&avail[4..]);
            self.buf.clear();
            self.start = 0;
            self.big = Some((frame, len));
        } else if self.start > 0 {
            // Keep only the incomplete frame (less than CHUNK bytes) at the front.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(None)
    }
}

impl Link {
    fn new(tx: UnixStream, rx: UnixStream, nonblocking_rx: bool) -> std::io::Result<Link> {
        rx.set_nonblocking(nonblocking_rx)?;
        Ok(Link { tx: Mutex::new(tx), rx, state: Mutex::new(RxState::default()) })
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

    /// A frame if one is complete now; `Err` once the peer has hung up (after its last
    /// complete frame) or sent garbage.
    pub(crate) fn try_recv(&self) -> Result<Option<Vec<u8>>, ()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some((frame, len)) = &mut st.big {
                let need = (*len - frame.len()) as u64;
                // `read_to_end` on a `take` reads into the frame's spare capacity directly and
                // keeps what it read if it stops with `WouldBlock`.
                match (&self.rx).take(need).read_to_end(frame) {
                    Ok(_) if frame.len() == *len => return Ok(st.big.take().map(|(f, _)| f)),
                    Ok(_) => return Err(()), // end of file inside the frame
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return Err(()),
                }
            }
            if let Some(f) = st.take_frame()? {
                return Ok(Some(f));
            }
            if st.big.is_some() {
                continue;
            }
            let mut chunk = [0u8; CHUNK];
            match (&self.rx).read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => st.buf.extend_from_slice(&chunk[..n]),
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
    let buffered: Vec<usize> = links
        .iter()
        .filter(|(_, l)| l.state.lock().map(|st| st.has_frame()).unwrap_or(true))
        .map(|(i, _)| *i)
        .collect();
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
