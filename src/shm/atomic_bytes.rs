//! Racy-but-sound access to plain data in shared memory: every byte is read and written with
//! atomic operations, so concurrent readers and writers (threads or processes) never make a
//! data race in Rust's sense. A value of 1, 2, 4 or 8 bytes, aligned to its size, is one atomic
//! access and never tears; a larger one is copied in aligned 8-byte words and may tear between
//! words (as Python's `RawValue`/`RawArray` and `SharedMemory` do), but every bit pattern is a
//! valid value of a [`ShmSafe`] type, so a torn read is a wrong value, never undefined
//! behaviour.
//!
//! These are memory-access primitives, not algorithms: loom has nothing to check in them, so
//! they use `core` atomics directly (the clippy ban on them exists for the algorithms).
#![allow(clippy::disallowed_types)]

use super::ShmSafe;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

/// Loads a `T` from `p`.
///
/// # Safety
/// `p` is valid for reads of `size_of::<T>()` bytes, aligned for `T`, and stays mapped during
/// the call; every other access to those bytes is atomic too (this module's functions).
pub(crate) unsafe fn load<T: ShmSafe>(p: *const T) -> T {
    let size = std::mem::size_of::<T>();
    let aligned = (p as usize) % size.max(1) == 0;
    // SAFETY: in each arm, `p` is valid and aligned for the access (contract, and `aligned`
    // checks the width); the bits read are a valid `T` because `T: FromBytes`.
    unsafe {
        match size {
            1 => T::read_from_bytes(&(*p.cast::<AtomicU8>()).load(Relaxed).to_ne_bytes())
                .ok()
                .unwrap_or_else(T::new_zeroed),
            2 if aligned => T::read_from_bytes(&(*p.cast::<AtomicU16>()).load(Relaxed).to_ne_bytes())
                .ok()
                .unwrap_or_else(T::new_zeroed),
            4 if aligned => T::read_from_bytes(&(*p.cast::<AtomicU32>()).load(Relaxed).to_ne_bytes())
                .ok()
                .unwrap_or_else(T::new_zeroed),
            8 if aligned => T::read_from_bytes(&(*p.cast::<AtomicU64>()).load(Relaxed).to_ne_bytes())
                .ok()
                .unwrap_or_else(T::new_zeroed),
            _ => {
                let mut v = T::new_zeroed();
                copy_out(p.cast::<u8>(), v.as_mut_bytes());
                v
            }
        }
    }
}

/// Stores `v` at `p`.
///
/// # Safety
/// As for [`load`], for writes.
pub(crate) unsafe fn store<T: ShmSafe>(p: *mut T, v: T) {
    let size = std::mem::size_of::<T>();
    let aligned = (p as usize) % size.max(1) == 0;
    let b = v.as_bytes();
    // SAFETY: in each arm, `p` is valid and aligned for the access (contract and `aligned`).
    unsafe {
        match size {
            1 => (*p.cast::<AtomicU8>()).store(b[0], Relaxed),
            2 if aligned => (*p.cast::<AtomicU16>()).store(u16::from_ne_bytes([b[0], b[1]]), Relaxed),
            4 if aligned => {
                (*p.cast::<AtomicU32>()).store(u32::from_ne_bytes(b[..4].try_into().unwrap_or_default()), Relaxed)
            }
            8 if aligned => {
                (*p.cast::<AtomicU64>()).store(u64::from_ne_bytes(b[..8].try_into().unwrap_or_default()), Relaxed)
            }
            _ => copy_in(b, p.cast::<u8>()),
        }
    }
}

/// Copies `dst.len()` bytes from `src` (shared memory) into `dst`.
///
/// # Safety
/// `src` is valid for reads of `dst.len()` bytes and stays mapped during the call; every other
/// access to those bytes is atomic.
pub(crate) unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let mut i = 0;
    // SAFETY: every address read is within `src..src+n` (contract); the word loads are at
    // 8-aligned addresses, the byte loads at any.
    unsafe {
        while i < n && (src as usize + i) % 8 != 0 {
            dst[i] = (*src.add(i).cast::<AtomicU8>()).load(Relaxed);
            i += 1;
        }
        while i + 8 <= n {
            let w = (*src.add(i).cast::<AtomicU64>()).load(Relaxed);
            dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
            i += 8;
        }
        while i < n {
            dst[i] = (*src.add(i).cast::<AtomicU8>()).load(Relaxed);
            i += 1;
        }
    }
}

/// Copies `src` into `dst` (shared memory).
///
/// # Safety
/// `dst` is valid for writes of `src.len()` bytes and stays mapped during the call; every
/// other access to those bytes is atomic.
pub(crate) unsafe fn copy_in(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let mut i = 0;
    // SAFETY: as in `copy_out`, writing.
    unsafe {
        while i < n && (dst as usize + i) % 8 != 0 {
            (*dst.add(i).cast::<AtomicU8>()).store(src[i], Relaxed);
            i += 1;
        }
        while i + 8 <= n {
            let w = u64::from_ne_bytes(src[i..i + 8].try_into().unwrap_or_default());
            (*dst.add(i).cast::<AtomicU64>()).store(w, Relaxed);
            i += 8;
        }
        while i < n {
            (*dst.add(i).cast::<AtomicU8>()).store(src[i], Relaxed);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_every_width_round_trip() {
        let mut buf = [0u64; 8];
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: all pointers below are inside `buf`, aligned for their types.
        unsafe {
            store(base.cast::<u8>(), 7u8);
            assert_eq!(load(base.cast::<u8>()), 7u8);
            store(base.add(2).cast::<u16>(), 0xbeefu16);
            assert_eq!(load(base.add(2).cast::<u16>()), 0xbeef);
            store(base.add(4).cast::<f32>(), 1.5f32);
            assert_eq!(load(base.add(4).cast::<f32>()), 1.5);
            store(base.add(8).cast::<u64>(), u64::MAX - 3);
            assert_eq!(load(base.add(8).cast::<u64>()), u64::MAX - 3);
            store(base.add(16).cast::<[u32; 5]>(), [1, 2, 3, 4, 5]);
            assert_eq!(load(base.add(16).cast::<[u32; 5]>()), [1, 2, 3, 4, 5]);
            let src: Vec<u8> = (0..29).collect();
            copy_in(&src, base.add(3));
            let mut back = vec![0u8; 29];
            copy_out(base.add(3), &mut back);
            assert_eq!(back, src);
        }
    }
}
