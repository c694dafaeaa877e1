//! `SharedMemory`: a block of bytes shared by name or with forked children (Python's
//! `multiprocessing.shared_memory.SharedMemory`).

use super::header::ObjectKind;
use super::named::{word_usize, Words};
use super::{atomic_bytes, Named, Segment, ShmError};
use std::fmt;
use std::ptr::NonNull;
#[allow(clippy::disallowed_types)] // AtomicU8 is the public view of the bytes, not an algorithm's
use std::sync::atomic::AtomicU8;

/// A block of `len` bytes in shared memory (Python's `shared_memory.SharedMemory`).
///
/// Created under a name for unrelated processes ([`create`](Self::create) /
/// [`open`](Self::open)), or anonymous for children forked afterwards
/// ([`anonymous`](Self::anonymous)). Unlike Python, a process that only opens the block never
/// removes its name (SHM-B1): the creator's last handle does, unless [`persist`](Self::persist)
/// is called.
///
/// The bytes may be used by many processes at once, so they are offered in sound forms only:
/// [`as_atomic_bytes`](Self::as_atomic_bytes) (e.g. a coverage bitmap that fuzzing workers
/// update with `fetch_or`), [`read_at`](Self::read_at) / [`write_at`](Self::write_at) (atomic
/// byte-wise copies, at memcpy's speed on x86-64: a concurrent write can tear a range between bytes, never
/// cause undefined behaviour, however the three are mixed, SHM-B4), and [`as_ptr`](Self::as_ptr)
/// for raw access under your own protocol.
///
/// # Examples
///
/// ```
/// use multiproc::SharedMemory;
/// use std::sync::atomic::Ordering::Relaxed;
///
/// let name = format!("doc-shared-memory-{}", std::process::id());
/// let shm = SharedMemory::create(&name, 512)?;
/// let peer = SharedMemory::open(&name)?;          // typically in another program
/// peer.write_at(0, b"howdy")?;
/// let mut buf = [0u8; 5];
/// shm.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"howdy");
/// shm.as_atomic_bytes()[511].fetch_or(1, Relaxed);
/// assert_eq!(peer.as_atomic_bytes()[511].load(Relaxed), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    seg: Segment,
    data: NonNull<u8>,
    len: usize,
}

// SAFETY: `data` points into the mapping that `seg` keeps alive, valid in every thread; every
// access this type offers is atomic (or, for `as_ptr`, the caller's responsibility).
unsafe impl Send for SharedMemory {}
// SAFETY: as above.
unsafe impl Sync for SharedMemory {}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory").field("name", &self.seg.name()).field("len", &self.len).finish()
    }
}

