//! `mp_shm`: a block of shared memory (pointer and length), and `mp_shm_clean`.

use crate::handle::{get, give, handle, name, set, set_required, take, Wait};
use crate::status::*;
use mp::{Segment, SharedMemory};
use std::ffi::{c_char, c_void};

/// A block of shared memory (Python's `SharedMemory`): see `mp_shm_create`.
#[allow(non_camel_case_types)]
pub struct mp_shm {
    t: crate::handle::Tagged<SharedMemory>,
}
handle!(mp_shm, SharedMemory, 0x6d70_7368_6d00_0007);

/// Makes an anonymous block of `size` bytes, zeroed, shared with children forked after this
/// call. Never blocks.
///
/// Errors: `MP_INVALID` (`size` 0, null `out`), `MP_TOO_LARGE`, `MP_OS`.
///
/// # Safety
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_shm_new(size: usize, out: *mut *mut mp_shm) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_shm::boxed(SharedMemory::anonymous(size)?))) })
}

/// Makes a block of `size` bytes, zeroed, under `name` (1 to 250 characters from
/// `[A-Za-z0-9._-]`, an optional leading `/`). The name is removed when this handle is freed.
/// Never blocks.
///
/// Errors: `MP_EXISTS`, `MP_INVALID` (a bad name, `size` 0), `MP_TOO_LARGE`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_shm_create(name: *const c_char, size: usize, out: *mut *mut mp_shm) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_shm::boxed(SharedMemory::create(self::name(name)?, size)?))) })
}

/// Opens the block made under `name`, waiting up to `timeout_ns` for the name.
///
/// Errors: `MP_NOT_FOUND`, `MP_MISMATCH` (another kind of object), `MP_CORRUPT`,
/// `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_shm_open(name: *const c_char, timeout_ns: u64, out: *mut *mut mp_shm) -> mp_status {
    let d = Wait::from_ns(timeout_ns).duration();
    // SAFETY: the caller's contract.
    call(|| unsafe { give(out, || Ok(mp_shm::boxed(SharedMemory::open_timeout(self::name(name)?, d)?))) })
}

/// Writes the block's address to `*data` and its size to `*size` (either may be null). The
/// memory stays mapped until the handle is freed. Other processes write it at any time: use
/// atomics, or a lock, and treat what you read as untrusted. Never blocks.
///
/// Errors: `MP_INVALID` (not a live shm handle).
///
/// # Safety
/// `shm` is null or a handle from this library; `data` and `size` are null or valid for one
/// write.
#[no_mangle]
pub unsafe extern "C" fn mp_shm_data(shm: *const mp_shm, data: *mut *mut c_void, size: *mut usize) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let s = &unsafe { get(shm) }?.h;
        // SAFETY: the caller's contract.
        unsafe {
            set(data, s.as_ptr().cast::<c_void>());
            set(size, s.len());
        }
        Ok(())
    })
}

/// Removes the block's name now (Python's `unlink`); handles already open keep working.
/// Never blocks.
///
/// Errors: `MP_NOT_FOUND` (an anonymous block has no name, or it was already removed),
/// `MP_INVALID`, `MP_OS`.
///
/// # Safety
/// `shm` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_shm_unlink(shm: *const mp_shm) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| Ok(unsafe { get(shm) }?.h.unlink()?))
}

/// Frees the handle (null: nothing) and unmaps the block: pointers from `mp_shm_data` are
/// invalid afterwards. Never blocks.
///
/// Errors: `MP_INVALID` (not a live shm handle).
///
/// # Safety
/// `shm` is null or a handle from this library, not used by any thread after this call, and
/// no pointer into its memory is used afterwards.
#[no_mangle]
pub unsafe extern "C" fn mp_shm_free(shm: *mut mp_shm) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(shm) }.map(drop))
}

/// Removes the names in /dev/shm that this library made and whose creator is dead (what
/// `multiproc shm clean` does); `*removed` gets how many. Only when no process still means to
/// open such a name. Never blocks.
///
/// Errors: `MP_INVALID` (null `removed`), `MP_OS` (/dev/shm cannot be read).
///
/// # Safety
/// `removed` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_shm_clean(removed: *mut usize) -> mp_status {
    call(|| {
        let gone = Segment::clean_stale().map_err(|e| Fail::new(MP_OS, format!("reading /dev/shm: {e}")))?;
        // SAFETY: the caller's contract.
        unsafe { set_required(removed, gone.len(), "the count removed") }
    })
}
