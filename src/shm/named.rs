//! Named segments: created complete before their name appears, opened with their header and
//! object type checked, listed and cleaned.
//!
//! # Creation is atomic
//! A segment is built in an unnamed file (`O_TMPFILE` in `/dev/shm`): allocated, mapped, its
//! header and object written and published. Only then does `linkat` give it its name, failing
//! with `EEXIST` if the name is taken. A creator killed at any instruction therefore leaves no
//! name at all, or a complete segment (whose dead creator `multiproc shm clean` can judge).
//!
//! Where the file system has no `O_TMPFILE`, the same steps run on a temporary name
//! `/.mp-<pid>-<start>-<seq>` that is renamed with `RENAME_NOREPLACE` at the end. A creator
//! killed before the rename leaves the temporary file; its name says whose it was, so
//! [`list_named`](super::list_named) shows it and [`Segment::clean_stale`] removes it once that process is dead,
//! whatever its contents (even size 0).

use super::header::{self, ObjectKind, TypeInfo, HEADER_LEN, STATE_READY};
use super::segment::{total_len_for, Mapping, ShmObject, MAX_LEN};
use super::{name, Segment, ShmError};
use crate::loom::atomic::Ordering::{Acquire, Relaxed, Release};
use crate::loom::atomic::{AtomicU32, AtomicU64};
use crate::sys;
use crate::wait::Limit;
use std::time::Duration;

