//! CONN-B3 in `docs/BEHAVIOURS.md`: peers that connect and then say nothing, or trickle a byte
//! a second, cost a legitimate client nothing but their own handshake slots.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use multiproc::{Address, Client, ConnTimeoutError, Listener, HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A hostile peer's socket, of either family.
enum Peer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Peer {
    fn connect(a: &Address) -> Peer {
        match a {
            Address::Tcp(hp) => Peer::Tcp(TcpStream::connect(hp.as_str()).unwrap()),
            Address::Unix(p) => Peer::Unix(UnixStream::connect(p).unwrap()),
            other => panic!("no hostile peer for {other}"),
        }
    }

    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Peer::Tcp(s) => (&*s).read(buf),
            Peer::Unix(s) => (&*s).read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Peer::Tcp(s) => (&*s).write(buf),
            Peer::Unix(s) => (&*s).write(buf),
        }
    }

    fn set_read_timeout(&self, t: Duration) {
        match self {
            Peer::Tcp(s) => s.set_read_timeout(Some(t)).unwrap(),
            Peer::Unix(s) => s.set_read_timeout(Some(t)).unwrap(),
        }
    }
}

/// Whether the listener has closed this peer's connection (it reads end-of-file or a reset
/// after whatever the listener sent).
fn closed_by_listener(p: &Peer) -> bool {
    p.set_read_timeout(Duration::from_millis(200));
    let mut buf = [0u8; 256];
    loop {
        match p.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // the hello
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false, // still open: the read timed out
        }
    }
}

/// 64 silent peers and 64 that trickle a byte a second connect first; a real client behind
/// them is served at once. The oldest peers beyond `MAX_PENDING_HANDSHAKES` are dropped, and
/// the rest run out of time after `HANDSHAKE_TIMEOUT`, which `accept` reports.
#[test]
fn conn_b3_silent_and_trickling_peers_do_not_delay_a_real_client() {
    let _g = common::guard_for(HANDSHAKE_TIMEOUT * 2 + Duration::from_secs(30));
    let path = std::env::temp_dir().join(format!("mp-flood-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    // Both families at once (each waits out `HANDSHAKE_TIMEOUT` at its end).
    let runs: Vec<_> = [Address::Unix(path), "tcp:127.0.0.1:0".parse().unwrap()]
        .into_iter()
        .map(|a| std::thread::spawn(move || flood(a)))
        .collect();
    let served: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    eprintln!("a real client behind 128 hostile peers waited: {served:?}");
}

/// One family's run of the test above; returns how long the real client waited.
fn flood(address: Address) -> (String, Duration) {
    let listener = Arc::new(Listener::bind(&address, Some(b"secret")).unwrap());
    let address = listener.address().clone();
    // The server: accepts in a loop, hands back every outcome.
    let (tx, rx) = mpsc::channel();
    let server = {
        let listener = listener.clone();
        std::thread::spawn(move || loop {
            let r = listener.accept_timeout(HANDSHAKE_TIMEOUT * 2);
            let timed_out = matches!(r, Err(ConnTimeoutError::Timeout));
            if tx.send(r).is_err() || timed_out {
                return;
            }
        })
    };
    let silent: Vec<Peer> = (0..64).map(|_| Peer::connect(&address)).collect();
    let trickling: Vec<Peer> = (0..64).map(|_| Peer::connect(&address)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                for p in &trickling {
                    let _ = p.write(b"x");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            trickling
        })
    };
    let t = Instant::now();
    let mut client = Client::connect(&address, Some(b"secret")).unwrap();
    let waited = t.elapsed();
    let mut conn = match rx.recv_timeout(Duration::from_secs(5)).expect("the server reports the real client") {
        Ok(conn) => conn,
        Err(e) => panic!("{address}: a hostile peer failed before the real client was served: {e:?}"),
    };
    client.send_bytes(b"ping").unwrap();
    assert_eq!(conn.recv_bytes_timeout(Duration::from_secs(5)).unwrap(), b"ping");
    // Served long before a single silent peer could have run out of time (which is what
    // handshakes run one at a time cost: `HANDSHAKE_TIMEOUT` per peer in front).
    assert!(waited < HANDSHAKE_TIMEOUT / 10, "{address}: the client waited {waited:?}");
    // 129 handshakes for 64 places: the oldest, the silent peers, were dropped.
    const { assert!(MAX_PENDING_HANDSHAKES == 64) };
    let dropped = silent.iter().filter(|p| closed_by_listener(p)).count();
    assert_eq!(dropped, 64, "{address}: every silent peer was dropped for a newer one");
    // The tricklers that stayed run out of time; `accept` says so.
    let r = rx.recv_timeout(HANDSHAKE_TIMEOUT + Duration::from_secs(10)).expect("the server reports the time-outs");
    assert!(matches!(r, Err(ConnTimeoutError::HandshakeTimeout)), "{address}: {r:?}");
    stop.store(true, Relaxed);
    let trickling = trickler.join().unwrap();
    let still_open = trickling.iter().filter(|p| !closed_by_listener(p)).count();
    assert_eq!(still_open, 0, "{address}: a trickling peer outlived its handshake time");
    drop(rx);
    drop(server);
    (address.to_string(), waited)
}
