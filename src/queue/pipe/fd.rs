//! Passing file descriptors (Python's `send_handle`/`recv_handle`, PIPE-13): the descriptor
//! travels over the pipe's socket pair, a marker record holds its place in the ring.

use super::super::ring::KIND_FD;
use super::conn::Link;
use super::send::{push_wait, wait_room};
use super::{Connection, RecvFail, SendFail};
use super::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::wait::Limit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

impl Connection {
    /// Sends a file descriptor (Python's `reduction.send_handle`; PIPE-13): the receiver's
    /// [`recv_fd`](Self::recv_fd) gets its own descriptor for the same open file, in order
    /// with the messages sent before and after. `fd` stays open here.
    ///
    /// The descriptor travels over the pipe's socket (`SCM_RIGHTS`), then a marker record
    /// takes its place in the ring; a sender killed between the two leaves only an unused
    /// descriptor in the socket (closed with it), never a marker without a descriptor.
    ///
    /// # Errors
    /// [`SendError::FdPassingDisabled`] unless built with [`PipeBuilder::fd_passing`](crate::PipeBuilder::fd_passing);
    /// `NotWritable`, `Closed`, `Closed` (the reader is gone), [`SendError::Os`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Seek, Write};
    /// use std::os::fd::AsFd;
    ///
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// let mut file = tempfile_like()?;
    /// a.send_fd(file.as_fd())?;
    /// let mut theirs = std::fs::File::from(b.recv_fd()?);
    /// theirs.write_all(b"foo")?;
    /// file.rewind()?;
    /// let mut s = String::new();
    /// file.read_to_string(&mut s)?;
    /// assert_eq!(s, "foo");
    /// # fn tempfile_like() -> std::io::Result<std::fs::File> {
    /// #     let p = std::env::temp_dir().join(format!("multiproc-doc-{}", std::process::id()));
    /// #     let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p)?;
    /// #     std::fs::remove_file(&p)?;
    /// #     Ok(f)
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "send_handle")]
    pub fn send_fd(&mut self, fd: BorrowedFd<'_>) -> Result<(), SendError> {
        self.send_fd_until(fd, Limit::Forever).map_err(SendFail::send)
    }

    /// [`send_fd`](Self::send_fd) if the ring has room for its marker now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] (nothing was sent), or as [`send_fd`](Self::send_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// a.try_send_fd(std::os::fd::AsFd::as_fd(&std::io::stdin()))?;
    /// let _fd = b.recv_fd()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send_fd(&mut self, fd: BorrowedFd<'_>) -> Result<(), TrySendError> {
        self.send_fd_until(fd, Limit::Now).map_err(SendFail::try_send)
    }

    /// [`send_fd`](Self::send_fd), waiting at most `timeout` for room for its marker.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or as [`send_fd`](Self::send_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// a.send_fd_timeout(std::os::fd::AsFd::as_fd(&std::io::stdin()), std::time::Duration::from_secs(1))?;
    /// let _fd = b.recv_fd()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_fd_timeout(&mut self, fd: BorrowedFd<'_>, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.send_fd_until(fd, Limit::timeout(timeout)).map_err(SendFail::send_timeout)
    }

    /// [`send_fd`](Self::send_fd), waiting until `deadline` for room for its marker.
    ///
    /// # Errors
    /// As [`send_fd_timeout`](Self::send_fd_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// a.send_fd_deadline(std::os::fd::AsFd::as_fd(&std::io::stdin()), std::time::Instant::now())?;
    /// let _fd = b.recv_fd()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_fd_deadline(&mut self, fd: BorrowedFd<'_>, deadline: Instant) -> Result<(), SendTimeoutError> {
        self.send_fd_until(fd, Limit::deadline(deadline)).map_err(SendFail::send_timeout)
    }

    /// The descriptor is sent only once the marker has room (a marker that cannot be pushed
    /// leaves no descriptor behind on the socket).
    fn send_fd_until(&mut self, fd: BorrowedFd<'_>, limit: Limit) -> Result<(), SendFail> {
        let wait = self.wait;
        let r = match &mut self.link {
            Link::Closed => return Err(SendFail::HandleClosed),
            Link::Stream(_) => return Err(SendFail::FdPassingDisabled),
            Link::Rings(r) => r,
        };
        let Some(sock) = r.fd_sock.as_ref() else { return Err(SendFail::FdPassingDisabled) };
        let Some(tx) = r.tx.as_mut() else { return Err(SendFail::NotWritable) };
        if tx.reader_gone(true) {
            return Err(SendFail::Closed);
        }
        wait_room(tx, wait, limit)?;
        crate::sys::fdpass::send_fd(sock.as_fd(), fd).map_err(|e| match e.raw_os_error() {
            Some(libc::EPIPE | libc::ECONNRESET) => SendFail::Closed,
            _ => SendFail::Fd(e),
        })?;
        // Room was seen and only this end writes the ring: the marker goes in at once.
        push_wait(tx, wait, KIND_FD, None, None, &[], Limit::Forever)
    }

    /// Receives a file descriptor sent with [`send_fd`](Self::send_fd) (Python's
    /// `reduction.recv_handle`), blocking until the next message arrives. The descriptor is
    /// close-on-exec.
    ///
    /// # Errors
    /// [`RecvError::NotAnFd`] if the next message is data (it is left for `recv*`, where
    /// Python's `recv_handle` raises and loses it); [`RecvError::FdPassingDisabled`]; `Disconnected`,
    /// `NotReadable`, `Closed`; `Corrupt` if a marker arrives without its descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// a.send_bytes(b"data")?;
    /// assert!(matches!(b.recv_fd(), Err(multiproc::RecvError::NotAnFd)));
    /// assert_eq!(b.recv_bytes()?, b"data"); // nothing was lost
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "recv_handle")]
    pub fn recv_fd(&mut self) -> Result<OwnedFd, RecvError> {
        self.recv_fd_until(Limit::Forever).map_err(RecvFail::recv)
    }

    /// [`recv_fd`](Self::recv_fd) if a descriptor is next now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if nothing is pending, or as [`recv_fd`](Self::recv_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// assert!(b.try_recv_fd().unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_fd(&mut self) -> Result<OwnedFd, TryRecvError> {
        self.recv_fd_until(Limit::Now).map_err(RecvFail::try_recv)
    }

    /// [`recv_fd`](Self::recv_fd), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing came, or as [`recv_fd`](Self::recv_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// assert!(b.recv_fd_timeout(std::time::Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_fd_timeout(&mut self, timeout: Duration) -> Result<OwnedFd, RecvTimeoutError> {
        self.recv_fd_until(Limit::timeout(timeout)).map_err(RecvFail::recv_timeout)
    }

    /// [`recv_fd`](Self::recv_fd), waiting until `deadline`.
    ///
    /// # Errors
    /// As [`recv_fd_timeout`](Self::recv_fd_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// assert!(b.recv_fd_deadline(std::time::Instant::now()).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_fd_deadline(&mut self, deadline: Instant) -> Result<OwnedFd, RecvTimeoutError> {
        self.recv_fd_until(Limit::deadline(deadline)).map_err(RecvFail::recv_timeout)
    }

    fn recv_fd_until(&mut self, limit: Limit) -> Result<OwnedFd, RecvFail> {
        let wait = self.wait;
        let r = match &mut self.link {
            Link::Closed => return Err(RecvFail::HandleClosed),
            Link::Stream(_) => return Err(RecvFail::FdPassingDisabled),
            Link::Rings(r) => r,
        };
        if r.fd_sock.is_none() {
            return Err(RecvFail::FdPassingDisabled);
        }
        let rec = r.next_record(wait, limit)?;
        if rec.kind != KIND_FD {
            return Err(RecvFail::NotAnFd);
        }
        r.asm = None;
        let rx = r.rx.as_mut().expect("checked by next_record");
        rx.cons.release(&rec);
        let sock = r.fd_sock.as_ref().expect("checked above");
        match crate::sys::fdpass::try_recv_fd(sock.as_fd()) {
            Ok(Some(fd)) => Ok(fd),
            Ok(None) => Err(RecvFail::Corrupt("descriptor marker without a descriptor")),
            Err(_) => Err(RecvFail::Corrupt("descriptor message without exactly one descriptor")),
        }
    }
}
