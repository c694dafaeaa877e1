//! The handshake every `Listener`/`Client` connection starts with, on the socket, before any
//! user data: a versioned hello, then (with an authkey) an HMAC-SHA256 challenge in both
//! directions, as Python's `multiprocessing.connection` does it.
//!
//! ```text
//! listener → client   HELLO   "MPCONN" version flags nonce_l[32]
//! client → listener   ANSWER  HMAC(key, "multiproc-v1 client" ‖ nonce_l)[32] nonce_c[32]
//! listener → client   "#WELCOME#" HMAC(key, "multiproc-v1 listener" ‖ nonce_c)[32]   or "#FAILURE#"
//! client → listener   "#WELCOME#" or "#FAILURE#"
//! ```
//!
//! Without an authkey the hello is answered by the client's verdict alone. A wrong key fails on both sides with
//! [`ConnError::Authentication`]: the listener refuses the client's digest (the client reads
//! `#FAILURE#`), and a client that gets a wrong digest back refuses the listener (which reads
//! `#FAILURE#`). Digests are compared in constant time (`hmac`'s `verify_slice`). The labels
//! bind each digest to its direction, so a reflected digest is useless.

use super::ConnError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{Read, Write};

/// The protocol version in the hello. 2: the shared rings' record headers carry a stamp of
/// their position and are the publication (`queue/ring/`), which a version-1 peer would read
/// as corrupt; the two refuse each other at the hello instead.
pub(crate) const VERSION: u8 = 2;
const MAGIC: &[u8; 6] = b"MPCONN";
/// Hello flag: the listener requires an authkey.
const AUTH: u8 = 1;
/// Hello flag: the connection moves onto shared-memory rings after the handshake.
pub(crate) const RINGS: u8 = 2;
const WELCOME: &[u8; 9] = b"#WELCOME#";
const FAILURE: &[u8; 9] = b"#FAILURE#";
const NONCE: usize = 32;
const DIGEST: usize = 32;

fn digest(key: &[u8], label: &[u8], nonce: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(label);
    m.update(nonce);
    m
}

fn nonce() -> Result<[u8; NONCE], ConnError> {
    let mut n = [0u8; NONCE];
    crate::sys::random::fill(&mut n).map_err(ConnError::Os)?;
    Ok(n)
}

fn io(e: std::io::Error) -> ConnError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ConnError::HandshakeTimeout,
        std::io::ErrorKind::UnexpectedEof => ConnError::Protocol("the peer closed during the handshake"),
        _ => ConnError::Os(e),
    }
}

/// The listener's side. Returns once the client is authenticated (or no key is used).
pub(crate) fn serve(s: &mut (impl Read + Write), key: Option<&[u8]>, flags: u8) -> Result<(), ConnError> {
    let nonce_l = nonce()?;
    let mut hello = Vec::with_capacity(8 + NONCE);
    hello.extend_from_slice(MAGIC);
    hello.push(VERSION);
    hello.push(flags | if key.is_some() { AUTH } else { 0 });
    hello.extend_from_slice(&nonce_l);
    s.write_all(&hello).map_err(io)?;
    let Some(key) = key else {
        let mut verdict = [0u8; 9];
        s.read_exact(&mut verdict).map_err(io)?;
        return match &verdict {
            WELCOME => Ok(()),
            FAILURE => Err(ConnError::Authentication("the client has an authkey, this listener none")),
            _ => Err(ConnError::Protocol("bad verdict from the client")),
        };
    };
    let mut answer = [0u8; DIGEST + NONCE];
    s.read_exact(&mut answer).map_err(io)?;
    if digest(key, b"multiproc-v1 client", &nonce_l).verify_slice(&answer[..DIGEST]).is_err() {
        let _ = s.write_all(FAILURE);
        return Err(ConnError::Authentication("digest received was wrong"));
    }
    let mut welcome = WELCOME.to_vec();
    welcome.extend_from_slice(&digest(key, b"multiproc-v1 listener", &answer[DIGEST..]).finalize().into_bytes());
    s.write_all(&welcome).map_err(io)?;
    let mut verdict = [0u8; 9];
    s.read_exact(&mut verdict).map_err(io)?;
    match &verdict {
        WELCOME => Ok(()),
        FAILURE => Err(ConnError::Authentication("the client refused our digest")),
        _ => Err(ConnError::Protocol("bad verdict from the client")),
    }
}

