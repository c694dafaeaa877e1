//! The child's side, one path for every start method: [`settle`] makes a fresh child what its
//! parent asked (parent-death signal, process group, its own [`Me`]), [`child_main`] runs the
//! target under the report protocol and leaves with `_exit`. A forked child calls them right
//! after `fork`; a spawned child or a fork server's child through [`become_child`] and
//! [`run_child`], from its bootstrap message.

use super::entry::Target;
use super::panics;
use super::registry::Me;
use super::report::{Kind, Report};
use crate::shm::ShmRef;
use crate::sys::process as sys;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
#[cfg(feature = "serde")]
use {
    super::boot::Boot, super::entry::run_token, super::lock::lock, super::registry::ME, crate::shm::Segment,
    std::os::fd::OwnedFd,
};

/// Makes this fresh child what `new` describes. `me` is this process's record (the fork
/// launcher passes the guard it held across the fork); `die_with`: the parent whose death
/// must kill this child (a daemon), and if it is gone already, leave now.
pub(super) fn settle(me: &mut Me, new: Me, group: bool, die_with: Option<libc::pid_t>) {
    if let Some(parent) = die_with {
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
        if sys::getppid() != parent {
            sys::exit_now(1);
        }
    }
    if group {
        let _ = sys::setpgid(0, 0);
    }
    *me = new;
}

/// Sets up this process as the child `boot` describes: its report area (the first
/// descriptor), then [`settle`]. Returns the report and the remaining descriptors (the
/// arguments' handles). A fork server's child (`via_server`) already dies with the server,
/// which dies with the requester.
#[cfg(feature = "serde")]
pub(super) fn become_child(
    boot: &Boot,
    fds: Vec<OwnedFd>,
    via_server: bool,
) -> Result<(ShmRef<Report>, Vec<OwnedFd>), String> {
    let mut fds = fds.into_iter();
    let seg = fds.next().ok_or("no report area")?;
    let seg = Segment::adopt_fd(seg, None).map_err(|e| format!("bad report area: {e}"))?;
    let off = usize::try_from(boot.report_off).map_err(|_| "bad report offset")?;
    let report = seg.object_at::<Report>(off).map_err(|e| format!("bad report area: {e}"))?;
    let new = Me {
        name: Some(boot.name.clone()),
        daemon: boot.daemon,
        identity: boot.identity.clone(),
        counter: 0,
        parent: Some(boot.parent.clone()),
    };
    let die_with = (boot.daemon && !via_server).then_some(boot.parent.0);
    settle(&mut lock(&ME), new, boot.group, die_with);
    Ok((report, fds.collect()))
}

/// Runs the entry of `boot` with the child's protocol (report, `_exit`).
#[cfg(feature = "serde")]
pub(super) fn run_child(boot: Boot, report: ShmRef<Report>, fds: Vec<OwnedFd>) -> ! {
    panics::install();
    let Some(token) = boot.entry else {
        report.write(Kind::Error, "no entry");
        sys::exit_now(1)
    };
    let key = boot.key;
    let args = boot.args;
    let target: Target = Box::new(move || run_token(&token, &key, &args, fds));
    child_main(target, report)
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
