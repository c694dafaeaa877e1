//! The crate's one wire format for typed values (serde + postcard), its error type, and type
//! fingerprints.
//!
//! Every typed path (`Queue<T>`, `Connection::send`/`recv`, pool arguments and results) encodes
//! and decodes here, so that one failure has one shape: [`CodecError`], which keeps what
//! postcard said without putting postcard's types into the crate's public API.
//!
//! A **fingerprint** names a type across processes and programs: a hash of its type name with
//! references removed and borrowed forms mapped to their owned forms (`&str` and `String`, `[T]`
//! and `Vec<T>`, which serde encodes alike), plus its size and alignment for plain-data types.
//! It lets a receiver refuse a message of another type instead of decoding garbage, and a
//! named object refuse an opener that expects another type.

#[cfg(feature = "serde")]
use std::fmt;

/// A value could not be encoded to, or decoded from, the crate's wire format.
///
/// It travels between processes too (a pool worker that cannot decode its arguments reports
/// this), so it keeps a kind rather than the encoder's own error type.
///
/// # Examples
///
/// ```
/// let (mut a, mut b) = multiproc::Pipe::duplex()?;
/// a.send_bytes(&[0xff; 11])?; // not the encoding of a u64
/// match b.recv::<u64>() {
///     Err(multiproc::RecvError::Decode(e)) => assert!(e.is_decode()),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodecError {
    decode: bool,
    kind: CodecErrorKind,
}

/// What went wrong in a [`CodecError`].
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum CodecErrorKind {
    /// The bytes ended before the value did (a truncated message, or one of another type).
    Truncated,
    /// The bytes are not a valid encoding of the type (a bad length, tag, `bool`, `char`,
    /// UTF-8 string…), or bytes were left over after the value.
    Invalid,
    /// The type's own `Serialize`/`Deserialize` implementation reported an error.
    Custom,
    /// The type uses a serde feature the wire format does not support (e.g. a sequence of
    /// unknown length, `deserialize_any`).
    Unsupported,
}

#[cfg(feature = "serde")]
impl CodecError {
    /// Whether decoding failed (otherwise encoding did).
    pub fn is_decode(&self) -> bool {
        self.decode
    }

    /// What went wrong.
    pub fn kind(&self) -> CodecErrorKind {
        self.kind
    }

    /// Whether the bytes ended before the value did (a truncated or foreign message).
    pub fn is_truncated(&self) -> bool {
        self.kind == CodecErrorKind::Truncated
    }

    /// A value that is not what it should be, found by the crate's own checks.
    pub(crate) fn invalid(decode: bool) -> CodecError {
        CodecError { decode, kind: CodecErrorKind::Invalid }
    }

    fn from_postcard(decode: bool, e: postcard::Error) -> CodecError {
        use postcard::Error as P;
        let kind = match e {
            P::DeserializeUnexpectedEnd => CodecErrorKind::Truncated,
            P::SerdeSerCustom | P::SerdeDeCustom => CodecErrorKind::Custom,
            P::WontImplement | P::NotYetImplemented | P::SerializeSeqLengthUnknown => CodecErrorKind::Unsupported,
            _ => CodecErrorKind::Invalid,
        };
        CodecError { decode, kind }
    }
}

#[cfg(feature = "serde")]
impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.decode { "decode" } else { "encode" };
        let why = match self.kind {
            CodecErrorKind::Truncated => "the bytes end before the value",
            CodecErrorKind::Invalid => "the bytes are not an encoding of this type",
            CodecErrorKind::Custom => "the type's serde implementation reported an error",
            CodecErrorKind::Unsupported => "the type uses a serde feature the wire format does not support",
        };
        write!(f, "cannot {op} the value: {why}")
    }
}

#[cfg(feature = "serde")]
impl std::error::Error for CodecError {}

/// Encodes `value`.
#[cfg(feature = "serde")]
pub(crate) fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_append(value, Vec::new())
}

/// postcard's output into a `Vec<u8>`. postcard's own `AllocVec` appends each integer's
/// varint (1 to 10 bytes) with `extend_from_slice`, a `memcpy` call per integer: 15 % of the
/// caller's time in a profile of a pool mapping integers. Here a piece of up to 5 bytes (an
/// integer below 2^35) is copied at a constant length, inline.
#[cfg(feature = "serde")]
struct VecOut(Vec<u8>);

