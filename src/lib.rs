//! # multiproc
//!
//! Python's `multiprocessing` for Linux systems code: processes, a process pool, queues, pipes,
//! locks, semaphores, events, conditions, barriers and shared values, built on shared memory and
//! futexes, and tough enough for fuzzing harnesses whose children die at any instruction:
//! nothing hangs, tears or leaks when a participant is SIGKILLed.
//!
//! ## Hello, pool
//!
//! The first example of the Python tutorial (scenario (b) of `docs/BEHAVIOURS.md`), `Pool(5).map(square, [1, 2, 3, 4, 5, 6])`:
//!
//! ```
//! use multiproc::Pool;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = Pool::new(5)?;
//! assert_eq!(pool.map(square, 1..=6)?, vec![1, 4, 9, 16, 25, 36]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Workers are forked copies of this process, so the task function is a plain `fn` item and
//! its arguments and results are any `serde` types. When a worker dies mid-task, exactly that
//! task fails with [`PoolError::WorkerDied`] and the pool replaces the worker; `map` never hangs.
//!
//! ## Shared memory
//!
//! Every shared object lives in a [`Segment`]: anonymous segments are shared with the children
//! forked after their creation and vanish with the last process that maps them; named segments
//! let unrelated processes meet, and only their creator removes the name.
//!
//! ```
//! use multiproc::Segment;
//!
//! let name = format!("tutorial-{}", std::process::id());
//! let seg = Segment::create(&name, 4096)?;     // O_EXCL, mode 0600, fully allocated
//! let peer = Segment::open(&name)?;             // validated header: magic, version, size
//! assert_eq!(peer.len(), seg.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Shared memory is untrusted input: a crashed or buggy peer can leave any bytes in it, so every
//! index, length and offset read from a segment is checked, and only [`ShmSafe`] types (valid
//! for every bit pattern) may be stored there.
//!
//! ## Messages: pipes and queues
//!
//! A [`Pipe`] is two shared-memory rings (one per direction); a [`Queue`] is any number of
//! producers and consumers over one ring; [`wait`] sleeps until any of several connections has
//! something. Messages are never torn: a sender killed mid-message sends nothing.
//!
//! ```
//! use multiproc::{Pipe, Process, Queue};
//! use std::time::Duration;
//!
//! let (mut here, there) = Pipe::duplex()?;
//! let jobs: Queue<Vec<u8>> = Queue::new()?;
//! let child = Process::new({
//!     let jobs = jobs.clone();
//!     let mut there = there;
//!     move || -> Result<(), Box<dyn std::error::Error>> {
//!         let n: u32 = there.recv()?;          // any serde type
//!         jobs.put_bytes(&vec![7; n as usize])?; // bytes skip serde entirely
//!         Ok(())
//!     }
//! });
//! child.start()?;
//! here.send(&3u32)?;
//! assert_eq!(jobs.get_timeout(Duration::from_secs(10))?, [7, 7, 7]);
//! child.join()?.exit_ok()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With [`PipeBuilder::fd_passing`], a connection also carries file descriptors
//! ([`Connection::send_fd`], Python's `send_handle`).
//!
//! ## Blocking, trying, timeouts: one shape everywhere
//!
//! Every call that may wait comes in four forms, as crossbeam's channels do: `x()` blocks,
//! `try_x()` does not wait, `x_timeout(d)` and `x_deadline(t)` wait that long. Each has its own
//! error type, so a caller matches only what that call can return: `put` fails with a
//! [`PutError`], `try_put` with a [`TryPutError`] (which adds `Full`), `put_timeout` with a
//! [`PutTimeoutError`] (which adds `Timeout`). A timeout is never confused with "empty now" or
//! with a failure, and a value that could not be pushed is given back inside the error
//! ([`TryPushError::Full`]). `docs/API.md` states the conventions.
//!
//! ```
//! use multiproc::{Queue, TryGetError};
//! use std::time::Duration;
//!
//! let q = Queue::<u32>::with_maxsize(1)?;
//! q.put(&1)?;
//! assert!(q.try_put(&2).unwrap_err().is_full());
//! assert!(q.put_timeout(&2, Duration::from_millis(1)).unwrap_err().is_timeout());
//! assert_eq!(q.get()?, 1);
//! assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## For embedders: select, split queues, broadcast, async
//!
//! [`wait`] takes any mix of connections, queues, events, semaphores, broadcast subscribers
//! and process sentinels (crossbeam's `Select`). [`Queue::split`] gives a [`Producer`] and a
//! [`Consumer`] that learn when the other side is gone, dropped or dead
//! ([`GetError::Disconnected`]), so `consumer.iter()` ends by itself. A [`Broadcast`]
//! delivers every message to every [`Subscriber`]; a slow one lags and is told how many it
//! missed, never blocking the writer. `ready_fd()` gives a descriptor for epoll, mio or tokio's
//! `AsyncFd`, and the `async` feature (on by default, no dependency) gives `get_async`,
//! `pop_async` and `recv_async` for any executor.
//!
//! ```
//! use multiproc::{wait, Broadcast, GetError, Process, Queue};
//! use std::time::Duration;
//!
//! let (tx, rx) = Queue::<u32>::new()?.split()?;
//! let news = Broadcast::<String>::new(64, 128)?;
//! let mut sub = news.subscribe();
//! let child = Process::new(move || -> Result<(), Box<dyn std::error::Error>> {
//!     news.publish(&"started".to_string())?;
//!     for i in 0..3 {
//!         tx.put(&i)?;
//!     }
//!     Ok(()) // the child's producer goes with it
//! });
//! child.start()?;
//! assert_eq!(wait(&[&sub], Some(Duration::from_secs(10))), [0]);
//! assert_eq!(sub.recv()?, "started");
//! let got: Vec<u32> = rx.iter().collect::<Result<_, GetError>>()?;
//! assert_eq!(got, [0, 1, 2]);
//! child.join()?.exit_ok()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//!
//! * `serde` (default): typed messages (`Queue<T>`, `Connection::send`/`recv`, pool tasks,
//!   spawn arguments, the manager) through serde and postcard. Without it, the byte paths,
//!   the synchronisation objects and `ArrayQueue` remain.
//! * `async` (default, no dependency): futures on top of [`ReadyFd`].
//! * `bench` (not default, no dependency): [`Bench`], the cross-process measurement harness
//!   `multiproc bench` is built on: pinned peer processes, warm-up, batches, percentiles, the
//!   floors as baselines, table/JSON/CSV, and [`PinnedPeer`] for criterion's `iter_custom`.
//! * `plot` (not default; the `svg` crate): [`BenchReport::write_svgs`], a histogram and CDF per
//!   measurement.
//! * `test-hooks` (not default, not for users): the fuzz targets' entry points and the hooks
//!   with which the crate's own tests corrupt shared memory or stop a party half-way.
//!
//! ## Layers
//!
//! `sys` (every system call) and `loom` (the atomics/futex shim) → `shm` (segments) →
//! `sync` → `queue` → `process` and `connection` → `pool` → `manager` → `bench`. A layer
//! only uses the layers below it. See
//! `docs/ARCHITECTURE.md`, `docs/FAILURE.md` (what each object does when a participant dies)
//! and `docs/GUIDE.md` (Python → multiproc, one row per Python call).
//!
//! ## Fork safety and start methods
//!
//! By default children are created with `fork`. In a multi-threaded parent, the child has only
//! the thread that forked it, and any lock another thread held at that moment stays locked in
//! the child. glibc's `malloc` is fork-safe; Rust's stdout lock and your own mutexes are not.
//! From a threaded program (tokio, rayon, `cargo test`), use [`StartMethod::Spawn`] or
//! [`StartMethod::ForkServer`] ([`set_start_method`], or per process and per pool): the child
//! is then a fresh exec of this program, or forked by a single-threaded server.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(target_os = "linux"))]
compile_error!("multiproc supports Linux only (futex, memfd, pidfd and robust mutexes)");

