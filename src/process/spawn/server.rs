//! The fork server: a fresh, single-threaded image of this program (spawned once) that forks
//! children on request, so that a multi-threaded parent gets fork's start cost without fork's
//! hazards. [`ForkServer::builder`] prepares the image once (`init`) before any child.
//!
//! # Protocol
//! Requests are bootstrap messages ([`boot`](super::boot)) on the server's control socket, each
//! with a fresh *status socket* as its first descriptor. The server forks; the child runs the
//! entry (`_exit`s, never returns into the server); the server sends `"MPPID"`, the pid and a
//! pidfd of the child over the status socket, and when the child ends (it polls the pidfds of
//! its children) `"MPEXIT"` and the wait status, then closes it.
//!
//! # Deaths
//! * The creator (the process that started the server) dies or drops every handle: the
//!   control socket reaches end of file (once every copy is closed: processes forked from the
//!   creator hold copies too), and the server exits.
//! * The server dies: its children get SIGKILL (parent-death signal, set in each child right
//!   after the fork), a start fails with [`StartError::ForkServer`], and `join` on a child
//!   whose status never came returns the same error (never a hang). The next start under
//!   `ForkServer` starts a new default server.

use super::boot::{self, Boot, Role};
use super::{become_child, key, run_child, Started, BOOT_TIMEOUT};
use crate::process::call::EntryToken;
use crate::process::current::lock;
use crate::process::handle::Origin;
use crate::process::{BootError, ForkServerError, ProcFail, StartError};
use crate::sys::process::{self as sys, WaitStatus};
use crate::sys::spawn::{self as sys_spawn, SELF_EXE};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};

const PID: &[u8; 8] = b"MPPID\0\0\0";
const EXIT: &[u8; 8] = b"MPEXIT\0\0";

/// A running fork server (see the module docs). Cheap to clone; the server exits when the last
/// handle of its creator is dropped.
///
/// # Examples
///
/// ```
/// use multiproc::{ForkServer, Process};
///
/// fn warm_up() {
///     // load a fuzz target, parse a corpus, … once, in the server
/// }
/// fn child(x: u32) -> i32 {
///     x as i32
/// }
///
/// let server = ForkServer::builder().init(warm_up).start()?;
/// let p = server.spawn(Process::builder(), child, 5)?;
/// assert_eq!(p.join()?.exitcode(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ForkServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctl: Mutex<UnixStream>,
    pid: libc::pid_t,
    pidfd: OwnedFd,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the control socket tells the server to exit; reap it.
        let _ = lock(&self.ctl).shutdown(std::net::Shutdown::Both);
        let _ = sys::waitpid_blocking(self.pid);
    }
}

/// Options of a [`ForkServer`].
#[derive(Debug, Default, Clone)]
pub struct ForkServerBuilder {
    init: Option<EntryToken>,
}

/// The server `StartMethod::ForkServer` uses.
static DEFAULT: Mutex<Option<ForkServer>> = Mutex::new(None);

impl ForkServerBuilder {
    /// Runs `f` once in the server, before it forks any child: children start from the state
    /// it leaves (Python's `set_forkserver_preload`, for any preparation).
    ///
    /// # Examples
    ///
    /// See [`ForkServer`].
    pub fn init(mut self, f: fn()) -> ForkServerBuilder {
        self.init = Some(EntryToken::plain(key(), f));
        self
    }

    /// Starts the server; returns once it has run `init` and is ready.
    ///
    /// # Errors
    /// [`StartError::Os`], [`StartError::Boot`] (e.g. `init` panicked: its message is
    /// in the error).
    ///
    /// # Examples
    ///
    /// See [`ForkServer`].
    pub fn start(self) -> Result<ForkServer, StartError> {
        self.start_inner().map_err(ProcFail::start)
    }

