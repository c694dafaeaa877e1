//! Calling a plain `fn` item in another process of the same program: a pool worker (forked
//! or spawned) or a spawned child's entry.
//!
//! Functions travel as their **offset from an anchor function of this crate**. A forked child
//! runs the same image at the same addresses, and a spawned child (a fresh exec of the same
//! executable) has the whole image moved by one ASLR slide, so in both the anchor plus the
//! offset is the same function. (The function must be in the same binary as this crate, which
//! static linking, Rust's default, gives.) A task or entry is two offsets: the user's function
//! and a monomorphized *trampoline* that decodes the arguments, calls the function and encodes
//! the result.
//!
//! Offsets that travel through shared memory or a socket are untrusted: a corrupt or torn
//! message must never make a process jump to an arbitrary address. Every token therefore
//! carries a keyed SipHash tag over both offsets, computed with a random [`CallKey`] that never
//! goes into shared memory: forked workers inherit it, spawned processes receive it over their
//! private bootstrap socket. Nothing whose tag does not verify is called.
#![allow(unsafe_code)]

use std::hash::Hasher;

/// The per-pool (or per-spawn) secret that authenticates call tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CallKey(u64, u64);

impl CallKey {
    /// A fresh random key.
    pub(crate) fn new() -> CallKey {
        let mut b = [0u8; 16];
        if crate::sys::random::fill(&mut b).is_err() {
            // No kernel randomness (a seccomp filter?): std's per-process random hasher keys.
            use std::hash::{BuildHasher, RandomState};
            let s = RandomState::new();
            return CallKey(s.hash_one(1u8), s.hash_one(2u8));
        }
        CallKey(
            u64::from_ne_bytes(b[..8].try_into().expect("8 bytes")),
            u64::from_ne_bytes(b[8..].try_into().expect("8 bytes")),
        )
    }

    /// A key derived from a shared secret (a manager's authkey): every process that knows the
    /// secret makes the same tokens, and no other can.
    pub(crate) fn from_secret(secret: &[u8]) -> CallKey {
        use sha2::Digest;
        let d = sha2::Sha256::new_with_prefix(b"multiproc call key v1").chain_update(secret).finalize();
        CallKey(
            u64::from_le_bytes(d[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(d[8..16].try_into().expect("8 bytes")),
        )
    }

    fn tag(&self, trampoline: u64, func: u64) -> u64 {
        #[allow(deprecated)] // SipHasher's keyed constructor is the stable one
        let mut h = std::hash::SipHasher::new_with_keys(self.0, self.1);
        h.write_u64(trampoline);
        h.write_u64(func);
        h.finish()
    }
}

/// The function every offset is taken from.
#[inline(never)]
fn anchor() {}

/// `addr` as an offset from [`anchor`].
fn offset_of(addr: usize) -> u64 {
    (addr as u64).wrapping_sub(anchor as fn() as usize as u64)
}

/// The address `off` from [`anchor`] names in this process.
fn address_of(off: u64) -> Option<usize> {
    usize::try_from((anchor as fn() as usize as u64).wrapping_add(off)).ok()
}

impl Default for CallKey {
    fn default() -> Self {
        CallKey::new()
    }
}

/// The signature of a trampoline: decode `args`, call the function at `func`, encode the result.
/// The outer `Result` carries the encoded `Ok` value or an encoded failure description.
///
/// A trampoline is `unsafe` to call: `func` must be the address of a function of exactly the
/// type its token was made for (what a verified [`CallToken`] guarantees).
pub(crate) type Trampoline = unsafe fn(func: usize, args: &[u8]) -> Result<Vec<u8>, CallFailure>;

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

/// A function and its trampoline as two offsets plus an authentication tag: what a task
/// message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CallToken {
    /// Offset of the trampoline.
    trampoline: u64,
    /// Offset of the user's function.
    func: u64,
    /// Keyed hash of both offsets.
    tag: u64,
}

impl CallToken {
    /// The same call tagged with `to`, if this token checks under `from`: the manager's pool
    /// proxy (a client tags with the manager's key; the server's pool checks its own).
    #[cfg(feature = "serde")]
    pub(crate) fn retag(&self, from: &CallKey, to: &CallKey) -> Option<CallToken> {
        (from.tag(self.trampoline, self.func) == self.tag).then(|| CallToken {
            trampoline: self.trampoline,
            func: self.func,
            tag: to.tag(self.trampoline, self.func),
        })
    }

