//! Calling a plain `fn` item in a forked worker.
//!
//! A forked child runs the same program image at the same addresses as its parent, so a `fn`
//! pointer taken in the parent is valid in every worker forked from it (before or after the
//! pointer was taken: code does not move). The pool sends a task as two addresses: the user's
//! function and a monomorphized *trampoline* that decodes the arguments, calls the function and
//! encodes the result.
//!
//! Addresses that travel through shared memory are untrusted: a corrupt or torn message must
//! never make a worker jump to an arbitrary address. Every [`CallToken`] therefore carries a
//! keyed SipHash tag over both addresses, computed with a key that lives only in process memory
//! (created by [`CallKey::new`] in the parent and inherited by forked workers, never written to
//! shared memory). A worker calls nothing whose tag does not verify.
#![allow(unsafe_code)]

use std::hash::{BuildHasher, Hasher, RandomState};

/// The per-pool secret that authenticates call tokens. Cheap to clone; inherited by `fork`.
#[derive(Clone, Debug)]
pub(crate) struct CallKey(RandomState);

impl CallKey {
    /// A fresh random key.
    pub(crate) fn new() -> CallKey {
        CallKey(RandomState::new())
    }

    fn tag(&self, trampoline: usize, func: usize) -> u64 {
        let mut h = self.0.build_hasher();
        h.write_usize(trampoline);
        h.write_usize(func);
        h.finish()
    }
}

impl Default for CallKey {
    fn default() -> Self {
        CallKey::new()
    }
}

/// The signature of a trampoline: decode `args`, call the function at `func`, encode the result.
/// The outer `Result` carries the encoded `Ok` value or an encoded failure description.
pub(crate) type Trampoline = fn(func: usize, args: &[u8]) -> Result<Vec<u8>, CallFailure>;

/// Why a call produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallFailure {
    /// The arguments could not be decoded, or the result encoded.
    Codec(crate::codec::CodecError),
    /// The function returned an error: its type name and `Display`.
    Error {
        /// `std::any::type_name` of the error type.
        kind: String,
        /// The error's `Display` text.
        message: String,
    },
}

/// A function and its trampoline as two addresses plus an authentication tag: what a task
/// message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CallToken {
    /// Address of the trampoline.
    trampoline: u64,
    /// Address of the user's function.
    func: u64,
    /// Keyed hash of both addresses.
    tag: u64,
}

impl CallToken {
    fn new(key: &CallKey, trampoline: Trampoline, func: usize) -> CallToken {
        let t = trampoline as usize;
        CallToken { trampoline: t as u64, func: func as u64, tag: key.tag(t, func) }
    }

    /// A token that applies `f` to each element of a postcard-encoded `Vec<A>` and encodes the
    /// `Vec<R>` of results.
    pub(crate) fn map<A, R>(key: &CallKey, f: fn(A) -> R) -> CallToken
    where
        A: serde::de::DeserializeOwned,
        R: serde::Serialize,
    {
        CallToken::new(key, map_trampoline::<A, R>, f as usize)
    }

    /// Like [`CallToken::map`] for a fallible function: the first `Err` fails the whole chunk
    /// with its type name and `Display` text.
    pub(crate) fn try_map<A, R, E>(key: &CallKey, f: fn(A) -> Result<R, E>) -> CallToken
    where
        A: serde::de::DeserializeOwned,
        R: serde::Serialize,
        E: std::fmt::Display,
    {
        CallToken::new(key, try_map_trampoline::<A, R, E>, f as usize)
    }

    /// A token for a two-argument function applied to `(A, B)` pairs (Python's `starmap`).
    pub(crate) fn star2<A, B, R>(key: &CallKey, f: fn(A, B) -> R) -> CallToken
    where
        A: serde::de::DeserializeOwned,
        B: serde::de::DeserializeOwned,
        R: serde::Serialize,
    {
        CallToken::new(key, star2_trampoline::<A, B, R>, f as usize)
    }

    /// A token for a three-argument function applied to `(A, B, C)` triples.
    pub(crate) fn star3<A, B, C, R>(key: &CallKey, f: fn(A, B, C) -> R) -> CallToken
    where
        A: serde::de::DeserializeOwned,
        B: serde::de::DeserializeOwned,
        C: serde::de::DeserializeOwned,
        R: serde::Serialize,
    {
        CallToken::new(key, star3_trampoline::<A, B, C, R>, f as usize)
    }

    /// Verifies the tag and runs the call. A token whose tag does not verify (a corrupt message,
    /// or one made under another key) is refused with [`BadToken`], without calling anything.
    pub(crate) fn invoke(&self, key: &CallKey, args: &[u8]) -> Result<Result<Vec<u8>, CallFailure>, BadToken> {
        let (Ok(t), Ok(f)) = (usize::try_from(self.trampoline), usize::try_from(self.func)) else {
            return Err(BadToken);
        };
        if key.tag(t, f) != self.tag {
            return Err(BadToken);
        }
        // SAFETY: the tag verifies, so `t` is exactly the address of a `Trampoline` that
        // `CallToken::new` received in this process or in the parent this process was forked
        // from (same image, same addresses; the key never leaves process memory, so no other
        // process can forge a tag). A `fn` pointer cast to usize and back is the same pointer.
        let tramp: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(t) };
        Ok(tramp(f, args))
    }
}

