//! Passing file descriptors between processes over an `AF_UNIX` socket pair (`SCM_RIGHTS`,
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)): what `Connection::send_fd`
//! and `recv_fd` use.

use super::{cvt, cvt_r};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A connected `SOCK_SEQPACKET` pair, both ends close-on-exec (fork still inherits them).
pub(crate) fn socketpair_seqpacket() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as socketpair requires.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair succeeded, so both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Control-message buffer for one descriptor, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct OneFdCmsg([u8; 32]);

/// `CMSG_SPACE` / `CMSG_LEN` for one `c_int`.
fn cmsg_sizes() -> (usize, usize) {
    let int = std::mem::size_of::<libc::c_int>() as libc::c_uint;
    // SAFETY: pure arithmetic macros.
    unsafe { (libc::CMSG_SPACE(int) as usize, libc::CMSG_LEN(int) as usize) }
}

/// Sends `fd` over `sock` as one 1-byte message with an `SCM_RIGHTS` control message. The
/// receiver gets its own descriptor for the same open file. `EPIPE` if the peer is gone (no
/// SIGPIPE: `MSG_NOSIGNAL`).
pub(crate) fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let (space, len) = cmsg_sizes();
    let mut ctrl = OneFdCmsg([0; 32]);
    debug_assert!(space <= ctrl.0.len());
    let mut byte = [b'F'];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: an all-zero msghdr is valid (null name, no iovecs); the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg_control` points to `space` writable, cmsghdr-aligned bytes (the buffer is
    // 32 bytes, align 8; CMSG_SPACE(4) is 24 on 64-bit Linux), so CMSG_FIRSTHDR is non-null
    // and the header plus one c_int of data fit in it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = len as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    // SAFETY: `msg` and everything it points to (`iov`, `byte`, `ctrl`) live across the call.
    cvt_r(|| unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    Ok(())
}

/// Receives one message from `sock` without waiting: `Ok(None)` if there is none; the
/// descriptor it carried otherwise (close-on-exec). A message that carries no descriptor, or
/// more than one, is an `InvalidData` error (any descriptors it did carry are closed).
pub(crate) fn try_recv_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    let (space, len) = cmsg_sizes();
    let mut ctrl = OneFdCmsg([0; 32]);
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: as in `send_fd`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
    // SAFETY: `msg` points to live, writable buffers of the sizes it states.
    let n = match cvt_r(|| unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags) }) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut got: Option<OwnedFd> = None;
    let mut extra = false;
    // SAFETY: the kernel filled `msg_controllen` bytes of `ctrl`; CMSG_FIRSTHDR/NXTHDR only
    // return headers that lie within it, and each is checked before its data is read.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let bytes = (*c).cmsg_len as usize - (data as usize - c as usize);
                let count = bytes / std::mem::size_of::<libc::c_int>();
                for k in 0..count {
                    let raw = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(k));
                    // Each descriptor was installed for us by the kernel: we own it.
                    let fd = OwnedFd::from_raw_fd(raw);
                    if got.is_none() && (*c).cmsg_len as usize == len {
                        got = Some(fd);
                    } else {
                        extra = true; // dropped here: closed
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if n == 0 && got.is_none() {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    if extra || msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a message carried more than one descriptor"));
    }
    got.map(Some).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a message carried no descriptor"))
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
        // SAFETY: sending one byte from a live buffer.
        let r = unsafe { libc::send(a.as_raw_fd(), b"x".as_ptr().cast(), 1, 0) };
        assert_eq!(r, 1);
        assert_eq!(try_recv_fd(b.as_fd()).unwrap_err().kind(), io::ErrorKind::InvalidData);
        drop(a);
        assert_eq!(try_recv_fd(b.as_fd()).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
