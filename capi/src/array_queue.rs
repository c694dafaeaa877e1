//! `mp_arrayqueue`: the lock-free fixed-size queue (Rust's `ArrayQueue`) for records whose
//! size C gives at run time.
//!
//! The Rust queue is typed; C records of 1 to 4096 bytes travel in the smallest of ten slot
//! types `[u64; W]` (W = 1, 2, 4 … 512) that holds them, so a slot is at most twice the
//! record. The slot type is checked on open by the queue itself; the exact record size of a
//! named queue sits beside it in a small block named `NAME.rec`, written before the queue
//! appears, and is checked on open too (`MP_MISMATCH`).

use crate::handle::{buffer, bytes, get, give, handle, name, set, take, Wait};
use crate::status::*;
use mp::zerocopy::{FromZeros, IntoBytes};
use mp::{ArrayQueue, SharedMemory};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// The largest record, in bytes.
pub const MP_ARRAYQUEUE_MAX_RECORD: usize = 4096;

macro_rules! classes {
    ($($v:ident = $w:literal),* $(,)?) => {
        /// An array queue of one slot type.
        pub(crate) enum Slots { $($v(ArrayQueue<[u64; $w]>),)* }

        impl Slots {
            /// The slot type for records of `words` 8-byte words (a power of two).
            fn make(words: usize, build: impl Builder) -> Res<Slots> {
                match words {
                    $($w => Ok(Slots::$v(build.build::<[u64; $w]>()?)),)*
                    _ => Err(Fail::invalid(format!("records of {} words", words))),
                }
            }
        }

        /// Runs `$body` with `$q` bound to the typed queue and `$t` to its slot type.
        macro_rules! with_slots {
            ($s:expr, $q:ident, $t:ident => $body:expr) => {
                match $s { $(Slots::$v($q) => { type $t = [u64; $w]; $body })* }
            };
        }
    };
}
classes!(W1 = 1, W2 = 2, W4 = 4, W8 = 8, W16 = 16, W32 = 32, W64 = 64, W128 = 128, W256 = 256, W512 = 512);

/// How a queue of a given slot type is made (new, create or open).
trait Builder {
    fn build<T: mp::ShmSafe>(self) -> Res<ArrayQueue<T>>;
}

struct New(usize);
impl Builder for New {
    fn build<T: mp::ShmSafe>(self) -> Res<ArrayQueue<T>> {
        Ok(ArrayQueue::new(self.0)?)
    }
}

struct Create<'a>(&'a str, usize);
impl Builder for Create<'_> {
    fn build<T: mp::ShmSafe>(self) -> Res<ArrayQueue<T>> {
        Ok(ArrayQueue::create(self.0, self.1)?)
    }
}

struct Open<'a>(&'a str, Duration);
impl Builder for Open<'_> {
    fn build<T: mp::ShmSafe>(self) -> Res<ArrayQueue<T>> {
        Ok(ArrayQueue::open_timeout(self.0, self.1)?)
    }
}

/// An array queue, its record size, and (for a named one) the block that records the size.
pub(crate) struct ArrayQueueH {
    slots: Slots,
    record: usize,
    _size_block: Option<SharedMemory>,
}

/// A lock-free bounded queue of fixed-size records shared between processes: see
/// `mp_arrayqueue_new`.
#[allow(non_camel_case_types)]
pub struct mp_arrayqueue {
    t: crate::handle::Tagged<ArrayQueueH>,
}
handle!(mp_arrayqueue, ArrayQueueH, 0x6d70_6172_7271_0009);

/// The slot words for a record size, or `MP_INVALID`.
fn words_for(record_size: usize) -> Res<usize> {
    if record_size == 0 || record_size > MP_ARRAYQUEUE_MAX_RECORD {
        return Err(Fail::invalid(format!(
            "record size {record_size}: records are 1 to {MP_ARRAYQUEUE_MAX_RECORD} bytes"
        )));
    }
    Ok(record_size.div_ceil(8).next_power_of_two())
}

