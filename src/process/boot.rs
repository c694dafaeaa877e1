//! The bootstrap protocol between a process and the fresh image it spawned (or the fork
//! server it talks to): one framed message with the entry, its arguments and descriptors, and
//! the child's answer.
//!
//! ```text
//! → [len: u32][nfds: u32][len bytes of Boot (postcard)]  with up to 8 descriptors on it,
//!   then the other descriptors, up to 8 per 1-byte message
//! ← "MPACK\0\0\0"                         the entry was taken (the child runs it now)
//! ← "MPNAK\0\0\0" [len: u32] text         refused, and why
//! ```
//!
//! Everything received is checked: the frame's length and descriptor count are bounded, the
//! message must decode, and its version must be ours.

use crate::process::call::{CallKey, EntryToken, InputToken};
use crate::sys::fdpass;
use crate::BootError;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// How long a spawned program (or the fork server) may take to answer its bootstrap message
/// before it is killed and the start fails with [`StartError::Boot`](crate::StartError::Boot).
pub const BOOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The protocol version in every [`Boot`].
pub(crate) const VERSION: u32 = 1;
/// Largest bootstrap message (arguments included).
const MAX_LEN: u32 = 1 << 30;
/// Most descriptors one message carries.
const MAX_FDS: u32 = 256;
const ACK: &[u8; 8] = b"MPACK\0\0\0";
const NAK: &[u8; 8] = b"MPNAK\0\0\0";

/// What the new process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Role {
    /// Run the entry and exit.
    Child,
    /// Serve fork requests.
    Server,
    /// Set up a station of `ForkServer::run_input` in a fork server (`server_exec.rs`).
    Exec,
}

/// Everything a new process needs; descriptors travel beside it (a child's: its report
/// area's segment first, then its arguments' handles).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Boot {
    pub(crate) version: u32,
    pub(crate) role: Role,
    /// (device, inode) of the executable the parent meant (`None`: not checked).
    pub(crate) exe: Option<(u64, u64)>,
    pub(crate) key: CallKey,
    /// The child's entry, or a server's init function.
    pub(crate) entry: Option<EntryToken>,
    /// A `run_input` station's target ([`Role::Exec`] only).
    pub(crate) target: Option<InputToken>,
    pub(crate) args: Vec<u8>,
    /// Offset of the child's report area in the first descriptor's segment.
    pub(crate) report_off: u64,
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    /// The pid and name of the process that asked for this one.
    pub(crate) parent: (i32, String),
    pub(crate) daemon: bool,
    pub(crate) group: bool,
}

/// Sends `boot` with `fds`: one message (the first descriptors ride on it), then the rest of
/// the descriptors, if any, eight per 1-byte message.
pub(crate) fn send(sock: &UnixStream, boot: &Boot, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let body = crate::codec::encode(boot).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).ok().filter(|&l| l <= MAX_LEN).ok_or(io::ErrorKind::InvalidInput)?;
    let nfds = u32::try_from(fds.len()).ok().filter(|&n| n <= MAX_FDS).ok_or(io::ErrorKind::InvalidInput)?;
    let mut msg = Vec::with_capacity(8 + body.len());
    msg.extend_from_slice(&len.to_le_bytes());
    msg.extend_from_slice(&nfds.to_le_bytes());
    msg.extend_from_slice(&body);
    let (first, rest) = fds.split_at(fds.len().min(fdpass::MAX_FDS));
    if first.is_empty() {
        fdpass::send_all(sock.as_fd(), &msg)?;
    } else {
        fdpass::send_fds(sock.as_fd(), first, &msg)?;
    }
    for chunk in rest.chunks(fdpass::MAX_FDS) {
        fdpass::send_fds(sock.as_fd(), chunk, b"F")?;
    }
    Ok(())
}

/// Receives a [`Boot`] and its descriptors (blocking, within the socket's read timeout).
pub(crate) fn recv(sock: &UnixStream) -> io::Result<(Boot, Vec<OwnedFd>)> {
    let bad = |w: &'static str| io::Error::new(io::ErrorKind::InvalidData, w);
    // The first read takes the message's start and the descriptors riding on it.
    let mut buf = vec![0u8; 8 * 1024];
    let (mut n, mut fds) = loop {
        if let Some(got) = fdpass::recv_fds(sock.as_fd(), &mut buf, false)? {
            break got;
        }
    };
    if n < 8 {
        (&*sock).read_exact(&mut buf[n..8])?;
        n = 8;
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes"));
    let nfds = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len > MAX_LEN || nfds > MAX_FDS || fds.len() > nfds as usize {
        return Err(bad("bootstrap message too large"));
    }
    let total = 8 + len as usize;
    if n > total {
        return Err(bad("bootstrap message longer than announced"));
    }
    buf.resize(total, 0);
    (&*sock).read_exact(&mut buf[n..total])?;
    while fds.len() < nfds as usize {
        let mut byte = [0u8; 1];
        let Some((n, got)) = fdpass::recv_fds(sock.as_fd(), &mut byte, false)? else { continue };
        if n != 1 || byte[0] != b'F' || got.is_empty() || fds.len() + got.len() > nfds as usize {
            return Err(bad("bad descriptor message"));
        }
        fds.extend(got);
    }
    let boot: Boot = crate::codec::decode(&buf[8..total]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if boot.version != VERSION {
        return Err(bad("another protocol version"));
    }
    Ok((boot, fds))
}

/// Tells the parent the entry was taken.
pub(crate) fn ack(sock: &UnixStream) -> io::Result<()> {
    fdpass::send_all(sock.as_fd(), ACK)
}

/// Tells the parent why the entry was refused.
pub(crate) fn nak(sock: &UnixStream, why: &str) -> io::Result<()> {
    let text = &why.as_bytes()[..why.len().min(4096)];
    let mut m = NAK.to_vec();
    m.extend_from_slice(&(text.len() as u32).to_le_bytes());
    m.extend_from_slice(text);
    fdpass::send_all(sock.as_fd(), &m)
}

/// Waits (within the socket's read timeout) for the child's answer: `Ok` for an ack, the
/// reason otherwise (`Exited` with no status yet: the caller reaps it and fills it in).
pub(crate) fn answer(sock: &UnixStream) -> Result<(), BootError> {
    let mut tag = [0u8; 8];
    match (&*sock).read_exact(&mut tag) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset) => {
            return Err(BootError::Exited { code: None, signal: None })
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            return Err(BootError::Timeout)
        }
        Err(e) => return Err(BootError::Os(e)),
    }
    if &tag == ACK {
        return Ok(());
    }
    if &tag != NAK {
        return Err(BootError::Garbage);
    }
    let mut len = [0u8; 4];
    let mut text = Vec::new();
    if (&*sock).read_exact(&mut len).is_ok() {
        let n = u32::from_le_bytes(len).min(4096) as usize;
        text.resize(n, 0);
        let _ = (&*sock).read_exact(&mut text);
    }
    Err(BootError::Refused(String::from_utf8_lossy(&text).into_owned()))
}
