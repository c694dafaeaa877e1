//! The socket transport of a `Connection`: what a TCP connection made with `Listener`/`Client`
//! runs on (a same-host connection is moved to shared-memory rings instead).
//!
//! Each message is a 16-byte frame header, `[len: u64 LE][type fingerprint: u64 LE]`, then
//! `len` payload bytes. The socket is non-blocking; waits are `poll(2)` with the call's
//! deadline. Bytes read are kept in this side's buffer until a whole message is there, so a
//! timeout never loses or splits a message. A send waits for room (until its deadline) only
//! before its first byte: once a message has started it is finished, blocking, because the
//! stream cannot carry half of it.
//!
//! Everything read from the peer is untrusted: a frame announcing more than the connection's
//! `max_message` is `Corrupt`, and the buffer grows only as bytes arrive.

use super::{RecvError, SendError};
use crate::sys::process::poll_events;
use crate::wait::Limit;
use nix::sys::socket::{self, MsgFlags};
use std::cell::{Cell, RefCell};
use std::io::IoSlice;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Bytes of a frame header.
const FRAME: usize = 16;

/// How much one read asks for.
const READ_CHUNK: usize = 64 * 1024;

/// One connection's socket, with the bytes received but not yet handed out.
#[derive(Debug)]
pub(super) struct SockLink {
    stream: TcpStream,
    inbuf: RefCell<Vec<u8>>,
    /// The peer closed its side (or the connection broke): what is buffered is all there is.
    eof: Cell<bool>,
}

impl SockLink {
    /// Takes over a connected stream (made non-blocking, with Nagle's delay off).
    pub(super) fn new(stream: TcpStream) -> std::io::Result<SockLink> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(SockLink { stream, inbuf: RefCell::new(Vec::new()), eof: Cell::new(false) })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Sends one message; waits for room until `limit` before its first byte.
    pub(super) fn send(&self, buf: &[u8], type_fp: u64, max: usize, limit: Limit) -> Result<(), SendError> {
        if buf.len() > max {
            return Err(SendError::TooLarge { len: buf.len(), max });
        }
        let mut hdr = [0u8; FRAME];
        hdr[..8].copy_from_slice(&(buf.len() as u64).to_le_bytes());
        hdr[8..].copy_from_slice(&type_fp.to_le_bytes());
        let total = FRAME + buf.len();
        let mut sent = 0usize;
        while sent < total {
            let parts: [&[u8]; 2] = if sent < FRAME { [&hdr[sent..], buf] } else { [&buf[sent - FRAME..], &[]] };
            let iov = [IoSlice::new(parts[0]), IoSlice::new(parts[1])];
            match socket::sendmsg::<()>(self.stream.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None) {
                Ok(n) => sent += n,
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => {
                    // Room is waited for until `limit` only while nothing is sent yet.
                    let wait = if sent == 0 { limit } else { Limit::Forever };
                    if sent == 0 && wait.passed() {
                        return Err(if wait.is_now() { SendError::Full } else { SendError::Timeout });
                    }
                    let ev = poll_events(self.fd(), libc::POLLOUT, wait.deadline_opt()).map_err(SendError::Io)?;
                    if ev & (libc::POLLERR | libc::POLLHUP) != 0 && ev & libc::POLLOUT == 0 {
                        return Err(SendError::Closed);
                    }
                }
                Err(nix::Error::EPIPE | nix::Error::ECONNRESET | nix::Error::ENOTCONN) => {
                    return Err(SendError::Closed)
                }
                Err(e) => return Err(SendError::Io(e.into())),
            }
        }
        Ok(())
    }

    /// Reads what has arrived into the buffer, waiting until `limit` if nothing has.
    fn fill(&self, limit: Limit) -> Result<(), RecvError> {
        loop {
            let mut inbuf = self.inbuf.borrow_mut();
            let at = inbuf.len();
            inbuf.resize(at + READ_CHUNK, 0);
            let r = socket::recv(self.stream.as_raw_fd(), &mut inbuf[at..], MsgFlags::MSG_DONTWAIT);
            inbuf.truncate(at + *r.as_ref().unwrap_or(&0));
            drop(inbuf);
            match r {
                Ok(0) => {
                    self.eof.set(true);
                    return Ok(());
                }
                Ok(_) => return Ok(()),
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => {
                    if limit.passed() {
                        return Err(if limit.is_now() { RecvError::Empty } else { RecvError::Timeout });
                    }
                    poll_events(self.fd(), libc::POLLIN, limit.deadline_opt()).map_err(RecvError::Io)?;
                }
                Err(nix::Error::ECONNRESET | nix::Error::ENOTCONN) => {
                    self.eof.set(true);
                    return Ok(());
                }
                Err(e) => return Err(RecvError::Io(e.into())),
            }
        }
    }

    /// The buffered frame header, if whole: `(len, type fingerprint)`.
    fn header(&self) -> Option<(u64, u64)> {
        let b = self.inbuf.borrow();
        let h = b.get(..FRAME)?;
        Some((u64::from_le_bytes(h[..8].try_into().ok()?), u64::from_le_bytes(h[8..].try_into().ok()?)))
    }

    /// The next whole message (see `Connection::next_message` for `maxlen` and `expect`).
    pub(super) fn recv(
        &self,
        limit: Limit,
        maxlen: usize,
        max: usize,
        expect: Option<(u64, &'static str)>,
    ) -> Result<Vec<u8>, RecvError> {
        loop {
            if let Some((len, fp)) = self.header() {
                if len > max as u64 {
                    return Err(RecvError::Corrupt("a frame longer than max_message"));
                }
                if let Some((want, expected)) = expect {
                    if fp != 0 && fp != want {
                        return Err(RecvError::WrongType { expected });
                    }
                }
                let len = len as usize;
                let mut b = self.inbuf.borrow_mut();
                if b.len() >= FRAME + len {
                    let msg = b[FRAME..FRAME + len].to_vec();
                    b.drain(..FRAME + len);
                    if len > maxlen {
                        return Err(RecvError::TooLong { len, max: maxlen });
                    }
                    return Ok(msg);
                }
            }
            if self.eof.get() {
                // A partial message from a peer that went away is never returned.
                self.inbuf.borrow_mut().clear();
                return Err(RecvError::Eof);
            }
            self.fill(limit)?;
        }
    }

    /// Whether a whole message or end of file is pending, waiting until `limit`.
    pub(super) fn poll(&self, limit: Limit) -> Result<bool, RecvError> {
        loop {
            let whole = self.header().is_some_and(|(len, _)| self.inbuf.borrow().len() as u64 >= FRAME as u64 + len);
            if whole || self.eof.get() {
                return Ok(true);
            }
            match self.fill(limit) {
                Ok(()) => {}
                Err(RecvError::Empty | RecvError::Timeout) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}