/// The capacity, or `MP_INVALID` for 0.
fn capacity(n: usize) -> Res<usize> {
    if n == 0 {
        return Err(Fail::invalid("an array queue holds at least one record"));
    }
    Ok(n)
}

fn size_block_name(name: &str) -> String {
    format!("{name}.rec")
}

/// Makes an anonymous queue of `capacity` records of `record_size` bytes (1 to 4096), shared
/// with children forked after this call. Never blocks.
///
/// Errors: `MP_INVALID` (a size or capacity of 0, a record over 4096 bytes, null `out`),
/// `MP_TOO_LARGE`, `MP_OS`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_arrayqueue_new(
    record_size: usize,
    capacity: usize,
    out: *mut *mut mp_arrayqueue,
) -> mp_status {
    call(|| {
        // Made only once `out` is known good (`give` checks it first): no object appears
        // and vanishes, no client is accepted and dropped, for a null `out`.
        let make = || {
            let slots = Slots::make(words_for(record_size)?, New(self::capacity(capacity)?))?;
            Ok(mp_arrayqueue::boxed(ArrayQueueH { slots, record: record_size, _size_block: None }))
        };
        // SAFETY: the caller's contract.
        unsafe { give(out, make) }
    })
}

/// Makes a queue of `capacity` records of `record_size` bytes under `name` (at most 246
/// characters: a block named `NAME.rec` holds the record size). Both names are removed when
/// this handle is freed. Never blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID`, `MP_TOO_LARGE`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_arrayqueue_create(
    name: *const c_char,
    record_size: usize,
    capacity: usize,
    out: *mut *mut mp_arrayqueue,
) -> mp_status {
    call(|| {
        // Made only once `out` is known good (`give` checks it first): no object appears
        // and vanishes, no client is accepted and dropped, for a null `out`.
        let make = || {
            // SAFETY: the caller's contract.
            let name = unsafe { self::name(name) }?;
            let words = words_for(record_size)?;
            // The size first, so that whoever sees the queue finds its size.
            let block = SharedMemory::create(&size_block_name(name), 8)?;
            block.write_at(0, &(record_size as u64).to_le_bytes())?;
            let slots = Slots::make(words, Create(name, self::capacity(capacity)?))?;
            let h = ArrayQueueH { slots, record: record_size, _size_block: Some(block) };
            Ok(mp_arrayqueue::boxed(h))
        };
        // SAFETY: the caller's contract.
        unsafe { give(out, make) }
    })
}

/// Opens the queue made under `name` with records of `record_size` bytes, waiting up to
/// `timeout_ns` for the name.
///
/// Errors: `MP_MISMATCH` (made with another record size, not by `mp_arrayqueue_create`, or
/// another kind of object),
/// `MP_NOT_FOUND`, `MP_CORRUPT`, `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_arrayqueue_open(
    name: *const c_char,
    record_size: usize,
    timeout_ns: u64,
    out: *mut *mut mp_arrayqueue,
) -> mp_status {
    call(|| {
        // Made only once `out` is known good (`give` checks it first): no object appears
        // and vanishes, no client is accepted and dropped, for a null `out`.
        let make = || {
            // SAFETY: the caller's contract.
            let name = unsafe { self::name(name) }?;
            let words = words_for(record_size)?;
            let slots = Slots::make(words, Open(name, Wait::from_ns(timeout_ns).duration()))?;
            // The block was complete before the queue appeared.
            let block = SharedMemory::open(&size_block_name(name)).map_err(|e| match e {
                // A queue with no size block was not made by `mp_arrayqueue_create`.
                mp::ShmError::NotFound { .. } => Fail::new(MP_MISMATCH, format!("array queue {name:?} has no record size beside it ({name}.rec): it was not made by mp_arrayqueue_create")),
                e => e.into(),
            })?;
            let mut size = [0u8; 8];
            block.read_at(0, &mut size)?;
            let made = u64::from_le_bytes(size);
            if made != record_size as u64 {
                return Err(Fail::new(
                    MP_MISMATCH,
                    format!("array queue {name:?} holds records of {made} bytes, not {record_size}"),
                ));
            }
            Ok(mp_arrayqueue::boxed(ArrayQueueH { slots, record: record_size, _size_block: Some(block) }))
        };
        // SAFETY: the caller's contract.
        unsafe { give(out, make) }
    })
}