impl Segment {
    /// Creates a named segment with at least `len` usable bytes, for processes that are not
    /// forked from this one. The name may be written with or without its leading `/`.
    ///
    /// The segment is complete before its name appears (see the module docs), has mode 0600,
    /// and is fully allocated, so a full `/dev/shm` is an error here and never a SIGBUS later.
    /// This process's last handle removes the name, unless [`Segment::persist`] is called.
    ///
    /// # Errors
    /// [`ShmError::InvalidName`], [`ShmError::Exists`], [`ShmError::PermissionDenied`],
    /// [`ShmError::TooSmall`] for `len == 0`, [`ShmError::TooLarge`], [`ShmError::NoSpace`]
    /// when `/dev/shm` is full. On error nothing is left behind.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Segment, ShmError};
    ///
    /// let name = format!("doc-create-{}", std::process::id());
    /// let seg = Segment::create(&name, 4096)?;
    /// assert_eq!(seg.name(), Some(name.as_str()));
    /// assert!(matches!(Segment::create(&name, 4096), Err(ShmError::Exists { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, len: usize) -> Result<Segment, ShmError> {
        Segment::create_object(name, len, ObjectKind::Plain, &TypeInfo::NONE, |_| Ok(0))
    }

    /// Creates a named segment holding one object: `init` builds it and returns its root
    /// offset. Openers never see the segment before `init` has returned.
    pub(crate) fn create_object<E: From<ShmError>>(
        name: &str,
        len: usize,
        kind: ObjectKind,
        ty: &TypeInfo,
        init: impl FnOnce(&Segment) -> Result<usize, E>,
    ) -> Result<Segment, E> {
        let name = name::normalize(name)?;
        if len == 0 {
            return Err(ShmError::TooSmall { len: 0, min: 1 }.into());
        }
        let total = total_len_for(len)?;
        match tmpfile() {
            Ok(fd) => {
                let seg = build(fd, total, Some(&name), kind, ty, init)?;
                // A name left by a creator that was killed, and that it did not persist, is
                // taken over (a restarted service gets its names back) once, race-free.
                let linked = match sys::mman::link_fd(&seg.map.fd, &name) {
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) && reclaim_stale(&name) => {
                        sys::mman::link_fd(&seg.map.fd, &name)
                    }
                    r => r,
                };
                linked.map_err(|e| ShmError::from_os(e, &name))?;
                seg.map.unlink_by.store(sys::process::getpid() as u32, Relaxed);
                Ok(seg)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => create_renamed(&name, total, kind, ty, init),
            Err(e) => Err(ShmError::from_os(e, &name).into()),
        }
    }

    /// Creates the named segment of one object whose parts `init` allocates; `init` returns
    /// the words an opener needs to find them (offsets and parameters), which are recorded in
    /// a [`Directory`] at the segment's root.
    pub(crate) fn create_named<E: From<ShmError>>(
        name: &str,
        len: usize,
        kind: ObjectKind,
        ty: &TypeInfo,
        init: impl FnOnce(&Segment) -> Result<Words, E>,
    ) -> Result<(Segment, Words), E> {
        let mut words = [0; DIR_WORDS];
        let len = len.checked_add(std::mem::size_of::<Directory>()).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let seg = Segment::create_object(name, len, kind, ty, |seg| {
            let dir = seg.alloc_object::<Directory>()?;
            words = init(seg)?;
            for (d, w) in dir.0.iter().zip(words) {
                // Relaxed: published with the segment (the READY store is Release).
                d.store(w, Relaxed);
            }
            Ok::<usize, E>(dir.offset())
        })?;
        Ok((seg, words))
    }

    /// Opens the named segment of one object of `kind` with type parameter `ty`, and returns
    /// its directory words (untrusted: every offset is checked where it is used).
    pub(crate) fn open_named(
        name: &str,
        kind: ObjectKind,
        ty: &TypeInfo,
        timeout: Duration,
    ) -> Result<(Segment, Words), ShmError> {
        let seg = Segment::open_object(name, kind, ty, timeout)?;
        let root = seg.root().ok_or(ShmError::Corrupt { what: "named object without a root" })?;
        let dir = seg.object_at::<Directory>(root)?;
        // Relaxed: the Acquire load of READY in `open_object` made the creator's stores visible.
        let words = std::array::from_fn(|i| dir.0[i].load(Relaxed));
        drop(dir);
        Ok((seg, words))
    }

    /// Opens a named segment created by another process (any segment of this crate, whatever
    /// object it holds). Does not wait: see [`Segment::open_timeout`].
    ///
    /// # Errors
    /// [`ShmError::InvalidName`], [`ShmError::NotFound`], [`ShmError::PermissionDenied`];
    /// [`ShmError::BadMagic`], [`ShmError::VersionMismatch`], [`ShmError::TooSmall`],
    /// [`ShmError::NotReady`] or [`ShmError::Corrupt`] if the file is not a valid segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Segment;
    ///
    /// let name = format!("doc-open-{}", std::process::id());
    /// let seg = Segment::create(&name, 4096)?;
    /// let other = Segment::open(&name)?;           // another process would do this
    /// assert_eq!(other.len(), seg.len());
    /// drop(other);
    /// drop(seg);                                    // the creator's last handle unlinks the name
    /// assert!(matches!(Segment::open(&name), Err(multiproc::ShmError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Segment, ShmError> {
        Segment::open_timeout(name, Duration::ZERO)
    }

    /// Opens a named segment, waiting up to `timeout` for its name to appear (for a creator
    /// that is starting at the same time). `Duration::MAX` waits for ever.
    ///
    /// # Errors
    /// As [`Segment::open`]; [`ShmError::NotFound`] once `timeout` has passed without the name.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Segment, ShmError};
    /// use std::time::Duration;
    ///
    /// let name = format!("doc-open-timeout-{}", std::process::id());
    /// let r = Segment::open_timeout(&name, Duration::from_millis(10));
    /// assert!(matches!(r, Err(ShmError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_timeout(name: &str, timeout: Duration) -> Result<Segment, ShmError> {
        let name = name::normalize(name)?;
        open_until(&name, Limit::timeout(timeout))
    }

    /// Opens a named segment, waiting until `deadline` for its name to appear.
    ///
    /// # Errors
    /// As [`Segment::open`]; [`ShmError::NotFound`] once `deadline` has passed without the name.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg-deadline-{}", std::process::id());
    /// let _created = multiproc::Segment::create(&name, 4096)?;
    /// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// assert!(multiproc::Segment::open_deadline(&name, deadline).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_deadline(name: &str, deadline: std::time::Instant) -> Result<Segment, ShmError> {
        let name = name::normalize(name)?;
        open_until(&name, Limit::deadline(deadline))
    }

    /// Opens the named segment of one object and checks that it holds `kind` with type
    /// parameter `ty`, waiting up to `timeout` for the name.
    pub(crate) fn open_object(
        name: &str,
        kind: ObjectKind,
        ty: &TypeInfo,
        timeout: Duration,
    ) -> Result<Segment, ShmError> {
        let name = name::normalize(name)?;
        let seg = open_until(&name, Limit::timeout(timeout))?;
        let info = seg.info()?;
        if !info.matches(kind, ty) {
            return Err(ShmError::Mismatch { name, expected: header::describe(kind, ty), found: info.describe() });
        }
        Ok(seg)
    }

    /// Removes the name of a segment. Processes that have it mapped keep using it; the memory
    /// is freed when the last of them unmaps it.
    ///
    /// # Errors
    /// [`ShmError::InvalidName`], [`ShmError::NotFound`] (also for a second unlink),
    /// [`ShmError::PermissionDenied`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Segment, ShmError};
    ///
    /// let name = format!("doc-unlink-{}", std::process::id());
    /// let seg = Segment::create(&name, 4096)?;
    /// Segment::unlink(&name)?;
    /// assert!(matches!(Segment::unlink(&name), Err(ShmError::NotFound { .. })));
    /// assert!(seg.available() > 0);                 // the mapping is still usable
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unlink(name: &str) -> Result<(), ShmError> {
        let name = name::normalize(name)?;
        sys::mman::shm_unlink(&name).map_err(|e| ShmError::from_os(e, &name))
    }

    /// Keeps the name after this process's last handle drops: it must then be removed with
    /// [`Segment::unlink`] or `multiproc shm clean` (once this process has exited). Recorded
    /// in the segment, so that a `create` of the same name after this process died does not
    /// take it for a stale one (it takes over names of dead creators that were not persisted).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Segment;
    ///
    /// let name = format!("doc-persist-{}", std::process::id());
    /// Segment::create(&name, 4096)?.persist();      // dropped here, but the name stays
    /// assert!(Segment::open(&name).is_ok());
    /// Segment::unlink(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn persist(&self) {
        self.map.unlink_by.store(0, Relaxed);
        // SYNC(release → a reclaimer's Acquire load in `snapshot`): recorded in the segment,
        // so that a restarted creator does not take a persisted name for a stale one.
        self.header().flags.fetch_or(header::FLAG_PERSISTED, Release);
    }
}

