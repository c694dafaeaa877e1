use std::{fmt, io};

/// Why a shared-memory segment could not be created, opened, allocated from or removed.
///
/// Each failure has its own variant so that callers can match on it; OS errors without a more
/// specific meaning keep their `errno` in [`ShmError::Os`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ShmError {
    /// A segment with this name already exists (`EEXIST` on create).
    Exists {
        /// The name as given (normalized with a leading `/`).
        name: String,
    },
    /// No segment has this name (`ENOENT` on open or unlink).
    NotFound {
        /// The name as given (normalized with a leading `/`).
        name: String,
    },
    /// The segment belongs to someone else or its mode forbids access (`EACCES`/`EPERM`).
    PermissionDenied {
        /// The name as given (normalized with a leading `/`).
        name: String,
    },
    /// The name is not a valid segment name.
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The requested or found size is too small to hold the header and contents.
    TooSmall {
        /// The size in bytes that was asked for or found.
        len: u64,
        /// The smallest acceptable size in bytes.
        min: u64,
    },
    /// The requested size is larger than this crate supports or the address space allows.
    TooLarge {
        /// The size in bytes that was asked for.
        len: u64,
    },
    /// The creator has not finished initializing the segment (yet, or ever: it may have died
    /// halfway). Returned after the open timeout.
    NotReady {
        /// The name as given (normalized with a leading `/`).
        name: String,
    },
    /// The segment does not start with this crate's magic number: it is not one of ours.
    BadMagic {
        /// The magic number found.
        found: u64,
    },
    /// The segment was made by an incompatible version of this crate.
    VersionMismatch {
        /// The layout version found in the header.
        found: u32,
        /// The layout version this build understands.
        expected: u32,
    },
    /// A header field or an offset read from the segment is out of bounds or inconsistent.
    Corrupt {
        /// Which check failed.
        what: &'static str,
    },
    /// The segment's allocator has no room left for an object of this size.
    OutOfSpace {
        /// Bytes requested.
        requested: u64,
        /// Bytes still free.
        available: u64,
    },
    /// `/dev/shm` has no room for a segment of this size (`ENOSPC` from `posix_fallocate`).
    NoSpace {
        /// The size in bytes that was asked for.
        len: u64,
    },
    /// The segment holds another kind of object, or the same kind with another type parameter,
    /// than the opener asked for (e.g. `Queue::<u32>::open` on a `Queue<String>`).
    Mismatch {
        /// The name (normalized with a leading `/`).
        name: String,
        /// What the opener asked for, as `Kind<type>`.
        expected: String,
        /// What the segment holds, as its header describes it.
        found: String,
    },
    /// A byte range outside a [`SharedMemory`](crate::SharedMemory) block.
    OutOfBounds {
        /// Start of the range.
        offset: u64,
        /// Its length.
        len: u64,
        /// The block's size.
        size: u64,
    },
    /// An argument is out of the range the object accepts: a semaphore value above
    /// `i32::MAX`, zero barrier parties, a ring capacity that is not a power of two, …
    InvalidArgument {
        /// What the argument is.
        what: &'static str,
        /// The value given.
        value: u64,
    },
    /// Any other OS error.
    Os(io::Error),
}

impl ShmError {
    /// Maps an OS error from an operation on the segment called `name` to the matching variant.
    pub(crate) fn from_os(e: io::Error, name: &str) -> ShmError {
        let name = name.to_owned();
        match e.raw_os_error() {
            Some(libc::EEXIST) => ShmError::Exists { name },
            Some(libc::ENOENT) => ShmError::NotFound { name },
            Some(libc::EACCES) | Some(libc::EPERM) => ShmError::PermissionDenied { name },
            Some(libc::ENAMETOOLONG) => ShmError::InvalidName { name, reason: "name too long" },
            _ => ShmError::Os(e),
        }
    }
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::Exists { name } => write!(f, "shared-memory segment {name} already exists"),
            ShmError::NotFound { name } => write!(f, "no shared-memory segment named {name}"),
            ShmError::PermissionDenied { name } => write!(f, "permission denied for shared-memory segment {name}"),
            ShmError::InvalidName { name, reason } => write!(f, "invalid segment name {name:?}: {reason}"),
            ShmError::TooSmall { len, min } => write!(f, "segment size {len} is too small (minimum {min} bytes)"),
            ShmError::TooLarge { len } => write!(f, "segment size {len} is too large"),
            ShmError::NotReady { name } => write!(f, "shared-memory segment {name} was never fully initialized"),
            ShmError::BadMagic { found } => write!(f, "not a multiproc segment (magic {found:#018x})"),
            ShmError::VersionMismatch { found, expected } => {
                write!(f, "segment layout version {found}, this build understands {expected}")
            }
            ShmError::Corrupt { what } => write!(f, "corrupt shared-memory segment: {what}"),
            ShmError::OutOfSpace { requested, available } => {
                write!(f, "segment full: {requested} bytes requested, {available} available")
            }
            ShmError::NoSpace { len } => write!(f, "no space in /dev/shm for a {len}-byte segment"),
            ShmError::Mismatch { name, expected, found } => {
                write!(f, "shared-memory segment {name} holds {found}, not {expected}")
            }
            ShmError::OutOfBounds { offset, len, size } => {
                write!(f, "bytes {offset}..{offset}+{len} are outside a block of {size} bytes")
            }
            ShmError::InvalidArgument { what, value } => write!(f, "invalid {what}: {value}"),
            ShmError::Os(e) => write!(f, "shared-memory operation failed: {e}"),
        }
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ShmError {
    fn from(e: io::Error) -> ShmError {
        ShmError::Os(e)
    }
}
