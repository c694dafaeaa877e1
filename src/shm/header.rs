//! The `#[repr(C)]` header at offset 0 of every segment, and its validation.
//!
//! # Memory ordering
//! The creator writes every header field and initializes the contents, then stores
//! `state = READY` with `Release`. Openers load `state` with `Acquire` before reading any other
//! field (SYNC: creator's READY store → opener's load). After READY only `arena_next` changes,
//! and only through atomic read-modify-writes.

use super::ShmError;
use crate::loom::atomic::{AtomicU32, AtomicU64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// `b"MULTIPRC"` read as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"MULTIPRC");
/// Bumped whenever the header or any object layout changes incompatibly.
pub(crate) const LAYOUT_VERSION: u32 = 1;
/// Size of the header; the arena starts right after it.
pub(crate) const HEADER_LEN: usize = 64;
/// `state` once the segment may be used.
pub(crate) const STATE_READY: u32 = 0x5245_4459; // "READY"-ish, so a zero page is never ready

/// The header as it lies in shared memory.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) magic: u64,
    pub(crate) layout_version: u32,
    pub(crate) state: AtomicU32,
    pub(crate) total_len: u64,
    pub(crate) creator_pid: u32,
    pub(crate) kind: u32,
    pub(crate) creator_start: u64,
    pub(crate) arena_next: AtomicU64,
    pub(crate) root: u64,
    pub(crate) reserved: u64,
}

/// The same bytes as plain integers: what validation reads (and what the fuzzer feeds it).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub(crate) struct HeaderSnapshot {
    pub(crate) magic: u64,
    pub(crate) layout_version: u32,
    pub(crate) state: u32,
    pub(crate) total_len: u64,
    pub(crate) creator_pid: u32,
    pub(crate) kind: u32,
    pub(crate) creator_start: u64,
    pub(crate) arena_next: u64,
    pub(crate) root: u64,
    pub(crate) reserved: u64,
}

#[cfg(not(all(test, loom)))] // loom's atomics are model objects, not plain words
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == HEADER_LEN && align_of::<Header>() == 64);
    assert!(size_of::<HeaderSnapshot>() == HEADER_LEN);
    assert!(offset_of!(Header, state) == offset_of!(HeaderSnapshot, state));
    assert!(offset_of!(Header, arena_next) == offset_of!(HeaderSnapshot, arena_next));
    assert!(offset_of!(Header, reserved) == offset_of!(HeaderSnapshot, reserved));
};

/// What a valid header tells an opener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderInfo {
    pub(crate) total_len: u64,
    pub(crate) creator_pid: u32,
    pub(crate) creator_start: u64,
    pub(crate) kind: u32,
    pub(crate) root: u64,
}

/// Validates the first bytes of a segment of `mapping_len` bytes, in the order of STYLE.md E9:
/// length → ready → magic → version → total length → allocator and root offsets.
///
/// Pure and total: any input gives `Ok` or an error, never a panic (the `header_validate` fuzz
/// target checks this).
pub(crate) fn validate_header(bytes: &[u8], mapping_len: u64) -> Result<HeaderInfo, ShmError> {
    let Ok((h, _)) = HeaderSnapshot::read_from_prefix(bytes) else {
        return Err(ShmError::TooSmall { len: bytes.len() as u64, min: HEADER_LEN as u64 });
    };
    validate_snapshot(&h, mapping_len)
}

/// The creator's pid and start time from a header that is not published yet, if the magic
/// and version say it is ours (the creator writes them, and its identity, before `init`).
pub(crate) fn unpublished_creator(bytes: &[u8]) -> Option<(u32, u64)> {
    let (h, _) = HeaderSnapshot::read_from_prefix(bytes).ok()?;
    (h.magic == MAGIC && h.layout_version == LAYOUT_VERSION && h.state != STATE_READY)
        .then_some((h.creator_pid, h.creator_start))
}