    fn new(key: &CallKey, trampoline: Trampoline, func: usize) -> CallToken {
        let (t, f) = (offset_of(trampoline as usize), offset_of(func));
        CallToken { trampoline: t, func: f, tag: key.tag(t, f) }
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

    /// A token for a two-argument function *pointer* applied to `(A, B)` pairs: what the
    /// deprecated `starmap_chunked` takes. [`CallToken::star`] needs a zero-sized function
    /// (a pointer has no type of its own to carry the callee), so pointers keep this path.
    pub(crate) fn star2_ptr<A, B, R>(key: &CallKey, f: fn(A, B) -> R) -> CallToken
    where
        A: serde::de::DeserializeOwned,
        B: serde::de::DeserializeOwned,
        R: serde::Serialize,
    {
        CallToken::new(key, star2_ptr_trampoline::<A, B, R>, f as usize)
    }

    /// [`CallToken::star2_ptr`] for three arguments (the deprecated `starmap3`).
    pub(crate) fn star3_ptr<A, B, C, R>(key: &CallKey, f: fn(A, B, C) -> R) -> CallToken
    where
        A: serde::de::DeserializeOwned,
        B: serde::de::DeserializeOwned,
        C: serde::de::DeserializeOwned,
        R: serde::Serialize,
    {
        CallToken::new(key, star3_ptr_trampoline::<A, B, C, R>, f as usize)
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

    /// A token for a function of several arguments applied to each tuple of a postcard-encoded
    /// `Vec<Args>` (Python's `starmap`). `F` is zero-sized (a `fn` item, or a closure that
    /// captures nothing): the trampoline, monomorphized for it, is the whole call.
    pub(crate) fn star<F, Args>(key: &CallKey, _f: F) -> CallToken
    where
        F: StarFn<Args>,
        Args: serde::de::DeserializeOwned,
        F::Output: serde::Serialize,
    {
        const { assert!(std::mem::size_of::<F>() == 0, "a task must be a fn item or a closure that captures nothing") };
        let t: Trampoline = star_trampoline::<F, Args>;
        CallToken::new(key, t, t as usize)
    }

    /// Verifies the tag and runs the call. A token whose tag does not verify (a corrupt message,
    /// or one made under another key) is refused with [`BadToken`], without calling anything.
    pub(crate) fn invoke(&self, key: &CallKey, args: &[u8]) -> Result<Result<Vec<u8>, CallFailure>, BadToken> {
        if key.tag(self.trampoline, self.func) != self.tag {
            return Err(BadToken);
        }
        let (Some(t), Some(f)) = (address_of(self.trampoline), address_of(self.func)) else {
            return Err(BadToken);
        };
        // SAFETY: the tag verifies, so `t` is the offset of a `Trampoline` that
        // `CallToken::new` took in a process of this same program image (this one, the parent
        // it was forked from, or the one that spawned it: the image moves as a whole, see the
        // module docs); the key never goes into shared memory, so no other process can forge a
        // tag. A `fn` pointer cast to usize and back is the same pointer.
        let tramp: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(t) };
        // SAFETY: the verified token pairs this trampoline with a function of its type at `f`.
        Ok(unsafe { tramp(f, args) })
    }
}

/// One function of this program, as an offset with a tag: what a manager client sends to
/// have its server make an object of a registered type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FnToken {
    func: u64,
    tag: u64,
}

impl FnToken {
    /// The token of the function at `addr` (a `fn` item's address).
    pub(crate) fn of(key: &CallKey, addr: usize) -> FnToken {
        let f = offset_of(addr);
        FnToken { func: f, tag: key.tag(0, f) }
    }

