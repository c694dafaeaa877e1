//! Processes: [`Process`], its [`ExitStatus`] with the child's failure text, process groups,
//! the parent-death signal for daemons, the start methods ([`StartMethod`]: fork, spawn, fork
//! server), [`current_process`], [`parent_process`], [`active_children`] and [`cpu_count`].
//!
//! # A short tour
//!
//! A [`Process`] runs a closure in a forked child. The closure may return `()`, an `i32` exit
//! code, or a `Result<_, E: Display>` (see [`ChildOutcome`]); [`Process::join`] reaps the child
//! and returns its [`ExitStatus`], which speaks Python's `exitcode` convention (0, 1 for a panic
//! or an `Err`, −N for signal N) and also carries **why** the child failed:
//!
//! ```
//! use multiproc::Process;
//!
//! let p = Process::new(|| -> Result<(), String> { Err("disk full".into()) });
//! p.start()?;
//! let status = p.join()?;
//! assert_eq!(status.exitcode(), 1);
//! assert_eq!(status.message(), Some("disk full"));          // the Err's Display
//!
//! let p = Process::builder()
//!     .name("worker-1")
//!     .start(|| assert_eq!(multiproc::current_process().name(), "worker-1"))?;
//! assert!(p.join()?.success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * A **panic** gives exit code 1 and the message `panicked at <file>:<line>:<col>: <message>`
//!   (the panic is also printed on the child's stderr, as usual). An **`Err(e)`** gives exit
//!   code 1 and `e.to_string()`. `std::process::exit(8)` in the child gives 8.
//! * **Timeouts**: [`Process::join_timeout`] and [`Process::join_deadline`] fail with
//!   [`JoinTimeoutError::Timeout`], and [`Process::try_join`] with
//!   [`TryJoinError::WouldBlock`], while the child still runs.
//! * **Signals**: [`Process::terminate`] (SIGTERM, exit code −15) and [`Process::kill`]
//!   (SIGKILL, −9). With [`ProcessBuilder::process_group`] the child leads its own process group and
//!   [`Process::terminate_tree`]/[`Process::kill_tree`] take its descendants too.
//! * **Daemons** ([`ProcessBuilder::daemon`]) are SIGKILLed by the kernel when their parent dies
//!   (`PR_SET_PDEATHSIG`), and may not start children of their own.
//! * The [`Process::sentinel`] is a pidfd that becomes readable when the child ends: put it in
//!   `poll`/`epoll` next to your other descriptors.
//!
//! # Start methods
//!
//! [`StartMethod::Fork`] (the default) runs a closure in a forked copy of this process.
//! [`StartMethod::Spawn`] runs a `fn` entry in a fresh exec of this executable, and
//! [`StartMethod::ForkServer`] in a child forked by a single-threaded server (spawned once,
//! optionally prepared with [`ForkServer::builder`]`().init(f)`): both are safe from a
//! multi-threaded parent. Their arguments are serde values, shared objects included:
//!
//! ```
//! use multiproc::{Process, Queue, StartMethod};
//!
//! fn child((q, n): (Queue<u32>, u32)) -> Result<(), multiproc::PutError> {
//!     q.put(&n)
//! }
//!
//! let q = Queue::<u32>::new()?;
//! for m in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
//!     let p = Process::builder().start_method(m).spawn(child, (q.clone(), 7))?;
//!     p.join()?.exit_ok()?;
//!     assert_eq!(q.get()?, 7);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A spawned child takes its entry in this crate's ELF constructor, before the program's
//! `main` (see `ctor.rs`); [`init`] does the same for a start-up that skips constructors.
//!
//! # How the child leaves
//!
//! The child runs the closure under `catch_unwind`, writes its failure text (if any) to a
//! 4 KiB shared report area, flushes Rust's `stdout` (errors ignored), and leaves with
//! `_exit`: it never returns into the caller's stack, runs no destructors of the parent's
//! objects and no `atexit` handlers. Threads the child spawned and did not join are killed by
//! `_exit` (Rust has no Python-style "non-daemon thread" to wait for: join them yourself).
//!
//! # Forking a multi-threaded parent
//!
//! `fork` copies only the calling thread. Any lock another thread held at that instant stays
//! locked forever in the child. In the child, therefore:
//! * **safe**: async-signal-safe calls, this crate's shared-memory objects, and heap allocation
//!   (glibc's `malloc` is made fork-safe by glibc's own `atfork` handlers);
//! * **not safe** if another thread might have held the lock: any `std::sync::Mutex`/`RwLock`
//!   shared with other threads, `std::env::set_var`, and `std::panic::set_hook` (a thread
//!   panicking at the moment of the fork holds the hook's lock).
//!
//! [`Process::start`] holds std's `stdout` and `stderr` locks and this crate's own bookkeeping
//! (the current-process record, the active-children registry, the report-area pool, the
//! default shared-memory arena) across the `fork`, so those are consistent and usable in the
//! child: `println!` and `Lock::new()` in the child are safe even while other threads print or
//! allocate. The child's start path itself takes no lock that another thread may hold (the
//! panic hook is installed before the fork and only armed in the child), so it always reaches
//! your closure. In a single-threaded parent none of this matters. If you cannot rule it out,
//! create what the child needs before forking and keep the child's work simple.
//!
//! # Files, bottom up (each uses only those above it)
//! * leaves: `error.rs`, `status.rs` ([`ExitStatus`], [`ChildOutcome`]), `method.rs`
//!   ([`StartMethod`], [`set_start_method`], [`get_context`]), `call.rs` (the entry tokens the
//!   spawned children and the pool use), `boot.rs` (the bootstrap protocol), `report.rs` (the
//!   shared report area), `panics.rs` (the panic hook a child arms without taking a lock),
//!   `lock.rs`;
//! * `entry.rs` (what a child runs), `origin.rs` (who reports a child's end; the fork server as
//!   a handle; what a launcher returns), `record.rs` (a process's record and its [`Life`](record::Life),
//!   one enum from made to closed), `registry.rs` (this process's identity and its active
//!   children);
//! * `child.rs`: the child's side, one path for every start method; `server_main.rs` (the fork
//!   server's loop) and `ctor.rs` (how a spawned image takes its entry before `main`) build on
//!   it;
//! * `launch/`: one launcher per start method (`fork.rs` holds the locks across `fork` and
//!   forks; `spawn.rs`; `server.rs` starts fork servers), each returning what it started;
//! * `handle.rs` ([`Process`]: join, signals, sentinel, close), `start.rs` (`start`: the state
//!   machine over the record, for every method), `builder.rs` ([`ProcessBuilder`]),
//!   `current.rs` ([`current_process`], [`parent_process`], [`active_children`]).
//!
//! `unsafe` is denied here except where it is allowed item by item, each with the `SAFETY`
//! comment that proves it: `fork` (in `launch/fork.rs` and the fork server's loop), closing an
//! inherited descriptor there, the ELF constructor's link section (`ctor.rs`), the report area
//! as a shared-memory object (`report.rs`) and the panic hook's read of it (`panics.rs`), and
//! the call tokens' trampolines (`call.rs`).
//!
//! # Failure semantics
//!
//! See the Process section of `docs/FAILURE.md`: a child killed at any instruction is reported
//! as `−signal` with no message; a daemon dies with its parent; the report area is untrusted.

