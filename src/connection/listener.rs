//! `Listener` and `Client`: connections made by address.

use super::address::Address;
use super::auth::{HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES};
use super::pending::{hung_up, Acceptor, Handshake};
use super::socket::SockLink;
use super::stream::Stream;
use super::to_address::ToAddress;
use super::{auth, ConnError, ConnTimeoutError, TryConnError};
use crate::queue::{Connection, Exported, Pipe, EXPORT_WORDS};
use crate::sys::clock::Deadline;
use crate::sys::process::poll_many;
use crate::wait::Limit;
use std::io::Read;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the listener sends with the ring descriptors.
const RINGS_MAGIC: &[u8; 8] = b"MPRINGS1";

/// Largest message on a TCP connection (as a `Pipe`'s default).
const TCP_MAX_MESSAGE: usize = 1 << 30;

#[derive(Debug)]
enum Sock {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// Listens at an [`Address`] and accepts [`Connection`]s from [`Client::connect`] (Python's
/// `multiprocessing.connection.Listener`).
///
/// Connections to a Unix or abstract address run over shared-memory rings once the handshake
/// is done (the rings' descriptors travel once over the socket): they are as fast as a
/// [`Pipe`], and support everything a `Pipe` end does, descriptor passing included. TCP
/// connections stay on the socket, with the same API (without descriptor passing).
///
/// With an `authkey`, each side proves to the other that it knows the key (an HMAC-SHA256
/// challenge in both directions) before any message is exchanged; a wrong key is
/// [`ConnError::Authentication`] on both sides.
///
/// Dropping the listener stops listening and removes its socket file. A socket file left by a
/// listener that died does not block a new `bind` (CONN-B2).
///
/// # Examples
///
/// ```
/// use multiproc::{Address, Client, Listener};
///
/// let listener = Listener::bind(Address::unique(), Some(b"secret"))?;
/// let address = listener.address().clone();
/// let client = std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let mut c = Client::connect(&address, Some(b"secret"))?; // typically another program
///     c.send_bytes(b"hello")?;
///     assert_eq!(c.recv_bytes()?, b"hello");
///     Ok(())
/// });
/// let mut conn = listener.accept()?;
/// let msg = conn.recv_bytes()?;
/// conn.send_bytes(&msg)?; // echo
/// client.join().unwrap().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Listener {
    sock: Sock,
    address: Address,
    authkey: Option<Vec<u8>>,
    last: Mutex<Option<Address>>,
    /// The handshakes under way (CONN-B3).
    acceptor: Acceptor,
    /// The socket file this listener made, with its device and inode: removed on drop if the
    /// path still names it.
    file: Option<(PathBuf, u64, u64)>,
}