/// Removes the segment named `name` if it is stale: one of ours, of this layout, whose
/// creator is dead and which was not persisted (its creator's last handle would have removed
/// the name, had it not been killed). Returns whether it removed it.
///
/// Race-free against a second restarter doing the same: the remover holds an exclusive
/// `flock` on the stale file and removes the name only while the name still leads to that
/// file, so of two restarters one removes it and creates anew, and the other finds either the
/// lock taken or the name leading elsewhere, and reports `Exists`.
fn reclaim_stale(name: &str) -> bool {
    let Ok(fd) = sys::mman::shm_open(name, false) else { return false };
    // Not ours, another layout, or not ready: left alone (`shm clean` and `unlink` exist).
    let Ok(seg) = Segment::adopt_fd(fd, None) else { return false };
    let h = seg.snapshot();
    if h.flags & header::FLAG_PERSISTED != 0 || sys::process::is_alive(h.creator_pid, h.creator_start) {
        return false;
    }
    // The lock goes with the descriptor when `seg` drops.
    if !sys::mman::try_lock_exclusive(&seg.map.fd) {
        return false; // another restarter is at it
    }
    // Only if the name still leads to this file: else someone reclaimed it first.
    sys::mman::shm_unlink_if_same(name, &seg.map.fd).is_ok()
}

