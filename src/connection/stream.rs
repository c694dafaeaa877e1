//! A socket during its handshake, Unix or TCP, blocking or not.

use super::auth::HANDSHAKE_TIMEOUT;
use super::ConnError;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// An accepted or connected socket, during the handshake.
#[derive(Debug)]
pub(super) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Blocking, with the handshake's time limit.
    pub(super) fn prepare(&mut self) -> Result<(), ConnError> {
        self.set_nonblocking(false)?;
        self.set_timeout(HANDSHAKE_TIMEOUT)
    }

    pub(super) fn set_nonblocking(&self, on: bool) -> Result<(), ConnError> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(on),
            Stream::Tcp(s) => s.set_nonblocking(on),
        }
        .map_err(ConnError::Os)
    }

    /// Writes all of `buf` to a non-blocking socket, or fails: a handshake's messages are a
    /// few dozen bytes, which a socket's empty send buffer always takes, so a full buffer means
    /// a peer that does not read.
    pub(super) fn write_now(&mut self, mut buf: &[u8]) -> Result<(), ConnError> {
        while !buf.is_empty() {
            match self.write(buf) {
                Ok(0) => return Err(ConnError::Protocol("the peer closed during the handshake")),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(ConnError::Protocol("the peer stopped reading during the handshake"))
                }
                Err(e) => return Err(ConnError::Os(e)),
            }
        }
        Ok(())
    }

    pub(super) fn set_timeout(&mut self, t: Duration) -> Result<(), ConnError> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(t)).and_then(|()| s.set_write_timeout(Some(t))),
            Stream::Tcp(s) => s.set_read_timeout(Some(t)).and_then(|()| s.set_write_timeout(Some(t))),
        }
        .map_err(ConnError::Os)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}
