//! Passing file descriptors (Python's `send_handle`/`recv_handle`, PIPE-13): the descriptor
//! travels over the pipe's socket pair, a marker record holds its place in the ring.

use super::super::ring::KIND_FD;
use super::send::push_wait;
use super::{Connection, RecvError, SendError};
use crate::wait::Limit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

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
    /// `NotWritable`, `HandleClosed`, `Closed` (the reader is gone), [`SendError::Fd`].
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
        if self.closed {
            return Err(SendError::HandleClosed);
        }
        let wait = self.wait;
        let Some(sock) = self.fd_sock.as_ref() else { return Err(SendError::FdPassingDisabled) };
        let Some(tx) = self.tx.as_mut() else { return Err(SendError::NotWritable) };
        if tx.reader_gone(true) {
            return Err(SendError::Closed);
        }
        crate::sys::fdpass::send_fd(sock.as_fd(), fd).map_err(|e| match e.raw_os_error() {
            Some(libc::EPIPE | libc::ECONNRESET) => SendError::Closed,
            _ => SendError::Fd(e),
        })?;
        push_wait(tx, wait, KIND_FD, None, None, &[], Limit::Forever)
    }

    /// Receives a file descriptor sent with [`send_fd`](Self::send_fd) (Python's
    /// `reduction.recv_handle`), blocking until the next message arrives. The descriptor is
    /// close-on-exec.
    ///
    /// # Errors
    /// [`RecvError::NotAnFd`] if the next message is data (it is left for `recv*`, where
    /// Python's `recv_handle` raises and loses it); [`RecvError::FdPassingDisabled`]; `Eof`,
    /// `NotReadable`, `HandleClosed`; `Corrupt` if a marker arrives without its descriptor.
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
        self.recv_fd_until(Limit::Forever)
    }

    /// [`recv_fd`](Self::recv_fd), waiting at most `timeout` (`RecvError::Timeout`).
    pub fn recv_fd_timeout(&mut self, timeout: Duration) -> Result<OwnedFd, RecvError> {
        self.recv_fd_until(Limit::timeout(timeout))
    }

    fn recv_fd_until(&mut self, limit: Limit) -> Result<OwnedFd, RecvError> {
        if self.fd_sock.is_none() && !self.closed {
            return Err(RecvError::FdPassingDisabled);
        }
        self.rx()?;
        let rec = self.next_record(limit)?;
        if rec.kind != KIND_FD {
            return Err(RecvError::NotAnFd);
        }
        self.asm = None;
        let rx = self.rx.as_mut().expect("checked by next_record");
        rx.cons.release(&rec);
        let sock = self.fd_sock.as_ref().expect("checked above");
        match crate::sys::fdpass::try_recv_fd(sock.as_fd()) {
            Ok(Some(fd)) => Ok(fd),
            Ok(None) => Err(RecvError::Corrupt("descriptor marker without a descriptor")),
            Err(_) => Err(RecvError::Corrupt("descriptor message without exactly one descriptor")),
        }
    }
}
