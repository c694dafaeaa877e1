//! Mappings: the `Segment` handle, its header, the bump allocator, typed references into it.
//! Named segments (create, open, list, clean) are in `named.rs`.

use super::header::{
    self, Header, HeaderSnapshot, ObjectKind, TypeInfo, HEADER_LEN, LAYOUT_VERSION, MAGIC, STATE_READY,
};
use super::ShmError;
use crate::loom::atomic::AtomicU32;
use crate::loom::atomic::Ordering::{Acquire, Relaxed, Release};
use crate::sys;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

/// Largest segment we create: offsets are `u64` in the header, but keep well inside the
/// address space and `off_t`.
pub(crate) const MAX_LEN: u64 = 1 << 46;

/// One mapping of one segment in this process. Unmapped when the last [`Segment`] handle of
/// this process drops.
pub(crate) struct Mapping {
    pub(crate) base: NonNull<u8>,
    pub(crate) len: usize,
    /// The file behind the mapping (a memfd for anonymous segments, the `/dev/shm` file for
    /// named ones): what is handed to another process to share the segment.
    pub(crate) fd: OwnedFd,
    /// `/name` for named segments (set once the name is given: see `named.rs`).
    pub(crate) name: std::sync::OnceLock<String>,
    /// The pid that unlinks the name when its last handle drops: the creator's, or 0 for
    /// nobody (an opener, or after [`Segment::persist`]). Children forked from the creator
    /// inherit the mapping but not the duty: their pid differs.
    pub(crate) unlink_by: AtomicU32,
    /// The file's (device, inode), read on first use: what names the memory whatever address
    /// this process maps it at (`Segment::file_id`).
    pub(crate) file_id: std::sync::OnceLock<Option<(u64, u64)>>,
}

// SAFETY: the mapping is process-wide memory; every access to its contents goes through
// atomics or through objects whose own protocols make sharing sound (`ShmObject`).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base..base+len` is the mapping made when this value was built, and no
        // `Segment` (hence no `ShmRef`, which holds a `Segment`) is left to reference it.
        unsafe { sys::mman::unmap(self.base, self.len) };
        if let Some(name) = self.name.get() {
            if self.unlink_by.load(Relaxed) == sys::process::getpid() as u32 {
                // Only if the name still means our file: someone may have unlinked it and
                // created another segment under the same name since.
                let _ = sys::mman::shm_unlink_if_same(name, &self.fd);
            }
        }
    }
}

/// A shared-memory segment: a header followed by an arena of small objects.
///
/// Two kinds:
/// * **anonymous** ([`Segment::anonymous`]): shared with the children this process forks
///   afterwards (and with any process it is sent to). Nothing names it, so nothing can leak:
///   the kernel frees it with the last mapping or descriptor, even after SIGKILL.
/// * **named** ([`Segment::create`] / [`Segment::open`]): for unrelated processes. Created
///   with mode 0600, fully allocated (a full `/dev/shm` is an error, never a SIGBUS) and
///   complete before its name appears (a creator killed at any instruction leaves nothing, or a
///   complete segment); the creator's last handle unlinks the name unless
///   [`Segment::persist`] is called. A process that only opens a segment never unlinks it
///   (unlike Python, SHM-B1).
///
/// Handles are cheap to clone; the mapping lives until the last clone drops.
///
/// # Examples
///
/// ```
/// use multiproc::Segment;
///
/// let name = format!("doc-segment-{}", std::process::id());
/// let seg = Segment::create(&name, 4096)?;
/// let other = Segment::open(&name)?;           // another process would do this
/// assert_eq!(other.len(), seg.len());
/// drop(other);
/// drop(seg);                                    // the creator's last handle unlinks the name
/// assert!(matches!(Segment::open(&name), Err(multiproc::ShmError::NotFound { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Segment {
    pub(crate) map: Arc<Mapping>,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment").field("name", &self.map.name).field("len", &self.map.len).finish()
    }
}