/// [`validate_header`] on a header already copied out of the segment.
pub(crate) fn validate_snapshot(h: &HeaderSnapshot, mapping_len: u64) -> Result<HeaderInfo, ShmError> {
    let min = HEADER_LEN as u64;
    if mapping_len < min {
        return Err(ShmError::TooSmall { len: mapping_len, min });
    }
    if h.state != STATE_READY {
        return Err(ShmError::NotReady { name: String::new() });
    }
    if h.magic != MAGIC {
        return Err(ShmError::BadMagic { found: h.magic });
    }
    if h.layout_version != LAYOUT_VERSION {
        return Err(ShmError::VersionMismatch { found: h.layout_version, expected: LAYOUT_VERSION });
    }
    if h.total_len < min || h.total_len > mapping_len {
        return Err(ShmError::Corrupt { what: "total length outside the mapping" });
    }
    if h.arena_next < min || h.arena_next > h.total_len {
        return Err(ShmError::Corrupt { what: "allocator offset outside the segment" });
    }
    if h.root != 0 && (h.root < min || h.root >= h.total_len) {
        return Err(ShmError::Corrupt { what: "root offset outside the segment" });
    }
    Ok(HeaderInfo {
        total_len: h.total_len,
        creator_pid: h.creator_pid,
        creator_start: h.creator_start,
        kind: h.kind,
        root: h.root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[derive(zerocopy::IntoBytes, Immutable)]
    #[repr(C)]
    struct Raw([u64; 8]);

    fn good() -> HeaderSnapshot {
        HeaderSnapshot {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            state: STATE_READY,
            total_len: 4096,
            creator_pid: 1,
            kind: 0,
            creator_start: 0,
            arena_next: 64,
            root: 0,
            reserved: 0,
        }
    }

    fn bytes(h: HeaderSnapshot) -> Vec<u8> {
        let mut v = vec![0u8; 64];
        v[0..8].copy_from_slice(&h.magic.to_le_bytes());
        v[8..12].copy_from_slice(&h.layout_version.to_le_bytes());
        v[12..16].copy_from_slice(&h.state.to_le_bytes());
        v[16..24].copy_from_slice(&h.total_len.to_le_bytes());
        v[24..28].copy_from_slice(&h.creator_pid.to_le_bytes());
        v[28..32].copy_from_slice(&h.kind.to_le_bytes());
        v[32..40].copy_from_slice(&h.creator_start.to_le_bytes());
        v[40..48].copy_from_slice(&h.arena_next.to_le_bytes());
        v[48..56].copy_from_slice(&h.root.to_le_bytes());
        v
    }

    #[test]
    fn a_good_header_validates() {
        let info = validate_header(&bytes(good()), 4096).unwrap();
        assert_eq!(info.total_len, 4096);
        assert_eq!(Raw([0; 8]).as_bytes().len(), HEADER_LEN);
    }

    #[test]
    fn each_bad_field_has_its_error() {
        assert!(matches!(validate_header(&[0; 10], 4096), Err(ShmError::TooSmall { .. })));
        assert!(matches!(
            validate_header(&bytes(HeaderSnapshot { state: 0, ..good() }), 4096),
            Err(ShmError::NotReady { .. })
        ));
        assert!(matches!(
            validate_header(&bytes(HeaderSnapshot { magic: 7, ..good() }), 4096),
            Err(ShmError::BadMagic { found: 7 })
        ));
        assert!(matches!(
            validate_header(&bytes(HeaderSnapshot { layout_version: 99, ..good() }), 4096),
            Err(ShmError::VersionMismatch { found: 99, expected: LAYOUT_VERSION })
        ));
        assert!(matches!(validate_header(&bytes(good()), 1000), Err(ShmError::Corrupt { .. })));
        assert!(matches!(
            validate_header(&bytes(HeaderSnapshot { arena_next: 5000, ..good() }), 4096),
            Err(ShmError::Corrupt { .. })
        ));
        assert!(matches!(
            validate_header(&bytes(HeaderSnapshot { root: 8, ..good() }), 4096),
            Err(ShmError::Corrupt { .. })
        ));
    }
}
