//! What a child runs: a closure ([`Target`], fork only) or a `fn` entry with serde arguments
//! ([`FnEntry`], every start method), and the token machinery they share with the pool's
//! initializer ([`FnCall`]).

#[cfg(feature = "serde")]
use super::call::{CallKey, EntryToken};
#[cfg(feature = "serde")]
use super::{ChildOutcome, ProcFail};
#[cfg(feature = "serde")]
use crate::queue::encode_with_handles;
#[cfg(feature = "serde")]
use std::os::fd::OwnedFd;
#[cfg(feature = "serde")]
use std::sync::OnceLock;

/// A closure a forked child runs: its exit code and failure text.
pub(super) type Target = Box<dyn FnOnce() -> (i32, Option<String>) + Send + 'static>;

/// What the child runs.
pub(super) enum Entry {
    /// A closure (fork only).
    Closure(Target),
    /// A `fn` item with encoded arguments (every start method).
    #[cfg(feature = "serde")]
    Fn(FnEntry),
}

/// The key of this process's entry tokens (sent to each child it spawns).
#[cfg(feature = "serde")]
pub(super) fn key() -> &'static CallKey {
    static KEY: OnceLock<CallKey> = OnceLock::new();
    KEY.get_or_init(CallKey::new)
}

/// A `fn` entry with its encoded arguments and their handles' descriptors.
#[cfg(feature = "serde")]
pub(crate) struct FnEntry {
    pub(super) token: EntryToken,
    pub(super) args: Vec<u8>,
    pub(super) fds: Vec<OwnedFd>,
}

#[cfg(feature = "serde")]
impl FnEntry {
    pub(crate) fn new<A, R>(f: fn(A) -> R, args: &A) -> Result<FnEntry, ProcFail>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        let (args, fds) = encode_with_handles(args).map_err(ProcFail::Encode)?;
        Ok(FnEntry { token: EntryToken::new(key(), f), args, fds })
    }

    /// Runs the entry in this process (a forked child).
    pub(crate) fn run_here(self) -> (i32, Option<String>) {
        run_token(&self.token, key(), &self.args, self.fds)
    }
}

/// A `fn` call with handle-free encoded arguments, that any process of this program can run
/// any number of times (a pool's initializer under every start method).
#[cfg(feature = "serde")]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct FnCall {
    token: EntryToken,
    key: CallKey,
    args: Vec<u8>,
}

#[cfg(feature = "serde")]
impl FnCall {
    /// `f(args)` as a call; `None` if `args` holds shared handles (they cannot be replayed).
    pub(crate) fn new<A, R>(f: fn(A) -> R, args: &A) -> Result<Option<FnCall>, crate::CodecError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        let (args, fds) = encode_with_handles(args)?;
        Ok(fds.is_empty().then(|| FnCall { token: EntryToken::new(key(), f), key: *key(), args }))
    }

    /// Runs it here: its exit code and failure text.
    pub(crate) fn run(&self) -> (i32, Option<String>) {
        run_token(&self.token, &self.key, &self.args, Vec::new())
    }
}

/// Runs an authenticated entry token: its exit code and failure text.
#[cfg(feature = "serde")]
pub(super) fn run_token(token: &EntryToken, key: &CallKey, args: &[u8], fds: Vec<OwnedFd>) -> (i32, Option<String>) {
    token.run(key, args, fds).unwrap_or_else(|_| (1, Some("the entry token does not authenticate".into())))
}
