//! Passing file descriptors between processes over an `AF_UNIX` socket (`SCM_RIGHTS`,
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)): what `Connection::send_fd`
//! and `recv_fd` use, and how a Listener hands a connection's shared-memory rings to its
//! client.
//!
//! The control-message buffers and their pointer arithmetic are nix's (`sendmsg`/`recvmsg` with
//! `ControlMessage::ScmRights` and `cmsg_space!`): this module has no `unsafe` of its own.

use nix::cmsg_space;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The most descriptors one message carries.
pub(crate) const MAX_FDS: usize = 8;

/// A connected `SOCK_SEQPACKET` pair, both ends close-on-exec (fork still inherits them).
pub(crate) fn socketpair_seqpacket() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socket::socketpair(socket::AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?)
}

/// Sends `fd` over `sock` as one 1-byte message with an `SCM_RIGHTS` control message. The
/// receiver gets its own descriptor for the same open file. `EPIPE` if the peer is gone (no
/// SIGPIPE: `MSG_NOSIGNAL`).
pub(crate) fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    send_fds(sock, &[fd], b"F")
}

/// Sends `data` (at least one byte) with `fds` attached, as one message. Blocks while the
/// socket buffer is full.
pub(crate) fn send_fds(sock: BorrowedFd<'_>, fds: &[BorrowedFd<'_>], data: &[u8]) -> io::Result<()> {
    if data.is_empty() || fds.len() > MAX_FDS {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let iov = [IoSlice::new(data)];
    loop {
        match socket::sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) if n == data.len() => return Ok(()),
            // A stream socket may take part of the data (never of the descriptors, which go
            // with the first byte): send the rest plainly.
            Ok(n) => return send_all(sock, &data[n..]),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends all of `data` on a stream socket, without SIGPIPE if the peer is gone (`EPIPE`
/// instead: a process that keeps the default SIGPIPE disposition, as the fork server may,
/// must not die of a requester that left).
pub(crate) fn send_all(sock: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match socket::send(sock.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Receives one message into `buf` with the descriptors it carried (close-on-exec), waiting
/// for it unless `dontwait`. `Ok(None)` if `dontwait` and there is none; `UnexpectedEof` if
/// the peer closed. A message whose descriptors did not all fit is an `InvalidData` error
/// (those that arrived are closed).
pub(crate) fn recv_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    dontwait: bool,
) -> io::Result<Option<(usize, Vec<OwnedFd>)>> {
    let mut space = cmsg_space!([RawFd; MAX_FDS]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if dontwait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let (n, fds, truncated) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match socket::recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: the kernel installed each of these descriptors for this
                        // process just now; nothing else owns them.
                        fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
                    }
                }
                break (msg.bytes, fds, msg.flags.contains(MsgFlags::MSG_CTRUNC));
            }
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EAGAIN) if dontwait => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 && fds.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if truncated {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a message carried too many descriptors"));
    }
    Ok(Some((n, fds)))
}

/// Receives one message from `sock` without waiting: `Ok(None)` if there is none; the
/// descriptor it carried otherwise (close-on-exec). A message that carries no descriptor, or
/// more than one, is an `InvalidData` error (any descriptors it did carry are closed).
pub(crate) fn try_recv_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let Some((_, mut fds)) = recv_fds(sock, &mut byte, true)? else { return Ok(None) };
    match fds.len() {
        1 => Ok(fds.pop()),
        0 => Err(io::Error::new(io::ErrorKind::InvalidData, "a message carried no descriptor")),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "a message carried more than one descriptor")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    #[test]
    fn an_fd_crosses_the_socket_and_refers_to_the_same_file() {
        let (a, b) = socketpair_seqpacket().unwrap();
        assert!(try_recv_fd(b.as_fd()).unwrap().is_none());
        let mut f = std::fs::File::from(crate::sys::mman::memfd_create("fdpass-test").unwrap());
        send_fd(a.as_fd(), f.as_fd()).unwrap();
        let mut g = std::fs::File::from(try_recv_fd(b.as_fd()).unwrap().expect("an fd"));
        g.write_all(b"foo").unwrap();
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "foo");
        // A plain message (no descriptor) is refused.
        socket::send(a.as_raw_fd(), b"x", MsgFlags::empty()).unwrap();
        assert_eq!(try_recv_fd(b.as_fd()).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // Two descriptors where one is expected: refused, both closed.
        send_fds(a.as_fd(), &[f.as_fd(), f.as_fd()], b"F").unwrap();
        assert_eq!(try_recv_fd(b.as_fd()).unwrap_err().kind(), io::ErrorKind::InvalidData);
        drop(a);
        assert_eq!(try_recv_fd(b.as_fd()).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn several_fds_and_data_travel_in_one_message() {
        let (a, b) = socketpair_seqpacket().unwrap();
        let f = crate::sys::mman::memfd_create("fdpass-several").unwrap();
        send_fds(a.as_fd(), &[f.as_fd(), f.as_fd(), f.as_fd()], b"hello").unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv_fds(b.as_fd(), &mut buf, false).unwrap().unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"hello"[..], 3));
        let too_many: Vec<BorrowedFd<'_>> = (0..MAX_FDS + 1).map(|_| f.as_fd()).collect();
        assert!(send_fds(a.as_fd(), &too_many, b"x").is_err());
    }
}
