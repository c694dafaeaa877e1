//! One launcher per start method. Each makes a child from a [`Spec`](super::record::Spec)
//! and an entry and returns what it started ([`Started`](super::origin::Started)), or why it
//! started nothing with the entry given back when it can still run
//! ([`Refused`](super::origin::Refused)). None of them touches a `Process` or its record:
//! `start.rs` does the bookkeeping, once, for all three.

pub(super) mod fork;
#[cfg(feature = "serde")]
pub(super) mod server;
#[cfg(feature = "serde")]
pub(super) mod spawn;