impl Listener {
    /// Listens at `address` (an [`Address`] or its text, e.g. `"unix:/run/app.sock"`), with an
    /// optional `authkey` that every client must know.
    ///
    /// # Errors
    /// [`ConnError::BadAddress`]; [`ConnError::AddressInUse`] if a live listener has it, or if
    /// anything but a socket file is at a Unix path (a regular file, a directory, a symbolic
    /// link: left alone); a stale Unix socket file (its listener dead) is replaced instead;
    /// [`ConnError::Os`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("mp-doc-{}.sock", std::process::id()));
    /// let l = multiproc::Listener::bind(format!("unix:{}", path.display()), None)?;
    /// assert!(path.exists());
    /// drop(l);
    /// assert!(!path.exists()); // the listener removes its socket file
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(address: impl ToAddress, authkey: Option<&[u8]>) -> Result<Listener, ConnError> {
        let address = address.to_address()?;
        let in_use = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::AddrInUse => ConnError::AddressInUse(address.clone()),
            _ => ConnError::Os(e),
        };
        let (sock, file, address) = match &address {
            Address::Unix(path) => {
                let l = match UnixListener::bind(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && is_stale(path) => {
                        // A dead listener's file: nobody accepts on it. Replace it.
                        let _ = std::fs::remove_file(path);
                        UnixListener::bind(path).map_err(in_use)?
                    }
                    r => r.map_err(in_use)?,
                };
                let meta = std::fs::metadata(path).map_err(ConnError::Os)?;
                (Sock::Unix(l), Some((path.clone(), meta.dev(), meta.ino())), address.clone())
            }
            Address::Abstract(name) => {
                let a = SocketAddr::from_abstract_name(name.as_bytes()).map_err(ConnError::Os)?;
                (Sock::Unix(UnixListener::bind_addr(&a).map_err(in_use)?), None, address.clone())
            }
            Address::Tcp(hostport) => {
                let l = TcpListener::bind(hostport.as_str()).map_err(in_use)?;
                let real = l.local_addr().map_err(ConnError::Os)?;
                (Sock::Tcp(l), None, Address::Tcp(real.to_string()))
            }
        };
        match &sock {
            Sock::Unix(l) => l.set_nonblocking(true),
            Sock::Tcp(l) => l.set_nonblocking(true),
        }
        .map_err(ConnError::Os)?;
        Ok(Listener {
            sock,
            address,
            authkey: authkey.map(<[u8]>::to_vec),
            last: Mutex::new(None),
            acceptor: Acceptor::default(),
            file,
        })
    }

    /// The address clients connect to (for `tcp:HOST:0`, with the port that was picked).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = multiproc::Listener::bind("tcp:127.0.0.1:0", None)?;
    /// assert!(!l.address().to_string().ends_with(":0"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The address of the last accepted client, where it has one (TCP peers do; Unix clients
    /// are usually unnamed): Python's `last_accepted`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = multiproc::Listener::bind("tcp:127.0.0.1:0", None)?;
    /// assert_eq!(l.last_accepted(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_accepted(&self) -> Option<Address> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for a client and returns the connection once the handshake succeeded.
    ///
    /// Handshakes run side by side (CONN-B3): every client that has connected gets its hello at
    /// once, and the first to finish its handshake is returned; the others go on in this call
    /// or the next. A peer that connects and says nothing, or sends a byte a second, holds one
    /// of [`MAX_PENDING_HANDSHAKES`](crate::MAX_PENDING_HANDSHAKES) places (the oldest is
    /// dropped for a newcomer) for at most [`HANDSHAKE_TIMEOUT`], and delays nobody. A peer
    /// that connects and hangs up before its handshake is done (a port probe, or another
    /// program's [`bind`](Self::bind) checking whether this listener is alive) is dropped
    /// without a word: it is no client, and the wait goes on. Several threads may accept on
    /// one listener: they take turns running the handshakes.
    ///
    /// # Errors
    /// A handshake that failed, reported once and only when no other finished in the same
    /// pass (the failed peer is dropped; the listener goes on working):
    /// [`ConnError::Authentication`] if a client's key is wrong, [`ConnError::Protocol`],
    /// [`ConnError::HandshakeTimeout`] if a client said nothing for [`HANDSHAKE_TIMEOUT`].
    /// Also [`ConnError::Shm`], [`ConnError::Os`].
    ///
    /// # Examples
    ///
    /// See [`Listener`].
    pub fn accept(&self) -> Result<Connection, ConnError> {
        self.accept_until(Limit::Forever).map_err(ConnTimeoutError::handshake)
    }

    /// [`accept`](Self::accept) without waiting: takes the clients that have connected, moves
    /// every pending handshake on by what its peer has sent, and returns a connection whose
    /// handshake finished. A client whose answer has not arrived yet stays pending: a later
    /// call (or `accept`) returns it.
    ///
    /// # Errors
    /// [`TryConnError::WouldBlock`] if no handshake finished now (or another thread is
    /// accepting), or as [`accept`](Self::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Address, Listener};
    ///
    /// let l = Listener::bind(Address::unique(), None)?;
    /// assert!(l.try_accept().unwrap_err().is_would_block());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_accept(&self) -> Result<Connection, TryConnError> {
        self.accept_until(Limit::Now).map_err(ConnTimeoutError::try_form)
    }

    /// [`accept`](Self::accept), waiting at most `timeout` for a client to connect
    /// (`Duration::MAX` waits forever).
    ///
    /// # Errors
    /// [`ConnTimeoutError::Timeout`] if no client came, or as [`accept`](Self::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Address, ConnTimeoutError, Listener};
    ///
    /// let l = Listener::bind(Address::unique(), None)?;
    /// let r = l.accept_timeout(std::time::Duration::from_millis(10));
    /// assert!(matches!(r, Err(ConnTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Connection, ConnTimeoutError> {
        self.accept_until(Limit::timeout(timeout))
    }

    /// [`accept`](Self::accept), waiting until `deadline` for a client to connect.
    ///
    /// # Errors
    /// As [`accept_timeout`](Self::accept_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Address, Listener};
    ///
    /// let l = Listener::bind(Address::unique(), None)?;
    /// assert!(l.accept_deadline(std::time::Instant::now()).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accept_deadline(&self, deadline: Instant) -> Result<Connection, ConnTimeoutError> {
        self.accept_until(Limit::deadline(deadline))
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.sock {
            Sock::Unix(l) => l.as_fd(),
            Sock::Tcp(l) => l.as_fd(),
        }
    }

    fn accept_until(&self, limit: Limit) -> Result<Connection, ConnTimeoutError> {
        let mut turn = self.acceptor.enter(limit).ok_or(ConnTimeoutError::Timeout)?;
        let key = self.authkey.as_deref();
        let flags = if self.address.is_local() { auth::RINGS } else { 0 };
        let mut revents = Vec::new();
        loop {
            let mut failure = None;
            // Twice round: first the handshakes under way (a client whose answer is already
            // here finishes before newcomers can push it out of the pending list), then again
            // after taking what the kernel has queued, at most a list's worth per pass (a
            // flood of connects must not keep us from ever advancing).
            for round in 0..2 {
                match turn.advance(key) {
                    Some(Ok(h)) => {
                        let peer = h.peer.clone();
                        match self.finish(h.into_stream()?) {
                            Ok(conn) => {
                                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = peer;
                                return Ok(conn);
                            }
                            // Gone while its rings were handed over (a client that gave up at
                            // its own timeout): no client either, as below.
                            Err(e) if hung_up(&e) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    // A peer that hung up is no client: dropped, the wait goes on.
                    Some(Err(e)) if !hung_up(&e) => {
                        failure.get_or_insert(e);
                    }
                    Some(Err(_)) | None => {}
                }
                if round == 1 {
                    break;
                }
                for _ in 0..MAX_PENDING_HANDSHAKES {
                    let accepted = match &self.sock {
                        Sock::Unix(l) => l.accept().map(|(s, a)| (Stream::Unix(s), unix_address(&a))),
                        Sock::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Some(Address::Tcp(a.to_string())))),
                    };
                    match accepted {
                        Ok((stream, peer)) => match Handshake::start(stream, peer, key, flags) {
                            Ok(h) => turn.push(h),
                            Err(e) if !hung_up(&e) => {
                                failure.get_or_insert(e);
                            }
                            Err(_) => {}
                        },
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                            ) => {}
                        // Out of descriptors, say: reported, after the handshakes under way
                        // had their turn.
                        Err(e) => {
                            failure.get_or_insert(ConnError::Os(e));
                            break;
                        }
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
            if limit.passed() {
                return Err(ConnTimeoutError::Timeout);
            }
            // Sleep until a client connects, a pending peer sends something, a handshake runs
            // out of time, or the limit passes.
            let wake = crate::wait::earliest(limit.deadline_opt(), turn.next_expiry().and_then(Deadline::at));
            let timeout_ms =
                wake.map_or(-1, |d| d.remaining().as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32);
            let fds: Vec<BorrowedFd<'_>> = std::iter::once(self.fd()).chain(turn.fds()).collect();
            poll_many(&fds, libc::POLLIN, timeout_ms, &mut revents).map_err(ConnError::Os)?;
        }
    }

    /// Turns an authenticated stream into a connection: a Unix one moves onto shared-memory
    /// rings (their descriptors travel once over the socket), a TCP one stays on the socket.
    fn finish(&self, stream: Stream) -> Result<Connection, ConnError> {
        match stream {
            Stream::Tcp(s) => {
                SockLink::new(s).map(|l| Connection::over_stream(Box::new(l), TCP_MAX_MESSAGE)).map_err(ConnError::Os)
            }
            Stream::Unix(s) => {
                let (mine, theirs) = Pipe::builder().fd_passing(true).duplex().map_err(ConnError::Shm)?;
                let x = theirs.export()?;
                // Let go of it before the client can import it: a client in this same process
                // finds its sides free (`held.rs`). The exported descriptors keep it open.
                drop(theirs);
                let mut msg = RINGS_MAGIC.to_vec();
                for w in x.words {
                    msg.extend_from_slice(&w.to_le_bytes());
                }
                let fds: Vec<BorrowedFd<'_>> = x.fds.iter().map(|f| f.as_fd()).collect();
                // The client holds its end once it receives these (the descriptors in flight
                // keep it open until then, or die with the socket if it never does).
                crate::sys::fdpass::send_fds(s.as_fd(), &fds, &msg).map_err(ConnError::Os)?;
                Ok(mine)
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((path, dev, ino)) = &self.file {
            if std::fs::metadata(path).is_ok_and(|m| m.dev() == *dev && m.ino() == *ino) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Whether `path` is a socket file with no listener (connecting is refused). Anything that
/// is not a socket (a regular file, a directory, a symbolic link) is never stale: `bind`
/// leaves it alone and reports the address in use.
fn is_stale(path: &PathBuf) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
        && matches!(UnixStream::connect(path), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

fn unix_address(a: &SocketAddr) -> Option<Address> {
    if let Some(p) = a.as_pathname() {
        return Some(Address::Unix(p.to_path_buf()));
    }
    a.as_abstract_name().map(|n| Address::Abstract(String::from_utf8_lossy(n).into_owned()))
}

/// Connects to a [`Listener`] (Python's `multiprocessing.connection.Client`).
///
/// # Examples
///
/// See [`Listener`].
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Connects to the listener at `address` and returns the connection once the handshake
    /// succeeded. Does not wait for a listener to appear: nobody listening is
    /// [`ConnError::Refused`] at once (CONN-6).
    ///
    /// **Unlike Python**, this always waits for the listener's side of the handshake, which
    /// runs in its [`accept`](Listener::accept): Python's `Client(address)` without an authkey
    /// returns as soon as the socket connects, so a Python program may connect and then
    /// `accept` in the same thread. Here that program waits for an `accept` that cannot come
    /// (and fails with [`ConnError::HandshakeTimeout`]): accept in another thread or process,
    /// as the example on [`Listener`] does. (The hello is what lets a connection move onto
    /// shared-memory rings and refuses a peer of another protocol version.)
    ///
    /// # Errors
    /// [`ConnError::BadAddress`], [`ConnError::Refused`], [`ConnError::Authentication`] (a
    /// wrong key, or a key on one side only), [`ConnError::Protocol`],
    /// [`ConnError::HandshakeTimeout`] if the listener does not finish the handshake within
    /// [`HANDSHAKE_TIMEOUT`], [`ConnError::Shm`], [`ConnError::Os`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Address, Client, ConnError};
    ///
    /// let r = Client::connect(Address::unique(), None);
    /// assert!(matches!(r, Err(ConnError::Refused(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(address: impl ToAddress, authkey: Option<&[u8]>) -> Result<Connection, ConnError> {
        let address = address.to_address()?;
        Client::connect_until(&address, authkey, Limit::timeout(HANDSHAKE_TIMEOUT)).map_err(ConnTimeoutError::handshake)
    }

    /// [`connect`](Self::connect), giving a TCP connect and the handshake at most `timeout`.
    ///
    /// # Errors
    /// [`ConnTimeoutError::Timeout`] if the time ran out, or as [`connect`](Self::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Client, ConnTimeoutError};
    ///
    /// let r = Client::connect_timeout("unix:/nonexistent/x.sock", None, std::time::Duration::from_secs(1));
    /// assert!(matches!(r, Err(ConnTimeoutError::Refused(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_timeout(
        address: impl ToAddress,
        authkey: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Connection, ConnTimeoutError> {
        let address = address.to_address()?;
        Client::connect_until(&address, authkey, Limit::timeout(timeout))
    }

    /// [`connect`](Self::connect), giving a TCP connect and the handshake until `deadline`.
    ///
    /// # Errors
    /// As [`connect_timeout`](Self::connect_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Client, ConnTimeoutError};
    ///
    /// let later = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// let r = Client::connect_deadline("unix:/nonexistent/x.sock", None, later);
    /// assert!(matches!(r, Err(ConnTimeoutError::Refused(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_deadline(
        address: impl ToAddress,
        authkey: Option<&[u8]>,
        deadline: Instant,
    ) -> Result<Connection, ConnTimeoutError> {
        let address = address.to_address()?;
        Client::connect_until(&address, authkey, Limit::deadline(deadline))
    }

    fn connect_until(address: &Address, authkey: Option<&[u8]>, limit: Limit) -> Result<Connection, ConnTimeoutError> {
        let timeout = match limit.deadline_opt() {
            Some(d) => d.remaining(),
            None => Duration::MAX,
        };
        let start = Instant::now();
        let refused = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => ConnError::Refused(address.clone()),
            std::io::ErrorKind::TimedOut => ConnError::HandshakeTimeout,
            _ => ConnError::Os(e),
        };
        let mut stream = match address {
            Address::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(refused)?),
            Address::Abstract(n) => {
                let a = SocketAddr::from_abstract_name(n.as_bytes()).map_err(ConnError::Os)?;
                Stream::Unix(UnixStream::connect_addr(&a).map_err(refused)?)
            }
            Address::Tcp(hp) => {
                let mut last = None;
                let mut got = None;
                for a in hp.to_socket_addrs().map_err(ConnError::Os)? {
                    // `connect_timeout` refuses a zero duration (EINVAL): a timeout of zero
                    // (or one already spent) still gets one short look, as every timed form does.
                    match TcpStream::connect_timeout(&a, timeout.max(Duration::from_millis(1))) {
                        Ok(s) => {
                            got = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match got {
                    Some(s) => Stream::Tcp(s),
                    None => return Err(refused(last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into())).into()),
                }
            }
        };
        stream.set_timeout(timeout.saturating_sub(start.elapsed()).max(Duration::from_millis(1)))?;
        // The handshake runs on the caller's time: a stall is the caller's `Timeout`.
        let flags = auth::answer(&mut stream, authkey).map_err(|e| match e {
            ConnError::HandshakeTimeout => ConnTimeoutError::Timeout,
            e => e.into(),
        })?;
        match stream {
            Stream::Tcp(s) => SockLink::new(s)
                .map(|l| Connection::over_stream(Box::new(l), TCP_MAX_MESSAGE))
                .map_err(ConnTimeoutError::Os),
            Stream::Unix(s) if flags & auth::RINGS != 0 => receive_rings(&s),
            Stream::Unix(_) => Err(ConnTimeoutError::Protocol("a same-host listener that offers no rings")),
        }
    }
}

/// The client's end of the rings the listener sent after the handshake.
fn receive_rings(s: &UnixStream) -> Result<Connection, ConnTimeoutError> {
    let mut buf = [0u8; 8 + 8 * EXPORT_WORDS];
    let (n, fds) = crate::sys::fdpass::recv_fds(s.as_fd(), &mut buf, false)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ConnTimeoutError::Timeout,
            std::io::ErrorKind::UnexpectedEof => {
                ConnTimeoutError::Protocol("the listener closed before sending the rings")
            }
            _ => ConnTimeoutError::Os(e),
        })?
        .ok_or(ConnTimeoutError::Timeout)?;
    // A stream may deliver the rest of the message separately (the descriptors come with its
    // first byte).
    (&*s).read_exact(&mut buf[n..]).map_err(|_| ConnTimeoutError::Protocol("the ring message was cut short"))?;
    if &buf[..8] != RINGS_MAGIC {
        return Err(ConnTimeoutError::Protocol("bad ring message"));
    }
    let mut words = [0u64; EXPORT_WORDS];
    for (i, w) in words.iter_mut().enumerate() {
        *w = u64::from_le_bytes(buf[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
    }
    Ok(Connection::import(Exported { fds, words }).map_err(ConnError::from)?)
}
