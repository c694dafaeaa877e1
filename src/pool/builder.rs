//! [`PoolBuilder`]: the pool's options, and starting it.

use super::manager::manager_main;
use super::state::{Config, Initializer, Shared};
use super::{Pool, PoolError, SpawnError};
use crate::ChildOutcome;
use std::sync::{mpsc, Arc, Mutex};

impl Pool {
    /// A pool of `processes` workers (Python's `Pool(processes)`).
    ///
    /// # Errors
    /// As [`PoolBuilder::build`]: zero processes is [`PoolError::InvalidArgument`] (POOL-12).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Pool::new(2)?.processes(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the other options.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiproc::Pool::builder().processes(1).build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }
}

/// Builds a [`Pool`] with options (Python's `Pool(processes, initializer, initargs,
/// maxtasksperchild)`).
///
/// # Examples
///
/// ```
/// use multiproc::Pool;
///
/// fn inc(x: i32) -> i32 { x + 1 }
///
/// let pool = Pool::builder().processes(2).maxtasksperchild(10).initializer(|| println!("ready")).build()?;
/// assert_eq!(pool.map(inc, vec![1, 2, 3])?, vec![2, 3, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PoolBuilder {
    processes: Option<usize>,
    maxtasksperchild: Option<usize>,
    initializer: Option<Initializer>,
    init_call: Option<Result<crate::process::FnCall, PoolError>>,
    pipe_capacity: usize,
    method: Option<crate::StartMethod>,
    time_limit: Option<std::time::Duration>,
    reset_signals: bool,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("maxtasksperchild", &self.maxtasksperchild)
            .field("initializer", &self.initializer.is_some())
            .field("time_limit", &self.time_limit)
            .field("reset_signals", &self.reset_signals)
            .finish()
    }
}

impl Default for PoolBuilder {
    fn default() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            maxtasksperchild: None,
            initializer: None,
            init_call: None,
            pipe_capacity: 1 << 20,
            method: None,
            time_limit: None,
            reset_signals: false,
        }
    }
}