#[allow(unused_imports)] // not every build uses every shim item
pub(crate) mod loom;
pub(crate) mod sys;
pub(crate) mod wait;
#[cfg(test)]
pub(crate) mod watchdog;

mod codec;
mod forms;
#[cfg(feature = "serde")]
pub use codec::{CodecError, CodecErrorKind};
pub use forms::{Timeout, WouldBlock};
pub use wait::{wait, Waitable};

// The modules are private: every public item has one path, the crate root (docs/API.md §1).
#[cfg(feature = "bench")]
mod bench;
mod connection;
#[cfg(feature = "serde")] // values travel with serde + postcard
mod manager;
#[cfg(feature = "serde")] // arguments and results travel with serde + postcard
mod pool;
mod process;
mod queue;
mod shm;
mod sync;

#[cfg(feature = "bench")]
pub use bench::*;
pub use connection::*;
#[cfg(feature = "serde")]
pub use manager::*;
#[cfg(feature = "serde")]
pub use pool::*;
pub use process::*;
pub use queue::*;
pub use shm::*;
pub use sync::*;
/// The layout-proof crate behind [`ShmSafe`], re-exported so that record types need no
/// dependency of their own: derive its traits with `#[zerocopy(crate = "multiproc::zerocopy")]`.
pub use zerocopy;

/// Fault-injection entry points for this crate's own fuzz targets and corpus replay (feature
/// `test-hooks`; not part of the API).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod fuzz;

/// The Python → Rust guide (`docs/GUIDE.md`): its code blocks are compiled and run by
/// `cargo test --doc`, so that every row of the guide stays true. (Its section for
/// microbenchmark authors uses the `bench` feature, which `cargo test` in the workspace turns
/// on through the command's package.)
#[cfg(all(doctest, feature = "serde", feature = "bench"))]
#[doc = include_str!("../docs/GUIDE.md")]
pub struct GuideDoctests;

/// The README's example is compiled and run by `cargo test --doc` (with the `bench` feature, as
/// the guide).
#[cfg(all(doctest, feature = "serde", feature = "bench"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