    fn start_inner(self) -> Result<ForkServer, ProcFail> {
        std::hint::black_box(&super::BOOT_CTOR);
        let (mine, theirs) = sys_spawn::socketpair_stream().map_err(ProcFail::Os)?;
        let argv0 = sys_spawn::argv0();
        let pid = sys_spawn::spawn(Path::new(SELF_EXE), &[&argv0], theirs.as_fd()).map_err(ProcFail::Os)?;
        drop(theirs);
        let fail = |why: BootError| ProcFail::Boot(super::killed(pid, why));
        let pidfd = sys::pidfd_open(pid).map_err(|e| fail(BootError::Os(e)))?;
        let sock = UnixStream::from(mine);
        let _ = sock.set_read_timeout(Some(BOOT_TIMEOUT));
        let boot = Boot {
            version: boot::VERSION,
            role: Role::Server,
            exe: sys_spawn::file_identity(Path::new(SELF_EXE)).ok(),
            key: *key(),
            entry: self.init,
            args: Vec::new(),
            report_off: 0,
            name: "ForkServer".into(),
            identity: Vec::new(),
            parent: (sys::getpid(), String::new()),
            daemon: true,
            group: false,
        };
        if let Err(e) = boot::send(&sock, &boot, &[]) {
            return Err(fail(boot::answer(&sock).err().unwrap_or(BootError::Os(e))));
        }
        boot::answer(&sock).map_err(fail)?;
        let _ = sock.set_read_timeout(None);
        Ok(ForkServer { inner: Arc::new(Inner { ctl: Mutex::new(sock), pid, pidfd }) })
    }

    /// [`start`](Self::start) and make it the server `StartMethod::ForkServer` uses (the
    /// previous default server, if any, exits once its children's handles are dropped).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ForkServer, Process, StartMethod};
    ///
    /// fn prepare() {}
    /// fn child(_: ()) {}
    ///
    /// ForkServer::builder().init(prepare).install()?;
    /// let p = Process::builder().start_method(StartMethod::ForkServer).spawn(child, ())?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn install(self) -> Result<ForkServer, StartError> {
        self.install_inner().map_err(ProcFail::start)
    }

    fn install_inner(self) -> Result<ForkServer, ProcFail> {
        let s = self.start()?;
        *lock(&DEFAULT) = Some(s.clone());
        Ok(s)
    }
}

impl ForkServer {
    /// A builder (to run an `init` function in the server first).
    ///
    /// # Examples
    ///
    /// See [`ForkServer`].
    pub fn builder() -> ForkServerBuilder {
        ForkServerBuilder::default()
    }

    /// The server `StartMethod::ForkServer` uses: started on first use (and again if it died).
    ///
    /// # Errors
    /// As [`ForkServerBuilder::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::ForkServer::global()?;
    /// assert!(s.is_alive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn global() -> Result<ForkServer, StartError> {
        Self::global_inner().map_err(ProcFail::start)
    }

    fn global_inner() -> Result<ForkServer, ProcFail> {
        let mut d = lock(&DEFAULT);
        if let Some(s) = d.as_ref().filter(|s| s.is_alive()) {
            return Ok(s.clone());
        }
        let s = ForkServer::builder().start()?;
        *d = Some(s.clone());
        Ok(s)
    }

    /// The server's pid.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::ForkServer::global()?.pid() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.inner.pid as u32
    }

    /// Whether the server still runs.
    ///
    /// # Examples
    ///
    /// See [`ForkServer::global`].
    pub fn is_alive(&self) -> bool {
        sys::poll_now(self.inner.pidfd.as_fd(), libc::POLLIN) == 0
    }

    /// Starts `f(args)` in a child forked by this server, with `builder`'s name and flags
    /// (its start method is ignored).
    ///
    /// # Errors
    /// As [`ProcessBuilder::spawn`](crate::ProcessBuilder::spawn); [`StartError::ForkServer`] if
    /// the server is gone.
    ///
    /// # Examples
    ///
    /// See [`ForkServer`].
    pub fn spawn<A, R>(
        &self,
        builder: crate::process::ProcessBuilder,
        f: fn(A) -> R,
        args: A,
    ) -> Result<crate::Process, crate::StartError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: crate::ChildOutcome,
    {
        builder.fork_server(self).spawn(f, args)
    }

    /// Sends a child's bootstrap message; returns once the server forked it.
    pub(super) fn request(&self, boot: &Boot, fds: &[BorrowedFd<'_>]) -> Result<Started, ProcFail> {
        let gone = |why: ForkServerError| ProcFail::ForkServer(why);
        let (mine, theirs) = sys_spawn::socketpair_stream().map_err(ProcFail::Os)?;
        let mut all: Vec<BorrowedFd<'_>> = vec![theirs.as_fd()];
        all.extend_from_slice(fds);
        {
            let ctl = lock(&self.inner.ctl);
            boot::send(&ctl, boot, &all).map_err(|_| gone(ForkServerError::Gone))?;
        }
        drop(all);
        drop(theirs);
        let sock = UnixStream::from(mine);
        let _ = sock.set_read_timeout(Some(BOOT_TIMEOUT));
        let mut tag = [0u8; 12];
        let (n, mut fds) = crate::sys::fdpass::recv_fds(sock.as_fd(), &mut tag, false)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => gone(ForkServerError::Timeout),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => gone(ForkServerError::Gone),
                _ => gone(ForkServerError::Os(e)),
            })?
            .ok_or_else(|| gone(ForkServerError::Timeout))?;
        if n < tag.len() {
            (&sock).read_exact(&mut tag[n..]).map_err(|_| gone(ForkServerError::Garbage))?;
        }
        if &tag[..8] != PID || fds.len() != 1 {
            return Err(gone(ForkServerError::Garbage));
        }
        let pid = i32::from_le_bytes(tag[8..].try_into().expect("4 bytes"));
        let _ = sock.set_read_timeout(None);
        sock.set_nonblocking(true).map_err(ProcFail::Os)?;
        let wait = Arc::new(sock.as_fd().try_clone_to_owned().map_err(ProcFail::Os)?);
        Ok(Started {
            pid,
            pidfd: fds.pop().expect("one"),
            origin: Origin::Server(ServerChild { sock, wait, got: Vec::new() }),
        })
    }
}