/// The mapping size for `usable` bytes after the header, in whole pages.
pub(crate) fn total_len_for(usable: usize) -> Result<usize, ShmError> {
    let page = sys::mman::page_size() as u64;
    let want = (usable as u64).checked_add(HEADER_LEN as u64).ok_or(ShmError::TooLarge { len: usable as u64 })?;
    let total = want.div_ceil(page) * page;
    if total > MAX_LEN {
        return Err(ShmError::TooLarge { len: usable as u64 });
    }
    Ok(total as usize)
}

impl Segment {
    /// Creates an anonymous segment with at least `len` usable bytes, shared with every child
    /// this process forks from now on (and with any process it is passed to).
    ///
    /// The memory is a sealed `memfd` (its size cannot change under anyone's mapping).
    ///
    /// # Errors
    /// [`ShmError::TooSmall`] for `len == 0`, [`ShmError::TooLarge`], or the OS error of
    /// `memfd_create`/`mmap`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(1 << 16)?;
    /// assert!(seg.len() >= 1 << 16);
    /// assert_eq!(seg.name(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn anonymous(len: usize) -> Result<Segment, ShmError> {
        Segment::anonymous_object(len, ObjectKind::Plain, &TypeInfo::NONE, |_| Ok(0))
    }

    /// An anonymous segment that holds an object: `init` builds it (returning its root offset)
    /// before the segment is used anywhere.
    pub(crate) fn anonymous_object(
        len: usize,
        kind: ObjectKind,
        ty: &TypeInfo,
        init: impl FnOnce(&Segment) -> Result<usize, ShmError>,
    ) -> Result<Segment, ShmError> {
        if len == 0 {
            return Err(ShmError::TooSmall { len: 0, min: 1 });
        }
        let total = total_len_for(len)?;
        let fd = sys::mman::memfd_create("multiproc")?;
        sys::mman::set_len(&fd, total)?;
        sys::mman::seal_size(&fd)?;
        let base = sys::mman::map_fd(&fd, total)?;
        let seg = Segment::from_mapping(Mapping {
            base,
            len: total,
            fd,
            name: std::sync::OnceLock::new(),
            unlink_by: AtomicU32::new(0),
            file_id: std::sync::OnceLock::new(),
        });
        seg.init_header(kind, ty);
        let root = init(&seg)?;
        seg.set_root(root);
        seg.publish();
        Ok(seg)
    }

    pub(crate) fn from_mapping(m: Mapping) -> Segment {
        Segment { map: Arc::new(m) }
    }

    /// The segment's name as Python's `SharedMemory.name` shows it: without the leading `/`
    /// that `shm_open` needs (every call that takes a name accepts it with or without), or
    /// `None` for an anonymous segment.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Segment::anonymous(16)?.name(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.map.name.get().map(|n| n.strip_prefix('/').unwrap_or(n))
    }

    /// Total size of the mapping in bytes, header included.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Segment::anonymous(100)?.len(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// Always false: a segment holds at least its header. (Here for clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes still free in the segment's allocator.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// let before = seg.available();
    /// let _lock = multiproc::Lock::new_in(&seg)?;
    /// assert!(seg.available() < before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn available(&self) -> usize {
        let next = self.header().arena_next.load(Relaxed);
        (self.map.len as u64).saturating_sub(next) as usize
    }

    /// The descriptor of the file behind the mapping (to hand the segment to another process).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.map.fd.as_fd()
    }

    /// The root object registered by the creator, if any.
    pub(crate) fn root(&self) -> Option<usize> {
        let s = self.snapshot();
        (s.root != 0).then_some(s.root as usize)
    }

    /// The validated header.
    pub(crate) fn info(&self) -> Result<header::HeaderInfo, ShmError> {
        header::validate_snapshot(&self.snapshot(), self.map.len as u64)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: every mapping is at least HEADER_LEN bytes and page-aligned, so it holds an
        // aligned `Header`; its atomics tolerate concurrent access, and its plain fields are only
        // written before READY is published (by the creator, see `init_header`/`set_root`).
        unsafe { &*self.map.base.as_ptr().cast::<Header>() }
    }

    pub(crate) fn snapshot(&self) -> HeaderSnapshot {
        let h = self.header();
        HeaderSnapshot {
            magic: h.magic,
            layout_version: h.layout_version,
            state: h.state.load(Acquire),
            total_len: h.total_len,
            creator_pid: h.creator_pid,
            kind: h.kind,
            creator_start: h.creator_start,
            arena_next: h.arena_next.load(Relaxed),
            root: h.root,
            type_fp: h.type_fp,
            type_size: h.type_size,
            type_align: h.type_align,
            type_name: h.type_name,
            // Acquire: pairs with `persist`'s Release (a reclaimer reads it with the creator
            // gone).
            flags: h.flags.load(Acquire),
        }
    }

    /// Writes the header of a fresh, unpublished segment.
    pub(crate) fn init_header(&self, kind: ObjectKind, ty: &TypeInfo) {
        // The cached identity: no /proc read per segment (anonymous segments are created often,
        // e.g. per Pipe or Queue).
        let (pid, start) = sys::process::self_identity();
        let h = self.map.base.as_ptr().cast::<Header>();
        // SAFETY: the mapping is fresh (zeroed, unpublished): nothing else reads or writes it.
        // We write fields through the raw pointer, never forming a reference to the whole header
        // while it is being written.
        unsafe {
            std::ptr::addr_of_mut!((*h).magic).write(MAGIC);
            std::ptr::addr_of_mut!((*h).layout_version).write(LAYOUT_VERSION);
            std::ptr::addr_of_mut!((*h).total_len).write(self.map.len as u64);
            std::ptr::addr_of_mut!((*h).creator_pid).write(pid);
            std::ptr::addr_of_mut!((*h).creator_start).write(start);
            std::ptr::addr_of_mut!((*h).kind).write(kind as u32);
            std::ptr::addr_of_mut!((*h).type_fp).write(ty.fp);
            std::ptr::addr_of_mut!((*h).type_size).write(ty.size);
            std::ptr::addr_of_mut!((*h).type_align).write(ty.align);
            std::ptr::addr_of_mut!((*h).type_name).write(header::type_name_bytes(ty.name));
        }
        self.header().arena_next.store(HEADER_LEN as u64, Relaxed);
    }

    /// Records the root object's offset (before publishing).
    pub(crate) fn set_root(&self, root: usize) {
        // SAFETY: the segment is not yet published (state != READY), so no other process reads
        // the header; we are its only writer.
        unsafe { std::ptr::addr_of_mut!((*self.map.base.as_ptr().cast::<Header>()).root).write(root as u64) };
    }

    pub(crate) fn publish(&self) {
        // SYNC(release → open): the header and all objects `init` built are visible before READY.
        self.header().state.store(STATE_READY, Release);
    }

    /// Reserves `size` bytes aligned to `align` (a power of two ≤ 4096) and returns their offset.
    /// The bytes are zero: the arena never reuses space.
    pub(crate) fn alloc(&self, size: usize, align: usize) -> Result<usize, ShmError> {
        debug_assert!(align.is_power_of_two() && align <= 4096);
        let len = self.map.len as u64;
        let h = self.header();
        // Relaxed: allocation hands out disjoint ranges; publishing an object to another process
        // is the job of whatever shares its offset (fork, or the READY store).
        let mut cur = h.arena_next.load(Relaxed);
        loop {
            // `arena_next` lives in shared memory: check it before trusting it.
            if cur < HEADER_LEN as u64 || cur > len {
                return Err(ShmError::Corrupt { what: "allocator offset outside the segment" });
            }
            let start = cur.next_multiple_of(align as u64);
            let end = start
                .checked_add(size as u64)
                .filter(|&e| e <= len)
                .ok_or(ShmError::OutOfSpace { requested: size as u64, available: len - cur })?;
            match h.arena_next.compare_exchange_weak(cur, end, Relaxed, Relaxed) {
                Ok(_) => return Ok(start as usize),
                Err(now) => cur = now,
            }
        }
    }

    /// Allocates a zeroed `T` in this segment.
    pub(crate) fn alloc_object<T: ShmObject>(&self) -> Result<ShmRef<T>, ShmError> {
        let off = self.alloc(std::mem::size_of::<T>(), std::mem::align_of::<T>())?;
        self.object_at(off)
    }

    /// A reference to the `T` at `offset`, after checking that it lies inside the segment past
    /// the header and is aligned (the offset may come from shared memory).
    pub(crate) fn object_at<T: ShmObject>(&self, offset: usize) -> Result<ShmRef<T>, ShmError> {
        let end = offset.checked_add(std::mem::size_of::<T>());
        if offset < HEADER_LEN || end.is_none_or(|e| e > self.map.len) {
            return Err(ShmError::Corrupt { what: "object offset outside the segment" });
        }
        if offset % std::mem::align_of::<T>() != 0 {
            return Err(ShmError::Corrupt { what: "misaligned object offset" });
        }
        // SAFETY: `offset` is within the mapping (checked above), so the pointer is non-null.
        let ptr = unsafe { NonNull::new_unchecked(self.map.base.as_ptr().add(offset).cast::<T>()) };
        Ok(ShmRef { seg: self.clone(), ptr, _t: PhantomData })
    }

    /// A raw pointer to `len` bytes at `offset`, bounds-checked, for byte regions (rings).
    pub(crate) fn bytes_at(&self, offset: usize, len: usize) -> Result<NonNull<u8>, ShmError> {
        if offset < HEADER_LEN || offset.checked_add(len).is_none_or(|e| e > self.map.len) {
            return Err(ShmError::Corrupt { what: "byte range outside the segment" });
        }
        // SAFETY: in bounds, checked above.
        Ok(unsafe { NonNull::new_unchecked(self.map.base.as_ptr().add(offset)) })
    }

    /// `len` elements of `T` at `offset`, bounds- and alignment-checked (both may come from
    /// shared memory).
    pub(crate) fn elements_at<T>(&self, offset: usize, len: usize) -> Result<NonNull<T>, ShmError> {
        let size =
            len.checked_mul(std::mem::size_of::<T>()).ok_or(ShmError::Corrupt { what: "element count overflows" })?;
        if offset % std::mem::align_of::<T>() != 0 {
            return Err(ShmError::Corrupt { what: "misaligned elements" });
        }
        Ok(self.bytes_at(offset, size)?.cast())
    }

    /// The offset of `ptr` in this segment, if it points into it.
    /// The (device, inode) of the file behind the segment, the same in every mapping of it
    /// (`None` if `fstat` fails). Read once per mapping.
    pub(crate) fn file_id(&self) -> Option<(u64, u64)> {
        *self
            .map
            .file_id
            .get_or_init(|| nix::sys::stat::fstat(self.map.fd.as_fd()).ok().map(|st| (st.st_dev, st.st_ino)))
    }

    pub(crate) fn offset_of<T>(&self, ptr: *const T) -> Option<usize> {
        let off = (ptr as usize).checked_sub(self.map.base.as_ptr() as usize)?;
        (off < self.map.len).then_some(off)
    }
}

