//! How a spawned program becomes the child (or the fork server) its parent asked for, before
//! `main` runs.
//!
//! The parent makes a socket pair and `posix_spawn`s the program with one end as descriptor 3
//! and `MULTIPROC_BOOT_FD=3` in the environment (`launch/spawn.rs`). Before `main` runs, this
//! crate's ELF constructor (an `.init_array` entry, [`BOOT_CTOR`]) sees the variable, reads the
//! bootstrap message (`boot.rs`: the entry token, the arguments and their handles' descriptors,
//! the report area, the process's name and flags), answers, runs the entry and `_exit`s: the
//! program's `main` never runs in the child. [`init`] does the same for a program whose
//! start-up skips constructors, and nothing otherwise. The constructor is kept in the binary by
//! a reference from the code that spawns, so a program that spawns always has it.

use super::boot::{self, Role, BOOT_TIMEOUT};
use super::child::{become_child, run_child};
use crate::sys::process as sys;
use crate::sys::spawn::{self as sys_spawn, SELF_EXE};
use std::os::unix::net::UnixStream;
use std::path::Path;

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
        Role::Server => super::server_main::serve(sock, boot, fds),
        Role::Exec => {
            let _ = boot::nak(&sock, "a run_input station is set up in a fork server, not spawned");
            sys::exit_now(127)
        }
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
