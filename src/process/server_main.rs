//! The fork server's own life, inside its fresh image: run `init`, answer, then fork each
//! requested child and report its end (the protocol is in `origin.rs`). Single-threaded: it
//! runs nothing but this loop, so its children may do anything after `fork`.

use super::boot::{self, Boot, Role, BOOT_TIMEOUT};
use super::child::{become_child, run_child};
use super::origin::{EXIT, PID};
use super::server_exec::{self, Station};
use crate::sys::process::{self as sys, WaitStatus};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// A child the server forked, until it is reaped.
struct Kid {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    status: UnixStream,
}

/// The server's life: run `init`, answer, then serve requests until the control socket ends.
pub(super) fn serve(ctl: UnixStream, boot: Boot, _fds: Vec<OwnedFd>) -> ! {
    // No parent-death signal: it would fire when the *thread* that started the server ends
    // (a pool's manager thread, say), not the process. The server leaves when its control
    // socket reaches end of file instead: when every copy in its creator (and in children
    // forked from it) is closed, which the kernel does when they die.
    if sys::getppid() != boot.parent.0 {
        sys::exit_now(1);
    }
    crate::process::panics::install();
    if let Some(init) = boot.entry {
        match std::panic::catch_unwind(|| init.run(&boot.key, &[], Vec::new())) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                let _ = boot::nak(&ctl, "its init function's token does not authenticate");
                sys::exit_now(1);
            }
            Err(p) => {
                let _ = boot::nak(
                    &ctl,
                    &format!("its init function panicked: {}", crate::process::panics::payload_text(&*p)),
                );
                sys::exit_now(1);
            }
        }
    }
    if boot::ack(&ctl).is_err() {
        sys::exit_now(1);
    }
    let _ = ctl.set_read_timeout(Some(BOOT_TIMEOUT));
    let mut kids: Vec<Kid> = Vec::new();
    let mut stations: Vec<Station> = Vec::new();
    let mut answered: Option<Instant> = None;
    let mut revents = Vec::new();
    loop {
        // Polled: the control socket, each child's pidfd, each station's socket and running
        // child's pidfd (in that order; `at` finds a station's entries).
        let mut fds: Vec<BorrowedFd<'_>> = vec![ctl.as_fd()];
        fds.extend(kids.iter().map(|k| k.pidfd.as_fd()));
        let mut at = Vec::with_capacity(stations.len());
        for s in &stations {
            at.push(fds.len());
            fds.push(s.chan());
            fds.extend(s.running());
        }
        let now = Instant::now();
        // Just after an answer, the next request is usually microseconds away (a fuzzing
        // loop): look for it without sleeping for a moment, so the request does not pay this
        // CPU's wake-up from idle.
        let timeout = if answered.is_some_and(|t| now.duration_since(t) < server_exec::LINGER) {
            0
        } else {
            server_exec::poll_timeout(&stations, now)
        };
        if sys::poll_many(&fds, libc::POLLIN, timeout, &mut revents).is_err() {
            // No memory for the poll set, say: try again shortly rather than spin.
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        drop(fds);
        // Children that ended: report and forget them.
        let ended: Vec<usize> = (0..kids.len()).filter(|&i| revents[i + 1] != 0).collect();
        for i in ended.into_iter().rev() {
            let k = kids.swap_remove(i);
            let (kind, value) = match sys::waitpid_blocking(k.pid) {
                Ok(WaitStatus::Exited(c)) => (0, c),
                Ok(WaitStatus::Signaled(s)) => (1, s),
                Err(_) => continue, // dropping `k.status` tells the requester (end of file)
            };
            let mut m = EXIT.to_vec();
            m.extend_from_slice(&i32::to_le_bytes(kind));
            m.extend_from_slice(&i32::to_le_bytes(value));
            let _ = crate::sys::fdpass::send_all(k.status.as_fd(), &m);
        }
        // Stations: deadlines, ended runs, then new requests (a station's end is dropped).
        let now = Instant::now();
        let close: Vec<RawFd> = std::iter::once(ctl.as_raw_fd()).chain(stations.iter().map(Station::raw)).collect();
        let mut over = Vec::new();
        for (i, s) in stations.iter_mut().enumerate() {
            s.check_deadline(now);
            let ran = s.running().is_some();
            if ran && revents[at[i] + 1] != 0 {
                answered = Some(now);
                if !s.ended() {
                    over.push(i);
                }
            } else if revents[at[i]] != 0 && !s.request(&close) {
                over.push(i);
            }
        }
        for i in over.into_iter().rev() {
            stations.swap_remove(i).close();
        }
        if revents[0] == 0 {
            continue;
        }
        match boot::recv(&ctl) {
            Ok((req, fds)) if req.role == Role::Exec => stations.extend(Station::new(req, fds)),
            Ok((req, fds)) => {
                let stations: Vec<RawFd> = stations.iter().map(Station::raw).collect();
                if let Some(k) = fork_child(&ctl, &stations, &mut kids, req, fds) {
                    kids.push(k);
                }
            }
            // The creator is gone or closed the server: children die with us (their
            // parent-death signal).
            Err(_) => sys::exit_now(0),
        }
    }
}

/// Forks one requested child; the server's record of it.
/// `stations`: the stations' sockets, which the child must not keep (their requesters learn
/// a station's end from its end of file).
fn fork_child(ctl: &UnixStream, stations: &[RawFd], kids: &mut Vec<Kid>, req: Boot, fds: Vec<OwnedFd>) -> Option<Kid> {
    let mut fds = fds.into_iter();
    let status = UnixStream::from(fds.next()?);
    if req.role != Role::Child {
        return None;
    }
    let server_pid = sys::getpid();
    // SAFETY: the server is single-threaded (it runs nothing but this loop), so the child may
    // do anything; it leaves through `_exit` (`run_child`).
    #[allow(unsafe_code)]
    let forked = unsafe { sys::fork() };
    match forked {
        Err(_) => None, // dropping `status`: the requester sees end of file
        Ok(sys::Fork::Child) => {
            // Die with the server; if it died already, leave now.
            let _ = sys::set_parent_death_signal(libc::SIGKILL);
            if sys::getppid() != server_pid {
                sys::exit_now(1);
            }
            // The server's sockets are not ours: close our copies (the requester must see end
            // of file on the control socket when the server dies, whatever its children do).
            // SAFETY: this child never uses `ctl` again (it leaves through `_exit` in
            // `run_child`, and the server's handle is never dropped here).
            #[allow(unsafe_code)]
            unsafe {
                sys::close_inherited(std::os::fd::AsRawFd::as_raw_fd(ctl))
            };
            for &fd in stations {
                // SAFETY: the stations' sockets are the server's; this child never uses them
                // (it leaves through `_exit`, and their owners are never dropped here).
                #[allow(unsafe_code)]
                unsafe {
                    sys::close_inherited(fd)
                };
            }
            kids.clear();
            drop(status);
            match become_child(&req, fds.collect(), true) {
                Ok((report, fds)) => run_child(req, report, fds),
                Err(_) => sys::exit_now(127),
            }
        }
        Ok(sys::Fork::Parent(pid)) => {
            let pidfd = sys::pidfd_open(pid).ok()?;
            let mut m = PID.to_vec();
            m.extend_from_slice(&pid.to_le_bytes());
            crate::sys::fdpass::send_fds(status.as_fd(), &[pidfd.as_fd()], &m).ok()?;
            Some(Kid { pid, pidfd, status })
        }
    }
}