impl PoolBuilder {
    /// Number of worker processes (default: the number of usable CPUs); at least 1.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::Pool::builder().processes(3).build()?.processes(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn processes(mut self, n: usize) -> PoolBuilder {
        self.processes = Some(n);
        self
    }

    /// Replace each worker after it has completed `n` chunks (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// fn pid(_: u8) -> u32 { std::process::id() }
    /// let pool = multiproc::Pool::builder().processes(1).maxtasksperchild(1).build()?;
    /// let a = pool.apply(pid, 0)?;
    /// let b = pool.apply(pid, 0)?;
    /// assert_ne!(a, b); // a fresh worker for each task
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn maxtasksperchild(mut self, n: usize) -> PoolBuilder {
        self.maxtasksperchild = Some(n);
        self
    }

    /// Run `init` in every worker before its first task (Python's `initializer`). It may be any
    /// closure (it is captured before the workers are forked) returning anything a
    /// [`Process`](crate::Process) closure may return: `()`, an exit code, or a `Result`. If it
    /// fails (an `Err`, a non-zero code, a panic), [`build`](Self::build) fails with
    /// [`PoolError::InitializerFailed`] and no task ever runs (POOL-B3).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiproc::Pool::builder()
    ///     .processes(1)
    ///     .initializer(|| -> Result<(), String> { Err("no database".into()) })
    ///     .build();
    /// assert!(matches!(pool, Err(multiproc::PoolError::InitializerFailed(_))));
    /// ```
    pub fn initializer<R: ChildOutcome>(mut self, init: impl Fn() -> R + Send + Sync + 'static) -> PoolBuilder {
        self.initializer = Some(Arc::new(move || match init().into_exit() {
            (0, None) => Ok(()),
            (_, Some(message)) => Err(message),
            (code, None) => Err(format!("exit code {code}")),
        }));
        self
    }

    /// Run `f(args)` in every worker before its first task: the initializer in the form every
    /// start method can run (a `fn` item and serde arguments, which must hold no shared
    /// handles: pass those to the tasks instead). Failing as for
    /// [`initializer`](Self::initializer).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pool, StartMethod};
    ///
    /// fn setup(level: u8) -> Result<(), String> {
    ///     if level > 3 { Err(format!("level {level} is too high")) } else { Ok(()) }
    /// }
    /// fn double(x: u8) -> u8 { x * 2 }
    ///
    /// let pool = Pool::builder().processes(1).start_method(StartMethod::Spawn).initializer_fn(setup, 2).build()?;
    /// assert_eq!(pool.apply(double, 4)?, 8);
    /// let failing = Pool::builder().processes(1).initializer_fn(setup, 9).build();
    /// assert!(matches!(failing, Err(multiproc::PoolError::InitializerFailed(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn initializer_fn<A, R>(mut self, f: fn(A) -> R, args: A) -> PoolBuilder
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        self.init_call = Some(match crate::process::FnCall::new(f, &args) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(PoolError::InvalidArgument("initializer_fn arguments must not hold shared handles")),
            Err(e) => Err(PoolError::Codec { error: e, remote: false }),
        });
        self
    }

    /// How the workers are started (default: [`get_start_method`](crate::get_start_method),
    /// `Fork` unless changed). With `Spawn` or `ForkServer` the initializer must be given
    /// with [`initializer_fn`](Self::initializer_fn); task functions are `fn` items under
    /// every method.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pool, StartMethod};
    ///
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// for m in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
    ///     let pool = Pool::builder().processes(2).start_method(m).build()?;
    ///     assert_eq!(pool.map(square, 1..=4)?, [1, 4, 9, 16]);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_method(mut self, method: crate::StartMethod) -> PoolBuilder {
        self.method = Some(method);
        self
    }

    /// Capacity in bytes of each worker's pipe ring (larger messages are streamed through it).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiproc::Pool::builder().processes(1).pipe_capacity(1 << 16).build()?;
    /// assert_eq!(pool.apply(u32::count_ones, 7)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pipe_capacity(mut self, bytes: usize) -> PoolBuilder {
        self.pipe_capacity = bytes;
        self
    }

    /// How long each task may run, for every call that does not set its own
    /// ([`PoolOptions::time_limit`](crate::PoolOptions::time_limit), which says what happens
    /// past it). With it, each worker leads a process group of its own, so that a task killed
    /// at its limit, or by [`terminate`](crate::Pool::terminate) or a drop, takes the processes
    /// it started with it (and the workers are out of the
    /// terminal's job control: Ctrl-C does not reach them, and a task that reads the terminal
    /// stops). Default: no limit, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pool, PoolError};
    /// use std::time::Duration;
    ///
    /// fn spin(_: u8) -> u8 { loop { std::hint::spin_loop() } }
    ///
    /// let pool = Pool::builder().processes(1).time_limit(Duration::from_millis(200)).build()?;
    /// assert!(matches!(pool.map(spin, [7]), Err(PoolError::TimeLimit { index: 0, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn time_limit(mut self, limit: std::time::Duration) -> PoolBuilder {
        self.time_limit = Some(limit);
        self
    }

    /// Whether each worker puts its signal state back after every chunk: every signal's
    /// disposition, the signal mask and the alternate signal stack as they were once the
    /// initializer had run, and the interval timers (`alarm`, `setitimer`) stopped, except a
    /// repeating one the initializer started (a profiler's). Without it (the default, as in Python)
    /// a task that arms an `alarm`, ignores or handles a signal, or blocks one leaves that to
    /// the next task on its worker, and a harness then sees a crash or a hang on an input
    /// that did not cause it.
    ///
    /// A signal a task blocked and raised is delivered when the mask is put back, before
    /// the chunk's result is sent: if it ends the worker, it is that chunk's
    /// [`PoolError::WorkerDied`]. POSIX timers (`timer_create`) are not stopped. A library
    /// that installs its signal handlers once, lazily (a runtime's trap handlers), should be
    /// initialised in the initializer, or it loses them after the first chunk. The cost is
    /// about 65 system calls per chunk (docs/BENCHMARKS.md: `exec.persistent.reset_signals`).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Pool;
    ///
    /// /// A target that arms an alarm and returns before it fires.
    /// fn arms_alarm(x: u32) -> u32 {
    ///     // SAFETY: `alarm` has no memory-safety preconditions.
    ///     unsafe { libc::alarm(1) };
    ///     x
    /// }
    ///
    /// fn slow(x: u32) -> u32 {
    ///     std::thread::sleep(std::time::Duration::from_millis(1500));
    ///     x
    /// }
    ///
    /// let pool = Pool::builder().processes(1).reset_signals(true).build()?;
    /// assert_eq!(pool.apply(arms_alarm, 1)?, 1);
    /// // Without `reset_signals` the alarm would end the worker in the middle of this task.
    /// assert_eq!(pool.apply(slow, 2)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset_signals(mut self, on: bool) -> PoolBuilder {
        self.reset_signals = on;
        self
    }

    /// Starts the workers and waits until every one of them has run its initializer.
    ///
    /// # Errors
    /// [`PoolError::InvalidArgument`] for zero processes or `maxtasksperchild(0)`,
    /// [`PoolError::Spawn`] if a worker cannot be started (those already started are killed),
    /// [`PoolError::InitializerFailed`] if the initializer fails in a worker.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(matches!(multiproc::Pool::builder().processes(0).build(), Err(multiproc::PoolError::InvalidArgument(_))));
    /// ```
    pub fn build(self) -> Result<Pool, PoolError> {
        let processes = self.processes.unwrap_or_else(crate::cpu_count);
        if processes == 0 {
            return Err(PoolError::InvalidArgument("number of processes must be at least 1"));
        }
        if self.maxtasksperchild == Some(0) {
            return Err(PoolError::InvalidArgument("maxtasksperchild must be at least 1"));
        }
        let method = self.method.unwrap_or_else(crate::get_start_method);
        if method != crate::StartMethod::Fork && self.initializer.is_some() {
            return Err(PoolError::InvalidArgument(
                "a closure initializer needs the Fork start method: use initializer_fn with Spawn or ForkServer",
            ));
        }
        let init_call = self.init_call.transpose()?;
        let shared = Arc::new(Shared::new(Config {
            processes,
            maxtasksperchild: self.maxtasksperchild,
            initializer: self.initializer,
            init_call,
            pipe_capacity: self.pipe_capacity,
            method,
            time_limit: self.time_limit,
            reset_signals: self.reset_signals,
        })?);
        let (started_tx, started_rx) = mpsc::channel();
        let manager = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("multiproc-pool".into())
                .spawn(move || manager_main(shared, started_tx))
                .map_err(|e| PoolError::spawn(SpawnError::Thread(e)))?
        };
        let pool = Pool { shared, manager: Mutex::new(Some(manager)) };
        match started_rx.recv() {
            Ok(Ok(())) => Ok(pool),
            Ok(Err(e)) => {
                pool.terminate();
                Err(e)
            }
            Err(_) => {
                pool.terminate();
                Err(PoolError::spawn(SpawnError::DiedDuringStartup))
            }
        }
    }
}

impl crate::process::Context {
    /// A pool builder with the context's start method (Python's `ctx.Pool`).
    ///
    /// # Examples
    ///
    /// See [`get_context`](crate::get_context).
    pub fn pool(&self) -> PoolBuilder {
        Pool::builder().start_method(self.start_method())
    }
}
