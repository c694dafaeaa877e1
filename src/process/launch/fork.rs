//! The `Fork` start method: the locks held across `fork` (and the `unsafe` block that forks);
//! the child's side is `child.rs`.

use super::super::child::{child_main, settle};
use super::super::entry::Target;
use super::super::lock::lock;
use super::super::origin::{Origin, Refused, Started};
use super::super::record::Spec;
use super::super::registry::{ACTIVE, ME};
use super::super::report::ReportAreas;
use super::super::{panics, ProcFail};
use crate::sys::process as sys;
use std::io::Write;

/// Forks a child that runs `target` and leaves (see `child.rs`). Returns once the child
/// exists; it may not have run anything yet.
///
/// `held` is whatever the caller must hold across the fork so that the child's copy of it is
/// consistent (the process's own record): it is dropped in both processes right after the
/// fork. The locks this crate needs in the child (`ME`, `ACTIVE`, the report areas, the
/// default arena, std's stdout and stderr) are held here across the fork too.
pub(in crate::process) fn launch<H>(spec: &Spec, target: Target, held: H) -> Result<Started, Refused<Target>> {
    // Before any lock below: installing takes std's hook lock, which the child never may.
    panics::install();
    // std's stdout and stderr locks are held across the fork too (taken first, as any user
    // code that prints takes them before calling into us): a child forked while another
    // thread was printing would otherwise block forever in its exit-time flush or in its
    // first `println!`. Flushing first also keeps the child from printing the parent's
    // buffered output a second time (Python flushes before forking as well).
    let mut stdout = std::io::stdout().lock();
    let stderr = std::io::stderr().lock();
    let _ = stdout.flush();
    let parent_pid = sys::getpid();
    // The registries stay locked across the fork so that the child gets them consistent.
    let mut me = lock(&ME);
    let child_me = match me.child(spec) {
        Ok(m) => m,
        Err(e) => return Err(Refused::before(e, target)),
    };
    let mut active = lock(&ACTIVE);
    let mut areas = ReportAreas::lock();
    let arena = crate::shm::lock_for_fork();
    // Process-wide lists a child uses at once (a `Value` made or dropped, a readiness
    // registration): held across the fork too.
    let lists = (crate::sync::lock_guarded_for_fork(), crate::queue::lock_ready_for_fork());
    let report = match areas.take() {
        Ok(r) => r,
        Err(e) => return Err(Refused::before(ProcFail::ReportArea(e), target)),
    };
    #[allow(unsafe_code)]
    // SAFETY: the child runs only `child_main`, which never returns (it leaves through
    // `_exit`). The locks this crate needs in the child (ME, ACTIVE, the report areas, the
    // default arena, the guarded-memory and readiness lists, the process's record as `held`,
    // std's stdout and stderr) are held by this
    // thread across the fork, and the panic hook is installed before it (`panics.rs`), so they
    // are consistent there. Locks held by *other* threads of a multi-threaded caller are the
    // caller's responsibility, as documented on `Process::start` and in the module docs.
    let forked = unsafe { sys::fork() };
    match forked {
        Err(e) => {
            drop(lists);
            areas.give_back(report);
            Err(Refused::before(ProcFail::Os(e), target))
        }
        Ok(sys::Fork::Child) => {
            settle(&mut me, child_me, spec.group, spec.daemon.then_some(parent_pid));
            // The child has no children of its own; the parent's handles are not ours.
            std::mem::forget(std::mem::take(&mut *active));
            areas.for_child();
            drop((lists, arena, areas, active, me, held, stderr, stdout));
            child_main(target, report)
        }
        Ok(sys::Fork::Parent(pid)) => {
            drop((lists, arena, areas, active, me, held, stderr, stdout));
            if spec.group {
                // Also here, so that a kill_tree right after start already finds the group.
                // Errors mean the child already did it or already died: both fine.
                let _ = sys::setpgid(pid, pid);
            }
            let pidfd = match sys::pidfd_open(pid) {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = sys::kill(pid, libc::SIGKILL);
                    if sys::waitpid_blocking(pid).is_ok() {
                        ReportAreas::lock().give_back(report);
                    }
                    return Err(Refused::spent(ProcFail::Os(e)));
                }
            };
            // The parent's copy of what the closure captured is dropped here, with no lock
            // held (its destructors may call back into this module).
            drop(target);
            Ok(Started { pid, pidfd, report, origin: Origin::Own })
        }
    }
}
