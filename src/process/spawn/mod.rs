//! The `Spawn` and `ForkServer` start methods: children that are fresh images of this program
//! (or forks of a fork server's fresh image), running a `fn` entry with serde arguments.
//!
//! # How a spawned child starts
//! The parent makes a socket pair and `posix_spawn`s `/proc/self/exe` with one end as
//! descriptor 3 and `MULTIPROC_BOOT_FD=3` in the environment. Before `main` runs, this crate's
//! ELF constructor (an `.init_array` entry, [`BOOT_CTOR`]) sees the variable, reads the
//! bootstrap message ([`boot`]: the entry token, the arguments and their handles' descriptors,
//! the report area, the process's name and flags), answers, runs the entry and `_exit`s: the
//! program's `main` never runs in the child. [`init`](crate::init) does the same for a program
//! whose start-up skips constructors, and nothing otherwise.
//!
//! The constructor is kept in the binary by a reference from the code that spawns, so a
//! program that spawns always has it.
//!
//! # The entry
//! A `fn(A) -> R` (`R`: [`ChildOutcome`]) named by its offset from an anchor of this crate and
//! authenticated with a keyed tag ([`call`](super::call)); `A` is encoded with serde, and the
//! shared objects inside it travel as descriptors ([`encode_with_handles`]).
//!
//! # Files
//! `boot.rs` (the wire protocol), `server.rs` (the fork server).

mod boot;
mod server;

pub use server::{ForkServer, ForkServerBuilder};

use super::call::{CallKey, EntryToken};
use super::current::{lock, Me, ACTIVE, ME};
use super::handle::{Entry, Origin, Process, Target};
use super::report::{Report, ReportAreas};
use super::{panics, BootError, ChildOutcome, ProcFail, StartMethod, MAIN_NAME};
use crate::queue::encode_with_handles;
use crate::shm::{Segment, ShmRef};
use crate::sys::process as sys;
use crate::sys::spawn::{self as sys_spawn, SELF_EXE};
use boot::{Boot, Role};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub(crate) use server::ServerChild;

/// How long a spawned program (or the fork server) may take to answer its bootstrap message
/// before it is killed and the start fails with [`StartError::Boot`](crate::StartError::Boot).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// The key of this process's entry tokens (sent to each child it spawns).
fn key() -> &'static CallKey {
    static KEY: OnceLock<CallKey> = OnceLock::new();
    KEY.get_or_init(CallKey::new)
}

/// A `fn` entry with its encoded arguments and their handles' descriptors.
pub(crate) struct FnEntry {
    token: EntryToken,
    args: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl FnEntry {
    pub(crate) fn new<A, R>(f: fn(A) -> R, args: &A) -> Result<FnEntry, ProcFail>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        let (args, fds) = encode_with_handles(args).map_err(ProcFail::Encode)?;
        Ok(FnEntry { token: EntryToken::new(key(), f), args, fds })
    }

    /// Runs the entry in this process (a forked child).
    pub(crate) fn run_here(self) -> (i32, Option<String>) {
        run_token(&self.token, key(), &self.args, self.fds)
    }
}

/// A `fn` call with handle-free encoded arguments, that any process of this program can run
/// any number of times (a pool's initializer under every start method).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct FnCall {
    token: EntryToken,
    key: CallKey,
    args: Vec<u8>,
}

impl FnCall {
    /// `f(args)` as a call; `None` if `args` holds shared handles (they cannot be replayed).
    pub(crate) fn new<A, R>(f: fn(A) -> R, args: &A) -> Result<Option<FnCall>, crate::CodecError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        let (args, fds) = encode_with_handles(args)?;
        Ok(fds.is_empty().then(|| FnCall { token: EntryToken::new(key(), f), key: *key(), args }))
    }

    /// Runs it here: its exit code and failure text.
    pub(crate) fn run(&self) -> (i32, Option<String>) {
        run_token(&self.token, &self.key, &self.args, Vec::new())
    }
}

fn run_token(token: &EntryToken, key: &CallKey, args: &[u8], fds: Vec<OwnedFd>) -> (i32, Option<String>) {
    token.run(key, args, fds).unwrap_or_else(|_| (1, Some("the entry token does not authenticate".into())))
}

/// The ELF constructor that starts a spawned child's entry before `main` (see the module
/// docs). Every other process it runs in returns at once.
#[used]
#[allow(unsafe_code)] // a link section: the ELF loader calls it, with no arguments we read
#[link_section = ".init_array"]
pub(crate) static BOOT_CTOR: extern "C" fn() = boot_ctor;

