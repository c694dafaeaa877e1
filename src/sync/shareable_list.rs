//! `ShareableList`: Python's `multiprocessing.shared_memory.ShareableList`, a fixed-length list
//! of ints, floats, bools, strings, bytes and `None` in one segment (SHL-1 to SHL-4 in
//! `docs/BEHAVIOURS.md`).
//!
//! # Layout
//!
//! One segment holds a `Lock`, a table of `len` [`Slot`]s and the items' bytes. Each slot's
//! place in the data area (`offset`, `capacity`) is fixed when the list is made, as in Python
//! (8 bytes for a number, the string's length rounded up past the next multiple of 8 for a
//! `str` or `bytes`); its `state` word says what it holds now: the kind, the length, and a
//! *writing* bit.
//!
//! # Beyond Python
//!
//! Python's list takes no lock: a reader racing a writer can see half of each. Here every
//! access holds the list's robust lock, so an item is read whole or not at all. A writer killed
//! inside `set` leaves its slot's writing bit set; the next locker is told the holder died,
//! turns every slot so marked into `None` (the item being written is lost, the others are
//! intact) and marks the lock consistent. An opener checks every offset and capacity against
//! the segment once, and keeps its own copy: the table's placement words are never read again.

use super::mutex::{Lock, LockGuard};
use super::value::{value_error, ValueError};
use crate::loom::atomic::{AtomicU64, Ordering::Relaxed};
use crate::shm::{self, atomic_bytes, Segment, ShmError, ShmObject, ShmRef};
use std::fmt;

/// One item of a [`ShareableList`]: the types Python's `ShareableList` holds.
///
/// # Examples
///
/// ```
/// use multiproc::ShareableItem;
///
/// assert_eq!(ShareableItem::from(3), ShareableItem::Int(3));
/// assert_eq!(ShareableItem::from("x"), ShareableItem::Str("x".into()));
/// assert_eq!(ShareableItem::from(None::<i64>), ShareableItem::None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum ShareableItem {
    /// Python's `None`.
    None,
    /// A `bool`.
    Bool(bool),
    /// An `int` (a 64-bit one, as Python's list packs it).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str` (stored as UTF-8).
    Str(String),
    /// A `bytes`.
    Bytes(Vec<u8>),
}

impl ShareableItem {
    /// The kind tag stored in a slot's state word.
    fn kind(&self) -> u64 {
        match self {
            ShareableItem::None => KIND_NONE,
            ShareableItem::Bool(_) => KIND_BOOL,
            ShareableItem::Int(_) => KIND_INT,
            ShareableItem::Float(_) => KIND_FLOAT,
            ShareableItem::Str(_) => KIND_STR,
            ShareableItem::Bytes(_) => KIND_BYTES,
        }
    }

    /// The bytes stored for the item.
    fn encode(&self) -> Vec<u8> {
        match self {
            ShareableItem::None => Vec::new(),
            ShareableItem::Bool(b) => u64::from(*b).to_le_bytes().to_vec(),
            ShareableItem::Int(i) => i.to_le_bytes().to_vec(),
            ShareableItem::Float(f) => f.to_le_bytes().to_vec(),
            ShareableItem::Str(s) => s.as_bytes().to_vec(),
            ShareableItem::Bytes(b) => b.clone(),
        }
    }

    /// The room Python gives the item when the list is made: 8 bytes, or for a string the
    /// length rounded up past the next multiple of 8.
    fn capacity(&self) -> usize {
        match self {
            ShareableItem::Str(s) => (s.len() / ALIGN + 1) * ALIGN,
            ShareableItem::Bytes(b) => (b.len() / ALIGN + 1) * ALIGN,
            _ => ALIGN,
        }
    }

    /// The item stored as `kind` with `bytes` (read from shared memory: checked).
    fn decode(kind: u64, bytes: Vec<u8>) -> Option<ShareableItem> {
        let word = || <[u8; 8]>::try_from(bytes.as_slice()).ok();
        Some(match kind {
            KIND_NONE => ShareableItem::None,
            KIND_BOOL => ShareableItem::Bool(u64::from_le_bytes(word()?) != 0),
            KIND_INT => ShareableItem::Int(i64::from_le_bytes(word()?)),
            KIND_FLOAT => ShareableItem::Float(f64::from_le_bytes(word()?)),
            KIND_STR => ShareableItem::Str(String::from_utf8(bytes).ok()?),
            KIND_BYTES => ShareableItem::Bytes(bytes),
            _ => return None,
        })
    }
}