/// The requester's side of a fork server's child: where its exit status arrives.
pub(crate) struct ServerChild {
    sock: UnixStream,
    /// A copy of `sock`'s descriptor, to wait on without the process's state lock.
    wait: Arc<OwnedFd>,
    got: Vec<u8>,
}

impl ServerChild {
    /// What `join` waits on: readable once the status (or the server's end of file) arrived.
    pub(crate) fn wait_fd(&self) -> Arc<OwnedFd> {
        self.wait.clone()
    }

    /// The child's exit status once the server sent it; `None` while it has not. Waits up to
    /// `patience` for it (the caller saw the child end: the server reports right after it
    /// reaps).
    pub(crate) fn try_status(&mut self, patience: std::time::Duration) -> Result<Option<WaitStatus>, ProcFail> {
        let mut buf = [0u8; 16];
        let deadline = crate::sys::clock::Deadline::after(patience);
        loop {
            match (&self.sock).read(&mut buf[..16 - self.got.len().min(16)]) {
                Ok(0) => return Err(ProcFail::ForkServer(ForkServerError::Gone)),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if patience.is_zero() || deadline.is_none_or(|d| d.has_passed()) {
                        return Ok(None);
                    }
                    sys::poll_readable(self.sock.as_fd(), deadline).map_err(ProcFail::Os)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ProcFail::Os(e)),
            }
            if self.got.len() >= 16 {
                if &self.got[..8] != EXIT {
                    return Err(ProcFail::ForkServer(ForkServerError::Garbage));
                }
                let kind = i32::from_le_bytes(self.got[8..12].try_into().expect("4 bytes"));
                let value = i32::from_le_bytes(self.got[12..16].try_into().expect("4 bytes"));
                return Ok(Some(if kind == 0 { WaitStatus::Exited(value) } else { WaitStatus::Signaled(value) }));
            }
        }
    }
}

/// A child the server forked, until it is reaped.
struct Kid {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    status: UnixStream,
}

