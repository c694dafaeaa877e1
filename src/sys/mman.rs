//! Memory mappings and the files behind them: `mmap`, `munmap`, `memfd_create`, `shm_open`,
//! `shm_unlink`, `posix_fallocate`, `fstat`, seals.
#![allow(clippy::disallowed_methods)]

use super::{cvt, cvt_r};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};

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
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) })?;
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Forbids growing and shrinking the file (`F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`), so no
/// process can later truncate it under another's mapping (which would raise SIGBUS).
pub(crate) fn seal_size(fd: &OwnedFd) -> io::Result<()> {
    let seals = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS takes an int argument; `fd` is open.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// Sets the file's size ([ftruncate(2)](https://man7.org/linux/man-pages/man2/ftruncate.2.html)).
pub(crate) fn set_len(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is open; ftruncate has no memory arguments.
    cvt_r(|| unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// Where POSIX shared-memory objects live on Linux (glibc's `shm_open` uses this directory).
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Creates an unnamed file in [`SHM_DIR`], mode 0600, that appears under a name only when
/// [`link_fd`] gives it one: a creator killed before that leaves nothing behind
/// ([open(2)](https://man7.org/linux/man-pages/man2/open.2.html), `O_TMPFILE`, Linux 3.11 on tmpfs).
/// `Unsupported` where the file system cannot do it.
pub(crate) fn shm_tmpfile() -> io::Result<OwnedFd> {
    let dir = CString::new(SHM_DIR).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `dir` is a valid C string; mode 0600 keeps the file private to our user. Not
    // O_EXCL: that would forbid the link that publishes it.
    let r = cvt_r(|| unsafe { libc::open(dir.as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, 0o600) });
    match r {
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
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
    let from = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let to = CString::new(format!("{SHM_DIR}{name}")).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both are valid C strings for the duration of the call.
    cvt(unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) })
        .map(drop)
}

/// Creates `/name` in [`SHM_DIR`] exclusively (`O_CREAT | O_EXCL`, mode 0600): the fallback
/// for file systems without `O_TMPFILE`, used with a temporary name and [`rename_noreplace`].
pub(crate) fn shm_create_path(name: &str) -> io::Result<OwnedFd> {
    shm_open(name, true)
}

/// Renames `/from` to `/to` in [`SHM_DIR`], failing with `EEXIST` if `to` exists
/// ([renameat2(2)](https://man7.org/linux/man-pages/man2/renameat2.2.html), `RENAME_NOREPLACE`).
pub(crate) fn rename_noreplace(from: &str, to: &str) -> io::Result<()> {
    let from = CString::new(format!("{SHM_DIR}{from}")).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let to = CString::new(format!("{SHM_DIR}{to}")).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both are valid C strings; renameat2 takes no other memory.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    })
    .map(drop)
}

/// Opens a POSIX shared-memory object ([shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html)).
/// `name` must start with `/` and hold no other `/` (checked by the caller).
pub(crate) fn shm_open(name: &str, create_exclusive: bool) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC;
    if create_exclusive {
        flags |= libc::O_CREAT | libc::O_EXCL;
    }
    // SAFETY: `c` is a valid C string; mode 0600 keeps the segment private to our user.
    let fd = cvt_r(|| unsafe { libc::shm_open(c.as_ptr(), flags, 0o600 as libc::mode_t) })?;
    // SAFETY: shm_open returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes a shared-memory object's name; mappings stay valid until unmapped.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid C string.
    cvt(unsafe { libc::shm_unlink(c.as_ptr()) }).map(drop)
}

/// Unlinks `name` only if it still names the file open as `fd` (same device and inode): a
/// creator's last handle must not remove a newer segment that reuses the name. (A rename
/// between the check and the unlink could still slip through; nothing in this crate renames
/// published segments.)
pub(crate) fn shm_unlink_if_same(name: &str, fd: &OwnedFd) -> io::Result<()> {
    let path = CString::new(format!("{SHM_DIR}{name}")).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: all-zero `stat`s are valid values to be overwritten.
    let (mut by_name, mut by_fd): (libc::stat, libc::stat) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: `path` is a valid C string and `by_name` is writable.
    cvt(unsafe { libc::stat(path.as_ptr(), &mut by_name) })?;
    // SAFETY: `fd` is open and `by_fd` is writable.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut by_fd) })?;
    if (by_name.st_dev, by_name.st_ino) != (by_fd.st_dev, by_fd.st_ino) {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    shm_unlink(name)
}

/// Gives the file `len` bytes of real backing store, so that a full `/dev/shm` fails here with
/// `ENOSPC` instead of raising SIGBUS at first touch
/// ([posix_fallocate(3)](https://man7.org/linux/man-pages/man3/posix_fallocate.3.html)).
pub(crate) fn allocate(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: `fd` is open; posix_fallocate returns an errno value instead of setting errno.
        let r = unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len) };
        match r {
            0 => return Ok(()),
            libc::EINTR => continue,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// The file's size in bytes and its owner's uid.
pub(crate) fn file_len_and_owner(fd: &OwnedFd) -> io::Result<(u64, u32)> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and `fd` is open.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok((st.st_size as u64, st.st_uid))
}

/// The real user id of this process.
pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf with a valid name cannot fault.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if r > 0 {
        r as usize
    } else {
        4096
    }
}