macro_rules! item_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl From<$t> for ShareableItem {
            fn from($v: $t) -> ShareableItem {
                $e
            }
        }
    )*};
}

item_from! {
    bool => |v| ShareableItem::Bool(v),
    i64 => |v| ShareableItem::Int(v),
    i32 => |v| ShareableItem::Int(v.into()),
    u32 => |v| ShareableItem::Int(v.into()),
    f64 => |v| ShareableItem::Float(v),
    String => |v| ShareableItem::Str(v),
    &str => |v| ShareableItem::Str(v.to_owned()),
    Vec<u8> => |v| ShareableItem::Bytes(v),
    &[u8] => |v| ShareableItem::Bytes(v.to_vec()),
    () => |_v| ShareableItem::None,
}

impl<T: Into<ShareableItem>> From<Option<T>> for ShareableItem {
    fn from(v: Option<T>) -> ShareableItem {
        v.map_or(ShareableItem::None, Into::into)
    }
}

const ALIGN: usize = 8;
const KIND_NONE: u64 = 0;
const KIND_BOOL: u64 = 1;
const KIND_INT: u64 = 2;
const KIND_FLOAT: u64 = 3;
const KIND_STR: u64 = 4;
const KIND_BYTES: u64 = 5;
/// A state word: the length in bits 0..48, the kind in 48..56, the writing bit on top.
const LEN_BITS: u32 = 48;
const LEN_MASK: u64 = (1 << LEN_BITS) - 1;
const WRITING: u64 = 1 << 63;
/// The most items one list holds (its table stays well inside one segment).
const MAX_ITEMS: usize = 1 << 24;

fn state(kind: u64, len: usize) -> u64 {
    (kind << LEN_BITS) | (len as u64 & LEN_MASK)
}

/// One slot of the table: what it holds now, and where its bytes are (fixed at creation).
#[repr(C)]
#[derive(Debug)]
struct Slot {
    /// Kind, length and the writing bit (see [`state`]); written under the list's lock.
    state: AtomicU64,
    /// Offset of the slot's bytes in the segment (written once, before publication).
    offset: AtomicU64,
    /// Bytes reserved for the slot (written once, before publication).
    capacity: AtomicU64,
}

// SAFETY: all-zero bytes are a valid `Slot` (a `None` item at offset 0, which an opener's
// bounds check refuses); no pointers; every access is atomic; openers check the words.
unsafe impl ShmObject for Slot {}

/// A slot as this handle knows it: its state word and its checked place.
#[derive(Clone)]
struct Place {
    slot: ShmRef<Slot>,
    offset: usize,
    capacity: usize,
}

/// Python's `ShareableList`: a fixed-length list of [`ShareableItem`]s in shared memory,
/// shared with forked children (made with [`new`](Self::new)) or by name with any process
/// ([`create`](Self::create), [`open`](Self::open)).
///
/// Each item keeps the room it had when the list was made: a number takes 8 bytes, a string
/// its length rounded up past the next multiple of 8. Any item may be replaced by any other that
/// fits (a number always fits; a longer string is [`ValueError::TooLong`], as Python's "exceeds
/// available storage"). Reads and writes hold the list's lock: an item is never seen half
/// written, and a writer killed mid-`set` loses only the item it was writing (it reads as
/// `None` afterwards).
///
/// # Examples
///
/// ```
/// use multiproc::{Process, ShareableItem, ShareableList};
///
/// let sl = ShareableList::new(["howdy".into(), ShareableItem::Int(-273), ShareableItem::None])?;
/// let child = Process::new({
///     let sl = sl.clone();
///     move || sl.set(0, "HoWdY")
/// });
/// child.start()?;
/// child.join()?.exit_ok()?;
/// assert_eq!(sl.get(0)?, ShareableItem::Str("HoWdY".into()));
/// assert_eq!(sl.len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ShareableList {
    lock: Lock,
    places: std::sync::Arc<[Place]>,
    table: usize,
}

impl fmt::Debug for ShareableList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareableList").field("len", &self.places.len()).finish_non_exhaustive()
    }
}

