//! The TCP transport of a `Connection` (a [`ByteStream`]): what a TCP connection made with
//! `Listener`/`Client` runs on (a same-host connection is moved to shared-memory rings
//! instead). It lives here, beside the code that makes it; the queue layer knows only the
//! trait.
//!
//! Each message is a 16-byte frame header, `[len: u64 LE][type fingerprint: u64 LE]`, then
//! `len` payload bytes. A call that waits for ever makes one blocking system call; one with a
//! deadline uses `MSG_DONTWAIT` and `poll(2)` with that deadline. Bytes read are kept in this side's buffer until a whole message is there, so a
//! timeout never loses or splits a message. A send waits for room (until its deadline) only
//! before its first byte: once a message has started it is finished, blocking, because the
//! stream cannot carry half of it.
//!
//! Everything read from the peer is untrusted: a frame announcing more than the connection's
//! `max_message` is `Corrupt`, and the buffer grows only as bytes arrive.

use crate::queue::{ByteStream, RecvFail, SendFail};
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
    /// Received bytes: `buf[from..to]` is not handed out yet. Grows, never shrinks, and is
    /// never zero-filled again (a read goes straight into `buf[to..]`).
    inbuf: RefCell<InBuf>,
    /// The peer closed its side (or the connection broke): what is buffered is all there is.
    eof: Cell<bool>,
}

#[derive(Debug, Default)]
struct InBuf {
    buf: Vec<u8>,
    from: usize,
    to: usize,
}

impl InBuf {
    fn data(&self) -> &[u8] {
        &self.buf[self.from..self.to]
    }

    /// Room for at least `READ_CHUNK` more bytes at the end (moving what is pending to the
    /// front, or growing).
    fn room(&mut self) -> &mut [u8] {
        if self.from == self.to {
            (self.from, self.to) = (0, 0);
        }
        if self.buf.len() - self.to < READ_CHUNK {
            if self.from > 0 {
                self.buf.copy_within(self.from..self.to, 0);
                (self.from, self.to) = (0, self.to - self.from);
            }
            if self.buf.len() - self.to < READ_CHUNK {
                self.buf.resize(self.to + READ_CHUNK, 0);
            }
        }
        &mut self.buf[self.to..]
    }
}