fn decode<T: serde::de::DeserializeOwned>(args: &[u8]) -> Result<T, CallFailure> {
    crate::codec::decode(args).map_err(CallFailure::Codec)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, CallFailure> {
    crate::codec::encode(v).map_err(CallFailure::Codec)
}

fn map_trampoline<A: serde::de::DeserializeOwned, R: serde::Serialize>(
    func: usize,
    args: &[u8],
) -> Result<Vec<u8>, CallFailure> {
    // SAFETY: this trampoline is only reached through a verified token, and tokens pair
    // `map_trampoline::<A, R>` with a `fn(A) -> R` (see `CallToken::map`), so `func` is the
    // address of a function of exactly this type.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let items: Vec<A> = decode(args)?;
    encode(&items.into_iter().map(f).collect::<Vec<R>>())
}

fn try_map_trampoline<A: serde::de::DeserializeOwned, R: serde::Serialize, E: std::fmt::Display>(
    func: usize,
    args: &[u8],
) -> Result<Vec<u8>, CallFailure> {
    // SAFETY: as in `map_trampoline`; `CallToken::try_map` pairs this with `fn(A) -> Result<R, E>`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> Result<R, E>>(func) };
    let items: Vec<A> = decode(args)?;
    let mut out = Vec::with_capacity(items.len());
    for a in items {
        match f(a) {
            Ok(r) => out.push(r),
            Err(e) => {
                return Err(CallFailure::Error { kind: std::any::type_name::<E>().to_owned(), message: e.to_string() })
            }
        }
    }
    encode(&out)
}

fn star2_trampoline<A, B, R>(func: usize, args: &[u8]) -> Result<Vec<u8>, CallFailure>
where
    A: serde::de::DeserializeOwned,
    B: serde::de::DeserializeOwned,
    R: serde::Serialize,
{
    // SAFETY: as in `map_trampoline`; `CallToken::star2` pairs this with `fn(A, B) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(func) };
    let items: Vec<(A, B)> = decode(args)?;
    encode(&items.into_iter().map(|(a, b)| f(a, b)).collect::<Vec<R>>())
}

fn star3_trampoline<A, B, C, R>(func: usize, args: &[u8]) -> Result<Vec<u8>, CallFailure>
where
    A: serde::de::DeserializeOwned,
    B: serde::de::DeserializeOwned,
    C: serde::de::DeserializeOwned,
    R: serde::Serialize,
{
    // SAFETY: as in `map_trampoline`; `CallToken::star3` pairs this with `fn(A, B, C) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A, B, C) -> R>(func) };
    let items: Vec<(A, B, C)> = decode(args)?;
    encode(&items.into_iter().map(|(a, b, c)| f(a, b, c)).collect::<Vec<R>>())
}

/// A call token failed authentication: the message was corrupt or forged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadToken;

impl std::fmt::Display for BadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("task carried a call token that does not authenticate")
    }
}

impl std::error::Error for BadToken {}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: u64) -> u64 {
        x * x
    }

    fn half(x: i32) -> Result<i32, String> {
        if x % 2 == 0 {
            Ok(x / 2)
        } else {
            Err(format!("{x} is odd"))
        }
    }

    fn mul(a: u32, b: u32) -> u32 {
        a * b
    }

    #[test]
    fn tokens_call_through_trampolines() {
        let key = CallKey::new();
        let t = CallToken::map(&key, square as fn(u64) -> u64);
        let out = t.invoke(&key, &postcard::to_allocvec(&vec![1u64, 2, 3]).unwrap()).unwrap().unwrap();
        assert_eq!(postcard::from_bytes::<Vec<u64>>(&out).unwrap(), vec![1, 4, 9]);

        let t = CallToken::star2(&key, mul as fn(u32, u32) -> u32);
        let out = t.invoke(&key, &postcard::to_allocvec(&vec![(2u32, 3u32)]).unwrap()).unwrap().unwrap();
        assert_eq!(postcard::from_bytes::<Vec<u32>>(&out).unwrap(), vec![6]);
    }

    #[test]
    fn errors_keep_their_kind_and_message() {
        let key = CallKey::new();
        let t = CallToken::try_map(&key, half as fn(i32) -> Result<i32, String>);
        let r = t.invoke(&key, &postcard::to_allocvec(&vec![2i32, 3]).unwrap()).unwrap();
        assert_eq!(r, Err(CallFailure::Error { kind: "alloc::string::String".into(), message: "3 is odd".into() }));
        let r = t.invoke(&key, &[0xff, 0xff]).unwrap();
        assert!(matches!(r, Err(CallFailure::Codec(e)) if e.is_decode()));
    }

    #[test]
    fn forged_or_corrupt_tokens_are_refused() {
        let key = CallKey::new();
        let good = CallToken::map(&key, square as fn(u64) -> u64);
        let mut bad = good;
        bad.func ^= 8;
        assert_eq!(bad.invoke(&key, &[]), Err(BadToken));
        let mut bad = good;
        bad.trampoline = 0x1000;
        assert_eq!(bad.invoke(&key, &[]), Err(BadToken));
        assert_eq!(good.invoke(&CallKey::new(), &[]), Err(BadToken));
    }
}