/// Bytes a list of these items needs, and each item's capacity.
fn plan(items: &[ShareableItem]) -> Result<(usize, Vec<usize>), ShmError> {
    let too_large = || ShmError::TooLarge { len: u64::MAX };
    if items.len() > MAX_ITEMS {
        return Err(ShmError::InvalidArgument { what: "number of items", value: items.len() as u64 });
    }
    let caps: Vec<usize> = items.iter().map(ShareableItem::capacity).collect();
    if caps.iter().any(|&c| c as u64 > LEN_MASK) {
        return Err(too_large());
    }
    let data = caps.iter().try_fold(0usize, |a, &c| a.checked_add(c)).ok_or_else(too_large)?;
    let table = items.len().checked_mul(std::mem::size_of::<Slot>()).ok_or_else(too_large)?;
    // The lock, the table, the data, and room for each part's alignment.
    let len = data.checked_add(table).and_then(|n| n.checked_add(256)).ok_or_else(too_large)?;
    Ok((len, caps))
}

/// Builds the list in `seg` (fresh, unshared): its lock, table and items. Returns the
/// directory words [`ShareableList::from_words`] reads.
fn build(seg: &Segment, items: &[ShareableItem], caps: &[usize]) -> Result<shm::Words, ShmError> {
    let lock = Lock::new_in(seg)?;
    let slots: Vec<ShmRef<Slot>> = items.iter().map(|_| seg.alloc_object::<Slot>()).collect::<Result<_, _>>()?;
    let table = slots.first().map_or(0, ShmRef::offset);
    for ((slot, item), &cap) in slots.iter().zip(items).zip(caps) {
        let offset = seg.alloc(cap, ALIGN)?;
        let bytes = item.encode();
        let dst = seg.bytes_at(offset, cap)?;
        // SAFETY: `dst` is `cap` bytes of this fresh segment (bounds-checked by `bytes_at`),
        // which `seg` keeps mapped; `bytes.len() <= cap` by `capacity`; nobody else sees the
        // segment yet, and every later access to these bytes is atomic.
        unsafe { atomic_bytes::copy_in(&bytes, dst.as_ptr()) };
        // Relaxed: unpublished memory; the segment's publication orders these stores.
        slot.offset.store(offset as u64, Relaxed);
        slot.capacity.store(cap as u64, Relaxed);
        slot.state.store(state(item.kind(), bytes.len()), Relaxed);
    }
    Ok([lock.offset() as u64, table as u64, items.len() as u64, 0, 0, 0])
}

