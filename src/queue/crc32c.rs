//! CRC32C (Castagnoli), the checksum of the integrity mode (`PipeBuilder::integrity`,
//! `QueueBuilder::integrity`): the CPU's CRC32C instruction where it has one (SSE4.2 on
//! x86-64, the CRC extension on AArch64), a table otherwise.
//!
//! Written here rather than taken from a crate: it is thirty lines over `core::arch`, and the
//! crate's data path should not depend on a checksum crate's choices (docs/DEPENDENCIES.md).

/// The Castagnoli polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;

/// The byte-at-a-time table of the software path.
static TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// The CRC32C of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    update(0, data)
}

/// Continues `crc` (the CRC32C of what came before) over `data`.
pub(crate) fn update(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE4.2, which `x86` requires.
        return !unsafe { x86(!crc, data) };
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("crc") {
        // SAFETY: the CPU has the CRC extension, which `arm` requires.
        return !unsafe { arm(!crc, data) };
    }
    !software(!crc, data)
}

fn software(mut c: u32, data: &[u8]) -> u32 {
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    c
}

/// Bytes per lane of the three-lane loop: the `crc32` instruction has a latency of three cycles
/// and a throughput of one, so three independent lanes run about three times as fast as one;
/// their registers are then joined with [`shift`].
#[cfg(target_arch = "x86_64")]
const LANE: usize = 1024;

/// `t[k][v]`: the raw CRC register that the state `v << 8k` becomes after `LANE` zero bytes.
/// The step is linear, so any state's shift is the XOR of four lookups.
#[cfg(target_arch = "x86_64")]
fn shift_table() -> &'static [[u32; 256]; 4] {
    static T: std::sync::OnceLock<[[u32; 256]; 4]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut bit = [0u32; 32];
        for (b, out) in bit.iter_mut().enumerate() {
            let mut c = 1u32 << b;
            for _ in 0..LANE {
                c = TABLE[(c & 0xff) as usize] ^ (c >> 8);
            }
            *out = c;
        }
        let mut t = [[0u32; 256]; 4];
        for (k, row) in t.iter_mut().enumerate() {
            for (v, out) in row.iter_mut().enumerate() {
                *out = (0..8).filter(|i| v >> i & 1 != 0).fold(0, |x, i| x ^ bit[8 * k + i]);
            }
        }
        t
    })
}

/// The raw register `c` after `LANE` more zero bytes: what lets a lane's register be joined
/// to the one before it (`shift(before) ^ lane`, as CRCs without the final inversion are
/// linear).
#[cfg(target_arch = "x86_64")]
fn shift(t: &[[u32; 256]; 4], c: u32) -> u32 {
    t[0][(c & 0xff) as usize]
        ^ t[1][(c >> 8 & 0xff) as usize]
        ^ t[2][(c >> 16 & 0xff) as usize]
        ^ t[3][(c >> 24) as usize]
}

/// # Safety
/// The CPU has SSE4.2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
// The intrinsics are safe to call here from Rust 1.87 on, unsafe before: the blocks are for the
// crate's rust-version (1.82).
#[allow(unused_unsafe)]
unsafe fn x86(c: u32, data: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("8 bytes"));
    let mut c = c;
    let mut data = data;
    if data.len() >= 3 * LANE {
        let t = shift_table();
        while data.len() >= 3 * LANE {
            let (a, rest) = data.split_at(LANE);
            let (b, rest) = rest.split_at(LANE);
            let (d, rest) = rest.split_at(LANE);
            let (mut c0, mut c1, mut c2) = (u64::from(c), 0u64, 0u64);
            for ((x, y), z) in a.chunks_exact(8).zip(b.chunks_exact(8)).zip(d.chunks_exact(8)) {
                // SAFETY: the CPU has SSE4.2 (this function's contract).
                unsafe {
                    c0 = _mm_crc32_u64(c0, word(x));
                    c1 = _mm_crc32_u64(c1, word(y));
                    c2 = _mm_crc32_u64(c2, word(z));
                }
            }
            c = shift(t, shift(t, c0 as u32) ^ c1 as u32) ^ c2 as u32;
            data = rest;
        }
    }
    let mut words = data.chunks_exact(8);
    let mut c64 = u64::from(c);
    for w in &mut words {
        // SAFETY: the CPU has SSE4.2 (this function's contract).
        c64 = unsafe { _mm_crc32_u64(c64, word(w)) };
    }
    let mut c = c64 as u32;
    for &b in words.remainder() {
        // SAFETY: as above.
        c = unsafe { _mm_crc32_u8(c, b) };
    }
    c
}

/// # Safety
/// The CPU has the CRC extension.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "crc")]
#[allow(unused_unsafe)] // as in `x86`
unsafe fn arm(c: u32, data: &[u8]) -> u32 {
    use core::arch::aarch64::{__crc32cb, __crc32cd};
    let mut words = data.chunks_exact(8);
    let mut c = c;
    for w in &mut words {
        // SAFETY: the CPU has the CRC extension (this function's contract).
        c = unsafe { __crc32cd(c, u64::from_le_bytes(w.try_into().expect("8 bytes"))) };
    }
    for &b in words.remainder() {
        // SAFETY: as above.
        c = unsafe { __crc32cb(c, b) };
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn the_instruction_and_the_table_agree_at_every_length_and_split() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let lengths = (0..300).chain([3071, 3072, 3073, 3080, 6143, 6144, 9999, 65_536, 70_000]);
        for n in lengths {
            let whole = crc32c(&data[..n]);
            assert_eq!(whole, !software(!0, &data[..n]), "length {n}");
            let cut = n / 3;
            assert_eq!(update(crc32c(&data[..cut]), &data[cut..n]), whole, "split at {cut} of {n}");
        }
    }
}