#[cfg(feature = "serde")]
impl postcard::ser_flavors::Flavor for VecOut {
    type Output = Vec<u8>;

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.0.push(b);
        Ok(())
    }

    // Always: LLVM left the match out of line at some call sites (a call per integer, slower
    // than the byte loop it replaced, in the pool's own encode of a chunk).
    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Each arm copies a constant length, which compiles to a few stores after one
        // capacity check.
        match *data {
            [a] => self.0.push(a),
            [a, b] => self.0.extend_from_slice(&[a, b]),
            [a, b, c] => self.0.extend_from_slice(&[a, b, c]),
            [a, b, c, d] => self.0.extend_from_slice(&[a, b, c, d]),
            [a, b, c, d, e] => self.0.extend_from_slice(&[a, b, c, d, e]),
            _ => self.0.extend_from_slice(data),
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Appends `value`'s encoding to `buf` (many values in one buffer: no allocation per value).
#[cfg(feature = "serde")]
pub(crate) fn encode_append<T: serde::Serialize + ?Sized>(value: &T, buf: Vec<u8>) -> Result<Vec<u8>, CodecError> {
    postcard::serialize_with_flavor(value, VecOut(buf)).map_err(|e| CodecError::from_postcard(false, e))
}

/// Decodes a `T` that must fill `bytes` exactly.
#[cfg(feature = "serde")]
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match decode_prefix(bytes)? {
        (v, []) => Ok(v),
        _ => Err(CodecError { decode: true, kind: CodecErrorKind::Invalid }),
    }
}

/// Decodes a `T` at the start of `bytes` and returns it with the bytes after it (a message
/// whose bulk follows its header as raw bytes).
#[cfg(feature = "serde")]
pub(crate) fn decode_prefix<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), CodecError> {
    postcard::take_from_bytes(bytes).map_err(|e| CodecError::from_postcard(true, e))
}

/// The fingerprint of `T` (see the module docs): the same in every process and program built
/// by the same compiler, and the same for `&str`/`String` and `&[T]`/`Vec<T>`.
pub(crate) fn fingerprint<T: ?Sized>() -> u64 {
    fingerprint_of_name(std::any::type_name::<T>())
}

/// The fingerprint of a plain-data type that lives in shared memory: its name, size and
/// alignment (a layout change is a different type even under the same name).
pub(crate) fn layout_fingerprint<T>() -> u64 {
    let mut h = Fnv::new();
    h.write(std::any::type_name::<T>().as_bytes());
    h.write(&(std::mem::size_of::<T>() as u64).to_le_bytes());
    h.write(&(std::mem::align_of::<T>() as u64).to_le_bytes());
    h.finish() | 1
}

/// Hashes a type name with references removed, `str` read as `String` and slices `[X]` read as
/// `Vec<X>` (arrays `[X; N]` stay arrays: serde encodes them differently). Never 0 (0 means
/// "untyped" on the wire).
pub(crate) fn fingerprint_of_name(name: &str) -> u64 {
    let mut h = Fnv::new();
    normalize(name.as_bytes(), &mut h);
    h.finish() | 1
}

fn normalize(b: &[u8], h: &mut Fnv) {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'&' => {
                i += 1;
                if b[i..].starts_with(b"mut ") {
                    i += 4;
                }
            }
            b'[' => {
                let end = matching_bracket(b, i);
                let inner = &b[i + 1..end.min(b.len())];
                if depth_zero_contains(inner, b';') {
                    h.write(b"[");
                    normalize(inner, h);
                    h.write(b"]");
                } else {
                    h.write(b"alloc::vec::Vec<");
                    normalize(inner, h);
                    h.write(b">");
                }
                i = end + 1;
            }
            c if is_word(c) => {
                let start = i;
                while i < b.len() && (is_word(b[i]) || b[i] == b':') {
                    i += 1;
                }
                let word = &b[start..i];
                h.write(if word == b"str" || word == b"alloc::string::String" {
                    b"alloc::string::String"
                } else {
                    word
                });
            }
            c => {
                h.write(&[c]);
                i += 1;
            }
        }
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Index of the `]` matching the `[` at `open` (or the end of `b`).
fn matching_bracket(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'[' | b'<' | b'(' => depth += 1,
            b']' | b'>' | b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && c == b']' {
                    return j;
                }
            }
            _ => {}
        }
    }
    b.len()
}

