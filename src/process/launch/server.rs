//! Starting fork servers: [`ForkServerBuilder`] (a server prepared once with `init`) and the
//! default server the `ForkServer` start method uses. A server is started as a spawned child is
//! (`spawn.rs`), with the server's role; its own loop is `server_main.rs`, and the handle the
//! requester keeps is `origin.rs`.

use super::super::boot::{self, Boot, Role};
use super::super::call::EntryToken;
use super::super::entry::key;
use super::super::lock::lock;
use super::super::origin::{ForkServer, ServerInner};
use super::super::{ProcFail, StartError};
use super::spawn::spawn_program;
use crate::sys::process as sys;
use crate::sys::spawn::{self as sys_spawn, SELF_EXE};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Options of a [`ForkServer`].
#[derive(Debug, Default, Clone)]
pub struct ForkServerBuilder {
    init: Option<EntryToken>,
}

/// The server `StartMethod::ForkServer` uses, with the options it was started from: a server
/// found dead is started again from the same options, so an installed `init` comes back with
/// it (as CPython's fork server comes back with its preload list), instead of children silently
/// starting from a plain image.
static DEFAULT: Mutex<Option<(ForkServerBuilder, ForkServer)>> = Mutex::new(None);

impl ForkServerBuilder {
    /// Runs `f` once in the server, before it forks any child: children start from the state
    /// it leaves (Python's `set_forkserver_preload`, for any preparation).
    ///
    /// # Examples
    ///
    /// See [`ForkServer`].
    pub fn init(mut self, f: fn()) -> ForkServerBuilder {
        self.init = Some(EntryToken::plain(key(), f));
        self
    }

    /// Starts the server; returns once it has run `init` and is ready.
    ///
    /// # Errors
    /// [`StartError::Os`], [`StartError::Boot`] (e.g. `init` panicked: its message is
    /// in the error).
    ///
    /// # Examples
    ///
    /// See [`ForkServer`].
    pub fn start(self) -> Result<ForkServer, StartError> {
        self.start_inner().map_err(ProcFail::start)
    }

    fn start_inner(self) -> Result<ForkServer, ProcFail> {
        let boot = Boot {
            version: boot::VERSION,
            role: Role::Server,
            exe: sys_spawn::file_identity(Path::new(SELF_EXE)).ok(),
            key: *key(),
            entry: self.init,
            target: None,
            args: Vec::new(),
            report_off: 0,
            name: "ForkServer".into(),
            identity: Vec::new(),
            parent: (sys::getpid(), String::new()),
            daemon: true,
            group: false,
        };
        // The same start as a spawned child's: a fresh image of this program, handed `boot`.
        let (pid, pidfd, sock) = spawn_program(None, &boot, &[])?;
        let _ = sock.set_read_timeout(None);
        let _ = sock.set_write_timeout(None);
        Ok(ForkServer {
            inner: Arc::new(ServerInner { ctl: Mutex::new(sock), pid, pidfd, stations: Mutex::new(Vec::new()) }),
        })
    }

    /// [`start`](Self::start) and make it the server `StartMethod::ForkServer` uses (the
    /// previous default server, if any, exits once its children's handles are dropped). If this
    /// server dies, the next start that needs it starts another with the same `init`
    /// ([`ForkServer::global`]).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ForkServer, Process, StartMethod};
    ///
    /// fn prepare() {}
    /// fn child(_: ()) {}
    ///
    /// ForkServer::builder().init(prepare).install()?;
    /// let p = Process::builder().start_method(StartMethod::ForkServer).spawn(child, ())?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn install(self) -> Result<ForkServer, StartError> {
        self.install_inner().map_err(ProcFail::start)
    }

    fn install_inner(self) -> Result<ForkServer, ProcFail> {
        let s = self.clone().start_inner()?;
        *lock(&DEFAULT) = Some((self, s.clone()));
        Ok(s)
    }
}

impl ForkServer {
    /// A builder (to run an `init` function in the server first).
    ///
    /// # Examples
    ///
    /// See [`ForkServer`].
    pub fn builder() -> ForkServerBuilder {
        ForkServerBuilder::default()
    }

    /// The server `StartMethod::ForkServer` uses: started on first use, and again if it died
    /// (with the `init` of the server [installed](ForkServerBuilder::install), if one was).
    /// A server handle held elsewhere is not restarted: its own calls fail once it is dead.
    ///
    /// # Errors
    /// As [`ForkServerBuilder::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// let s = multiproc::ForkServer::global()?;
    /// assert!(s.is_alive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn global() -> Result<ForkServer, StartError> {
        Self::global_inner().map_err(ProcFail::start)
    }

    pub(in crate::process) fn global_inner() -> Result<ForkServer, ProcFail> {
        let mut d = lock(&DEFAULT);
        if let Some((_, s)) = d.as_ref().filter(|(_, s)| s.is_alive()) {
            return Ok(s.clone());
        }
        // Started under the lock: two threads that find the server dead start one, not two. The
        // dead one's options stay until a start succeeds, so a failed start loses no `init`.
        let options = d.as_ref().map(|(b, _)| b.clone()).unwrap_or_default();
        let s = options.clone().start_inner()?;
        *d = Some((options, s.clone()));
        Ok(s)
    }
}