    /// The function's address in this process, if the tag verifies. Only the type the token
    /// was made from may be called through it: callers pair each token with one type.
    pub(crate) fn address(&self, key: &CallKey) -> Option<usize> {
        (key.tag(0, self.func) == self.tag).then(|| address_of(self.func)).flatten()
    }
}

/// The entry of a spawned child (or of a fork server's child): a `fn(A) -> R` and its
/// trampoline, as offsets with a tag, like [`CallToken`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct EntryToken {
    trampoline: u64,
    func: u64,
    tag: u64,
}

/// Decodes the arguments (with the handles' descriptors), calls the entry, and gives its exit
/// code and failure text. `unsafe` to call for the same reason as [`Trampoline`].
type EntryTrampoline = unsafe fn(func: usize, args: &[u8], fds: Vec<std::os::fd::OwnedFd>) -> (i32, Option<String>);

impl EntryToken {
    /// The token of `f`.
    pub(crate) fn new<A, R>(key: &CallKey, f: fn(A) -> R) -> EntryToken
    where
        A: serde::de::DeserializeOwned,
        R: super::ChildOutcome,
    {
        let (t, f) = (offset_of(entry_trampoline::<A, R> as EntryTrampoline as usize), offset_of(f as usize));
        EntryToken { trampoline: t, func: f, tag: key.tag(t, f) }
    }

    /// The token of a plain `fn()` (a fork server's init function).
    pub(crate) fn plain(key: &CallKey, f: fn()) -> EntryToken {
        let (t, f) = (offset_of(plain_trampoline as EntryTrampoline as usize), offset_of(f as usize));
        EntryToken { trampoline: t, func: f, tag: key.tag(t, f) }
    }

    /// Verifies the tag and runs the entry.
    pub(crate) fn run(
        &self,
        key: &CallKey,
        args: &[u8],
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(i32, Option<String>), BadToken> {
        if key.tag(self.trampoline, self.func) != self.tag {
            return Err(BadToken);
        }
        let (Some(t), Some(f)) = (address_of(self.trampoline), address_of(self.func)) else {
            return Err(BadToken);
        };
        // SAFETY: as in `CallToken::invoke`: a verified tag means `t` is the offset of an
        // `EntryTrampoline` taken by `EntryToken::new` in this program's image.
        let tramp: EntryTrampoline = unsafe { std::mem::transmute::<usize, EntryTrampoline>(t) };
        // SAFETY: the verified token pairs this trampoline with a function of its type at `f`.
        Ok(unsafe { tramp(f, args, fds) })
    }
}

/// The target of a fork server's `run_input` station: a `fn(FuzzInput) -> R` and its
/// trampoline, as offsets with a tag, like [`EntryToken`]. The server decodes the input's
/// area once, when the station is set up; each child is handed the decoded value, so it maps
/// nothing and decodes nothing. Its tag covers a domain word too, so that no token of another
/// kind (same key, same offsets) passes as one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct InputToken {
    trampoline: u64,
    func: u64,
    tag: u64,
}

/// Calls the target on the input: its exit code and failure text. `unsafe` to call for the
/// same reason as [`Trampoline`].
type InputTrampoline = unsafe fn(func: usize, input: super::input::FuzzInput) -> (i32, Option<String>);

/// The domain word of [`InputToken`] tags.
const INPUT_DOMAIN: u64 = u64::from_le_bytes(*b"runinput");

impl InputToken {
    /// The token of `f`.
    pub(crate) fn new<R: super::ChildOutcome>(key: &CallKey, f: fn(super::input::FuzzInput) -> R) -> InputToken {
        let (t, f) = (offset_of(input_trampoline::<R> as InputTrampoline as usize), offset_of(f as usize));
        InputToken { trampoline: t, func: f, tag: key.tag(t ^ INPUT_DOMAIN, f) }
    }

