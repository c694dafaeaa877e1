//! Memory mappings and the files behind them: `mmap`, `munmap`, `memfd_create`, `shm_open`,
//! `shm_unlink`, `posix_fallocate`, `fstat`, seals.
//!
//! The file calls go through nix (safe, typed flags, paths checked for interior NULs); only
//! `mmap` and `munmap` stay on libc, being unsafe whoever wraps them.
#![allow(clippy::disallowed_methods)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::{self, NonNull};

/// nix's errors as `io::Error`s.
fn io_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Runs `f` until it does not fail with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map_err(io_err),
        }
    }
}

/// Maps `len` bytes of the shared-memory file `fd`, read-write and `MAP_SHARED`.
pub(crate) fn map_fd(fd: &OwnedFd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: as above; `fd` is an open file descriptor we own for the duration of the call.
    // A file shorter than `len` would SIGBUS on access: callers size-check with `file_len_and_owner`.
    let p = unsafe {
        libc::mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0)
    };
    mapped(p)
}

fn mapped(p: *mut libc::c_void) -> io::Result<NonNull<u8>> {
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Unmaps a mapping made by [`map_fd`].
///
/// # Safety
/// `ptr..ptr+len` is exactly one mapping made by this module, and no reference into it is used
/// after this call.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees the range is our mapping and is no longer referenced.
    // munmap of a valid mapping cannot fail.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

/// Creates an anonymous memory file that can be sealed: the backing of every anonymous
/// segment, so that it can be handed to another process as a descriptor
/// ([memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html)).
pub(crate) fn memfd_create(name: &str) -> io::Result<OwnedFd> {
    use nix::sys::memfd::MFdFlags;
    nix::sys::memfd::memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).map_err(io_err)
}

/// Forbids growing and shrinking the file (`F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`), so no
/// process can later truncate it under another's mapping (which would raise SIGBUS).
pub(crate) fn seal_size(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, SealFlag};
    let seals = SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL;
    nix::fcntl::fcntl(fd, FcntlArg::F_ADD_SEALS(seals)).map(drop).map_err(io_err)
}

/// Sets the file's size ([ftruncate(2)](https://man7.org/linux/man-pages/man2/ftruncate.2.html)).
pub(crate) fn set_len(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    retry(|| nix::unistd::ftruncate(fd, len))
}

/// Where POSIX shared-memory objects live on Linux (glibc's `shm_open` uses this directory).
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Creates an unnamed file in [`SHM_DIR`], mode 0600, that appears under a name only when
/// [`link_fd`] gives it one: a creator killed before that leaves nothing behind
/// ([open(2)](https://man7.org/linux/man-pages/man2/open.2.html), `O_TMPFILE`, Linux 3.11 on tmpfs).
/// `Unsupported` where the file system cannot do it.
pub(crate) fn shm_tmpfile() -> io::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    // Mode 0600 keeps the file private to our user. Not O_EXCL: that would forbid the link
    // that publishes it.
    let flags = OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    match retry(|| nix::fcntl::open(SHM_DIR, flags, nix::sys::stat::Mode::from_bits_truncate(0o600))) {
        Ok(fd) => Ok(fd),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT)) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, e))
        }
        Err(e) => Err(e),
    }
}

/// Gives the unnamed file `fd` (from [`shm_tmpfile`]) the name `/name` in [`SHM_DIR`], failing
/// with `EEXIST` if the name is taken: one atomic step that makes a complete file visible
/// ([linkat(2)](https://man7.org/linux/man-pages/man2/linkat.2.html) through `/proc/self/fd`,
/// which needs no privilege, unlike `AT_EMPTY_PATH`).
pub(crate) fn link_fd(fd: &OwnedFd, name: &str) -> io::Result<()> {
    let from = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let to = format!("{SHM_DIR}{name}");
    let (cwd, follow) = (nix::fcntl::AT_FDCWD, nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW);
    nix::unistd::linkat(cwd, from.as_str(), cwd, to.as_str(), follow).map_err(io_err)
}

/// Creates `/name` in [`SHM_DIR`] exclusively (`O_CREAT | O_EXCL`, mode 0600): the fallback
/// for file systems without `O_TMPFILE`, used with a temporary name and [`rename_noreplace`].
pub(crate) fn shm_create_path(name: &str) -> io::Result<OwnedFd> {
    shm_open(name, true)
}

/// Renames `/from` to `/to` in [`SHM_DIR`], failing with `EEXIST` if `to` exists
/// ([renameat2(2)](https://man7.org/linux/man-pages/man2/renameat2.2.html), `RENAME_NOREPLACE`).
pub(crate) fn rename_noreplace(from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (format!("{SHM_DIR}{from}"), format!("{SHM_DIR}{to}"));
    let cwd = nix::fcntl::AT_FDCWD;
    nix::fcntl::renameat2(cwd, from.as_str(), cwd, to.as_str(), nix::fcntl::RenameFlags::RENAME_NOREPLACE)
        .map_err(io_err)
}

/// Opens a POSIX shared-memory object ([shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html)).
/// `name` must start with `/` and hold no other `/` (checked by the caller).
pub(crate) fn shm_open(name: &str, create_exclusive: bool) -> io::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let mut flags = OFlag::O_RDWR | OFlag::O_CLOEXEC;
    if create_exclusive {
        flags |= OFlag::O_CREAT | OFlag::O_EXCL;
    }
    retry(|| nix::sys::mman::shm_open(name, flags, nix::sys::stat::Mode::from_bits_truncate(0o600)))
}

/// Removes a shared-memory object's name; mappings stay valid until unmapped.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    nix::sys::mman::shm_unlink(name).map_err(io_err)
}

/// Unlinks `name` only if it still names the file open as `fd` (same device and inode): a
/// creator's last handle must not remove a newer segment that reuses the name. (A rename
/// between the check and the unlink could still slip through; nothing in this crate renames
/// published segments.)
pub(crate) fn shm_unlink_if_same(name: &str, fd: &OwnedFd) -> io::Result<()> {
    let by_name = nix::sys::stat::stat(format!("{SHM_DIR}{name}").as_str()).map_err(io_err)?;
    let by_fd = nix::sys::stat::fstat(fd).map_err(io_err)?;
    if (by_name.st_dev, by_name.st_ino) != (by_fd.st_dev, by_fd.st_ino) {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    shm_unlink(name)
}

/// Takes an exclusive `flock` on `fd`'s file without waiting; `false` if another holds one.
/// The lock goes when every descriptor of this open file is closed.
pub(crate) fn try_lock_exclusive(fd: &OwnedFd) -> bool {
    // SAFETY: `fd` is an open descriptor for the duration of the call; flock has no memory
    // arguments.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Gives the file `len` bytes of real backing store, so that a full `/dev/shm` fails here with
/// `ENOSPC` instead of raising SIGBUS at first touch
/// ([posix_fallocate(3)](https://man7.org/linux/man-pages/man3/posix_fallocate.3.html)).
pub(crate) fn allocate(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    retry(|| nix::fcntl::posix_fallocate(fd, 0, len))
}

/// The file's size in bytes and its owner's uid.
pub(crate) fn file_len_and_owner(fd: &OwnedFd) -> io::Result<(u64, u32)> {
    let st = nix::sys::stat::fstat(fd).map_err(io_err)?;
    Ok((st.st_size as u64, st.st_uid))
}

/// The real user id of this process.
pub(crate) fn getuid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 4096,
    }
}