impl SharedMemory {
    /// Creates `len` zeroed bytes under `name` (Python's `SharedMemory(name, create=True,
    /// size=len)`), complete before the name appears.
    ///
    /// # Errors
    /// [`ShmError::TooSmall`] for `len == 0` (SHM-4), [`ShmError::Exists`] if the name is
    /// taken (SHM-5), and the other errors of [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-shm-create-{}", std::process::id());
    /// let shm = multiproc::SharedMemory::create(&name, 512)?;
    /// assert_eq!(shm.len(), 512);
    /// assert!(matches!(multiproc::SharedMemory::create(&name, 512), Err(multiproc::ShmError::Exists { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, len: usize) -> Result<SharedMemory, ShmError> {
        if len == 0 {
            return Err(ShmError::TooSmall { len: 0, min: 1 });
        }
        super::create_named(name, len.checked_add(64).ok_or(ShmError::TooLarge { len: len as u64 })?, |seg| {
            Ok::<_, ShmError>([seg.alloc(len, 64)? as u64, len as u64, 0, 0, 0, 0])
        })
    }

    /// `len` zeroed bytes shared with every child forked afterwards (no name, nothing to
    /// clean up: the kernel frees them with the last process).
    ///
    /// # Errors
    /// [`ShmError::TooSmall`] for `len == 0`, [`ShmError::TooLarge`], or the OS error.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::anonymous(64)?;
    /// assert_eq!((shm.len(), shm.name()), (64, None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn anonymous(len: usize) -> Result<SharedMemory, ShmError> {
        if len == 0 {
            return Err(ShmError::TooSmall { len: 0, min: 1 });
        }
        let seg = Segment::anonymous(len.checked_add(64).ok_or(ShmError::TooLarge { len: len as u64 })?)?;
        let off = seg.alloc(len, 64)?;
        SharedMemory::from_named(&seg, &[off as u64, len as u64, 0, 0, 0, 0])
    }

    super::named_methods!(
        "```\nlet name = format!(\"doc-shm-{}\", std::process::id());\nlet created = multiproc::SharedMemory::create(&name, 100)?;\nlet opened = multiproc::SharedMemory::open_timeout(&name, std::time::Duration::from_secs(1))?;\nassert_eq!(opened.len(), 100); // the real size, whatever the opener expected (SHM-3)\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::SharedMemory::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```"
    );

    /// Removes the name (Python's `unlink()`): handles already open keep working, new `open`s
    /// fail with `NotFound`. A second unlink fails with `NotFound` (SHM-6).
    ///
    /// # Errors
    /// [`ShmError::NotFound`] if the name is already gone (or the block has none).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-shm-unlink-{}", std::process::id());
    /// let shm = multiproc::SharedMemory::create(&name, 8)?;
    /// shm.unlink()?;
    /// assert!(shm.unlink().is_err());
    /// shm.write_at(0, &[1])?; // still mapped
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unlink(&self) -> Result<(), ShmError> {
        match self.seg.name() {
            Some(n) => Segment::unlink(n),
            None => Err(ShmError::NotFound { name: String::new() }),
        }
    }

    /// The size in bytes, as created (Python's `size`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::SharedMemory::anonymous(10)?.len(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a block has at least one byte.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!multiproc::SharedMemory::anonymous(1)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes as atomics: sound to read and write from any number of threads and
    /// processes at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering::Relaxed;
    ///
    /// let map = multiproc::SharedMemory::anonymous(1 << 16)?; // a coverage bitmap
    /// map.as_atomic_bytes()[1234].fetch_or(0x80, Relaxed);
    /// assert_eq!(map.as_atomic_bytes().iter().filter(|b| b.load(Relaxed) != 0).count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::disallowed_types)]
    pub fn as_atomic_bytes(&self) -> &[AtomicU8] {
        // SAFETY: `data..data+len` lies in the mapping `self.seg` keeps alive (checked by
        // `bytes_at` when the handle was made); `AtomicU8` has the size and alignment of `u8`
        // and every bit pattern is valid; all shared access through it is atomic.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<AtomicU8>(), self.len) }
    }

    /// Copies `buf.len()` bytes starting at `offset` into `buf`.
    ///
    /// # Errors
    /// [`ShmError::OutOfBounds`] if the range does not fit; `buf` is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::anonymous(4)?;
    /// let mut buf = [1u8; 4];
    /// shm.read_at(0, &mut buf)?;
    /// assert_eq!(buf, [0; 4]);
    /// assert!(shm.read_at(1, &mut buf).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), ShmError> {
        self.check(offset, buf.len())?;
        // SAFETY: the range is inside the block (checked), which stays mapped; every access this
        // type offers to the bytes is a byte-sized atomic (`copy_out`'s contract).
        unsafe { atomic_bytes::copy_out(self.data.as_ptr().add(offset), buf) };
        Ok(())
    }

    /// Copies `data` into the block starting at `offset`.
    ///
    /// # Errors
    /// [`ShmError::OutOfBounds`] if the range does not fit; nothing is written then.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::anonymous(8)?;
    /// shm.write_at(3, b"hi")?;
    /// assert!(shm.write_at(7, b"hi").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        self.check(offset, data.len())?;
        // SAFETY: as in `read_at`.
        unsafe { atomic_bytes::copy_in(data, self.data.as_ptr().add(offset)) };
        Ok(())
    }

    /// The first byte, for raw access under your own protocol. Valid for [`len`](Self::len)
    /// bytes while this handle (or a clone) lives; other processes may write them at any time,
    /// so non-atomic access needs your own synchronization.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::anonymous(8)?;
    /// assert_eq!(shm.as_ptr() as usize % 64, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.data.as_ptr()
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), ShmError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(ShmError::OutOfBounds { offset: offset as u64, len: len as u64, size: self.len as u64 }),
        }
    }
}

impl Named for SharedMemory {
    const KIND: ObjectKind = ObjectKind::SharedMemory;

    fn from_named(seg: &Segment, w: &Words) -> Result<Self, ShmError> {
        let len = word_usize(w[1])?;
        if len == 0 {
            return Err(ShmError::Corrupt { what: "SharedMemory of 0 bytes" });
        }
        let data = seg.bytes_at(word_usize(w[0])?, len)?;
        Ok(SharedMemory { seg: seg.clone(), data, len })
    }

    fn segment(&self) -> &Segment {
        &self.seg
    }

    fn words(&self) -> Words {
        let off = self.seg.offset_of(self.data.as_ptr()).unwrap_or(0);
        [off as u64, self.len as u64, 0, 0, 0, 0]
    }
}