    /// Verifies the tag and runs the target on `input`.
    pub(crate) fn run(&self, key: &CallKey, input: super::input::FuzzInput) -> Result<(i32, Option<String>), BadToken> {
        if key.tag(self.trampoline ^ INPUT_DOMAIN, self.func) != self.tag {
            return Err(BadToken);
        }
        let (Some(t), Some(f)) = (address_of(self.trampoline), address_of(self.func)) else {
            return Err(BadToken);
        };
        // SAFETY: as in `CallToken::invoke`: a verified tag (with this kind's domain word, which
        // no other kind of token is tagged with) means `t` is the offset of an
        // `InputTrampoline` taken by `InputToken::new` in this program's image.
        let tramp: InputTrampoline = unsafe { std::mem::transmute::<usize, InputTrampoline>(t) };
        // SAFETY: the verified token pairs this trampoline with a function of its type at `f`.
        Ok(unsafe { tramp(f, input) })
    }
}

/// # Safety
/// `func` is the address of a `fn(FuzzInput) -> R` (as `InputToken::new` pairs them).
unsafe fn input_trampoline<R: super::ChildOutcome>(
    func: usize,
    input: super::input::FuzzInput,
) -> (i32, Option<String>) {
    // SAFETY: per the contract, `func` is a `fn(FuzzInput) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(super::input::FuzzInput) -> R>(func) };
    f(input).into_exit()
}

/// # Safety
/// `func` is the address of a `fn()` (as `EntryToken::plain` pairs them).
unsafe fn plain_trampoline(func: usize, _: &[u8], _: Vec<std::os::fd::OwnedFd>) -> (i32, Option<String>) {
    // SAFETY: per the contract, `func` is a `fn()`.
    let f = unsafe { std::mem::transmute::<usize, fn()>(func) };
    f();
    (0, None)
}

/// # Safety
/// `func` is the address of a `fn(A) -> R` (as `EntryToken::new` pairs them).
unsafe fn entry_trampoline<A: serde::de::DeserializeOwned, R: super::ChildOutcome>(
    func: usize,
    args: &[u8],
    fds: Vec<std::os::fd::OwnedFd>,
) -> (i32, Option<String>) {
    // SAFETY: per the contract, `func` is a `fn(A) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    match crate::queue::decode_with_handles::<A>(args, fds) {
        Ok(a) => f(a).into_exit(),
        Err(e) => (1, Some(format!("cannot decode the entry's arguments: {e}"))),
    }
}