#![deny(unsafe_code)]

#[cfg(feature = "serde")]
mod boot;
mod builder;
#[cfg(feature = "serde")]
pub(crate) mod call;
mod child;
#[cfg(feature = "serde")]
mod ctor;
mod current;
mod entry;
mod error;
#[cfg(feature = "serde")]
mod exec_input;
#[cfg(all(feature = "serde", feature = "test-hooks"))]
pub(crate) use exec_input::hooks as exec_input_hooks;
mod handle;
#[cfg(feature = "serde")]
mod input;
mod launch;
mod lock;
mod method;
mod origin;
pub(crate) mod panics;
mod record;
mod registry;
mod report;
#[cfg(feature = "serde")]
mod server_exec;
#[cfg(feature = "serde")]
mod server_main;
mod start;
#[cfg(feature = "serde")]
mod station;
mod status;

#[cfg(feature = "serde")]
pub use boot::BOOT_TIMEOUT;
pub use builder::ProcessBuilder;
#[cfg(feature = "serde")]
pub use ctor::init;
pub use current::{active_children, cpu_count, current_process, parent_process, CurrentProcess, ParentProcess};
#[cfg(feature = "serde")]
pub(crate) use entry::FnCall;
pub(crate) use error::ProcFail;
pub use error::{BootError, ForkServerError, JoinError, JoinTimeoutError, ProcessError, StartError, TryJoinError};
pub use handle::{Process, Sentinel};
#[cfg(feature = "serde")]
pub use input::{FuzzInput, InputArea};
#[cfg(feature = "serde")]
pub use launch::server::ForkServerBuilder;
pub use method::{get_context, get_start_method, set_start_method, Context, StartMethod, StartMethodSetError};
#[cfg(feature = "serde")]
pub use origin::ForkServer;
#[cfg(feature = "serde")]
pub use station::{ExecOutcome, RunInputError};
pub use status::{ChildOutcome, ExitStatus, ExitStatusError};

/// Longest accepted process name, in bytes.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, StartError, MAX_NAME_LEN};
///
/// let long = "x".repeat(MAX_NAME_LEN + 1);
/// assert!(matches!(Process::builder().name(long).target(|| ()), Err(StartError::NameTooLong { .. })));
/// ```
pub const MAX_NAME_LEN: usize = 255;

/// Name of the process that was not started by this crate (Python's `"MainProcess"`).
const MAIN_NAME: &str = "MainProcess";
