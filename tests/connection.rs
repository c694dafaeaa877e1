//! Listener and Client, CONN-* in `docs/BEHAVIOURS.md`: connections made by address, also between
//! separately launched programs (this test binary run again with `std::process::Command`).
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use multiproc::{Address, Client, ConnError, ConnTimeoutError, Listener};
use multiproc::{
    Array, ArrayQueue, Condition, Connection, Event, Lock, Pipe, Process, Queue, RecvError, RecvTimeoutError,
    SharedMemory, Value,
};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// The three families, each with a fresh address.
fn addresses(tag: &str) -> Vec<Address> {
    let path = std::env::temp_dir().join(format!("mp-conn-{tag}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    vec![Address::Unix(path), Address::unique(), "tcp:127.0.0.1:0".parse().unwrap()]
}

/// Starts this test binary again as a separate program that plays `role` against `address`.
fn peer(role: &str, address: &Address) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "peer_program", "--nocapture", "--test-threads=1", "-q"])
        .env("MP_PEER_ROLE", role)
        .env("MP_PEER_ADDRESS", address.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the peer program")
}

/// The peer's side; a failed check panics, so the program exits non-zero.
#[test]
#[ignore = "run by the other tests of this file as a separate program"]
fn peer_program() {
    let role = std::env::var("MP_PEER_ROLE").expect("set by the test that runs this");
    let address: Address = std::env::var("MP_PEER_ADDRESS").unwrap().parse().unwrap();
    match role.as_str() {
        "echo-client" => {
            let mut c = Client::connect(&address, Some(b"secret")).unwrap();
            c.send_bytes(b"hello").unwrap();
            assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"hello");
        }
        "wrong-key-client" => {
            let r = Client::connect(&address, Some(b"not the key"));
            assert!(matches!(r, Err(ConnError::Authentication(_))), "{r:?}");
        }
        "serve-once" => {
            // A listener in this program; the test connects to it. Prints nothing: the test
            // waits for the socket (unix) by retrying.
            let l = Listener::bind(&address, Some(b"secret")).unwrap();
            let mut c = l.accept_timeout(T).unwrap();
            let m = c.recv_bytes_timeout(T).unwrap();
            c.send_bytes(&m).unwrap();
            assert!(matches!(c.recv_bytes_timeout(T), Err(RecvTimeoutError::Disconnected)));
        }
        "receive-objects" => {
            let mut c = Client::connect(&address, Some(b"secret")).unwrap();
            c.recv_object::<Queue<u64>>().unwrap().put(&42).unwrap();
            assert!(
                c.recv_object::<Lock>().unwrap().try_lock().is_err_and(|e| e.is_would_block()),
                "the sender holds it"
            );
            c.recv_object::<Value<u64>>().unwrap().fetch_add(1).unwrap();
            c.recv_object::<Array<u32>>().unwrap().set(0, 5).unwrap();
            c.recv_object::<SharedMemory>().unwrap().write_at(0, b"howdy").unwrap();
            c.recv_object::<Event>().unwrap().set();
            let g = c.recv_object::<Condition<Lock>>().unwrap();
            drop(g.lock().lock().unwrap());
            c.recv_object::<ArrayQueue<u64>>().unwrap().try_push(9).unwrap();
            let mut end = c.recv_object::<Connection>().unwrap();
            end.send_bytes(b"via the passed end").unwrap();
            let r = c.recv_object::<Queue<String>>();
            assert!(matches!(r, Err(RecvError::WrongType { .. })), "{r:?}");
            c.send_bytes(b"done").unwrap();
            assert!(matches!(c.recv_bytes_timeout(T), Err(RecvTimeoutError::Disconnected)));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn conn_1_and_2_every_family_connects_both_ways_across_programs() {
    let _g = common::guard();
    for a in addresses("c1") {
        let l = Listener::bind(&a, Some(b"secret")).unwrap();
        let mut p = peer("echo-client", l.address());
        let mut c = l.accept_timeout(T).unwrap_or_else(|e| panic!("{a}: {e}"));
        let m = c.recv_bytes_timeout(T).unwrap();
        c.send_bytes(&m).unwrap();
        assert!(p.wait().unwrap().success(), "{a}");
        assert!(
            matches!(c.recv_bytes_timeout(T), Err(RecvTimeoutError::Disconnected)),
            "{a}: the peer's exit is end of file"
        );
    }
}

#[test]
fn conn_2_a_listener_in_another_program_is_reached_by_address() {
    let _g = common::guard();
    let a = Address::unique();
    let mut p = peer("serve-once", &a);
    let mut c = loop {
        match Client::connect(&a, Some(b"secret")) {
            Ok(c) => break c,
            Err(ConnError::Refused(_)) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("{e}"),
        }
    };
    c.send_bytes(b"ping").unwrap();
    assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"ping");
    drop(c);
    assert!(p.wait().unwrap().success());
}

#[test]
fn conn_3_a_wrong_key_fails_on_both_sides_and_the_listener_goes_on() {
    let _g = common::guard();
    for a in addresses("c3") {
        let l = Listener::bind(&a, Some(b"secret")).unwrap();
        let mut p = peer("wrong-key-client", l.address());
        let r = l.accept_timeout(T);
        assert!(matches!(r, Err(ConnTimeoutError::Authentication(_))), "{a}: {r:?}");
        assert!(p.wait().unwrap().success(), "{a}: the client saw an authentication error too");
        // A key on one side only is refused as well: the keyless client fails and hangs up
        // without answering, which the listener drops as it drops any peer that hangs up in
        // its handshake (no error to report: the accept goes on waiting).
        let t = {
            let a = l.address().clone();
            std::thread::spawn(move || Client::connect(&a, None).map(drop))
        };
        let r = l.accept_timeout(Duration::from_millis(500));
        assert!(
            matches!(
                r,
                Err(ConnTimeoutError::Timeout | ConnTimeoutError::Authentication(_) | ConnTimeoutError::Protocol(_))
            ),
            "{a}: {r:?}"
        );
        assert!(matches!(t.join().unwrap(), Err(ConnError::Authentication(_))));
        // The listener still serves a client with the right key.
        let mut p = peer("echo-client", l.address());
        let mut c = l.accept_timeout(T).unwrap();
        let m = c.recv_bytes_timeout(T).unwrap();
        c.send_bytes(&m).unwrap();
        assert!(p.wait().unwrap().success());
    }
}

#[test]
fn conn_4_a_dropped_listener_removes_its_file_and_refuses() {
    let path = std::env::temp_dir().join(format!("mp-conn-c4-{}.sock", std::process::id()));
    let a = Address::Unix(path.clone());
    let l = Listener::bind(&a, None).unwrap();
    assert!(path.exists());
    drop(l);
    assert!(!path.exists());
    assert!(matches!(Client::connect(&a, None), Err(ConnError::Refused(_))));
}

#[test]
fn conn_5_a_live_listeners_address_is_in_use() {
    for a in addresses("c5") {
        let l = Listener::bind(&a, None).unwrap();
        assert!(matches!(Listener::bind(l.address(), None), Err(ConnError::AddressInUse(_))), "{a}");
    }
}

#[test]
fn conn_6_nobody_listening_is_refused_at_once() {
    let t = std::time::Instant::now();
    for a in addresses("c6") {
        let a = match a {
            Address::Tcp(_) => {
                // A port that was free a moment ago.
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let port = l.local_addr().unwrap().port();
                drop(l);
                format!("tcp:127.0.0.1:{port}").parse().unwrap()
            }
            a => a,
        };
        assert!(matches!(Client::connect(&a, None), Err(ConnError::Refused(_))), "{a}");
    }
    assert!(t.elapsed() < common::AT_ONCE * 4, "took {:?}", t.elapsed());
}

/// A timed connect with a zero timeout looks once, for every family: a TCP one is not an OS
/// error (`connect_timeout` refuses a zero duration; the crate gives it the shortest look).
#[test]
fn conn_a_zero_timeout_connect_looks_once_and_is_no_os_error() {
    for a in addresses("c6z") {
        let l = Listener::bind(&a, None).unwrap();
        let a = l.address().clone();
        let accepted = std::thread::spawn(move || l.accept_timeout(T).map(drop));
        match Client::connect_timeout(&a, None, Duration::ZERO) {
            Ok(_) | Err(ConnTimeoutError::Timeout) => {}
            Err(e) => panic!("{a}: {e:?}"),
        }
        // A real connect lets the accepting thread finish either way.
        let _ = Client::connect_timeout(&a, None, T);
        accepted.join().unwrap().unwrap();
    }
}

/// A peer that connects and hangs up without a word (a port probe) is no client: `accept`
/// drops it and returns the next real client, on every family.
#[test]
fn conn_b3_a_peer_that_hangs_up_in_its_handshake_is_dropped_not_reported() {
    for a in addresses("b3hang") {
        let l = Listener::bind(&a, None).unwrap();
        let a = l.address().clone();
        // Connects and closes at once, before any handshake.
        match &a {
            Address::Unix(p) => drop(std::os::unix::net::UnixStream::connect(p).unwrap()),
            Address::Abstract(n) => {
                use std::os::linux::net::SocketAddrExt;
                let sa = std::os::unix::net::SocketAddr::from_abstract_name(n.as_bytes()).unwrap();
                drop(std::os::unix::net::UnixStream::connect_addr(&sa).unwrap());
            }
            Address::Tcp(hp) => drop(std::net::TcpStream::connect(hp.as_str()).unwrap()),
            _ => unreachable!(),
        }
        let client = {
            let a = a.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                Client::connect_timeout(&a, None, T).map(drop)
            })
        };
        assert!(l.accept_timeout(T).is_ok(), "{a}: the probe's hang-up was reported");
        client.join().unwrap().unwrap();
    }
}

