//! A fixed array of atomic 64-bit words in shared memory: per-process slots that a parent reads
//! after a child dies (the pool's "which task is this worker running" claims, for example).

use super::segment::{Segment, ShmObject, ShmRef};
use super::ShmError;
use crate::loom::atomic::{AtomicU64, Ordering};

/// One slot, on its own cache line so that workers writing their own slots never contend.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Word(AtomicU64);

// SAFETY: an all-zero AtomicU64 is the value 0; no pointers; all access is atomic.
unsafe impl ShmObject for Word {}

/// `len` atomic words in an anonymous segment, shared with children forked afterwards.
#[derive(Debug, Clone)]
pub(crate) struct WordArray {
    words: Vec<ShmRef<Word>>,
}

impl WordArray {
    /// Allocates `len` zeroed words in a fresh anonymous segment.
    pub(crate) fn new(len: usize) -> Result<WordArray, ShmError> {
        let seg = Segment::anonymous(len.max(1) * 64 + 64)?;
        let words = (0..len.max(1)).map(|_| seg.alloc_object::<Word>()).collect::<Result<_, _>>()?;
        Ok(WordArray { words })
    }

    /// Reads word `i` (`None` if out of range).
    pub(crate) fn load(&self, i: usize, order: Ordering) -> Option<u64> {
        self.words.get(i).map(|w| w.0.load(order))
    }

    /// Word `i` itself (`None` if out of range): for a futex on its low half.
    #[cfg(feature = "bench")]
    pub(crate) fn word(&self, i: usize) -> Option<&AtomicU64> {
        self.words.get(i).map(|w| &w.0)
    }

    /// Writes word `i`; returns false if out of range.
    pub(crate) fn store(&self, i: usize, v: u64, order: Ordering) -> bool {
        self.words.get(i).map(|w| w.0.store(v, order)).is_some()
    }
}

/// Sent to a spawned pool worker as a handle: the segment, the first word's offset and the
/// count (untrusted there: every word is bounds-checked).
impl super::Named for WordArray {
    const KIND: super::ObjectKind = super::ObjectKind::Plain;

    fn type_info() -> super::TypeInfo {
        super::TypeInfo {
            fp: crate::codec::fingerprint_of_name("multiproc::WordArray"),
            size: 64,
            align: 64,
            name: "WordArray",
        }
    }

    fn from_named(seg: &Segment, w: &super::Words) -> Result<Self, ShmError> {
        let (first, len) = (super::word_usize(w[0])?, super::word_usize(w[1])?);
        if len > 1 << 16 {
            return Err(ShmError::Corrupt { what: "word array too long" });
        }
        let words = (0..len)
            .map(|i| seg.object_at::<Word>(first.checked_add(i * 64).ok_or(ShmError::Corrupt { what: "word offset" })?))
            .collect::<Result<_, _>>()?;
        Ok(WordArray { words })
    }

    fn segment(&self) -> &Segment {
        self.words.first().map(ShmRef::segment).expect("a word array has at least one word")
    }

    fn words(&self) -> super::Words {
        [self.words.first().map_or(0, ShmRef::offset) as u64, self.words.len() as u64, 0, 0, 0, 0]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn words_are_zeroed_and_bounds_checked() {
        let w = WordArray::new(3).unwrap();
        assert_eq!(w.load(2, Ordering::Relaxed), Some(0));
        assert!(w.store(1, 7, Ordering::Relaxed));
        assert_eq!(w.load(1, Ordering::Relaxed), Some(7));
        assert!(!w.store(3, 1, Ordering::Relaxed));
        assert_eq!(w.load(3, Ordering::Relaxed), None);
    }
}