/// An object type that lives in shared memory and is built in place by the crate.
///
/// # Safety
/// * all-zero bytes are a valid value of the type (fresh arena memory is zero);
/// * it holds no pointers, references, fds or other process-local handles;
/// * every mutation through `&self` goes through atomics or `UnsafeCell`s whose cross-process
///   protocol the type documents, so sharing `&T` between processes is sound (`Sync`);
/// * its methods treat every value read from shared memory as untrusted (checked or masked).
pub(crate) unsafe trait ShmObject: Send + Sync + 'static {}

/// A reference to a `T` inside a segment that keeps the segment mapped.
pub(crate) struct ShmRef<T: ShmObject> {
    seg: Segment,
    ptr: NonNull<T>,
    _t: PhantomData<T>,
}

impl<T: ShmObject> ShmRef<T> {
    /// The object's offset in its segment (the same in every process).
    pub(crate) fn offset(&self) -> usize {
        self.ptr.as_ptr() as usize - self.seg.map.base.as_ptr() as usize
    }

    /// The segment the object lives in.
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<T: ShmObject> Clone for ShmRef<T> {
    fn clone(&self) -> Self {
        ShmRef { seg: self.seg.clone(), ptr: self.ptr, _t: PhantomData }
    }
}

impl<T: ShmObject> Deref for ShmRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` was bounds- and alignment-checked in `object_at`, the mapping lives as
        // long as `self.seg`, all-zero or peer-written bytes are valid `T` (ShmObject), and `T`
        // only mutates through atomics/cells, so a shared reference is sound.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ShmObject + fmt::Debug> fmt::Debug for ShmRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

// SAFETY: `T: ShmObject` is Send + Sync and shared memory is process-wide; the segment handle is
// Send + Sync.
unsafe impl<T: ShmObject> Send for ShmRef<T> {}
// SAFETY: as above.
unsafe impl<T: ShmObject> Sync for ShmRef<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loom::atomic::AtomicU64;

    #[derive(Debug)]
    #[repr(C)]
    struct Counter(AtomicU64);
    // SAFETY: an all-zero AtomicU64 is 0; no pointers; mutation is atomic.
    unsafe impl ShmObject for Counter {}

    #[test]
    fn arena_allocations_are_disjoint_aligned_and_bounded() {
        let seg = Segment::anonymous(4096).unwrap();
        let a = seg.alloc(10, 8).unwrap();
        let b = seg.alloc(8, 64).unwrap();
        assert!(a >= HEADER_LEN && a + 10 <= b && b % 64 == 0);
        let left = seg.available();
        assert!(matches!(seg.alloc(left + 1, 1), Err(ShmError::OutOfSpace { .. })));
        assert!(seg.alloc(left, 1).is_ok());
        assert_eq!(seg.available(), 0);
    }

    #[test]
    fn object_offsets_are_checked() {
        let seg = Segment::anonymous(4096).unwrap();
        assert!(matches!(seg.object_at::<Counter>(0), Err(ShmError::Corrupt { .. })));
        assert!(matches!(seg.object_at::<Counter>(seg.len() - 4), Err(ShmError::Corrupt { .. })));
        assert!(matches!(seg.object_at::<Counter>(HEADER_LEN + 4), Err(ShmError::Corrupt { .. })));
        let c = seg.alloc_object::<Counter>().unwrap();
        c.0.fetch_add(5, Relaxed);
        let again = seg.object_at::<Counter>(c.offset()).unwrap();
        assert_eq!(again.0.load(Relaxed), 5);
    }

    #[test]
    fn zero_size_is_rejected() {
        assert!(matches!(Segment::anonymous(0), Err(ShmError::TooSmall { .. })));
        assert!(matches!(Segment::anonymous(usize::MAX), Err(ShmError::TooLarge { .. })));
    }

    #[test]
    fn anonymous_segments_are_sealed_memfds() {
        let seg = Segment::anonymous(100).unwrap();
        let (len, _) = sys::mman::file_len_and_owner(&seg.map.fd).unwrap();
        assert_eq!(len as usize, seg.len());
        assert!(sys::mman::set_len(&seg.map.fd, 1).is_err(), "the size is sealed");
        assert!(seg.info().is_ok());
    }
}
