//! Racy-but-sound access to plain data in shared memory: every byte is read and written with
//! atomic operations, so concurrent readers and writers (threads or processes) never make a
//! data race in Rust's sense. A value of 1, 2, 4 or 8 bytes, aligned to its size, is one atomic
//! access and never tears; a larger one, and every byte range, is copied as single bytes and
//! may tear between bytes (as Python's `RawValue`/`RawArray` and `SharedMemory` do), but every
//! bit pattern is a valid value of a [`ShmSafe`] type, so a torn read is a wrong value, never
//! undefined behaviour. Why bytes and not words: [`copy_out`].
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

/// Copies `dst.len()` bytes from `src` (shared memory) into `dst`, one atomic byte load each.
///
/// Byte by byte, and not in words where the range allows, because Rust's memory model (as
/// C++'s) makes two racing atomic accesses that *partially* overlap, one of them a write,
/// undefined behaviour: a word load here racing with a byte store through
/// [`SharedMemory::as_atomic_bytes`](crate::SharedMemory::as_atomic_bytes), or with another
/// copy's byte store at an unaligned end, would be one. With every access a single byte, any
/// two either are the same byte at the same size or do not overlap.
///
/// # Safety
/// `src` is valid for reads of `dst.len()` bytes and stays mapped during the call; every other
/// access to those bytes that may race with this one is a byte-sized atomic access (this
/// module's copies, `as_atomic_bytes`) or a read.
pub(crate) unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if dst.len() >= REP_MIN {
        // SAFETY: `src` is valid for `dst.len()` bytes (contract), `dst` is a unique borrow of
        // as many; racing accesses are byte-sized atomics or reads (contract), as `rep_movsb`
        // requires.
        unsafe { rep_movsb(dst.as_mut_ptr(), src, dst.len()) };
        return;
    }
    for (i, d) in dst.iter_mut().enumerate() {
        // SAFETY: `src + i` is within `src..src + dst.len()` (contract), and a byte is always
        // aligned for `AtomicU8`; racing accesses are byte-sized atomics or reads (contract).
        *d = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Relaxed);
    }
}

/// Copies `src` into `dst` (shared memory), one atomic byte store each (see [`copy_out`]).
///
/// # Safety
/// `dst` is valid for writes of `src.len()` bytes and stays mapped during the call; every
/// other access to those bytes that may race with this one is a byte-sized atomic access.
pub(crate) unsafe fn copy_in(src: &[u8], dst: *mut u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if src.len() >= REP_MIN {
        // SAFETY: as in `copy_out`, writing.
        unsafe { rep_movsb(dst, src.as_ptr(), src.len()) };
        return;
    }
    for (i, &b) in src.iter().enumerate() {
        // SAFETY: as in `copy_out`, writing.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(b, Relaxed);
    }
}

/// From this many bytes on, a copy is one `rep movsb` rather than a loop of byte accesses
/// (measured: below it the instruction's start-up costs more than the loop).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const REP_MIN: usize = 32;

/// Copies `n` bytes from `src` to `dst` with one `rep movsb`.
///
/// Why this is sound where `ptr::copy_nonoverlapping` racing with atomics would not be: the
/// compiler cannot see into the `asm!` block, so it neither tears, merges nor invents accesses
/// in it; and what the block does is, instruction for instruction, what a loop of relaxed
/// `AtomicU8` loads and stores does, since on x86-64 every byte access is single-copy atomic
/// (the CPU may move several bytes at a time, but never a torn byte). So it is exactly as sound
/// as that loop, at memcpy's speed (`benches/shm.rs`: 13× the byte loop at 64 KiB).
///
/// # Safety
/// `src` is valid for reads and `dst` for writes of `n` bytes, the two do not overlap, and
/// every access to them that may race with this call is a byte-sized atomic access or, for
/// `src`, a read.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
unsafe fn rep_movsb(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the contract gives the ranges; the direction flag is clear on entry to any asm
    // block (the ABI requires it), so the copy runs forwards over exactly `n` bytes, and
    // `rep movsb` touches no stack and no flags.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
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

    /// SHM-B4: byte views and copies of the same bytes from two threads at once are sound
    /// (every access one atomic byte), and a copy reads each byte whole. Under miri (CI runs
    /// it) the word-wise copy this replaced is reported as a mixed-size race: an 8-byte load
    /// racing a 1-byte `fetch_or` on a byte inside it.
    #[test]
    fn shm_b4_copies_race_byte_views_soundly() {
        /// The buffer's address, handed to the writer thread.
        #[derive(Clone, Copy)]
        struct Base(*mut u8);
        // SAFETY: only the address crosses threads; every access through it is atomic.
        unsafe impl Send for Base {}
        impl Base {
            fn at(self, i: usize) -> *mut u8 {
                self.0.wrapping_add(i)
            }
        }
        let mut buf = [0u64; 4];
        let base = Base(buf.as_mut_ptr().cast::<u8>());
        let rounds = if cfg!(miri) { 20 } else { 10_000 };
        std::thread::scope(|s| {
            s.spawn(move || {
                for _ in 0..rounds {
                    // SAFETY: byte 5 of the 32-byte `buf`, which outlives the scope; every
                    // racing access is a byte-sized atomic.
                    unsafe { AtomicU8::from_ptr(base.at(5)) }.fetch_or(0x41, Relaxed);
                    // SAFETY: bytes 17..20 of `buf`, as above.
                    unsafe { copy_in(&[0x42; 3], base.at(17)) };
                }
            });
            for _ in 0..rounds {
                let mut out = [0u8; 32];
                // SAFETY: all 32 bytes of `buf`, as above.
                unsafe { copy_out(base.at(0), &mut out) };
                assert!(out[5] == 0 || out[5] == 0x41, "a byte read torn: {}", out[5]);
                assert!(out[17..20].iter().all(|&b| b == 0 || b == 0x42));
            }
        });
        // SAFETY: the scope joined the writer; nothing races any more.
        assert_eq!(unsafe { load(base.at(5).cast_const()) }, 0x41);
    }
}
