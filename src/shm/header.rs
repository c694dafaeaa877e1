//! The `#[repr(C)]` header at offset 0 of every segment, and its validation.
//!
//! Besides the segment itself (magic, layout version, size, creator, allocator), the header
//! names the object a named segment holds: its kind ([`ObjectKind`]) and the type of its
//! parameter ([`TypeInfo`]: a fingerprint, size, alignment and a readable name), so that an
//! opener expecting another kind or type gets [`ShmError::Mismatch`], never a reinterpretation.
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
/// Bumped whenever the header or any object layout changes incompatibly. 4: a pipe ring's
/// record headers carry a stamp of their position and are the publication; a queue's records
/// are stamped too, and its state counts the drops of its split sides.
pub(crate) const LAYOUT_VERSION: u32 = 4;
/// Size of the header; the arena starts right after it.
pub(crate) const HEADER_LEN: usize = 128;
/// `state` once the segment may be used.
pub(crate) const STATE_READY: u32 = 0x5245_4459; // "READY"-ish, so a zero page is never ready
/// Bytes of the type name kept in the header (longer names are cut).
pub(crate) const TYPE_NAME_LEN: usize = 52;
/// `flags`: the creator called `persist()`: the name is meant to outlive it.
pub(crate) const FLAG_PERSISTED: u32 = 1;

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
    pub(crate) type_fp: u64,
    pub(crate) type_size: u32,
    pub(crate) type_align: u32,
    pub(crate) type_name: [u8; TYPE_NAME_LEN],
    /// [`FLAG_PERSISTED`]; the only header word that changes after READY besides the arena's.
    pub(crate) flags: AtomicU32,
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
    pub(crate) type_fp: u64,
    pub(crate) type_size: u32,
    pub(crate) type_align: u32,
    pub(crate) type_name: [u8; TYPE_NAME_LEN],
    pub(crate) flags: u32,
}

#[cfg(not(all(test, loom)))] // loom's atomics are model objects, not plain words
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == HEADER_LEN && align_of::<Header>() == 64);
    assert!(size_of::<HeaderSnapshot>() == HEADER_LEN);
    assert!(offset_of!(Header, state) == offset_of!(HeaderSnapshot, state));
    assert!(offset_of!(Header, arena_next) == offset_of!(HeaderSnapshot, arena_next));
    assert!(offset_of!(Header, type_name) == offset_of!(HeaderSnapshot, type_name));
    assert!(offset_of!(Header, flags) == offset_of!(HeaderSnapshot, flags));
};

/// What a segment holds: written by its creator, checked by every opener of a named object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ObjectKind {
    /// A plain segment (`Segment::create`): no object of the crate's.
    Plain = 0,
    Lock = 1,
    RLock = 2,
    Semaphore = 3,
    BoundedSemaphore = 4,
    Event = 5,
    Condition = 6,
    Barrier = 7,
    Value = 8,
    Array = 9,
    RawValue = 10,
    RawArray = 11,
    Queue = 12,
    SimpleQueue = 13,
    JoinableQueue = 14,
    ArrayQueue = 15,
    SharedMemory = 16,
    Broadcast = 17,
    ShareableList = 18,
}

impl ObjectKind {
    const ALL: [ObjectKind; 19] = [
        ObjectKind::Plain,
        ObjectKind::Lock,
        ObjectKind::RLock,
        ObjectKind::Semaphore,
        ObjectKind::BoundedSemaphore,
        ObjectKind::Event,
        ObjectKind::Condition,
        ObjectKind::Barrier,
        ObjectKind::Value,
        ObjectKind::Array,
        ObjectKind::RawValue,
        ObjectKind::RawArray,
        ObjectKind::Queue,
        ObjectKind::SimpleQueue,
        ObjectKind::JoinableQueue,
        ObjectKind::ArrayQueue,
        ObjectKind::SharedMemory,
        ObjectKind::Broadcast,
        ObjectKind::ShareableList,
    ];

