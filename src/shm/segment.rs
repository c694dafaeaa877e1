//! Mappings: anonymous and named segments, typed references into them, the bump allocator.

use super::header::{self, Header, HeaderSnapshot, HEADER_LEN, LAYOUT_VERSION, MAGIC, STATE_READY};
use super::{name, ShmError};
use crate::loom::atomic::Ordering::{Acquire, Relaxed, Release};
use crate::sys::{self, clock::Deadline};
use std::fmt;
use std::io::Read;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

/// Largest segment we create: offsets are `u64` in the header, but keep well inside the
/// address space and `off_t`.
const MAX_LEN: u64 = 1 << 46;

/// How long [`Segment::open`] waits for a segment's creator to publish it.
const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(1);

/// One mapping of one segment in this process. Unmapped when the last [`Segment`] handle of
/// this process drops.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
    /// `/name` for named segments.
    name: Option<String>,
    /// The pid that unlinks the name when its last handle drops (the creator, unless
    /// [`Segment::persist`] was called). Children forked from the creator never unlink.
    unlink_by: std::sync::atomic::AtomicI32,
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
        if let Some(name) = &self.name {
            if self.unlink_by.load(std::sync::atomic::Ordering::Relaxed) == sys::process::getpid() {
                let _ = sys::mman::shm_unlink(name);
            }
        }
    }
}

/// A shared-memory segment: a header followed by an arena of small objects.
///
/// Two kinds:
/// * **anonymous** ([`Segment::anonymous`]): shared with the children this process forks
///   afterwards. Nothing names it, so nothing can leak: the kernel frees it with the last
///   mapping, even after SIGKILL.
/// * **named** ([`Segment::create`] / [`Segment::open`]): for unrelated processes. Created
///   `O_EXCL` with mode 0600 and fully allocated (a full `/dev/shm` is an error, never a
///   SIGBUS); the creator's last handle unlinks the name unless [`Segment::persist`] is called.
///   A process that only opens a segment never unlinks it (unlike Python, SPEC SHM-B1).
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
/// # Ok::<(), multiproc::ShmError>(())
/// ```
#[derive(Clone)]
pub struct Segment {
    map: Arc<Mapping>,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment").field("name", &self.map.name).field("len", &self.map.len).finish()
    }
}

