//! Memory mappings and the files behind them: `mmap`, `munmap`, `memfd_create`, `shm_open`,
//! `shm_unlink`, `posix_fallocate`, `fstat`, seals.
#![allow(clippy::disallowed_methods)]

use super::{cvt, cvt_r};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};

/// Maps `len` bytes of zeroed anonymous memory, `MAP_SHARED`, so that children forked later
/// share it with this process. The kernel frees it with the last mapping
/// ([mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html)).
pub(crate) fn map_anonymous(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh anonymous mapping aliases no Rust object; a null hint lets the kernel
    // choose the address. Failure is reported as MAP_FAILED, checked below.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    mapped(p)
}

/// Maps `len` bytes of the shared-memory file `fd`, read-write and `MAP_SHARED`.
pub(crate) fn map_fd(fd: &OwnedFd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: as above; `fd` is an open file descriptor we own for the duration of the call.
    // A file shorter than `len` would SIGBUS on access: callers size-check with `file_len`.
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

/// Unmaps a mapping made by [`map_anonymous`] or [`map_fd`].
///
/// # Safety
/// `ptr..ptr+len` is exactly one mapping made by this module, and no reference into it is used
/// after this call.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees the range is our mapping and is no longer referenced.
    // munmap of a valid mapping cannot fail.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

/// Creates an anonymous memory file that can be sealed (for memfd-backed segments that can be
/// handed to unrelated processes as an fd; not used by a public API yet)
/// ([memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html)).
#[allow(dead_code)]
pub(crate) fn memfd_create(name: &str) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) })?;
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Forbids growing and shrinking the file (`F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`), so no
/// process can later truncate it under another's mapping (which would raise SIGBUS).
#[allow(dead_code)]
pub(crate) fn seal_size(fd: &OwnedFd) -> io::Result<()> {
    let seals = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS takes an int argument; `fd` is open.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
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