extern "C" fn boot_ctor() {
    init();
}

/// Starts a spawned child's entry if this process is one (and never returns then); does
/// nothing otherwise.
///
/// This crate runs it by itself before `main` (an ELF constructor), so calling it is needed
/// only in a program whose start-up skips constructors; it is harmless anywhere. Test
/// binaries need nothing either: a `Spawn` child of a test runs its entry, not the harness.
///
/// # Examples
///
/// ```
/// multiproc::init(); // first thing in `main`: returns at once unless this is a spawned child
/// ```
pub fn init() {
    if let Some(fd) = sys_spawn::take_boot_fd() {
        booted(UnixStream::from(fd))
    }
}

/// The spawned process's side: take the bootstrap message and become what it says.
fn booted(sock: UnixStream) -> ! {
    let _ = sock.set_read_timeout(Some(BOOT_TIMEOUT));
    let (boot, fds) = match boot::recv(&sock) {
        Ok(x) => x,
        Err(e) => {
            let _ = boot::nak(&sock, &format!("bad bootstrap message: {e}"));
            sys::exit_now(127);
        }
    };
    if let Some(exe) = boot.exe {
        if sys_spawn::file_identity(Path::new(SELF_EXE)).ok() != Some(exe) {
            let _ = boot::nak(&sock, "this is not the parent's executable (it was replaced?)");
            sys::exit_now(127);
        }
    }
    match boot.role {
        Role::Server => server::serve(sock, boot, fds),
        Role::Child => {
            let started = become_child(&boot, fds, false);
            match started {
                Ok((report, fds)) => {
                    let _ = boot::ack(&sock);
                    drop(sock);
                    run_child(boot, report, fds)
                }
                Err(why) => {
                    let _ = boot::nak(&sock, &why);
                    sys::exit_now(127)
                }
            }
        }
    }
}

/// Sets up this process as the child `boot` describes: its report area (the first
/// descriptor), its name and identity, daemon and group flags. Returns the report and the
/// remaining descriptors (the arguments' handles). A fork server's child (`via_server`)
/// already dies with the server, which dies with the requester.
fn become_child(boot: &Boot, fds: Vec<OwnedFd>, via_server: bool) -> Result<(ShmRef<Report>, Vec<OwnedFd>), String> {
    let mut fds = fds.into_iter();
    let seg = fds.next().ok_or("no report area")?;
    let seg = Segment::adopt_fd(seg, None).map_err(|e| format!("bad report area: {e}"))?;
    let off = usize::try_from(boot.report_off).map_err(|_| "bad report offset")?;
    let report = seg.object_at::<Report>(off).map_err(|e| format!("bad report area: {e}"))?;
    if boot.daemon && !via_server {
        // Die with the parent; if it died already, leave now.
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
        if sys::getppid() != boot.parent.0 {
            sys::exit_now(1);
        }
    }
    if boot.group {
        let _ = sys::setpgid(0, 0);
    }
    *lock(&ME) = Me {
        name: Some(boot.name.clone()),
        daemon: boot.daemon,
        identity: boot.identity.clone(),
        counter: 0,
        parent: Some(boot.parent.clone()),
    };
    Ok((report, fds.collect()))
}

/// Runs the entry with the child's protocol (report, `_exit`).
fn run_child(boot: Boot, report: ShmRef<Report>, fds: Vec<OwnedFd>) -> ! {
    panics::install();
    let Some(token) = boot.entry else {
        report.write(super::report::Kind::Error, "no entry");
        sys::exit_now(1)
    };
    let key = boot.key;
    let args = boot.args;
    let target: Target = Box::new(move || run_token(&token, &key, &args, fds));
    super::start::child_main(target, report)
}

/// What a started child is, for the `Process` handle.
pub(crate) struct Started {
    pub(crate) pid: libc::pid_t,
    pub(crate) pidfd: OwnedFd,
    pub(crate) origin: Origin,
}