fn depth_zero_contains(b: &[u8], needle: u8) -> bool {
    let mut depth = 0usize;
    for &c in b {
        match c {
            b'[' | b'<' | b'(' => depth += 1,
            b']' | b'>' | b')' => depth = depth.saturating_sub(1),
            c if c == needle && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// 64-bit FNV-1a: tiny, stable across builds and platforms (std's hashers are neither).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A one-entry cache of [`fingerprint`], keyed by the address of the type's name (one per
/// monomorphization), so that a connection sending one type pays for the hash once.
#[derive(Debug, Default, Clone, Copy)]
#[cfg(feature = "serde")] // typed messages only
pub(crate) struct FingerprintCache {
    name: usize,
    fp: u64,
}

#[cfg(feature = "serde")]
impl FingerprintCache {
    /// The fingerprint of `T`.
    #[inline]
    pub(crate) fn get<T: ?Sized>(&mut self) -> u64 {
        let name = std::any::type_name::<T>();
        if self.name != name.as_ptr() as usize || self.fp == 0 {
            self.name = name.as_ptr() as usize;
            self.fp = fingerprint_of_name(name);
        }
        self.fp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "serde")]
    fn encoding_is_postcards_own() {
        // Varints of every length (1 to 10 bytes), bytes past the inline lengths, nesting.
        let ints: Vec<u64> = (0..64).map(|s| 1u64 << s).chain([0, u64::MAX, 127, 128, 16_383, 16_384]).collect();
        let value = (ints.clone(), "x".repeat(300), vec![(-5i64, Some(7u32)), (i64::MIN, None)], vec![1u8; 40]);
        assert_eq!(encode(&value).unwrap(), postcard::to_allocvec(&value).unwrap());
        for i in ints {
            assert_eq!(encode(&i).unwrap(), postcard::to_allocvec(&i).unwrap(), "{i}");
            let appended = encode_append(&i, vec![9]).unwrap();
            assert_eq!(appended[1..], postcard::to_allocvec(&i).unwrap()[..]);
        }
    }

    #[test]
    fn borrowed_and_owned_forms_share_a_fingerprint() {
        assert_eq!(fingerprint::<&str>(), fingerprint::<String>());
        assert_eq!(fingerprint::<str>(), fingerprint::<String>());
        assert_eq!(fingerprint::<&[u8]>(), fingerprint::<Vec<u8>>());
        assert_eq!(fingerprint::<&mut [u32]>(), fingerprint::<Vec<u32>>());
        assert_eq!(fingerprint::<(u32, &str)>(), fingerprint::<(u32, String)>());
        assert_eq!(fingerprint::<Vec<&str>>(), fingerprint::<Vec<String>>());
        assert_eq!(fingerprint::<Option<&[&str]>>(), fingerprint::<Option<Vec<String>>>());
    }

    #[test]
    fn different_types_differ() {
        assert_ne!(fingerprint::<&str>(), fingerprint::<u64>());
        assert_ne!(fingerprint::<u32>(), fingerprint::<u64>());
        assert_ne!(fingerprint::<[u8; 4]>(), fingerprint::<Vec<u8>>());
        assert_ne!(fingerprint::<Vec<u8>>(), fingerprint::<Vec<i8>>());
        assert_ne!(layout_fingerprint::<u32>(), layout_fingerprint::<i32>());
        assert_ne!(fingerprint::<()>(), 0);
    }

    #[test]
    #[cfg(feature = "serde")]
    fn the_cache_agrees_with_the_function() {
        let mut c = FingerprintCache::default();
        assert_eq!(c.get::<String>(), fingerprint::<String>());
        assert_eq!(c.get::<u8>(), fingerprint::<u8>());
        assert_eq!(c.get::<String>(), fingerprint::<&str>());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn decode_refuses_trailing_bytes_and_truncation() {
        let b = encode(&7u32).unwrap();
        assert_eq!(decode::<u32>(&b).unwrap(), 7);
        let mut longer = b.clone();
        longer.push(0);
        assert!(decode::<u32>(&longer).unwrap_err().is_decode());
        assert!(decode::<String>(&[5, b'a']).unwrap_err().is_truncated());
    }
}