    /// The kind a header's `kind` word names, if any.
    pub(crate) fn from_u32(v: u32) -> Option<ObjectKind> {
        ObjectKind::ALL.get(v as usize).copied()
    }

    /// Its name, as `multiproc shm list` and `ShmError::Mismatch` show it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ObjectKind::Plain => "Segment",
            ObjectKind::Lock => "Lock",
            ObjectKind::RLock => "RLock",
            ObjectKind::Semaphore => "Semaphore",
            ObjectKind::BoundedSemaphore => "BoundedSemaphore",
            ObjectKind::Event => "Event",
            ObjectKind::Condition => "Condition",
            ObjectKind::Barrier => "Barrier",
            ObjectKind::Value => "Value",
            ObjectKind::Array => "Array",
            ObjectKind::RawValue => "RawValue",
            ObjectKind::RawArray => "RawArray",
            ObjectKind::Queue => "Queue",
            ObjectKind::SimpleQueue => "SimpleQueue",
            ObjectKind::JoinableQueue => "JoinableQueue",
            ObjectKind::ArrayQueue => "ArrayQueue",
            ObjectKind::SharedMemory => "SharedMemory",
            ObjectKind::Broadcast => "Broadcast",
            ObjectKind::ShareableList => "ShareableList",
        }
    }
}

/// The type parameter of an object (`T` of `Value<T>`, `Queue<T>`, …), as its header records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeInfo {
    /// Fingerprint (`crate::codec`); 0 for an object without a type parameter.
    pub(crate) fp: u64,
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) name: &'static str,
}

impl TypeInfo {
    /// No type parameter.
    pub(crate) const NONE: TypeInfo = TypeInfo { fp: 0, size: 0, align: 0, name: "" };

    /// A plain-data type that lives in shared memory: name, size and alignment count.
    pub(crate) fn plain<T>() -> TypeInfo {
        TypeInfo {
            fp: crate::codec::layout_fingerprint::<T>(),
            size: std::mem::size_of::<T>() as u32,
            align: std::mem::align_of::<T>() as u32,
            name: std::any::type_name::<T>(),
        }
    }

    /// A serde type that travels encoded: its (normalized) name counts, not its layout.
    pub(crate) fn encoded<T>() -> TypeInfo {
        TypeInfo { fp: crate::codec::fingerprint::<T>(), size: 0, align: 0, name: std::any::type_name::<T>() }
    }
}

/// What a valid header tells an opener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderInfo {
    pub(crate) total_len: u64,
    pub(crate) creator_pid: u32,
    pub(crate) creator_start: u64,
    pub(crate) kind: u32,
    pub(crate) root: u64,
    pub(crate) type_fp: u64,
    pub(crate) type_size: u32,
    pub(crate) type_align: u32,
    /// The recorded type name (lossy UTF-8, cut at the first NUL).
    pub(crate) type_name: String,
}

impl HeaderInfo {
    /// `Kind<type>` as a person reads it (`Queue<u64>`, `Lock`, `unknown kind 99`).
    pub(crate) fn describe(&self) -> String {
        let kind =
            ObjectKind::from_u32(self.kind).map_or_else(|| format!("unknown kind {}", self.kind), |k| k.name().into());
        if self.type_name.is_empty() {
            kind
        } else {
            format!("{kind}<{}>", self.type_name)
        }
    }

    /// Whether the segment holds an object of `kind` with type parameter `ty`.
    pub(crate) fn matches(&self, kind: ObjectKind, ty: &TypeInfo) -> bool {
        self.kind == kind as u32 && self.type_fp == ty.fp && self.type_size == ty.size && self.type_align == ty.align
    }
}

/// `Kind<type>` for what an opener expects.
pub(crate) fn describe(kind: ObjectKind, ty: &TypeInfo) -> String {
    if ty.name.is_empty() {
        kind.name().to_string()
    } else {
        format!("{}<{}>", kind.name(), ty.name)
    }
}