impl SockLink {
    /// Takes over a connected stream (blocking; waits with deadlines use `poll` and
    /// `MSG_DONTWAIT`), with Nagle's delay off.
    pub(super) fn new(stream: TcpStream) -> std::io::Result<SockLink> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        Ok(SockLink { stream, inbuf: RefCell::new(InBuf::default()), eof: Cell::new(false) })
    }

    /// Reads what has arrived into the buffer, waiting until `limit` if nothing has.
    fn fill(&self, limit: Limit) -> Result<(), RecvFail> {
        loop {
            // Blocking when the caller waits for ever: one system call per read.
            let flags = if matches!(limit, Limit::Forever) { MsgFlags::empty() } else { MsgFlags::MSG_DONTWAIT };
            let mut b = self.inbuf.borrow_mut();
            let r = socket::recv(self.stream.as_raw_fd(), b.room(), flags);
            if let Ok(n) = r {
                b.to += n;
            }
            drop(b);
            match r {
                Ok(0) => {
                    self.eof.set(true);
                    return Ok(());
                }
                Ok(_) => return Ok(()),
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => {
                    if limit.passed() {
                        return Err(if limit.is_now() { RecvFail::Empty } else { RecvFail::Timeout });
                    }
                    poll_events(self.fd(), libc::POLLIN, limit.deadline_opt()).map_err(RecvFail::Io)?;
                }
                Err(nix::Error::ECONNRESET | nix::Error::ENOTCONN) => {
                    self.eof.set(true);
                    return Ok(());
                }
                Err(e) => return Err(RecvFail::Io(e.into())),
            }
        }
    }

    /// The buffered frame header, if whole: `(len, type fingerprint)`.
    fn header(&self) -> Option<(u64, u64)> {
        let b = self.inbuf.borrow();
        let h = b.data().get(..FRAME)?;
        Some((u64::from_le_bytes(h[..8].try_into().ok()?), u64::from_le_bytes(h[8..].try_into().ok()?)))
    }

    /// Waits for the next whole message and hands its payload to `take` (see
    /// `Connection::next_message` for `maxlen` and `expect`).
    fn next<R>(
        &self,
        limit: Limit,
        maxlen: usize,
        max: usize,
        expect: Option<(u64, &'static str)>,
        take: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, RecvFail> {
        loop {
            if let Some((len, fp)) = self.header() {
                if len > max as u64 {
                    return Err(RecvFail::Corrupt("a frame longer than max_message"));
                }
                if let Some((want, expected)) = expect {
                    if fp != 0 && fp != want {
                        return Err(RecvFail::WrongType { expected });
                    }
                }
                let len = len as usize;
                let mut b = self.inbuf.borrow_mut();
                if b.data().len() >= FRAME + len {
                    let at = b.from + FRAME;
                    b.from = at + len;
                    if len > maxlen {
                        return Err(RecvFail::TooLong { len, max: maxlen });
                    }
                    return Ok(take(&b.buf[at..at + len]));
                }
            }
            if self.eof.get() {
                // A partial message from a peer that went away is never returned.
                *self.inbuf.borrow_mut() = InBuf::default();
                return Err(RecvFail::Eof);
            }
            self.fill(limit)?;
        }
    }
}

impl ByteStream for SockLink {
    fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Sends one message; waits for room until `limit` before its first byte.
    fn send(&self, buf: &[u8], type_fp: u64, max: usize, limit: Limit) -> Result<(), SendFail> {
        if buf.len() > max {
            return Err(SendFail::TooLarge { len: buf.len(), max });
        }
        let mut hdr = [0u8; FRAME];
        hdr[..8].copy_from_slice(&(buf.len() as u64).to_le_bytes());
        hdr[8..].copy_from_slice(&type_fp.to_le_bytes());
        let total = FRAME + buf.len();
        let mut sent = 0usize;
        while sent < total {
            let parts: [&[u8]; 2] = if sent < FRAME { [&hdr[sent..], buf] } else { [&buf[sent - FRAME..], &[]] };
            let iov = [IoSlice::new(parts[0]), IoSlice::new(parts[1])];
            // Blocking once the message has started, or when the caller waits for ever.
            let mut flags = MsgFlags::MSG_NOSIGNAL;
            if sent == 0 && !matches!(limit, Limit::Forever) {
                flags |= MsgFlags::MSG_DONTWAIT;
            }
            match socket::sendmsg::<()>(self.stream.as_raw_fd(), &iov, &[], flags, None) {
                Ok(n) => sent += n,
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => {
                    if limit.passed() {
                        return Err(if limit.is_now() { SendFail::Full } else { SendFail::Timeout });
                    }
                    let ev = poll_events(self.fd(), libc::POLLOUT, limit.deadline_opt()).map_err(SendFail::Io)?;
                    if ev & (libc::POLLERR | libc::POLLHUP) != 0 && ev & libc::POLLOUT == 0 {
                        return Err(SendFail::Closed);
                    }
                }
                Err(nix::Error::EPIPE | nix::Error::ECONNRESET | nix::Error::ENOTCONN) => return Err(SendFail::Closed),
                Err(e) => return Err(SendFail::Io(e.into())),
            }
        }
        Ok(())
    }

    /// The next whole message as a vector.
    fn recv(
        &self,
        limit: Limit,
        maxlen: usize,
        max: usize,
        expect: Option<(u64, &'static str)>,
    ) -> Result<Vec<u8>, RecvFail> {
        self.next(limit, maxlen, max, expect, <[u8]>::to_vec)
    }

    /// The next whole message copied into `buf[offset..]` (`BufferTooShort` with the message
    /// if it does not fit).
    fn recv_into(&self, limit: Limit, max: usize, buf: &mut [u8], offset: usize) -> Result<usize, RecvFail> {
        let room = buf.len().saturating_sub(offset);
        self.next(limit, usize::MAX, max, None, |m| {
            if m.len() > room || offset > buf.len() {
                return Err(RecvFail::BufferTooShort(m.to_vec()));
            }
            buf[offset..offset + m.len()].copy_from_slice(m);
            Ok(m.len())
        })?
    }

    /// Whether a whole message or end of file is pending, waiting until `limit`.
    fn poll(&self, limit: Limit) -> Result<bool, RecvFail> {
        loop {
            let whole =
                self.header().is_some_and(|(len, _)| self.inbuf.borrow().data().len() as u64 >= FRAME as u64 + len);
            if whole || self.eof.get() {
                return Ok(true);
            }
            match self.fill(limit) {
                Ok(()) => {}
                Err(RecvFail::Empty | RecvFail::Timeout) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}