/// Pushes one record (`record_size` bytes at `record`), waiting up to `timeout_ns` for room.
/// A pusher killed at any instruction never leaves a torn record behind.
///
/// Errors: `MP_FULL` (full now, for a timeout of 0), `MP_TIMEOUT` (full all that time),
/// `MP_CORRUPT`, `MP_INVALID` (null `record`).
///
/// # Safety
/// `queue` is null or a handle from this library; `record` is null or valid for
/// `record_size` reads.
#[no_mangle]
pub unsafe extern "C" fn mp_arrayqueue_push(
    queue: *const mp_arrayqueue,
    record: *const c_void,
    timeout_ns: u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(queue) }?.h;
        // SAFETY: the caller's contract (the record size is the handle's).
        let rec = unsafe { bytes(record, h.record) }?;
        with_slots!(&h.slots, q, T => {
            let mut slot = T::new_zeroed();
            slot.as_mut_bytes()[..rec.len()].copy_from_slice(rec);
            match Wait::from_ns(timeout_ns) {
                Wait::Now => q.try_push(slot).map_err(Fail::from),
                Wait::For(d) => q.push_timeout(slot, d).map_err(Fail::from),
                Wait::Forever => q.push(slot).map_err(Fail::from),
            }
        })
    })
}

/// Pops the oldest record into `record` (`record_size` bytes), waiting up to `timeout_ns`
/// for one.
///
/// Errors: `MP_EMPTY` (none now, for a timeout of 0), `MP_TIMEOUT` (none in time),
/// `MP_CORRUPT`, `MP_INVALID` (null `record`).
///
/// # Safety
/// `queue` is null or a handle from this library; `record` is null or valid for
/// `record_size` writes.
#[no_mangle]
pub unsafe extern "C" fn mp_arrayqueue_pop(
    queue: *const mp_arrayqueue,
    record: *mut c_void,
    timeout_ns: u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(queue) }?.h;
        // SAFETY: the caller's contract.
        let out = unsafe { buffer(record, h.record) }?;
        with_slots!(&h.slots, q, T => {
            let slot: T = match Wait::from_ns(timeout_ns) {
                Wait::Now => q.try_pop().map_err(Fail::from)?,
                Wait::For(d) => q.pop_timeout(d).map_err(Fail::from)?,
                Wait::Forever => q.pop().map_err(Fail::from)?,
            };
            out.copy_from_slice(&slot.as_bytes()[..out.len()]);
            Ok(())
        })
    })
}

/// Writes the number of records in the queue now (`*len`), its capacity and its record size
/// (each out-pointer may be null). Never blocks.
///
/// Errors: `MP_INVALID` (not a live array queue handle).
///
/// # Safety
/// `queue` is null or a handle from this library; each out-pointer is null or valid for one
/// write.
#[no_mangle]
pub unsafe extern "C" fn mp_arrayqueue_state(
    queue: *const mp_arrayqueue,
    len: *mut usize,
    capacity: *mut usize,
    record_size: *mut usize,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(queue) }?.h;
        let (n, cap) = with_slots!(&h.slots, q, _T => (q.len(), q.capacity()));
        // SAFETY: the caller's contract.
        unsafe {
            set(len, n);
            set(capacity, cap);
            set(record_size, h.record);
        }
        Ok(())
    })
}

/// Frees the handle (null: nothing). Never blocks.
///
/// Errors: `MP_INVALID` (not a live array queue handle).
///
/// # Safety
/// `queue` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_arrayqueue_free(queue: *mut mp_arrayqueue) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(queue) }.map(drop))
}
