//! [`ProcessBuilder`]: a [`Process`]'s name, daemon flag and process group.

use super::entry::{Entry, Target};
use super::handle::Process;
use super::lock::lock;
use super::record::{Life, Record, Spec};
use super::registry::ME;
use super::{get_start_method, ChildOutcome, ProcFail, StartError, StartMethod, MAX_NAME_LEN};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Sets a [`Process`]'s name, daemon flag and process group before it is made.
///
/// # Examples
///
/// ```
/// use multiproc::Process;
///
/// let p = Process::builder().name("w").daemon(false).process_group(true).target(|| ())?;
/// assert_eq!((p.name(), p.is_daemon()), ("w", false));
/// p.start()?;
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessBuilder {
    name: Option<String>,
    daemon: Option<bool>,
    group: bool,
    method: Option<StartMethod>,
    executable: Option<PathBuf>,
    #[cfg(feature = "serde")]
    server: Option<super::ForkServer>,
}

impl ProcessBuilder {
    /// The process name (default `Process-<n>`, `n` counting this process's children; in a
    /// child `Process-<parent's n>:<n>`, as in Python). At most [`MAX_NAME_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().name("SomeProcess").target(|| ())?;
    /// assert_eq!(p.name(), "SomeProcess");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> ProcessBuilder {
        self.name = Some(name.into());
        self
    }

    /// Whether the child is daemonic (default: the creator's own flag, so `false` in main).
    /// A daemonic child gets `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`; strictly, when
    /// the parent **thread** that started it ends) and may not start children.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().daemon(true).target(|| ())?;
    /// assert!(p.is_daemon());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> ProcessBuilder {
        self.daemon = Some(daemon);
        self
    }

    /// Whether the child leads a new process group (default `false`), which its descendants
    /// inherit, so that [`Process::terminate_tree`]/[`Process::kill_tree`] reach them all.
    ///
    /// The group is set in both parent and child (no race with an early `kill_tree`). A child
    /// in its own group no longer gets the terminal's Ctrl-C (SIGINT goes to the foreground
    /// group only): make it a daemon if it must not outlive you.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().process_group(true).start(|| std::thread::sleep(std::time::Duration::from_secs(60)))?;
    /// p.kill_tree()?;
    /// assert_eq!(p.join()?.exitcode(), -9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn process_group(mut self, own_group: bool) -> ProcessBuilder {
        self.group = own_group;
        self
    }

    /// How the child is created (default: [`get_start_method`], `Fork` unless
    /// [`set_start_method`](super::set_start_method) changed it). `Spawn` and `ForkServer`
    /// need a `fn` entry: [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Process, StartMethod};
    ///
    /// fn entry(x: u8) -> i32 {
    ///     i32::from(x)
    /// }
    /// let p = Process::builder().start_method(StartMethod::Spawn).spawn(entry, 5)?;
    /// assert_eq!(p.join()?.exitcode(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> ProcessBuilder {
        self.method = Some(method);
        self
    }

    /// The program a `Spawn` child runs (Python's `set_executable`; default: this process's
    /// own executable, `/proc/self/exe`). It must be a build of the same program, linking
    /// this crate: it takes its entry from this crate's start-up code.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{BootError, Process, StartError, StartMethod};
    ///
    /// fn entry(_: ()) {}
    /// // A program that is not ours never takes the entry: a clear error, not a hang.
    /// let p = Process::builder().start_method(StartMethod::Spawn).executable("/bin/true").entry(entry, ())?;
    /// assert!(matches!(p.start(), Err(StartError::Boot(BootError::Exited { .. }))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn executable(mut self, path: impl Into<PathBuf>) -> ProcessBuilder {
        self.executable = Some(path.into());
        self
    }

    /// The fork server that starts the child (and the `ForkServer` start method); default:
    /// [`ForkServer::global`](super::ForkServer::global).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ForkServer, Process};
    ///
    /// fn entry(_: ()) {}
    /// let server = ForkServer::builder().start()?;
    /// let p = Process::builder().fork_server(&server).spawn(entry, ())?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn fork_server(mut self, server: &super::ForkServer) -> ProcessBuilder {
        self.server = Some(server.clone());
        self.method = Some(StartMethod::ForkServer);
        self
    }

    /// Makes the (unstarted) process that will run `f` (with the `Fork` start method: a
    /// closure cannot cross into a fresh image; [`start`](Process::start) says so with
    /// [`StartError::NotSpawnable`] under another method).
    ///
    /// # Errors
    /// [`StartError::NameTooLong`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().target(|| ())?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn target<F, R>(self, f: F) -> Result<Process, StartError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        self.target_inner(f).map_err(ProcFail::start)
    }

    fn target_inner<F, R>(self, f: F) -> Result<Process, ProcFail>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        let target: Target = Box::new(move || f().into_exit());
        self.make(Entry::Closure(target))
    }

    fn make(self, entry: Entry) -> Result<Process, ProcFail> {
        if let Some(n) = &self.name {
            if n.len() > MAX_NAME_LEN {
                return Err(ProcFail::NameTooLong { len: n.len() });
            }
        }
        let (name, number, daemon) = {
            let mut me = lock(&ME);
            me.counter += 1;
            let name = self.name.unwrap_or_else(|| {
                let mut n = String::from("Process-");
                for id in me.identity.iter().chain(std::iter::once(&me.counter)) {
                    if n.len() > "Process-".len() {
                        n.push(':');
                    }
                    n.push_str(&id.to_string());
                }
                n
            });
            (name, me.counter, self.daemon.unwrap_or(me.daemon))
        };
        Ok(Process {
            inner: Arc::new(Record {
                spec: Spec { name, number, daemon, group: self.group },
                method: self.method.unwrap_or_else(get_start_method),
                executable: self.executable,
                #[cfg(feature = "serde")]
                server: self.server,
                life: Mutex::new(Life::Ready(entry)),
            }),
        })
    }

    /// Makes the (unstarted) process that will run `f(args)`, under any start method: with
    /// `Spawn` or `ForkServer` the arguments are encoded now (serde) and decoded in the child;
    /// shared objects among them (`Queue`, `Lock`, `Value`, a `Connection` end, …) travel as
    /// descriptors and work there. [`spawn`](Self::spawn) also starts it.
    ///
    /// # Errors
    /// [`StartError::NameTooLong`]; [`StartError::Encode`] if the arguments cannot be
    /// encoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Process, Queue, StartMethod};
    ///
    /// fn worker((q, n): (Queue<u32>, u32)) -> Result<(), multiproc::PutError> {
    ///     q.put(&(n * 2))
    /// }
    ///
    /// let q = Queue::<u32>::new()?;
    /// let p = Process::builder().start_method(StartMethod::Spawn).entry(worker, (q.clone(), 21))?;
    /// p.start()?;
    /// assert_eq!(q.get()?, 42);
    /// p.join()?.exit_ok()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn entry<A, R>(self, f: fn(A) -> R, args: A) -> Result<Process, StartError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        let entry = super::entry::FnEntry::new(f, &args).map_err(ProcFail::start)?;
        self.make(Entry::Fn(entry)).map_err(ProcFail::start)
    }

    /// [`entry`](Self::entry) then [`Process::start`]: starts `f(args)` in a child.
    ///
    /// # Errors
    /// Those of both.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Process, StartMethod};
    ///
    /// fn entry(code: i32) -> i32 {
    ///     code
    /// }
    /// let p = Process::builder().start_method(StartMethod::ForkServer).spawn(entry, 4)?;
    /// assert_eq!(p.join()?.exitcode(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn spawn<A, R>(self, f: fn(A) -> R, args: A) -> Result<Process, StartError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        let p = self.entry(f, args)?;
        p.start()?;
        Ok(p)
    }

    /// [`target`](Self::target) then [`Process::start`].
    ///
    /// # Errors
    /// Those of both.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().start(|| ())?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<F, R>(self, f: F) -> Result<Process, StartError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        let p = self.target(f)?;
        p.start()?;
        Ok(p)
    }
}