/// `name` cut to the header's field (at a character boundary), NUL-padded.
pub(crate) fn type_name_bytes(name: &str) -> [u8; TYPE_NAME_LEN] {
    let mut out = [0u8; TYPE_NAME_LEN];
    let mut end = name.len().min(TYPE_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&name.as_bytes()[..end]);
    out
}

/// Validates the first bytes of a segment of `mapping_len` bytes, checking the fields in this order:
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
    let name_end = h.type_name.iter().position(|&b| b == 0).unwrap_or(TYPE_NAME_LEN);
    Ok(HeaderInfo {
        total_len: h.total_len,
        creator_pid: h.creator_pid,
        creator_start: h.creator_start,
        kind: h.kind,
        root: h.root,
        type_fp: h.type_fp,
        type_size: h.type_size,
        type_align: h.type_align,
        type_name: String::from_utf8_lossy(&h.type_name[..name_end]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[derive(zerocopy::IntoBytes, Immutable)]
    #[repr(C)]
    struct Raw([u64; 16]);

    fn good() -> HeaderSnapshot {
        HeaderSnapshot {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            state: STATE_READY,
            total_len: 4096,
            creator_pid: 1,
            kind: ObjectKind::Queue as u32,
            creator_start: 0,
            arena_next: HEADER_LEN as u64,
            root: 0,
            type_fp: 7,
            type_size: 0,
            type_align: 0,
            type_name: type_name_bytes("u64"),
            flags: 0,
        }
    }

    fn bytes(h: HeaderSnapshot) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        v[0..8].copy_from_slice(&h.magic.to_le_bytes());
        v[8..12].copy_from_slice(&h.layout_version.to_le_bytes());
        v[12..16].copy_from_slice(&h.state.to_le_bytes());
        v[16..24].copy_from_slice(&h.total_len.to_le_bytes());
        v[24..28].copy_from_slice(&h.creator_pid.to_le_bytes());
        v[28..32].copy_from_slice(&h.kind.to_le_bytes());
        v[32..40].copy_from_slice(&h.creator_start.to_le_bytes());
        v[40..48].copy_from_slice(&h.arena_next.to_le_bytes());
        v[48..56].copy_from_slice(&h.root.to_le_bytes());
        v[56..64].copy_from_slice(&h.type_fp.to_le_bytes());
        v[64..68].copy_from_slice(&h.type_size.to_le_bytes());
        v[68..72].copy_from_slice(&h.type_align.to_le_bytes());
        v[72..124].copy_from_slice(&h.type_name);
        v[124..128].copy_from_slice(&h.flags.to_le_bytes());
        v
    }

    #[test]
    fn a_good_header_validates_and_describes_its_object() {
        let info = validate_header(&bytes(good()), 4096).unwrap();
        assert_eq!(info.total_len, 4096);
        assert_eq!(info.describe(), "Queue<u64>");
        assert!(info.matches(ObjectKind::Queue, &TypeInfo { fp: 7, size: 0, align: 0, name: "u64" }));
        assert!(!info.matches(ObjectKind::Lock, &TypeInfo::NONE));
        assert_eq!(Raw([0; 16]).as_bytes().len(), HEADER_LEN);
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
        // A hostile type name (not UTF-8, no NUL) and kind are still described, not trusted.
        let weird = HeaderSnapshot { kind: 999, type_name: [0xff; TYPE_NAME_LEN], ..good() };
        let info = validate_header(&bytes(weird), 4096).unwrap();
        assert!(info.describe().starts_with("unknown kind 999<"));
    }

    #[test]
    fn type_names_are_cut_at_a_character_boundary() {
        let long = "é".repeat(40);
        let b = type_name_bytes(&long);
        let end = b.iter().position(|&x| x == 0).unwrap_or(TYPE_NAME_LEN);
        assert!(std::str::from_utf8(&b[..end]).is_ok());
    }
}