/// How many words a [`Directory`] holds.
pub(crate) const DIR_WORDS: usize = 6;

/// The words a named object's creator records for its openers.
pub(crate) type Words = [u64; DIR_WORDS];

/// The root of a one-object named segment: where the object's parts are and its parameters.
/// Written before the segment is published, read-only after.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Directory([AtomicU64; DIR_WORDS]);

// SAFETY: all-zero is a directory of zero words (every use checks them); atomics only.
unsafe impl ShmObject for Directory {}

/// A directory word as an offset or length in this process (it comes from shared memory).
pub(crate) fn word_usize(w: u64) -> Result<usize, ShmError> {
    usize::try_from(w).map_err(|_| ShmError::Corrupt { what: "directory word out of range" })
}

/// `shm_tmpfile`, or `Unsupported` when tests force the fallback path.
fn tmpfile() -> std::io::Result<std::os::fd::OwnedFd> {
    #[cfg(test)]
    if tests::FORCE_RENAME.with(|f| f.get()) {
        return Err(std::io::ErrorKind::Unsupported.into());
    }
    sys::mman::shm_tmpfile()
}

/// Allocates, maps and initializes the segment in `fd` (not yet named anywhere), and
/// publishes it.
fn build<E: From<ShmError>>(
    fd: std::os::fd::OwnedFd,
    total: usize,
    name: Option<&str>,
    kind: ObjectKind,
    ty: &TypeInfo,
    init: impl FnOnce(&Segment) -> Result<usize, E>,
) -> Result<Segment, E> {
    sys::mman::allocate(&fd, total).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) => ShmError::NoSpace { len: total as u64 },
        _ => ShmError::Os(e),
    })?;
    let base = sys::mman::map_fd(&fd, total).map_err(ShmError::from)?;
    let seg = Segment::from_mapping(Mapping {
        base,
        len: total,
        fd,
        name: name.map(|n| std::sync::OnceLock::from(n.to_owned())).unwrap_or_default(),
        unlink_by: AtomicU32::new(0),
        file_id: std::sync::OnceLock::new(),
    });
    seg.init_header(kind, ty);
    let root = init(&seg)?;
    seg.set_root(root);
    seg.publish();
    Ok(seg)
}

/// The fallback without `O_TMPFILE`: build under a temporary name, then rename it into place.
fn create_renamed<E: From<ShmError>>(
    name: &str,
    total: usize,
    kind: ObjectKind,
    ty: &TypeInfo,
    init: impl FnOnce(&Segment) -> Result<usize, E>,
) -> Result<Segment, E> {
    let temp = name::temp_name();
    let fd = sys::mman::shm_create_path(&temp).map_err(|e| ShmError::from_os(e, name))?;
    let seg = build(fd, total, None, kind, ty, init).inspect_err(|_| {
        let _ = sys::mman::shm_unlink(&temp);
    })?;
    if let Err(e) = sys::mman::rename_noreplace(&temp, name) {
        let _ = sys::mman::shm_unlink(&temp);
        return Err(ShmError::from_os(e, name).into());
    }
    let _ = seg.map.name.set(name.to_owned());
    seg.map.unlink_by.store(sys::process::getpid() as u32, Relaxed);
    Ok(seg)
}

/// Opens `name` (normalized), waiting for it to appear until `limit`.
fn open_until(name: &str, limit: Limit) -> Result<Segment, ShmError> {
    let deadline = limit.deadline_opt();
    let fd = loop {
        match sys::mman::shm_open(name, false) {
            Ok(fd) => break fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !deadline.is_some_and(|d| d.has_passed()) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(ShmError::from_os(e, name)),
        }
    };
    Segment::adopt_fd(fd, Some(name))
}