fn decode<T: serde::de::DeserializeOwned>(args: &[u8]) -> Result<T, CallFailure> {
    crate::codec::decode(args).map_err(CallFailure::Codec)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, CallFailure> {
    crate::codec::encode(v).map_err(CallFailure::Codec)
}

/// # Safety
/// `func` is the address of a `fn(A) -> R` (as `CallToken::map` pairs them).
unsafe fn map_trampoline<A: serde::de::DeserializeOwned, R: serde::Serialize>(
    func: usize,
    args: &[u8],
) -> Result<Vec<u8>, CallFailure> {
    // SAFETY: per the contract, `func` is a `fn(A) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let items: Vec<A> = decode(args)?;
    encode(&items.into_iter().map(f).collect::<Vec<R>>())
}

/// # Safety
/// `func` is the address of a `fn(A, B) -> R` (as `CallToken::star2_ptr` pairs them).
unsafe fn star2_ptr_trampoline<A, B, R>(func: usize, args: &[u8]) -> Result<Vec<u8>, CallFailure>
where
    A: serde::de::DeserializeOwned,
    B: serde::de::DeserializeOwned,
    R: serde::Serialize,
{
    // SAFETY: per the contract, `func` is a `fn(A, B) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(func) };
    let items: Vec<(A, B)> = decode(args)?;
    encode(&items.into_iter().map(|(a, b)| f(a, b)).collect::<Vec<R>>())
}

/// # Safety
/// `func` is the address of a `fn(A, B, C) -> R` (as `CallToken::star3_ptr` pairs them).
unsafe fn star3_ptr_trampoline<A, B, C, R>(func: usize, args: &[u8]) -> Result<Vec<u8>, CallFailure>
where
    A: serde::de::DeserializeOwned,
    B: serde::de::DeserializeOwned,
    C: serde::de::DeserializeOwned,
    R: serde::Serialize,
{
    // SAFETY: per the contract, `func` is a `fn(A, B, C) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A, B, C) -> R>(func) };
    let items: Vec<(A, B, C)> = decode(args)?;
    encode(&items.into_iter().map(|(a, b, c)| f(a, b, c)).collect::<Vec<R>>())
}

/// # Safety
/// `func` is the address of a `fn(A) -> Result<R, E>` (as `CallToken::try_map` pairs them).
unsafe fn try_map_trampoline<A: serde::de::DeserializeOwned, R: serde::Serialize, E: std::fmt::Display>(
    func: usize,
    args: &[u8],
) -> Result<Vec<u8>, CallFailure> {
    // SAFETY: per the contract, `func` is a `fn(A) -> Result<R, E>`.
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

/// # Safety
/// A value of `F` was given to [`CallToken::star`] in this program (so the zero-sized `F` is
/// inhabited): what a verified token made by it guarantees.
unsafe fn star_trampoline<F, Args>(_func: usize, args: &[u8]) -> Result<Vec<u8>, CallFailure>
where
    F: StarFn<Args>,
    Args: serde::de::DeserializeOwned,
    F::Output: serde::Serialize,
{
    // SAFETY: `F` is zero-sized (checked at compile time by `CallToken::star`), so it has no
    // bytes to be invalid, and it is inhabited per the contract: this is its one value.
    let f: F = unsafe { std::mem::zeroed() };
    let items: Vec<Args> = decode(args)?;
    encode(&items.into_iter().map(|a| f.call_tuple(a)).collect::<Vec<F::Output>>())
}

/// A task function that takes its arguments as one tuple, for
/// [`Pool::starmap`](crate::Pool::starmap): a `fn` item (or a closure that captures nothing)
/// of one to six arguments, called with each tuple `(a, b, …)` as `f(a, b, …)`. Sealed.
///
/// # Examples
///
/// ```
/// fn mul(a: u32, b: u32) -> u32 { a * b }
/// fn fma(a: u32, b: u32, c: u32) -> u32 { a * b + c }
/// let pool = multiproc::Pool::new(2)?;
/// assert_eq!(pool.starmap(mul, [(2, 3), (4, 5)])?, [6, 20]);
/// assert_eq!(pool.starmap(fma, [(2, 3, 1)])?, [7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait StarFn<Args>: Copy + Send + Sync + 'static + star_sealed::Sealed<Args> {
    /// What the function returns.
    type Output;
    /// Calls the function with the tuple's elements.
    #[doc(hidden)]
    fn call_tuple(self, args: Args) -> Self::Output;
}

mod star_sealed {
    /// Only this crate implements [`StarFn`](super::StarFn).
    pub trait Sealed<Args> {}
}

macro_rules! star_fn {
    ($($a:ident),+) => {
        impl<F, R, $($a),+> star_sealed::Sealed<($($a,)+)> for F where F: Fn($($a),+) -> R {}

        impl<F, R, $($a),+> StarFn<($($a,)+)> for F
        where
            F: Fn($($a),+) -> R + Copy + Send + Sync + 'static,
        {
            type Output = R;
            #[allow(non_snake_case)]
            fn call_tuple(self, ($($a,)+): ($($a,)+)) -> R {
                self($($a),+)
            }
        }
    };
}
star_fn!(A);
star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, G);

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

        let t = CallToken::star(&key, mul);
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
        assert_ne!(CallKey::new(), key);
        assert_eq!(good.invoke(&CallKey::new(), &[]), Err(BadToken));
    }
}