fn total_len_for(usable: usize) -> Result<usize, ShmError> {
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
    /// this process forks from now on.
    ///
    /// # Errors
    /// [`ShmError::TooSmall`] for `len == 0`, [`ShmError::TooLarge`], or the OS error of `mmap`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(1 << 16)?;
    /// assert!(seg.len() >= 1 << 16);
    /// assert_eq!(seg.name(), None);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn anonymous(len: usize) -> Result<Segment, ShmError> {
        if len == 0 {
            return Err(ShmError::TooSmall { len: 0, min: 1 });
        }
        let total = total_len_for(len)?;
        let base = sys::mman::map_anonymous(total)?;
        let seg = Segment { map: Arc::new(Mapping { base, len: total, name: None, unlink_by: (-1).into() }) };
        seg.init_header();
        seg.publish();
        Ok(seg)
    }

    /// Creates a named segment with at least `len` usable bytes. `name` may start with `/`;
    /// it must otherwise be 1–250 characters from `[A-Za-z0-9._-]`.
    ///
    /// # Errors
    /// [`ShmError::InvalidName`], [`ShmError::Exists`], [`ShmError::PermissionDenied`],
    /// [`ShmError::TooSmall`] for `len == 0`, [`ShmError::NoSpace`] when `/dev/shm` is full.
    /// On error nothing is left behind.
    pub fn create(name: &str, len: usize) -> Result<Segment, ShmError> {
        Segment::create_with(name, len, 0, |_| Ok(0))
    }

    /// Creates a named segment and runs `init` on it before publishing it: openers never see
    /// the segment before `init` has returned. `init` returns the root object's offset (0 for
    /// none), found by openers through [`Segment::root`]. `kind` tags what the root is.
    pub(crate) fn create_with(
        name: &str,
        len: usize,
        kind: u32,
        init: impl FnOnce(&Segment) -> Result<usize, ShmError>,
    ) -> Result<Segment, ShmError> {
        let name = name::normalize(name)?;
        if len == 0 {
            return Err(ShmError::TooSmall { len: 0, min: 1 });
        }
        let total = total_len_for(len)?;
        let fd = sys::mman::shm_open(&name, true).map_err(|e| ShmError::from_os(e, &name))?;
        // From here on the name exists: remove it again on any failure.
        let fail = |e: ShmError| {
            let _ = sys::mman::shm_unlink(&name);
            e
        };
        sys::mman::allocate(&fd, total).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EFBIG) => fail(ShmError::NoSpace { len: total as u64 }),
            _ => fail(ShmError::Os(e)),
        })?;
        let base = sys::mman::map_fd(&fd, total).map_err(|e| fail(e.into()))?;
        let seg = Segment {
            map: Arc::new(Mapping {
                base,
                len: total,
                name: Some(name.clone()),
                unlink_by: sys::process::getpid().into(),
            }),
        };
        seg.init_header();
        // On error, dropping `seg` unmaps and unlinks (we are the creator).
        let root = init(&seg)?;
        // SAFETY: the segment is not yet published (state != READY), so no other process reads
        // the header; we are its only writer.
        unsafe {
            let h = seg.map.base.as_ptr().cast::<Header>();
            (*h).kind = kind;
            (*h).root = root as u64;
        }
        seg.publish();
        Ok(seg)
    }

    /// Opens a named segment created by another process, waiting up to one second for its
    /// creator to finish initializing it. See [`Segment::open_timeout`].
    pub fn open(name: &str) -> Result<Segment, ShmError> {
        Segment::open_timeout(name, DEFAULT_OPEN_TIMEOUT)
    }

    /// Opens a named segment, waiting up to `timeout` for its creator to publish it.
    ///
    /// # Errors
    /// [`ShmError::InvalidName`], [`ShmError::NotFound`], [`ShmError::PermissionDenied`];
    /// [`ShmError::NotReady`] if the creator has not published it within `timeout` (it may have
    /// died halfway); [`ShmError::BadMagic`], [`ShmError::VersionMismatch`],
    /// [`ShmError::TooSmall`] or [`ShmError::Corrupt`] if the header is not a valid one.
    pub fn open_timeout(name: &str, timeout: Duration) -> Result<Segment, ShmError> {
        let name = name::normalize(name)?;
        let deadline = Deadline::after(timeout);
        let fd = sys::mman::shm_open(&name, false).map_err(|e| ShmError::from_os(e, &name))?;
        let not_ready = || ShmError::NotReady { name: name.clone() };
        // The creator may still be between `shm_open` and `posix_fallocate` (size 0).
        let len = loop {
            let (len, _) = sys::mman::file_len_and_owner(&fd)?;
            if len >= HEADER_LEN as u64 {
                break len;
            }
            backoff(deadline).map_err(|()| {
                if len == 0 {
                    not_ready()
                } else {
                    ShmError::TooSmall { len, min: HEADER_LEN as u64 }
                }
            })?;
        };
        let len = usize::try_from(len).ok().filter(|&l| l as u64 <= MAX_LEN).ok_or(ShmError::TooLarge { len })?;
        let base = sys::mman::map_fd(&fd, len)?;
        let seg = Segment { map: Arc::new(Mapping { base, len, name: Some(name.clone()), unlink_by: (-1).into() }) };
        // SYNC(acquire ← publish): after READY every other header field is immutable.
        while seg.header().state.load(Acquire) != STATE_READY {
            backoff(deadline).map_err(|()| not_ready())?;
        }
        header::validate_snapshot(&seg.snapshot(), len as u64).map_err(|e| match e {
            ShmError::NotReady { .. } => not_ready(),
            e => e,
        })?;
        Ok(seg)
    }

    /// Removes the name of a segment. Processes that have it mapped keep using it; the memory
    /// is freed when the last of them unmaps it.
    ///
    /// # Errors
    /// [`ShmError::InvalidName`], [`ShmError::NotFound`] (also for a second unlink),
    /// [`ShmError::PermissionDenied`].
    pub fn unlink(name: &str) -> Result<(), ShmError> {
        let name = name::normalize(name)?;
        sys::mman::shm_unlink(&name).map_err(|e| ShmError::from_os(e, &name))
    }

    /// Keeps the name after this process's last handle drops (it must then be removed with
    /// [`Segment::unlink`] or `multiproc shm clean`).
    pub fn persist(&self) {
        self.map.unlink_by.store(-1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The segment's name (with its leading `/`), or `None` for an anonymous segment.
    pub fn name(&self) -> Option<&str> {
        self.map.name.as_deref()
    }

    /// Total size of the mapping in bytes, header included.
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// Always false: a segment holds at least its header. (Here for clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes still free in the segment's allocator.
    pub fn available(&self) -> usize {
        let next = self.header().arena_next.load(Relaxed);
        (self.map.len as u64).saturating_sub(next) as usize
    }

    /// The root object registered by the creator (`kind`, offset), if any: the opener's side
    /// of `create_with`, for named objects (not used by a public API yet).
    #[allow(dead_code)]
    pub(crate) fn root(&self) -> Option<(u32, usize)> {
        let s = self.snapshot();
        (s.root != 0).then_some((s.kind, s.root as usize))
    }

    fn header(&self) -> &Header {
        // SAFETY: every mapping is at least HEADER_LEN bytes and page-aligned, so it holds an
        // aligned `Header`; its atomics tolerate concurrent access, and its plain fields are only
        // written before READY is published (by the creator, see `init_header`/`create_with`).
        unsafe { &*self.map.base.as_ptr().cast::<Header>() }
    }

    fn snapshot(&self) -> HeaderSnapshot {
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
            reserved: h.reserved,
        }
    }

    fn init_header(&self) {
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
        }
        self.header().arena_next.store(HEADER_LEN as u64, Relaxed);
    }

    fn publish(&self) {
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
}

