//! Starting a fresh image of this program ([posix_spawn(3)](https://man7.org/linux/man-pages/man3/posix_spawn.3.html)):
//! the `Spawn` start method and the fork server.
//!
//! The child gets one extra descriptor, the bootstrap socket, at [`BOOT_FD`], and learns so
//! from the environment variable [`BOOT_ENV`]; everything else it needs comes over that socket.

use super::cvt;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The descriptor number of the bootstrap socket in a spawned child.
pub(crate) const BOOT_FD: i32 = 3;

/// The environment variable that tells a spawned child its bootstrap socket.
pub(crate) const BOOT_ENV: &str = "MULTIPROC_BOOT_FD";

/// The path that names this process's own executable, even if the file was renamed or
/// deleted since it started.
pub(crate) const SELF_EXE: &str = "/proc/self/exe";

/// The (device, inode) of the file at `path` (followed), to check that a spawned child runs
/// the same program as its parent.
pub(crate) fn file_identity(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Starts `exe` with `argv` and this process's environment plus `BOOT_ENV=BOOT_FD`, with
/// `boot` as its descriptor [`BOOT_FD`] (every other descriptor of ours is close-on-exec).
/// Returns the child's pid.
pub(crate) fn spawn(exe: &Path, argv: &[&CStr], boot: BorrowedFd<'_>) -> io::Result<libc::pid_t> {
    let exe = CString::new(exe.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // `boot` must not be BOOT_FD itself: a dup2 onto itself would keep its close-on-exec flag.
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor; the result is a fresh one we own.
    let moved = unsafe { OwnedFd::from_raw_fd(cvt(libc::fcntl(boot.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10))?) };
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k.as_bytes() != BOOT_ENV.as_bytes())
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    env.push(CString::new(format!("{BOOT_ENV}={BOOT_FD}")).expect("no NUL"));
    let mut envp: Vec<*mut libc::c_char> = env.iter().map(|c| c.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());
    let mut argvp: Vec<*mut libc::c_char> = argv.iter().map(|c| c.as_ptr().cast_mut()).collect();
    argvp.push(std::ptr::null_mut());
    // SAFETY: an all-zero file-actions object is a valid value for `init` to overwrite.
    let mut actions: libc::posix_spawn_file_actions_t = unsafe { std::mem::zeroed() };
    // SAFETY: `actions` is writable and initialized just below before any other use.
    let r = unsafe { libc::posix_spawn_file_actions_init(&mut actions) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: `actions` was initialized; `moved` stays open until after posix_spawn returns.
    let r = unsafe { libc::posix_spawn_file_actions_adddup2(&mut actions, moved.as_raw_fd(), BOOT_FD) };
    let mut pid: libc::pid_t = 0;
    let r = if r == 0 {
        // SAFETY: `exe`, every `argv`/`env` string and both pointer arrays (null-terminated)
        // live across the call; `actions` is initialized; no spawn attributes.
        unsafe { libc::posix_spawn(&mut pid, exe.as_ptr(), &actions, std::ptr::null(), argvp.as_ptr(), envp.as_ptr()) }
    } else {
        r
    };
    // SAFETY: `actions` was initialized above and is not used afterwards.
    unsafe { libc::posix_spawn_file_actions_destroy(&mut actions) };
    drop(moved);
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(pid)
}

/// A connected `SOCK_STREAM` Unix socket pair, both ends close-on-exec.
pub(crate) fn socketpair_stream() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    Ok(socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)?)
}

/// Takes over descriptor [`BOOT_FD`] if the environment says this process was spawned by
/// the crate (and removes the variable, so that this process's own children do not see it).
pub(crate) fn take_boot_fd() -> Option<OwnedFd> {
    let v = std::env::var_os(BOOT_ENV)?;
    if v.as_bytes() != BOOT_FD.to_string().as_bytes() {
        return None;
    }
    // SAFETY: called once, early in a spawned child (from the constructor or `init`), before
    // any thread could read the environment concurrently.
    unsafe { std::env::remove_var(BOOT_ENV) };
    // Only a descriptor that exists and is a socket is ours.
    // SAFETY: an all-zero stat is valid to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable; fstat on a possibly closed fd only fails.
    if unsafe { libc::fstat(BOOT_FD, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    // SAFETY: BOOT_FD is open (checked) and was handed to this process for this purpose;
    // nothing else in the process owns it. Mark it close-on-exec for our own children.
    unsafe {
        libc::fcntl(BOOT_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        Some(OwnedFd::from_raw_fd(BOOT_FD))
    }
}

/// This process's `argv[0]`, for a spawned child's own (so `ps` shows the same program).
pub(crate) fn argv0() -> CString {
    std::env::args_os()
        .next()
        .and_then(|a| CString::new(a.as_bytes()).ok())
        .unwrap_or_else(|| CString::new("multiproc-child").expect("no NUL"))
}