impl Process {
    /// An unstarted process that will run `f`, with the default name and daemon flag.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// assert!(p.name().starts_with("Process-"));
    /// ```
    pub fn new<F, R>(f: F) -> Process
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        match ProcessBuilder::default().target(f) {
            Ok(p) => p,
            Err(_) => unreachable!("a default builder has no name to reject"),
        }
    }

    /// Starts `f(args)` in a child with the default start method ([`get_start_method`](crate::get_start_method)):
    /// `ProcessBuilder::default().spawn(f, args)`. The arguments are any serde values, shared objects
    /// (`Queue`, `Lock`, …) included.
    ///
    /// # Errors
    /// As [`ProcessBuilder::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn child(message: String) -> Result<(), String> {
    ///     Err(message)
    /// }
    /// let p = multiproc::Process::spawn(child, "no".to_string())?;
    /// assert_eq!(p.join()?.message(), Some("no"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn spawn<A, R>(f: fn(A) -> R, args: A) -> Result<Process, crate::StartError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        ProcessBuilder::default().spawn(f, args)
    }

    /// A [`ProcessBuilder`] for a name, the daemon flag or a process group.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().name("x").target(|| ())?;
    /// assert_eq!(p.name(), "x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::default()
    }
}

#[cfg(feature = "serde")]
impl super::ForkServer {
    /// Starts `f(args)` in a child forked by this server, with `builder`'s name and flags
    /// (its start method is ignored).
    ///
    /// # Errors
    /// As [`ProcessBuilder::spawn`]; [`StartError::ForkServer`] if the server is gone.
    ///
    /// # Examples
    ///
    /// See [`ForkServer`](super::ForkServer).
    pub fn spawn<A, R>(&self, builder: ProcessBuilder, f: fn(A) -> R, args: A) -> Result<Process, StartError>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: ChildOutcome,
    {
        builder.fork_server(self).spawn(f, args)
    }
}

impl super::Context {
    /// A process builder with the context's start method (Python's `ctx.Process`).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{get_context, StartMethod};
    ///
    /// fn entry(code: i32) -> i32 {
    ///     code
    /// }
    ///
    /// let p = get_context(StartMethod::ForkServer).process().spawn(entry, 3)?;
    /// assert_eq!(p.join()?.exitcode(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn process(&self) -> ProcessBuilder {
        ProcessBuilder::default().start_method(self.start_method())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn name_limit() {
        assert!(matches!(
            Process::builder().name("x".repeat(MAX_NAME_LEN + 1)).target(|| ()),
            Err(StartError::NameTooLong { len }) if len == MAX_NAME_LEN + 1
        ));
        assert!(Process::builder().name("x".repeat(MAX_NAME_LEN)).target(|| ()).is_ok());
    }
}
