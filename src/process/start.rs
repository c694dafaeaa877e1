//! `Process::start`: the one state machine over a process's [`Life`], for every start method.
//! It takes the entry (`Ready` → `Starting`), hands it to the method's launcher (`launch/`),
//! and records what was started (`Running`, registered as an active child), or puts the
//! entry back if nothing was.

use super::entry::Entry;
use super::handle::{reap_finished_if_any, Process};
use super::launch;
use super::lock::lock;
use super::origin::{Refused, Started};
use super::record::{Life, Running};
use super::registry;
use super::{ProcFail, StartError, StartMethod};
use crate::sys::process as sys;
use std::sync::Arc;

impl Process {
    /// Starts the child with its start method (Python's `start()`): forks it to run the
    /// closure, or starts a fresh image that runs the `fn` entry. Returns once the child exists
    /// (a spawned one: once it took its entry); it may not have run anything yet.
    ///
    /// **Multi-threaded callers**: only async-signal-safe work is safe in the child if other
    /// threads may hold locks it needs (stdout's lock, your mutexes): see "Forking a
    /// multi-threaded parent" in the module docs.
    ///
    /// Before forking, `start` reaps registered children that have ended (as Python does).
    ///
    /// # Errors
    /// [`StartError::AlreadyStarted`], [`StartError::Closed`],
    /// [`StartError::DaemonicParent`] in a daemonic process, [`StartError::ReportArea`],
    /// [`StartError::Boot`], [`StartError::ForkServer`], [`StartError::Os`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// assert!(matches!(p.start(), Err(multiproc::StartError::AlreadyStarted)));
    /// p.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(&self) -> Result<(), StartError> {
        self.start_inner().map_err(ProcFail::start)
    }

    fn start_inner(&self) -> Result<(), ProcFail> {
        reap_finished_if_any();
        let rec = &*self.inner;
        let mut life = lock(&rec.life);
        let entry = match std::mem::replace(&mut *life, Life::Starting) {
            Life::Ready(e) => e,
            Life::Closed => {
                *life = Life::Closed;
                return Err(ProcFail::Closed);
            }
            other => {
                *life = other;
                return Err(ProcFail::AlreadyStarted);
            }
        };
        let outcome = match (rec.method, entry) {
            // A fork keeps the record locked across `fork` (its child's copy is then
            // consistent): the launcher drops the guard in both processes.
            (StartMethod::Fork, Entry::Closure(t)) => {
                launch::fork::launch(&rec.spec, t, life).map_err(|r| r.map_entry(Entry::Closure))
            }
            #[cfg(feature = "serde")]
            (StartMethod::Fork, Entry::Fn(e)) => launch::fork::launch(&rec.spec, Box::new(move || e.run_here()), life)
                .map_err(|r| r.map_entry(Entry::Closure)),
            #[cfg(feature = "serde")]
            (method, Entry::Fn(e)) => {
                drop(life); // a boot handshake may take long: nobody waits on the record meanwhile
                self.launch_fresh(method, e)
            }
            (method, closure @ Entry::Closure(_)) => {
                drop(life);
                Err(Refused::before(ProcFail::NotSpawnable(method), closure))
            }
        };
        let mut life = lock(&rec.life);
        match outcome {
            Ok(Started { pid, pidfd, report, origin }) => {
                registry::register(self.inner.clone());
                *life = Life::Running(Running { creator: sys::getpid(), pid, pidfd: Arc::new(pidfd), report, origin });
                Ok(())
            }
            Err(Refused { error, entry }) => {
                *life = match entry {
                    Some(e) => Life::Ready(e),
                    None => Life::Failed,
                };
                Err(error)
            }
        }
    }

    /// `Spawn` and `ForkServer`: a fresh image (or a fork of the server's) runs the entry.
    #[cfg(feature = "serde")]
    #[allow(clippy::result_large_err)] // once per child, and the entry must come back whole
    fn launch_fresh(&self, method: StartMethod, e: super::entry::FnEntry) -> Result<Started, Refused<Entry>> {
        use launch::spawn::Via;
        let rec = &*self.inner;
        let r = match method {
            StartMethod::ForkServer => {
                let server = match &rec.server {
                    Some(s) => s.clone(),
                    None => match super::ForkServer::global_inner() {
                        Ok(s) => s,
                        Err(err) => return Err(Refused::before(err, Entry::Fn(e))),
                    },
                };
                launch::spawn::launch(&rec.spec, e, Via::Server(&server))
            }
            _ => launch::spawn::launch(&rec.spec, e, Via::Program(rec.executable.as_deref())),
        };
        r.map_err(|r| r.map_entry(Entry::Fn))
    }
}