/// The server's life: run `init`, answer, then serve requests until the control socket ends.
pub(super) fn serve(ctl: UnixStream, boot: Boot, _fds: Vec<OwnedFd>) -> ! {
    // No parent-death signal: it would fire when the *thread* that started the server ends
    // (a pool's manager thread, say), not the process. The server leaves when its control
    // socket reaches end of file instead: when every copy in its creator (and in children
    // forked from it) is closed, which the kernel does when they die.
    if sys::getppid() != boot.parent.0 {
        sys::exit_now(1);
    }
    crate::process::panics::install();
    if let Some(init) = boot.entry {
        match std::panic::catch_unwind(|| init.run(&boot.key, &[], Vec::new())) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                let _ = boot::nak(&ctl, "its init function's token does not authenticate");
                sys::exit_now(1);
            }
            Err(p) => {
                let _ = boot::nak(
                    &ctl,
                    &format!("its init function panicked: {}", crate::process::panics::payload_text(&*p)),
                );
                sys::exit_now(1);
            }
        }
    }
    if boot::ack(&ctl).is_err() {
        sys::exit_now(1);
    }
    let _ = ctl.set_read_timeout(Some(BOOT_TIMEOUT));
    let mut kids: Vec<Kid> = Vec::new();
    let mut revents = Vec::new();
    loop {
        let mut fds: Vec<BorrowedFd<'_>> = vec![ctl.as_fd()];
        fds.extend(kids.iter().map(|k| k.pidfd.as_fd()));
        if sys::poll_many(&fds, libc::POLLIN, -1, &mut revents).is_err() {
            continue;
        }
        drop(fds);
        // Children that ended: report and forget them.
        let ended: Vec<usize> = (0..kids.len()).filter(|&i| revents[i + 1] != 0).collect();
        for i in ended.into_iter().rev() {
            let k = kids.swap_remove(i);
            let (kind, value) = match sys::waitpid_blocking(k.pid) {
                Ok(WaitStatus::Exited(c)) => (0, c),
                Ok(WaitStatus::Signaled(s)) => (1, s),
                Err(_) => continue, // dropping `k.status` tells the requester (end of file)
            };
            let mut m = EXIT.to_vec();
            m.extend_from_slice(&i32::to_le_bytes(kind));
            m.extend_from_slice(&i32::to_le_bytes(value));
            let _ = (&k.status).write_all(&m);
        }
        if revents[0] == 0 {
            continue;
        }
        match boot::recv(&ctl) {
            Ok((req, fds)) => {
                if let Some(k) = fork_child(&ctl, &mut kids, req, fds) {
                    kids.push(k);
                }
            }
            // The creator is gone or closed the server: children die with us (their
            // parent-death signal).
            Err(_) => sys::exit_now(0),
        }
    }
}

/// Forks one requested child; the server's record of it.
fn fork_child(ctl: &UnixStream, kids: &mut Vec<Kid>, req: Boot, fds: Vec<OwnedFd>) -> Option<Kid> {
    let mut fds = fds.into_iter();
    let status = UnixStream::from(fds.next()?);
    if req.role != Role::Child {
        return None;
    }
    let server_pid = sys::getpid();
    // SAFETY: the server is single-threaded (it runs nothing but this loop), so the child may
    // do anything; it leaves through `_exit` (`run_child`).
    #[allow(unsafe_code)]
    let forked = unsafe { sys::fork() };
    match forked {
        Err(_) => None, // dropping `status`: the requester sees end of file
        Ok(sys::Fork::Child) => {
            // Die with the server; if it died already, leave now.
            let _ = sys::set_parent_death_signal(libc::SIGKILL);
            if sys::getppid() != server_pid {
                sys::exit_now(1);
            }
            // The server's sockets are not ours: close our copies (the requester must see end
            // of file on the control socket when the server dies, whatever its children do).
            // SAFETY: this child never uses `ctl` again (it leaves through `_exit` in
            // `run_child`, and the server's handle is never dropped here).
            #[allow(unsafe_code)]
            unsafe {
                sys::close_inherited(std::os::fd::AsRawFd::as_raw_fd(ctl))
            };
            kids.clear();
            drop(status);
            match become_child(&req, fds.collect(), true) {
                Ok((report, fds)) => run_child(req, report, fds),
                Err(_) => sys::exit_now(127),
            }
        }
        Ok(sys::Fork::Parent(pid)) => {
            let pidfd = sys::pidfd_open(pid).ok()?;
            let mut m = PID.to_vec();
            m.extend_from_slice(&pid.to_le_bytes());
            crate::sys::fdpass::send_fds(status.as_fd(), &[pidfd.as_fd()], &m).ok()?;
            Some(Kid { pid, pidfd, status })
        }
    }
}
