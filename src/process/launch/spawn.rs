//! The `Spawn` and `ForkServer` start methods: a child that is a fresh image of this program
//! (or a fork of a fork server's fresh image) running a `fn` entry with serde arguments. The
//! entry is named by its offset from an anchor of this crate and authenticated with a keyed
//! tag (`call.rs`); the arguments are encoded with serde, and the shared objects inside them
//! travel as descriptors. The fresh image takes its entry in `ctor.rs`.

use super::super::boot::{self, Boot, Role, BOOT_TIMEOUT};
use super::super::ctor::BOOT_CTOR;
use super::super::entry::{key, FnEntry};
use super::super::lock::lock;
use super::super::origin::{Origin, Refused, Started};
use super::super::record::Spec;
use super::super::registry::ME;
use super::super::report::ReportAreas;
use super::super::{BootError, ForkServer, ProcFail};
use crate::sys::process as sys;
use crate::sys::spawn::{self as sys_spawn, SELF_EXE};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Where the child comes from.
pub(in crate::process) enum Via<'a> {
    /// A fresh image of `exe` (default: this program).
    Program(Option<&'a Path>),
    /// A fork of this server's image.
    Server(&'a ForkServer),
}

/// Starts the child `spec` describes, running `entry`, through `via`; returns once it took its
/// entry. The entry is spent once its bootstrap message is built: a failure after that is
/// [`Refused::spent`] (any child that was made is killed and reaped first).
#[allow(clippy::result_large_err)] // once per child, and the entry must come back whole
pub(in crate::process) fn launch(spec: &Spec, entry: FnEntry, via: Via<'_>) -> Result<Started, Refused<FnEntry>> {
    let child_me = match lock(&ME).child(spec) {
        Ok(m) => m,
        Err(e) => return Err(Refused::before(e, entry)),
    };
    let report = match ReportAreas::lock().take() {
        Ok(r) => r,
        Err(e) => return Err(Refused::before(ProcFail::ReportArea(e), entry)),
    };
    let exe = match via {
        Via::Program(exe) => exe,
        Via::Server(_) => None,
    };
    let boot = Boot {
        version: boot::VERSION,
        role: Role::Child,
        exe: match exe {
            None => sys_spawn::file_identity(Path::new(SELF_EXE)).ok(),
            Some(_) => None,
        },
        key: *key(),
        entry: Some(entry.token),
        target: None,
        args: entry.args,
        report_off: report.offset() as u64,
        name: spec.name.clone(),
        identity: child_me.identity,
        parent: child_me.parent.unwrap_or_else(|| (sys::getpid(), String::new())),
        daemon: spec.daemon,
        group: spec.group,
    };
    let mut fds: Vec<BorrowedFd<'_>> = vec![report.segment().fd()];
    fds.extend(entry.fds.iter().map(|f| f.as_fd()));
    let started = match via {
        Via::Server(s) => s.request(&boot, &fds),
        Via::Program(exe) => spawn_program(exe, &boot, &fds).map(|(pid, pidfd, _)| (pid, pidfd, Origin::Own)),
    };
    drop(fds);
    match started {
        Ok((pid, pidfd, origin)) => {
            if spec.group {
                // Also here, so that a kill_tree right after start finds the group (see fork).
                let _ = sys::setpgid(pid, pid);
            }
            Ok(Started { pid, pidfd, report, origin })
        }
        Err(e) => {
            ReportAreas::lock().give_back(report);
            Err(Refused::spent(e))
        }
    }
}

/// Kills and reaps a spawned program that did not take its entry; an `Exited` reason gets the
/// status it ended with.
pub(in crate::process) fn killed(pid: i32, why: BootError) -> BootError {
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

/// Spawns `exe` (default: this program) and hands it `boot`; returns once it took the entry,
/// with the socket it answered on (a fork server keeps it as its control socket).
pub(in crate::process) fn spawn_program(
    exe: Option<&Path>,
    boot: &Boot,
    fds: &[BorrowedFd<'_>],
) -> Result<(libc::pid_t, OwnedFd, UnixStream), ProcFail> {
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
    Ok((pid, pidfd, sock))
}
