//! What clients and the manager's server say to each other: one [`Request`] and one reply
//! per call, postcard-encoded, over a `Connection` (shared-memory rings for local clients, the
//! socket for TCP ones).
//!
//! Values are carried encoded (`Vec<u8>`): the server stores and compares them as bytes and
//! never needs their types (see `objects.rs`); proxies encode and decode them.

use crate::process::call::FnToken;
use serde::{Deserialize, Serialize};

/// Identifies an object in the server.
pub(crate) type ObjectId = u64;

/// What a call asks for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Create an object; the reply is its id.
    Create(Kind),
    /// An operation on an object.
    Call(ObjectId, Op),
    /// Stop the server (the reply comes before it stops).
    Shutdown,
    /// A liveness probe.
    Ping,
}

/// The objects a server keeps.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List(Vec<Vec<u8>>),
    Namespace,
    Queue {
        maxsize: Option<usize>,
    },
    Lock {
        recursive: bool,
    },
    Event,
    Semaphore {
        value: u32,
        bounded: bool,
    },
    /// A condition over the lock object given.
    Condition(ObjectId),
    Barrier(u32),
    Value(Vec<u8>),
    Array(Vec<Vec<u8>>),
    /// A process pool of this many (spawned) workers.
    Pool(u32),
    /// A registered type: made by `create` with `init`, in the server.
    Custom {
        create: FnToken,
        init: Vec<u8>,
    },
}

/// An operation; which ones an object accepts depends on its kind (another is an error).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    // Dict and Namespace (keys are encoded values; a namespace's are field names).
    Get(Vec<u8>),
    Set(Vec<u8>, Vec<u8>),
    /// Set only if the entry's version is still the one given (0: absent).
    CompareSet(Vec<u8>, u64, Vec<u8>),
    /// The value and its version.
    GetVersioned(Vec<u8>),
    Remove(Vec<u8>),
    Contains(Vec<u8>),
    Len,
    Keys,
    Values,
    Items,
    Update(Vec<(Vec<u8>, Vec<u8>)>),
    SetDefault(Vec<u8>, Vec<u8>),
    PopItem,
    Clear,
    // List.
    Push(Vec<u8>),
    Extend(Vec<Vec<u8>>),
    Insert(i64, Vec<u8>),
    At(i64),
    SetAt(i64, Vec<u8>),
    RemoveAt(i64),
    Pop,
    RemoveValue(Vec<u8>),
    Index(Vec<u8>),
    Count(Vec<u8>),
    /// Every item and the list's version.
    Snapshot,
    /// Replace every item if the version is still the one given.
    ReplaceAll(u64, Vec<Vec<u8>>),
    // Queue.
    Put(Vec<u8>, Option<u64>),
    Take(Option<u64>),
    QSize,
    // Locks, semaphores, events (timeouts in milliseconds; `None`: for ever).
    Acquire(Option<u64>),
    Release,
    IsSet,
    SetFlag,
    ClearFlag,
    Wait(Option<u64>),
    Notify(u32),
    Reset,
    Abort,
    Parties,
    NWaiting,
    Broken,
    GetValue,
    // Value and Array.
    Load,
    Store(Vec<u8>),
    LoadAt(u64),
    StoreAt(u64, Vec<u8>),
    // A registered type.
    Custom(Vec<u8>),
    // A pool: run encoded chunks through a task (tagged with the manager's key).
    PoolRun {
        call: crate::process::call::CallToken,
        chunks: Vec<Vec<u8>>,
        chunksize: u64,
        items: u64,
    },
}

/// A successful reply.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Unit,
    Bool(bool),
    Id(ObjectId),
    Count(u64),
    Bytes(Vec<u8>),
    MaybeBytes(Option<Vec<u8>>),
    Versioned(Option<Vec<u8>>, u64),
    List(Vec<Vec<u8>>),
    Snapshot(Vec<Vec<u8>>, u64),
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    MaybePair(Option<(Vec<u8>, Vec<u8>)>),
}

/// Why the server refused a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Failure {
    /// No object with that id.
    NoSuchObject,
    /// The object does not do that.
    WrongOp,
    /// A list index out of range, a missing key, an empty queue or list.
    NotFound,
    /// A timed call ran out (the queue stayed full or empty, the lock held).
    Timeout,
    /// A lock released by a client that does not hold it, a semaphore released too often.
    NotHeld,
    /// A barrier broke (reset, abort, timeout, or a party died).
    Broken,
    /// The server could not do it: a registered type's handler panicked, a request or value
    /// it could not decode, its pool failed (kind, message).
    Remote(crate::RemoteError),
}