/// `Process::start` for `Spawn` and `ForkServer`.
pub(crate) fn start(p: &Process) -> Result<(), ProcFail> {
    let inner = &*p.inner;
    let mut st = lock(&inner.state);
    if st.closed {
        return Err(ProcFail::Closed);
    }
    let entry = match st.target.take() {
        None => return Err(ProcFail::AlreadyStarted),
        Some(Entry::Fn(e)) => e,
        Some(closure) => {
            st.target = Some(closure);
            return Err(ProcFail::NotSpawnable(inner.method));
        }
    };
    let (parent, identity) = {
        let me = lock(&ME);
        if me.daemon {
            st.target = Some(Entry::Fn(entry));
            return Err(ProcFail::DaemonicParent);
        }
        let mut identity = me.identity.clone();
        identity.push(inner.number);
        ((sys::getpid(), me.name.clone().unwrap_or_else(|| MAIN_NAME.to_string())), identity)
    };
    let report = match ReportAreas::lock().take() {
        Ok(r) => r,
        Err(e) => {
            st.target = Some(Entry::Fn(entry));
            return Err(ProcFail::ReportArea(e));
        }
    };
    let exe = inner.executable.as_deref();
    let boot = Boot {
        version: boot::VERSION,
        role: Role::Child,
        exe: match exe {
            None => sys_spawn::file_identity(Path::new(SELF_EXE)).ok(),
            Some(_) => None,
        },
        key: *key(),
        entry: Some(entry.token),
        args: entry.args,
        report_off: report.offset() as u64,
        name: inner.name.clone(),
        identity,
        parent,
        daemon: inner.daemon,
        group: inner.group,
    };
    let mut fds: Vec<BorrowedFd<'_>> = vec![report.segment().fd()];
    fds.extend(entry.fds.iter().map(|f| f.as_fd()));
    let started = match inner.method {
        StartMethod::ForkServer => match &inner.server {
            Some(s) => s.request(&boot, &fds),
            None => server::ForkServer::global().map_err(ProcFail::from).and_then(|s| s.request(&boot, &fds)),
        },
        _ => spawn_program(exe, &boot, &fds),
    };
    drop(fds);
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            ReportAreas::lock().give_back(report);
            return Err(e);
        }
    };
    if inner.group {
        // Also here, so that a kill_tree right after start finds the group (see fork).
        let _ = sys::setpgid(started.pid, started.pid);
    }
    lock(&ACTIVE).push(p.inner.clone());
    st.creator = sys::getpid();
    st.pid = Some(started.pid);
    st.pidfd = Some(Arc::new(started.pidfd));
    st.report = Some(report);
    st.origin = started.origin;
    Ok(())
}

/// Kills and reaps a spawned program that did not take its entry; an `Exited` reason gets the
/// status it ended with.
pub(super) fn killed(pid: i32, why: BootError) -> BootError {
    let _ = sys::kill(pid, libc::SIGKILL);
    let status = sys::waitpid_blocking(pid);
    match (why, status) {
        (BootError::Exited { .. }, Ok(sys::WaitStatus::Exited(c))) => BootError::Exited { code: Some(c), signal: None },
        (BootError::Exited { .. }, Ok(sys::WaitStatus::Signaled(s))) => {
            BootError::Exited { code: None, signal: Some(s) }
        }
        (why, _) => why,
    }
}

/// Spawns `exe` (default: this program) and hands it `boot`; returns once it took the entry.
fn spawn_program(exe: Option<&Path>, boot: &Boot, fds: &[BorrowedFd<'_>]) -> Result<Started, ProcFail> {
    // Keep the constructor that runs the entry in every binary that spawns.
    std::hint::black_box(&BOOT_CTOR);
    let (mine, theirs) = sys_spawn::socketpair_stream().map_err(ProcFail::Os)?;
    let argv0 = sys_spawn::argv0();
    let pid = sys_spawn::spawn(exe.unwrap_or(Path::new(SELF_EXE)), &[&argv0], theirs.as_fd()).map_err(ProcFail::Os)?;
    drop(theirs);
    let fail = |why: BootError| ProcFail::Boot(killed(pid, why));
    let pidfd = sys::pidfd_open(pid).map_err(|e| fail(BootError::Os(e)))?;
    let sock = UnixStream::from(mine);
    let _ = sock.set_read_timeout(Some(BOOT_TIMEOUT));
    let _ = sock.set_write_timeout(Some(BOOT_TIMEOUT));
    if let Err(e) = boot::send(&sock, boot, fds) {
        // Most likely it exited already: its answer (or end of file) says why.
        let why = boot::answer(&sock).err().unwrap_or(BootError::Os(e));
        return Err(fail(why));
    }
    boot::answer(&sock).map_err(fail)?;
    Ok(Started { pid, pidfd, origin: Origin::Own })
}