/// Sleeps a little before a retry, or fails once `deadline` has passed.
fn backoff(deadline: Option<Deadline>) -> Result<(), ()> {
    if deadline.is_some_and(|d| d.has_passed()) {
        return Err(());
    }
    std::thread::sleep(Duration::from_millis(1));
    Ok(())
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
    #[cfg(test)]
    pub(crate) fn offset(&self) -> usize {
        self.ptr.as_ptr() as usize - self.seg.map.base.as_ptr() as usize
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

/// A named segment of ours found in `/dev/shm`, as `multiproc shm list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSegmentInfo {
    /// The name, with its leading `/`.
    pub name: String,
    /// Size in bytes.
    pub len: u64,
    /// Pid of the process that created it.
    pub creator_pid: u32,
    /// Whether that process (the same one: pid and start time match) still runs.
    pub creator_alive: bool,
    /// Whether the creator published it (finished initializing). An unpublished segment
    /// whose creator is dead was left by a creator that died during creation: nobody can
    /// ever open it, and [`Segment::clean_stale`] removes it.
    pub published: bool,
}

/// Lists the named segments in `/dev/shm` that carry this crate's header and belong to the
/// current user. Files that are not ours, or that we cannot read, are skipped.
///
/// Headers are read with `read(2)`, never mapped, so a file truncated meanwhile cannot raise
/// SIGBUS here.
pub fn list_named() -> std::io::Result<Vec<NamedSegmentInfo>> {
    let mut out = Vec::new();
    let uid = sys::mman::getuid();
    for entry in std::fs::read_dir("/dev/shm")? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || std::os::unix::fs::MetadataExt::uid(&meta) != uid {
            continue;
        }
        let mut buf = [0u8; HEADER_LEN];
        let ok = std::fs::File::open(entry.path()).and_then(|mut f| f.read_exact(&mut buf)).is_ok();
        if !ok {
            continue;
        }
        let (creator_pid, creator_start, published) = match header::validate_header(&buf, meta.len()) {
            Ok(info) => (info.creator_pid, info.creator_start, true),
            // Not published yet (or never will be): ours if the creator got as far as writing
            // the magic and version, which it does before running `init`.
            Err(ShmError::NotReady { .. }) => match header::unpublished_creator(&buf) {
                Some((pid, start)) => (pid, start, false),
                None => continue,
            },
            Err(_) => continue,
        };
        let alive = sys::process::is_alive(creator_pid, creator_start);
        out.push(NamedSegmentInfo {
            name: format!("/{}", entry.file_name().to_string_lossy()),
            len: meta.len(),
            creator_pid,
            creator_alive: alive,
            published,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

impl Segment {
    /// Unlinks every named segment of ours whose creator has died (see [`list_named`]) and
    /// returns their names. Segments whose creator is alive are never touched.
    pub fn clean_stale() -> std::io::Result<Vec<String>> {
        let mut removed = Vec::new();
        for s in list_named()? {
            if !s.creator_alive && sys::mman::shm_unlink(&s.name).is_ok() {
                removed.push(s.name);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loom::atomic::AtomicU64;

    #[derive(Debug)]
    #[repr(C)]
    struct Counter(AtomicU64);
    // SAFETY: an all-zero AtomicU64 is 0; no pointers; mutation is atomic.
    unsafe impl ShmObject for Counter {}

    fn unique(tag: &str) -> String {
        format!("mp-unit-{tag}-{}", std::process::id())
    }

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
    fn named_create_open_unlink() {
        let n = unique("cou");
        let seg = Segment::create(&n, 1000).unwrap();
        assert_eq!(seg.name(), Some(format!("/{n}").as_str()));
        assert!(matches!(Segment::create(&n, 1000), Err(ShmError::Exists { .. })));
        let c = seg.alloc_object::<Counter>().unwrap();
        c.0.store(42, Relaxed);
        let other = Segment::open(&format!("/{n}")).unwrap();
        assert_eq!(other.object_at::<Counter>(c.offset()).unwrap().0.load(Relaxed), 42);
        Segment::unlink(&n).unwrap();
        assert!(matches!(Segment::unlink(&n), Err(ShmError::NotFound { .. })));
        assert!(matches!(Segment::open(&n), Err(ShmError::NotFound { .. })));
        // Mappings stay usable after unlink.
        assert_eq!(other.object_at::<Counter>(c.offset()).unwrap().0.load(Relaxed), 42);
    }

    #[test]
    fn garbage_segment_is_rejected_not_ub() {
        let n = unique("garbage");
        std::fs::write(format!("/dev/shm/{n}"), vec![0xAB; 8192]).unwrap();
        let r = Segment::open_timeout(&n, Duration::from_millis(20));
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
        assert!(matches!(r, Err(ShmError::NotReady { .. })), "{r:?}");

        let n = unique("short");
        std::fs::write(format!("/dev/shm/{n}"), [1u8; 10]).unwrap();
        let r = Segment::open_timeout(&n, Duration::from_millis(20));
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
        assert!(matches!(r, Err(ShmError::TooSmall { len: 10, .. })), "{r:?}");
    }

    #[test]
    fn zero_size_is_rejected() {
        assert!(matches!(Segment::anonymous(0), Err(ShmError::TooSmall { .. })));
        assert!(matches!(Segment::create(&unique("zero"), 0), Err(ShmError::TooSmall { .. })));
        assert!(matches!(Segment::anonymous(usize::MAX), Err(ShmError::TooLarge { .. })));
    }

    #[test]
    fn list_shows_our_live_segments() {
        let n = unique("list");
        let seg = Segment::create(&n, 100).unwrap();
        let all = list_named().unwrap();
        let me = all.iter().find(|s| s.name == format!("/{n}")).expect("listed");
        assert!(me.creator_alive);
        assert_eq!(me.creator_pid, std::process::id());
        assert!(!Segment::clean_stale().unwrap().contains(&format!("/{n}")));
        assert!(me.published);
        drop(seg);
    }

    #[test]
    fn a_creator_that_dies_before_publishing_leaves_a_listed_cleanable_segment() {
        let n = unique("unpublished");
        let full = format!("/{n}");
        // SAFETY: the child only creates a segment and `_exit`s from inside `init`.
        let pid = match unsafe { sys::process::fork() }.unwrap() {
            sys::process::Fork::Child => {
                let _ = Segment::create_with(&n, 100, 0, |_| -> Result<usize, ShmError> { sys::process::exit_now(0) });
                sys::process::exit_now(1);
            }
            sys::process::Fork::Parent(pid) => pid,
        };
        sys::process::waitpid_blocking(pid).unwrap();
        let listed =
            list_named().unwrap().into_iter().find(|s| s.name == full).expect("the unpublished segment is listed");
        assert!(!listed.published && !listed.creator_alive);
        assert_eq!(listed.creator_pid, pid as u32);
        assert!(matches!(Segment::open_timeout(&n, std::time::Duration::ZERO), Err(ShmError::NotReady { .. })));
        assert!(Segment::clean_stale().unwrap().contains(&full));
        assert!(!list_named().unwrap().iter().any(|s| s.name == full));
    }
}
