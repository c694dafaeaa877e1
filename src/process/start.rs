//! Starting a child: the fork protocol (the locks held across `fork`, and the one `unsafe`
//! block), and the child's side, which runs the target and leaves with `_exit`.

use super::current::{lock, reap_finished_if_any, Me, ACTIVE, ME};
use super::handle::{Entry, Process, Target};
use super::report::{Kind, Report, ReportAreas};
use super::{panics, ProcFail, StartError, StartMethod, MAIN_NAME};
use crate::shm::ShmRef;
use crate::sys::process as sys;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

impl Process {
    /// Forks the child, which runs the closure and exits (see the module docs for how it
    /// leaves). Returns once the child exists; the child may not have run anything yet.
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
        if self.inner.method != StartMethod::Fork {
            #[cfg(feature = "serde")]
            return super::spawn::start(self);
            #[cfg(not(feature = "serde"))]
            return Err(ProcFail::NotSpawnable(self.inner.method));
        }
        // Before any lock below: installing takes std's hook lock, which the child never may.
        panics::install();
        let inner = &*self.inner;
        // std's stdout and stderr locks are held across the fork too (taken first, as any user
        // code that prints takes them before calling into us): a child forked while another
        // thread was printing would otherwise block forever in its exit-time flush or in its
        // first `println!`. Flushing first also keeps the child from printing the parent's
        // buffered output a second time (Python flushes before forking as well).
        let mut stdout = std::io::stdout().lock();
        let stderr = std::io::stderr().lock();
        let _ = stdout.flush();
        let mut st = lock(&inner.state);
        if st.closed {
            return Err(ProcFail::Closed);
        }
        let target: Target = match st.target.take() {
            None => return Err(ProcFail::AlreadyStarted),
            Some(Entry::Closure(t)) => t,
            #[cfg(feature = "serde")]
            Some(Entry::Fn(e)) => Box::new(move || e.run_here()),
        };
        let parent_pid = sys::getpid();
        // The registries stay locked across the fork so that the child gets them consistent.
        let mut me = lock(&ME);
        if me.daemon {
            st.target = Some(Entry::Closure(target));
            return Err(ProcFail::DaemonicParent);
        }
        let mut active = lock(&ACTIVE);
        let mut areas = ReportAreas::lock();
        let arena = crate::shm::lock_for_fork();
        let report = match areas.take() {
            Ok(r) => r,
            Err(e) => {
                st.target = Some(Entry::Closure(target));
                return Err(ProcFail::ReportArea(e));
            }
        };
        #[allow(unsafe_code)]
        // SAFETY: the child runs only `child_main`, which never returns (it leaves through
        // `_exit`). The locks this crate needs in the child (ME, ACTIVE, the report areas, the
        // default arena, this process's state, std's stdout and stderr) are held by this thread
        // across the fork, and the panic hook is installed before it (`panics.rs`), so
        // they are consistent there. Locks held by *other* threads of a multi-threaded caller
        // are the caller's responsibility, as documented on `start` and in the module docs.
        let forked = unsafe { sys::fork() };
        match forked {
            Err(e) => {
                areas.give_back(report);
                st.target = Some(Entry::Closure(target));
                Err(ProcFail::Os(e))
            }
            Ok(sys::Fork::Child) => {
                if inner.daemon {
                    // Die with the parent; if it died before the prctl, leave now.
                    let _ = sys::set_parent_death_signal(libc::SIGKILL);
                    if sys::getppid() != parent_pid {
                        sys::exit_now(1);
                    }
                }
                if inner.group {
                    let _ = sys::setpgid(0, 0);
                }
                let parent_name = me.name.clone().unwrap_or_else(|| MAIN_NAME.to_string());
                let mut identity = std::mem::take(&mut me.identity);
                identity.push(inner.number);
                *me = Me {
                    name: Some(inner.name.clone()),
                    daemon: inner.daemon,
                    identity,
                    counter: 0,
                    parent: Some((parent_pid, parent_name)),
                };
                // The child has no children of its own; the parent's handles are not ours.
                std::mem::forget(std::mem::take(&mut *active));
                areas.for_child();
                drop(arena);
                drop(areas);
                drop(active);
                drop(me);
                drop(st);
                drop(stderr);
                drop(stdout);
                child_main(target, report)
            }
            Ok(sys::Fork::Parent(pid)) => {
                drop(arena);
                drop(areas);
                drop(me);
                drop(stderr);
                drop(stdout);
                if inner.group {
                    // Also here, so that a kill_tree right after start already finds the group.
                    // Errors mean the child already did it or already died: both fine.
                    let _ = sys::setpgid(pid, pid);
                }
                let pidfd = match sys::pidfd_open(pid) {
                    Ok(fd) => fd,
                    Err(e) => {
                        drop(active);
                        drop(st);
                        let _ = sys::kill(pid, libc::SIGKILL);
                        if sys::waitpid_blocking(pid).is_ok() {
                            ReportAreas::lock().give_back(report);
                        }
                        drop(target);
                        return Err(ProcFail::Os(e));
                    }
                };
                active.push(self.inner.clone());
                drop(active);
                st.creator = parent_pid;
                st.pid = Some(pid);
                st.pidfd = Some(Arc::new(pidfd));
                st.report = Some(report);
                drop(st);
                // The parent's copy of what the closure captured, dropped with no lock held (its
                // destructors may call back into this module).
                drop(target);
                Ok(())
            }
        }
    }
}

/// Runs the target in the child and leaves with `_exit`; never returns.
///
/// Takes no lock that another thread of the parent may have held at the fork: the panic hook
/// was installed before the fork and is only armed here (see `panics.rs`).
pub(super) fn child_main(target: Target, report: ShmRef<Report>) -> ! {
    // A panic in this thread writes its message and location to the report (and then prints
    // as usual). Other threads' panics are theirs to handle.
    panics::arm(&report);
    let code = match panic::catch_unwind(AssertUnwindSafe(target)) {
        Ok((code, failure)) => {
            match failure {
                Some(text) => report.write(Kind::Error, &text),
                None => report.clear(), // e.g. a panic the target caught itself
            }
            code
        }
        Err(payload) => {
            if report.is_empty() {
                // The hook did not run (the program replaced it): the payload still has the text.
                report.write(Kind::Panic, &format!("panicked: {}", panics::payload_text(&*payload)));
            }
            // Dropping a panic payload can panic again; we are leaving anyway.
            std::mem::forget(payload);
            1
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    sys::exit_now(code)
}
