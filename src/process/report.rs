//! The report area: one small shared page per started child, in which the child leaves the
//! text of its failure (panic message and location, or the `Display` of the `Err` it returned)
//! just before `_exit`, and from which the parent reads it after reaping the child.
//!
//! The areas live in anonymous [`Segment`]s made before `fork` (16 areas a segment, recycled
//! once their child is reaped, so that a start costs no `mmap`), so they are shared with the
//! child and freed by the kernel with their last mapping, even if every process is SIGKILLed.
//!
//! Everything the parent reads from it is untrusted (the child may have died mid-write or
//! scribbled over it): the length is clamped to the capacity, the kind is checked, and the
//! bytes are decoded lossily as UTF-8. A torn report gives a wrong *text*, never UB or a panic.
//!
//! # Memory ordering
//! The child writes the words `Relaxed`, then publishes `len` with `Release`; the parent reads
//! `len` with `Acquire` before the words. (Reaping with `waitpid` orders them anyway: the child
//! has exited before the parent reads.)

use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::shm::{Segment, ShmError, ShmObject, ShmRef, HEADER_LEN};

/// How many 8-byte words of text fit, so that header + report fill exactly one page.
const WORDS: usize = (4096 - HEADER_LEN - 8) / 8;

/// Largest failure text the parent can receive, in bytes; longer texts are cut at a character
/// boundary and end with `…`.
pub(crate) const CAPACITY: usize = WORDS * 8;

/// What the child left in its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The target panicked.
    Panic = 1,
    /// The target returned an `Err`.
    Error = 2,
}

/// The shared layout. All-zero is "nothing reported".
#[repr(C)]
pub(crate) struct Report {
    /// Bytes of text (0: no report). Untrusted on read.
    len: AtomicU32,
    /// A [`Kind`] value. Untrusted on read.
    kind: AtomicU32,
    /// The text, little-endian packed, 8 bytes a word.
    words: [AtomicU64; WORDS],
}

// SAFETY: all-zero bytes are a valid `Report` (zero atomics: "nothing reported"); it holds only
// integers (no pointers, fds or process-local handles); every mutation through `&self` is an
// atomic store, so sharing `&Report` between processes is sound; `read` treats every value as
// untrusted (clamped length, checked kind, lossy UTF-8).
#[allow(unsafe_code)]
unsafe impl ShmObject for Report {}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Relaxed: a diagnostic snapshot only.
        f.debug_struct("Report").field("len", &self.len.load(Relaxed)).finish_non_exhaustive()
    }
}

/// Report areas made per chunk: one segment (and one `mmap`) serves this many children.
const CHUNK: usize = 16;

/// Report areas of reaped children, ready for reuse. Only the child process itself ever writes
/// its area (the panic hook checks the pid), so once the child is reaped its area is free.
/// [`ReportAreas::for_child`] empties the list in a new child, whose own children must not reuse the
/// parent's areas.
static FREE: std::sync::Mutex<Vec<ShmRef<Report>>> = std::sync::Mutex::new(Vec::new());