impl Segment {
    /// Maps the segment in `fd` (opened by name, or received from another process) and
    /// validates its header. The descriptor's file is untrusted: its size is checked before
    /// mapping and the header after.
    pub(crate) fn adopt_fd(fd: std::os::fd::OwnedFd, name: Option<&str>) -> Result<Segment, ShmError> {
        let (len, _) = sys::mman::file_len_and_owner(&fd)?;
        if len < HEADER_LEN as u64 {
            return Err(ShmError::TooSmall { len, min: HEADER_LEN as u64 });
        }
        let len = usize::try_from(len).ok().filter(|&l| l as u64 <= MAX_LEN).ok_or(ShmError::TooLarge { len })?;
        let base = sys::mman::map_fd(&fd, len)?;
        let seg = Segment::from_mapping(Mapping {
            base,
            len,
            fd,
            name: name.map(|n| std::sync::OnceLock::from(n.to_owned())).unwrap_or_default(),
            unlink_by: AtomicU32::new(0),
            file_id: std::sync::OnceLock::new(),
        });
        // SYNC(acquire ← publish): every header field and the object are visible after READY.
        // Names appear only after publishing, and descriptors are passed only of published
        // segments, so this is READY unless the file is not ours.
        if seg.header().state.load(Acquire) != STATE_READY {
            // Report a foreign file as such rather than as "not ready".
            return match seg.info() {
                Err(ShmError::NotReady { .. }) | Ok(_) => {
                    Err(ShmError::NotReady { name: name.unwrap_or("(received segment)").to_owned() })
                }
                Err(e) => Err(e),
            };
        }
        seg.info()?;
        Ok(seg)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::list_named;
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes `create_object` on this thread take the rename path, as on a file system
        /// without `O_TMPFILE`.
        pub(crate) static FORCE_RENAME: Cell<bool> = const { Cell::new(false) };
    }

    fn unique(tag: &str) -> String {
        format!("mp-unit-{tag}-{}", std::process::id())
    }

    fn both_paths(f: impl Fn(&str)) {
        for rename in [false, true] {
            FORCE_RENAME.with(|c| c.set(rename));
            f(if rename { "renamed" } else { "linked" });
        }
        FORCE_RENAME.with(|c| c.set(false));
    }

    #[test]
    fn create_open_unlink_on_both_paths() {
        both_paths(|path| {
            let n = unique(&format!("cou-{path}"));
            let seg = Segment::create(&n, 1000).unwrap();
            assert_eq!(seg.name(), Some(n.as_str()));
            assert!(matches!(Segment::create(&n, 1000), Err(ShmError::Exists { .. })), "{path}");
            let off = seg.alloc(8, 8).unwrap();
            let other = Segment::open(&format!("/{n}")).unwrap();
            assert_eq!(other.root(), None);
            assert_eq!(other.alloc(8, 8).unwrap(), off + 8, "{path}: one allocator");
            drop(other);
            drop(seg);
            assert!(matches!(Segment::open(&n), Err(ShmError::NotFound { .. })), "{path}: creator's drop unlinks");
            assert!(!list_named().unwrap().iter().any(|s| s.temporary && s.creator_pid == std::process::id()));
        });
    }

    #[test]
    fn a_failing_init_leaves_nothing_on_both_paths() {
        both_paths(|path| {
            let n = unique(&format!("fail-{path}"));
            let r = Segment::create_object(&n, 100, ObjectKind::Plain, &TypeInfo::NONE, |_| {
                Err(ShmError::Corrupt { what: "test" })
            });
            assert!(matches!(r, Err(ShmError::Corrupt { .. })));
            assert!(matches!(Segment::open(&n), Err(ShmError::NotFound { .. })), "{path}");
            assert!(!list_named().unwrap().iter().any(|s| s.creator_pid == std::process::id() && s.temporary));
        });
    }

    #[test]
    fn a_creator_dropping_after_someone_reused_the_name_leaves_the_new_segment() {
        let n = unique("reuse");
        let first = Segment::create(&n, 100).unwrap();
        Segment::unlink(&n).unwrap();
        let second = Segment::create(&n, 100).unwrap();
        second.persist();
        drop(first);
        assert!(Segment::open(&n).is_ok(), "the first creator's drop removed the second segment");
        Segment::unlink(&n).unwrap();
    }