impl ShareableList {
    /// A list holding `items`, in a fresh anonymous segment shared with every child forked
    /// afterwards (and sendable to others, as every shared object is).
    ///
    /// # Errors
    /// [`ShmError`] if the memory cannot be mapped, the lock not initialized, or the list is
    /// too large.
    ///
    /// # Examples
    ///
    /// ```
    /// let sl = multiproc::ShareableList::new([1.into(), 2.5.into(), true.into(), b"ab".as_slice().into()])?;
    /// assert_eq!(sl.len(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(items: impl IntoIterator<Item = ShareableItem>) -> Result<ShareableList, ShmError> {
        let items: Vec<ShareableItem> = items.into_iter().collect();
        let (len, caps) = plan(&items)?;
        let seg = Segment::anonymous(len)?;
        let words = build(&seg, &items, &caps)?;
        ShareableList::from_words(&seg, &words)
    }

    /// A list holding `items` under `name` (Python's `ShareableList(seq, name=…)`), for
    /// processes that are not forked from this one: they [`open`](Self::open) it.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, [`ShmError::InvalidName`], and as
    /// [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ShareableItem, ShareableList};
    ///
    /// let name = format!("doc-sl-create-{}", std::process::id());
    /// let sl = ShareableList::create(&name, [ShareableItem::Int(1)])?;
    /// ShareableList::open(&name)?.set(0, 2)?; // typically in another program
    /// assert_eq!(sl.get(0)?, ShareableItem::Int(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, items: impl IntoIterator<Item = ShareableItem>) -> Result<ShareableList, ShmError> {
        let items: Vec<ShareableItem> = items.into_iter().collect();
        let (len, caps) = plan(&items)?;
        shm::create_named(name, len, |seg| build(seg, &items, &caps))
    }

    shm::named_methods!("```\nuse multiproc::{ShareableItem, ShareableList};\nlet name = format!(\"doc-sl-{}\", std::process::id());\nlet created = ShareableList::create(&name, [ShareableItem::from(\"a\")])?;\nlet opened = ShareableList::open_timeout(&name, std::time::Duration::from_secs(1))?;\nassert_eq!(opened.get(0)?, ShareableItem::from(\"a\"));\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(ShareableList::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// The handle on a list found in `seg` (from another process: every word is checked).
    fn from_words(seg: &Segment, w: &shm::Words) -> Result<ShareableList, ShmError> {
        let bad = |what| ShmError::Corrupt { what };
        let lock = <Lock as shm::Named>::from_named(seg, &[w[0], 0, 0, 0, 0, 0])?;
        let (table, n) = (shm::word_usize(w[1])?, shm::word_usize(w[2])?);
        if n > MAX_ITEMS {
            return Err(bad("shareable list: too many items"));
        }
        let mut places = Vec::with_capacity(n);
        // The data area starts after the table; slots' bytes are laid out in order, none
        // overlapping another or the table.
        let mut floor = table.checked_add(n * std::mem::size_of::<Slot>()).ok_or(bad("shareable list: table"))?;
        for i in 0..n {
            let slot = seg.object_at::<Slot>(table + i * std::mem::size_of::<Slot>())?;
            // Relaxed: written before the segment was published, which the open synchronized with.
            let (offset, capacity) =
                (shm::word_usize(slot.offset.load(Relaxed))?, shm::word_usize(slot.capacity.load(Relaxed))?);
            if offset < floor || capacity as u64 > LEN_MASK {
                return Err(bad("shareable list: item bytes overlap or are too long"));
            }
            seg.bytes_at(offset, capacity)?;
            floor = offset + capacity;
            places.push(Place { slot, offset, capacity });
        }
        Ok(ShareableList { lock, places: places.into(), table })
    }

    /// Number of items (fixed when the list was made).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::ShareableList::new([])?.len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether the list has no items.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::ShareableList::new([])?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Item `i` (Python's `sl[i]`).
    ///
    /// # Errors
    /// [`ValueError::IndexOutOfRange`]; [`ValueError::CorruptItem`] if the slot's bytes are not
    /// an item (another process scribbled on the segment); the lock's failures
    /// ([`ValueError::Unrecoverable`], [`ValueError::Corrupt`], [`ValueError::Os`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ShareableItem, ShareableList};
    ///
    /// let sl = ShareableList::new([ShareableItem::Float(0.5)])?;
    /// assert_eq!(sl.get(0)?, ShareableItem::Float(0.5));
    /// assert!(sl.get(1).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, i: usize) -> Result<ShareableItem, ValueError> {
        let place = self.place(i)?;
        let _g = self.locked()?;
        self.read(i, place)
    }

    /// Replaces item `i` (Python's `sl[i] = v`): any item that fits the slot's room.
    ///
    /// # Errors
    /// [`ValueError::TooLong`] if a string or bytes is longer than the slot's room (nothing is
    /// written); [`ValueError::IndexOutOfRange`]; the lock's failures as for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ShareableItem, ShareableList, ValueError};
    ///
    /// let sl = ShareableList::new([ShareableItem::Int(7)])?;
    /// sl.set(0, "8 bytes!")?; // a number's slot has room for 8 bytes
    /// assert!(matches!(sl.set(0, "nine byte"), Err(ValueError::TooLong { len: 9, capacity: 8 })));
    /// assert_eq!(sl.get(0)?, ShareableItem::from("8 bytes!"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, i: usize, item: impl Into<ShareableItem>) -> Result<(), ValueError> {
        let item = item.into();
        let place = self.place(i)?;
        let bytes = item.encode();
        if bytes.len() > place.capacity {
            return Err(ValueError::TooLong { len: bytes.len(), capacity: place.capacity });
        }
        let _g = self.locked()?;
        let dst = self.bytes(i, place)?;
        // Relaxed: every access is under the lock, whose acquire/release orders them; the
        // writing bit is for the next locker after a death, not for concurrent readers.
        let old = place.slot.state.load(Relaxed);
        place.slot.state.store(old | WRITING, Relaxed);
        // SAFETY: `dst` is this slot's `capacity` bytes (checked at open and by `bytes`), in
        // the mapping the lock's segment keeps alive; `bytes.len() <= capacity` (checked
        // above); other accesses to these bytes are atomic.
        unsafe { atomic_bytes::copy_in(&bytes, dst) };
        place.slot.state.store(state(item.kind(), bytes.len()), Relaxed);
        Ok(())
    }

    /// Every item, in order (Python's `list(sl)`), read under one hold of the lock.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ShareableItem, ShareableList};
    ///
    /// let sl = ShareableList::new([ShareableItem::Bool(true), ShareableItem::None])?;
    /// assert_eq!(sl.to_vec()?, [ShareableItem::Bool(true), ShareableItem::None]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<ShareableItem>, ValueError> {
        let _g = self.locked()?;
        self.places.iter().enumerate().map(|(i, p)| self.read(i, p)).collect()
    }

    /// How many items equal `item` (Python's `sl.count(v)`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let sl = multiproc::ShareableList::new([1.into(), 1.into(), 2.into()])?;
    /// assert_eq!(sl.count(&1.into())?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count(&self, item: &ShareableItem) -> Result<usize, ValueError> {
        Ok(self.to_vec()?.iter().filter(|x| *x == item).count())
    }

    /// The index of the first item equal to `item` (Python's `sl.index(v)`).
    ///
    /// # Errors
    /// [`ValueError::NotFound`] if no item is equal (Python's "not in list"); as
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let sl = multiproc::ShareableList::new(["a".into(), "b".into()])?;
    /// assert_eq!(sl.index(&"b".into())?, 1);
    /// assert!(sl.index(&"c".into()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn index(&self, item: &ShareableItem) -> Result<usize, ValueError> {
        self.to_vec()?.iter().position(|x| x == item).ok_or(ValueError::NotFound)
    }

    /// The room slot `i` has for a string or bytes, fixed when the list was made.
    ///
    /// # Errors
    /// [`ValueError::IndexOutOfRange`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sl = multiproc::ShareableList::new(["hello".into()])?;
    /// assert_eq!(sl.capacity(0)?, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self, i: usize) -> Result<usize, ValueError> {
        Ok(self.place(i)?.capacity)
    }

    fn place(&self, i: usize) -> Result<&Place, ValueError> {
        self.places.get(i).ok_or(ValueError::IndexOutOfRange { index: i, len: self.places.len() })
    }

    /// The slot's bytes, bounds-checked again against the mapping.
    fn bytes(&self, i: usize, place: &Place) -> Result<*mut u8, ValueError> {
        let seg = shm::Named::segment(&self.lock);
        let p = seg.bytes_at(place.offset, place.capacity).map_err(|_| ValueError::CorruptItem { index: i })?;
        Ok(p.as_ptr())
    }

    /// Reads item `i`; the caller holds the lock.
    fn read(&self, i: usize, place: &Place) -> Result<ShareableItem, ValueError> {
        // Relaxed: under the lock (see `set`).
        let st = place.slot.state.load(Relaxed);
        let (kind, len) = ((st >> LEN_BITS) & 0xff, (st & LEN_MASK) as usize);
        if st & WRITING != 0 || len > place.capacity {
            return Err(ValueError::CorruptItem { index: i });
        }
        let src = self.bytes(i, place)?;
        let mut buf = vec![0u8; len];
        // SAFETY: `src` is this slot's `capacity` bytes and `len <= capacity` (checked above),
        // in the mapping the lock's segment keeps alive; other accesses are atomic.
        unsafe { atomic_bytes::copy_out(src, &mut buf) };
        ShareableItem::decode(kind, buf).ok_or(ValueError::CorruptItem { index: i })
    }

    /// Takes the list's lock; after a holder's death, repairs the slots it was writing.
    fn locked(&self) -> Result<LockGuard<'_>, ValueError> {
        match self.lock.lock() {
            Ok(g) => Ok(g),
            Err(e) => {
                let mut g = e.split::<std::convert::Infallible>().map_err(value_error)?;
                for p in self.places.iter() {
                    // Relaxed: under the lock.
                    if p.slot.state.load(Relaxed) & WRITING != 0 {
                        p.slot.state.store(state(KIND_NONE, 0), Relaxed);
                    }
                }
                g.make_consistent();
                Ok(g)
            }
        }
    }
}

impl shm::Named for ShareableList {
    const KIND: shm::ObjectKind = shm::ObjectKind::ShareableList;

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        ShareableList::from_words(seg, w)
    }

    fn segment(&self) -> &Segment {
        shm::Named::segment(&self.lock)
    }

    fn words(&self) -> shm::Words {
        [self.lock.offset() as u64, self.table as u64, self.places.len() as u64, 0, 0, 0]
    }
}