/// The free list, locked (held across `fork` by `Process::start`).
pub(crate) struct ReportAreas(std::sync::MutexGuard<'static, Vec<ShmRef<Report>>>);

impl ReportAreas {
    /// Locks the free list.
    pub(crate) fn lock() -> ReportAreas {
        ReportAreas(super::lock::lock(&FREE))
    }

    /// An empty report area: a recycled one, or one of a fresh chunk.
    pub(crate) fn take(&mut self) -> Result<ShmRef<Report>, ShmError> {
        if let Some(r) = self.0.pop() {
            r.clear();
            return Ok(r);
        }
        let seg = Segment::anonymous(CHUNK * std::mem::size_of::<Report>())?;
        let first = seg.alloc_object::<Report>()?;
        for _ in 1..CHUNK {
            match seg.alloc_object::<Report>() {
                Ok(r) => self.0.push(r),
                Err(_) => break, // the chunk is smaller than planned: use what we got
            }
        }
        Ok(first)
    }

    /// Gives back the area of a reaped child.
    pub(crate) fn give_back(&mut self, r: ShmRef<Report>) {
        self.0.push(r);
    }

    /// In a new child: forget the parent's free areas (the parent will hand them out again).
    pub(crate) fn for_child(&mut self) {
        std::mem::forget(std::mem::take(&mut *self.0));
    }
}

/// A fresh, empty report area of its own (tests).
#[cfg(all(test, not(loom)))]
fn new_area() -> Result<ShmRef<Report>, ShmError> {
    Segment::anonymous(std::mem::size_of::<Report>())?.alloc_object::<Report>()
}

impl Report {
    /// Writes `text` (cut to [`CAPACITY`] bytes at a character boundary) as the child's
    /// failure. Called in the child only.
    pub(crate) fn write(&self, kind: Kind, text: &str) {
        let text = truncate(text);
        for (word, chunk) in self.words.iter().zip(text.as_bytes().chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            // Relaxed: published by the Release store of `len` below.
            word.store(u64::from_le_bytes(b), Relaxed);
        }
        // Relaxed: published with `len` below.
        self.kind.store(kind as u32, Relaxed);
        // SYNC(release → read): the words and kind above are visible to whoever sees this `len`.
        self.len.store(text.len() as u32, Release);
    }

    /// Whether nothing has been reported yet.
    pub(crate) fn is_empty(&self) -> bool {
        // Relaxed: the child reads its own writes.
        self.len.load(Relaxed) == 0
    }

    /// Withdraws a report (a panic the target caught itself, for example), or empties a
    /// recycled area before its next child is forked.
    pub(crate) fn clear(&self) {
        // Relaxed: the child writes only while the parent does not read (before `fork`, the
        // parent; after it, the child; after reaping, the parent), and fork/waitpid order them.
        self.len.store(0, Relaxed);
    }

    /// The reported failure, if any. Called in the parent after reaping the child.
    pub(crate) fn read(&self) -> Option<(Kind, String)> {
        // SYNC(acquire ← write): pairs with the Release store of `len` in `write`.
        let len = self.len.load(Acquire) as usize;
        if len == 0 {
            return None;
        }
        let len = len.min(CAPACITY); // untrusted: clamp
                                     // Relaxed: ordered by the Acquire load of `len` above.
        let kind = if self.kind.load(Relaxed) == Kind::Panic as u32 { Kind::Panic } else { Kind::Error };
        let mut bytes = Vec::with_capacity(len);
        for word in &self.words[..len.div_ceil(8)] {
            // Relaxed: ordered by the Acquire load of `len` above.
            bytes.extend_from_slice(&word.load(Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        Some((kind, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// `text` cut to at most [`CAPACITY`] bytes at a character boundary, marked with `…` when cut.
fn truncate(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= CAPACITY {
        return text.into();
    }
    let mut end = CAPACITY - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let r = new_area().unwrap();
        assert_eq!(r.read(), None);
        r.write(Kind::Error, "héllo");
        assert_eq!(r.read(), Some((Kind::Error, "héllo".to_string())));
        let long = "é".repeat(CAPACITY);
        r.write(Kind::Panic, &long);
        let (k, t) = r.read().unwrap();
        assert_eq!(k, Kind::Panic);
        assert!(t.len() <= CAPACITY && t.ends_with('…') && !t.contains('\u{fffd}'));
        r.clear();
        assert!(r.is_empty() && r.read().is_none());
    }

    #[test]
    fn corrupt_length_and_kind_are_clamped() {
        let r = new_area().unwrap();
        r.len.store(u32::MAX, Relaxed);
        r.kind.store(77, Relaxed);
        let (k, t) = r.read().unwrap();
        assert_eq!(k, Kind::Error);
        assert_eq!(t.len(), CAPACITY); // all zero bytes, valid UTF-8
    }
}