    #[test]
    fn objects_are_checked_on_open() {
        let n = unique("kind");
        let ty = TypeInfo::plain::<u64>();
        let _seg = Segment::create_object(&n, 100, ObjectKind::Value, &ty, |_| Ok::<_, ShmError>(0)).unwrap();
        assert!(Segment::open_object(&n, ObjectKind::Value, &ty, Duration::ZERO).is_ok());
        let r = Segment::open_object(&n, ObjectKind::Value, &TypeInfo::plain::<u32>(), Duration::ZERO);
        match r {
            Err(ShmError::Mismatch { expected, found, .. }) => {
                assert_eq!(expected, "Value<u32>");
                assert_eq!(found, "Value<u64>");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Segment::open_object(&n, ObjectKind::Lock, &TypeInfo::NONE, Duration::ZERO),
            Err(ShmError::Mismatch { .. })
        ));
    }

    #[test]
    fn garbage_files_are_rejected_not_ub() {
        let n = unique("garbage");
        std::fs::write(format!("/dev/shm/{n}"), vec![0xAB; 8192]).unwrap();
        let r = Segment::open(&n);
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
        assert!(matches!(r, Err(ShmError::NotReady { .. } | ShmError::BadMagic { .. })), "{r:?}");

        let n = unique("short");
        std::fs::write(format!("/dev/shm/{n}"), [1u8; 10]).unwrap();
        let r = Segment::open(&n);
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
        assert!(matches!(r, Err(ShmError::TooSmall { len: 10, .. })), "{r:?}");
    }

    #[test]
    fn open_timeout_waits_for_the_name() {
        let n = unique("late");
        let n2 = n.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            Segment::create(&n2, 100).unwrap()
        });
        let seg = Segment::open_timeout(&n, Duration::from_secs(10)).unwrap();
        assert!(seg.info().is_ok());
        drop(t.join().unwrap());
    }

    #[test]
    fn temporary_names_name_their_creator() {
        let t = name::temp_name();
        assert_eq!(name::temp_creator(&t), Some(sys::process::self_identity()));
        assert!(name::normalize(&t).is_ok(), "temporary names are valid segment names");
        for bad in ["/.mp-1-2", "/.mp-x-1-2", "/.mp-1-2-3-4", "/mp-1-2-3"] {
            assert_eq!(name::temp_creator(bad), None, "{bad}");
        }
    }

    /// A creator killed at any point leaves nothing (linked path), or a temporary file that
    /// `clean_stale` removes (rename path).
    #[test]
    fn a_creator_killed_mid_creation_leaves_nothing_or_something_cleanable() {
        for rename in [false, true] {
            let n = unique(&format!("killed-{rename}"));
            // SAFETY: the child only creates a segment and `_exit`s from inside `init`.
            let pid = match unsafe { sys::process::fork() }.unwrap() {
                sys::process::Fork::Child => {
                    FORCE_RENAME.with(|c| c.set(rename));
                    let _ = Segment::create_object(
                        &n,
                        100,
                        ObjectKind::Plain,
                        &TypeInfo::NONE,
                        |_| -> Result<usize, ShmError> { sys::process::exit_now(0) },
                    );
                    sys::process::exit_now(1);
                }
                sys::process::Fork::Parent(pid) => pid,
            };
            sys::process::waitpid_blocking(pid).unwrap();
            assert!(matches!(Segment::open(&n), Err(ShmError::NotFound { .. })));
            let left: Vec<_> = list_named().unwrap().into_iter().filter(|s| s.creator_pid == pid as u32).collect();
            if rename {
                assert_eq!(left.len(), 1, "{left:?}");
                assert!(left[0].temporary && !left[0].creator_alive);
                assert!(Segment::clean_stale().unwrap().contains(&left[0].name));
            } else {
                assert!(left.is_empty(), "{left:?}");
            }
        }
    }
}
