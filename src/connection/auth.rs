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
use std::time::Duration;

/// What a handshake whose peer closed says (`pending::hung_up` recognizes it).
pub(super) const PEER_CLOSED: &str = "the peer closed during the handshake";

/// How long the handshake after `accept`/`connect` may take before it fails with
/// `HandshakeTimeout` (a peer that connects and then says nothing is dropped after it; it never
/// holds up other clients meanwhile, see [`MAX_PENDING_HANDSHAKES`](crate::MAX_PENDING_HANDSHAKES)).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many handshakes a [`Listener`](crate::Listener) runs side by side: a newcomer beyond it
/// drops the oldest pending one (whose peer sees the connection close).
pub const MAX_PENDING_HANDSHAKES: usize = 64;

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
        std::io::ErrorKind::UnexpectedEof => ConnError::Protocol(PEER_CLOSED),
        _ => ConnError::Os(e),
    }
}

/// The listener's side as a state machine that does no I/O itself, so that a listener can run
/// many handshakes side by side on non-blocking sockets (CONN-B3): [`Serving::start`] gives the
/// hello to send, [`Serving::wants`] says how many bytes the peer must send next, and
/// [`Serving::feed`] takes exactly those bytes and says what to send back and whether the
/// handshake is over.
#[derive(Debug)]
pub(crate) struct Serving {
    nonce_l: [u8; NONCE],
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No key: the client's verdict on the hello.
    Verdict,
    /// The client's digest of our nonce and its own nonce.
    Answer,
    /// The client's verdict on our digest.
    FinalVerdict,
}

/// What [`Serving::feed`] asks of the caller.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Bytes to send to the peer (possibly none).
    pub(crate) send: Vec<u8>,
    /// `Some` once the handshake is over: authenticated, or why not.
    pub(crate) done: Option<Result<(), ConnError>>,
}

impl Serving {
    /// A new handshake and the hello to send first.
    pub(crate) fn start(key: Option<&[u8]>, flags: u8) -> Result<(Serving, Vec<u8>), ConnError> {
        let nonce_l = nonce()?;
        let mut hello = Vec::with_capacity(8 + NONCE);
        hello.extend_from_slice(MAGIC);
        hello.push(VERSION);
        hello.push(flags | if key.is_some() { AUTH } else { 0 });
        hello.extend_from_slice(&nonce_l);
        let stage = if key.is_some() { Stage::Answer } else { Stage::Verdict };
        Ok((Serving { nonce_l, stage }, hello))
    }

    /// How many bytes the peer must send before the next [`feed`](Self::feed).
    pub(crate) fn wants(&self) -> usize {
        match self.stage {
            Stage::Verdict | Stage::FinalVerdict => WELCOME.len(),
            Stage::Answer => DIGEST + NONCE,
        }
    }

    /// Takes the `wants()` bytes the peer sent; `key` is the one given to `start`.
    pub(crate) fn feed(&mut self, key: Option<&[u8]>, got: &[u8]) -> Reply {
        let done = |r| Reply { send: Vec::new(), done: Some(r) };
        if got.len() != self.wants() {
            return done(Err(ConnError::Protocol("a handshake message of the wrong length")));
        }
        match (self.stage, key) {
            (Stage::Verdict, _) => done(match got {
                v if v == WELCOME => Ok(()),
                v if v == FAILURE => Err(ConnError::Authentication("the client has an authkey, this listener none")),
                _ => Err(ConnError::Protocol("bad verdict from the client")),
            }),
            (Stage::Answer, Some(key)) => {
                if digest(key, b"multiproc-v1 client", &self.nonce_l).verify_slice(&got[..DIGEST]).is_err() {
                    return Reply {
                        send: FAILURE.to_vec(),
                        done: Some(Err(ConnError::Authentication("digest received was wrong"))),
                    };
                }
                let mut welcome = WELCOME.to_vec();
                welcome
                    .extend_from_slice(&digest(key, b"multiproc-v1 listener", &got[DIGEST..]).finalize().into_bytes());
                self.stage = Stage::FinalVerdict;
                Reply { send: welcome, done: None }
            }
            (Stage::Answer, None) => done(Err(ConnError::Protocol("an answer without a key"))),
            (Stage::FinalVerdict, _) => done(match got {
                v if v == WELCOME => Ok(()),
                v if v == FAILURE => Err(ConnError::Authentication("the client refused our digest")),
                _ => Err(ConnError::Protocol("bad verdict from the client")),
            }),
        }
    }
}

/// The listener's side on a blocking stream (the fuzz target and the unit tests drive it; a
/// `Listener` runs [`Serving`] itself). Returns once the client is authenticated (or no
/// key is used).
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn serve(s: &mut (impl Read + Write), key: Option<&[u8]>, flags: u8) -> Result<(), ConnError> {
    let (mut serving, hello) = Serving::start(key, flags)?;
    s.write_all(&hello).map_err(io)?;
    let mut got = [0u8; DIGEST + NONCE];
    loop {
        let got = &mut got[..serving.wants()];
        s.read_exact(got).map_err(io)?;
        let reply = serving.feed(key, got);
        let sent = s.write_all(&reply.send).map_err(io);
        match reply.done {
            // A failure's last word is best effort: the peer may have gone.
            Some(r) => return r,
            None => sent?,
        }
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