/// `bind` on a Unix path that holds anything but a socket (a regular file, a directory, a
/// symbolic link) leaves it alone and reports the address in use; a live listener that
/// another `bind` probes keeps serving.
#[test]
fn conn_5_bind_never_removes_what_is_not_a_stale_socket() {
    let dir = std::env::temp_dir().join(format!("mp-conn5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("precious.txt");
    std::fs::write(&file, b"precious data").unwrap();
    let sub = dir.join("a-directory");
    std::fs::create_dir_all(&sub).unwrap();
    let link = dir.join("a-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&file, &link).unwrap();
    for p in [&file, &sub, &link] {
        let r = Listener::bind(format!("unix:{}", p.display()), None);
        assert!(matches!(r, Err(ConnError::AddressInUse(_))), "{}: {r:?}", p.display());
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"precious data");
    assert!(sub.is_dir() && std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // A live listener probed by another bind goes on accepting.
    let sock = dir.join("live.sock");
    let l = Listener::bind(format!("unix:{}", sock.display()), None).unwrap();
    assert!(matches!(Listener::bind(format!("unix:{}", sock.display()), None), Err(ConnError::AddressInUse(_))));
    let a = l.address().clone();
    let client = std::thread::spawn(move || Client::connect_timeout(&a, None, T).map(drop));
    assert!(l.accept_timeout(T).is_ok(), "the other bind's probe broke the live listener's accept");
    client.join().unwrap().unwrap();
    drop(l);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn conn_7_last_accepted_names_a_tcp_peer() {
    let l = Listener::bind("tcp:127.0.0.1:0", None).unwrap();
    let a = l.address().clone();
    let t = std::thread::spawn(move || Client::connect(&a, None).unwrap());
    let _c = l.accept_timeout(T).unwrap();
    let _client = t.join().unwrap();
    match l.last_accepted() {
        Some(Address::Tcp(hp)) => assert!(hp.starts_with("127.0.0.1:"), "{hp}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn conn_8_accepted_connections_do_what_pipes_do() {
    let _g = common::guard();
    for a in addresses("c8") {
        let l = Listener::bind(&a, None).unwrap();
        let addr = l.address().clone();
        let p = Process::new(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let mut c = Client::connect(&addr, None)?;
            let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
            c.send_bytes(&big)?;
            c.send_bytes(b"0123456789")?;
            c.send(&vec![1u32, 2, 3])?;
            c.send(&"text".to_string())?;
            Ok(()) // drop: end of file
        });
        p.start().unwrap();
        let mut c = l.accept_timeout(T).unwrap();
        c.poll_timeout(T).unwrap();
        let big = c.recv_bytes_timeout(T).unwrap();
        assert_eq!(big.len(), 3 << 20);
        assert!(big.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8), "{a}: a MiB message intact");
        let mut buf = [0u8; 16];
        assert_eq!(c.recv_bytes_into(&mut buf, 3).unwrap(), 10);
        assert_eq!(&buf[3..13], b"0123456789");
        assert!(matches!(c.recv::<u64>(), Err(RecvError::WrongType { .. })), "{a}: typed messages are checked");
        assert_eq!(c.recv::<Vec<u32>>().unwrap(), [1, 2, 3]);
        assert_eq!(c.recv::<String>().unwrap(), "text");
        p.join().unwrap().exit_ok().unwrap();
        assert!(matches!(c.recv_bytes_timeout(T), Err(RecvTimeoutError::Disconnected)), "{a}");
        assert!(c.try_poll().is_ok(), "{a}: end of file polls ready");
    }
}

#[test]
fn conn_9_clients_connect_in_turn_each_with_its_own_connection() {
    let _g = common::guard();
    for a in addresses("c9") {
        let l = Listener::bind(&a, None).unwrap();
        let addr = l.address().clone();
        let t = std::thread::spawn(move || {
            (0..3u8)
                .map(|i| {
                    let mut c = Client::connect(&addr, None).unwrap();
                    c.send_bytes(&[i]).unwrap();
                    c.recv_bytes_timeout(T).unwrap()
                })
                .collect::<Vec<_>>()
        });
        for _ in 0..3 {
            let mut c = l.accept_timeout(T).unwrap();
            let m = c.recv_bytes_timeout(T).unwrap();
            c.send_bytes(&[m[0] + 100]).unwrap();
        }
        assert_eq!(t.join().unwrap(), [vec![100], vec![101], vec![102]], "{a}");
    }
}

/// CONN-B1: a same-host connection runs on shared-memory rings: it passes descriptors, which
/// only the ring transport's side socket can (a TCP connection refuses).
#[test]
fn conn_b1_same_host_connections_run_on_rings() {
    for a in addresses("b1") {
        let l = Listener::bind(&a, None).unwrap();
        let addr = l.address().clone();
        let t = std::thread::spawn(move || Client::connect(&addr, None).unwrap());
        let mut server = l.accept_timeout(T).unwrap();
        let mut client = t.join().unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        use std::os::fd::AsFd;
        match a {
            Address::Tcp(_) => {
                assert!(matches!(server.send_fd(file.as_fd()), Err(multiproc::SendError::FdPassingDisabled)))
            }
            _ => {
                server.send_fd(file.as_fd()).unwrap();
                let got = client.recv_fd_timeout(T).unwrap();
                assert!(std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&got)))
                    .unwrap()
                    .ends_with("status"));
            }
        }
    }
}

/// CONN-B2: a socket file left by a SIGKILLed listener does not block a new bind.
#[test]
fn conn_b2_a_killed_listeners_stale_socket_file_is_replaced() {
    let _g = common::guard();
    let path = std::env::temp_dir().join(format!("mp-conn-b2-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let a = Address::Unix(path.clone());
    let bound = multiproc::Event::new().unwrap();
    let (a2, b2) = (a.clone(), bound.clone());
    let p = Process::new(move || -> std::convert::Infallible {
        let _l = Listener::bind(&a2, None).unwrap();
        b2.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    p.start().unwrap();
    assert!(bound.wait_timeout(T).is_ok());
    p.kill().unwrap();
    p.join().unwrap();
    assert!(path.exists(), "the killed listener left its file");
    let l = Listener::bind(&a, None).expect("the stale file does not block the bind");
    let t = std::thread::spawn(move || Client::connect(&a, None).map(drop));
    l.accept_timeout(T).unwrap();
    t.join().unwrap().unwrap();
}

/// Every kind of object sent over a connection to a separately launched program works
/// there, without a name; a mismatched type is refused.
#[test]
fn conn_objects_sent_over_a_connection_work_in_another_program() {
    let _g = common::guard();
    let l = Listener::bind(Address::unique(), Some(b"secret")).unwrap();
    let mut p = peer("receive-objects", l.address());
    let mut c = l.accept_timeout(T).unwrap();
    let q = Queue::<u64>::new().unwrap();
    c.send_object(&q).unwrap();
    let lock = Lock::new().unwrap();
    let held = lock.lock().unwrap();
    c.send_object(&lock).unwrap();
    let v = Value::new(1u64).unwrap();
    c.send_object(&v).unwrap();
    let a = Array::<u32>::zeroed(4).unwrap();
    c.send_object(&a).unwrap();
    let shm = SharedMemory::anonymous(16).unwrap();
    c.send_object(&shm).unwrap();
    let e = Event::new().unwrap();
    c.send_object(&e).unwrap();
    let cond = Condition::new(Lock::new().unwrap()).unwrap();
    c.send_object(&cond).unwrap();
    let aq = ArrayQueue::<u64>::new(4).unwrap();
    c.send_object(&aq).unwrap();
    let (mut mine, theirs) = Pipe::builder().fd_passing(true).duplex().unwrap();
    c.send_object(&theirs).unwrap();
    drop(theirs);
    c.send_object(&Queue::<u64>::new().unwrap()).unwrap(); // the peer asks for a Queue<String>
    assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"done");
    drop(held);
    assert_eq!(q.get_timeout(T).unwrap(), 42);
    assert_eq!(v.get().unwrap(), 2);
    assert_eq!(a.get(0).unwrap(), 5);
    let mut b = [0u8; 5];
    shm.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"howdy");
    assert!(e.is_set());
    assert_eq!(aq.try_pop().unwrap(), 9);
    assert_eq!(mine.recv_bytes_timeout(T).unwrap(), b"via the passed end");
    drop(c);
    assert!(p.wait().unwrap().success());
    assert!(
        matches!(mine.recv_bytes_timeout(T), Err(RecvTimeoutError::Disconnected)),
        "the passed end died with the peer"
    );
}

#[test]
fn conn_objects_need_descriptor_passing() {
    let (mut a, mut b) = Pipe::duplex().unwrap();
    let q = Queue::<u8>::new().unwrap();
    assert!(matches!(a.send_object(&q), Err(multiproc::SendError::FdPassingDisabled)));
    assert!(matches!(b.recv_object::<Queue<u8>>(), Err(RecvError::FdPassingDisabled)));
}