/// The client's side. Returns the listener's flags once both sides are authenticated.
pub(crate) fn answer(s: &mut (impl Read + Write), key: Option<&[u8]>) -> Result<u8, ConnError> {
    let mut hello = [0u8; 8 + NONCE];
    s.read_exact(&mut hello).map_err(io)?;
    if &hello[..6] != MAGIC {
        return Err(ConnError::Protocol("not a multiproc listener"));
    }
    if hello[6] != VERSION {
        return Err(ConnError::Protocol("the listener speaks another protocol version"));
    }
    let flags = hello[7];
    match (flags & AUTH != 0, key) {
        (false, None) => {
            s.write_all(WELCOME).map_err(io)?;
            return Ok(flags);
        }
        (false, Some(_)) => {
            let _ = s.write_all(FAILURE);
            return Err(ConnError::Authentication("the listener has no authkey"));
        }
        (true, None) => return Err(ConnError::Authentication("the listener requires an authkey")),
        (true, Some(_)) => {}
    }
    let key = key.expect("matched above");
    let nonce_c = nonce()?;
    let mut answer = Vec::with_capacity(DIGEST + NONCE);
    answer.extend_from_slice(&digest(key, b"multiproc-v1 client", &hello[8..]).finalize().into_bytes());
    answer.extend_from_slice(&nonce_c);
    s.write_all(&answer).map_err(io)?;
    let mut head = [0u8; 9];
    s.read_exact(&mut head).map_err(io)?;
    match &head {
        WELCOME => {}
        FAILURE => return Err(ConnError::Authentication("digest sent was rejected")),
        _ => return Err(ConnError::Protocol("bad reply from the listener")),
    }
    let mut theirs = [0u8; DIGEST];
    s.read_exact(&mut theirs).map_err(io)?;
    if digest(key, b"multiproc-v1 listener", &nonce_c).verify_slice(&theirs).is_err() {
        let _ = s.write_all(FAILURE);
        return Err(ConnError::Authentication("digest received was wrong"));
    }
    s.write_all(WELCOME).map_err(io)?;
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn run(lkey: Option<&'static [u8]>, ckey: Option<&'static [u8]>) -> (Result<(), ConnError>, Result<u8, ConnError>) {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        }
        let t = std::thread::spawn(move || {
            let r = serve(&mut a, lkey, RINGS);
            drop(a);
            r
        });
        let c = answer(&mut b, ckey);
        drop(b);
        (t.join().unwrap(), c)
    }

    #[test]
    fn conn_3_keys_must_match_on_both_sides() {
        let (l, c) = run(Some(b"secret"), Some(b"secret"));
        assert!(l.is_ok());
        assert_eq!(c.unwrap() & RINGS, RINGS);
        let (l, c) = run(Some(b"secret"), Some(b"wrong"));
        assert!(matches!(l, Err(ConnError::Authentication(_))), "{l:?}");
        assert!(matches!(c, Err(ConnError::Authentication("digest sent was rejected"))), "{c:?}");
        let (l, c) = run(None, None);
        assert!(l.is_ok() && c.is_ok());
        let (l, c) = run(Some(b"k"), None);
        assert!(matches!(c, Err(ConnError::Authentication(_))) && l.is_err());
        let (l, c) = run(None, Some(b"k"));
        assert!(matches!(c, Err(ConnError::Authentication(_))));
        assert!(matches!(l, Err(ConnError::Authentication(_))), "{l:?}");
    }

    #[test]
    fn a_listener_with_a_wrong_digest_is_refused_by_the_client() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            // An impostor that accepts any answer and replies with garbage.
            let mut hello = MAGIC.to_vec();
            hello.extend_from_slice(&[VERSION, AUTH]);
            hello.extend_from_slice(&[7u8; NONCE]);
            a.write_all(&hello).unwrap();
            let mut ans = [0u8; DIGEST + NONCE];
            a.read_exact(&mut ans).unwrap();
            a.write_all(WELCOME).unwrap();
            a.write_all(&[0u8; DIGEST]).unwrap();
            let mut v = [0u8; 9];
            a.read_exact(&mut v).unwrap();
            v
        });
        let c = answer(&mut b, Some(b"secret"));
        assert!(matches!(c, Err(ConnError::Authentication("digest received was wrong"))), "{c:?}");
        assert_eq!(&t.join().unwrap(), FAILURE);
    }
}
