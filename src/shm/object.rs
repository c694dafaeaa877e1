//! One form for every named object: `X::create(name, …)` (written per type, with that type's
//! arguments) and `X::open`, `X::open_timeout`, `persist` and `name` (the same for all, from
//! [`named_methods!`]).
//!
//! A named object is one segment whose header records the object's kind and type parameter,
//! and whose root is a [`Directory`](super::named::Directory) of words: the offsets of the
//! object's parts and its parameters. Openers treat those words as untrusted: every offset goes
//! through the segment's bounds checks, every parameter is checked against the segment.

use super::header::{ObjectKind, TypeInfo};
use super::named::{Words, DIR_WORDS};
use super::{Segment, ShmError};
use std::time::Duration;

/// Which segment each directory word is an offset into ([`Parts::PARAM`]: a parameter).
pub(crate) type SegOf = [u8; DIR_WORDS];

/// What a handle is made of, to rebuild it in another process: the segments its parts live
/// in (each sent as a descriptor) and its words, each an offset into one of them or a
/// parameter.
#[derive(Debug, Clone)]
pub(crate) struct Parts {
    pub(crate) segs: Vec<Segment>,
    pub(crate) words: Words,
    pub(crate) seg_of: SegOf,
}

impl Parts {
    /// `seg_of` for a word that is not an offset.
    pub(crate) const PARAM: u8 = u8::MAX;

    /// The most segments one handle spans.
    pub(crate) const MAX_SEGS: usize = 4;

    /// The index of `seg` in `segs`, added if new (one descriptor per distinct mapping).
    pub(crate) fn seg(&mut self, seg: &Segment) -> u8 {
        match self.segs.iter().position(|s| std::sync::Arc::ptr_eq(&s.map, &seg.map)) {
            Some(i) => i as u8,
            None => {
                self.segs.push(seg.clone());
                (self.segs.len() - 1) as u8
            }
        }
    }

    /// The segment word `i` is an offset into (checked: it comes from another process).
    pub(crate) fn seg_of(&self, i: usize) -> Result<&Segment, ShmError> {
        self.segs.get(self.seg_of[i] as usize).ok_or(ShmError::Corrupt { what: "handle part in no segment" })
    }
}

/// An object that can live in a named segment of its own.
pub(crate) trait Named: Sized {
    /// What the header records as the object's kind.
    const KIND: ObjectKind;

    /// What the header records as the type parameter (none by default).
    fn type_info() -> TypeInfo {
        TypeInfo::NONE
    }

    /// A handle on the object found in an opened segment, from its directory words.
    fn from_named(seg: &Segment, words: &Words) -> Result<Self, ShmError>;

    /// The segment the object lives in (its first part's, for objects that span several).
    fn segment(&self) -> &Segment;

    /// The words [`from_named`](Self::from_named) reads, for this handle (every offset into
    /// [`segment`](Self::segment)).
    fn words(&self) -> Words;

    /// The handle's parts, to send it to another process. Objects whose parts may lie in
    /// several segments (a `Value` and its lock) override this and [`from_parts`](Self::from_parts).
    fn parts(&self) -> Parts {
        Parts { segs: vec![self.segment().clone()], words: self.words(), seg_of: [0; DIR_WORDS] }
    }

    /// A handle rebuilt from parts received from another process (untrusted: checked as for
    /// an opener).
    fn from_parts(p: &Parts) -> Result<Self, ShmError> {
        match p.segs.as_slice() {
            [seg] => Self::from_named(seg, &p.words),
            _ => Err(ShmError::Corrupt { what: "a one-segment object sent with several segments" }),
        }
    }
}

/// Opens the object `name` as an `N`, waiting up to `timeout` for the name to appear.
pub(crate) fn open_named<N: Named>(name: &str, timeout: Duration) -> Result<N, ShmError> {
    let (seg, words) = Segment::open_named(name, N::KIND, &N::type_info(), timeout)?;
    N::from_named(&seg, &words)
}

/// Creates the named segment of an `N`: `init` allocates and initializes its parts and returns
/// the directory words that [`Named::from_named`] reads back.
pub(crate) fn create_named<N: Named, E: From<ShmError>>(
    name: &str,
    len: usize,
    init: impl FnOnce(&Segment) -> Result<Words, E>,
) -> Result<N, E> {
    let (seg, words) = Segment::create_named(name, len, N::KIND, &N::type_info(), init)?;
    Ok(N::from_named(&seg, &words)?)
}

/// The methods every named object shares, with `$example` (a doc test that creates and opens
/// one) as their example.
macro_rules! named_methods {
    ($example:expr) => {
        /// Opens the object that another process (or this one) created under `name` with
        /// `create`, without waiting for the name to appear.
        ///
        /// The opener never removes the name; its handle works like the creator's, and keeps
        /// working after the creator exits.
        ///
        /// # Errors
        /// [`ShmError::NotFound`](crate::ShmError::NotFound) if nothing has that name;
        /// [`ShmError::Mismatch`](crate::ShmError::Mismatch) if it holds another kind of object,
        /// or the same kind with another type parameter (never a reinterpretation); the errors of
        /// [`Segment::open`](crate::Segment::open) for a file that is not a valid segment.
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn open(name: &str) -> Result<Self, crate::ShmError> {
            crate::shm::open_named(name, std::time::Duration::ZERO)
        }

        /// [`open`](Self::open), waiting up to `timeout` for the name to appear (for a creator
        /// that starts at the same time). `Duration::MAX` waits for ever.
        ///
        /// # Errors
        /// As [`open`](Self::open); `NotFound` once `timeout` has passed without the name.
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn open_timeout(name: &str, timeout: std::time::Duration) -> Result<Self, crate::ShmError> {
            crate::shm::open_named(name, timeout)
        }

        /// [`open`](Self::open), waiting until `deadline` for the name to appear.
        ///
        /// # Errors
        /// As [`open`](Self::open); `NotFound` once `deadline` has passed without the name.
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn open_deadline(name: &str, deadline: std::time::Instant) -> Result<Self, crate::ShmError> {
            crate::shm::open_named(name, deadline.saturating_duration_since(std::time::Instant::now()))
        }

        /// Keeps the object's name after the creator's last handle drops (it must then be
        /// removed with [`Segment::unlink`](crate::Segment::unlink) or `multiproc shm clean`).
        /// Does nothing for an object that has no name or that this process only opened.
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn persist(&self) {
            crate::shm::Named::segment(self).persist()
        }

        /// The name the object was created or opened under, as Python shows names: without a
        /// leading `/` (calls that take a name accept it with or without); `None` for an
        /// object made with `new`.
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub fn name(&self) -> Option<&str> {
            crate::shm::Named::segment(self).name()
        }
    };
}
pub(crate) use named_methods;
