//! A thread's signal state, saved once and put back: every signal's disposition, the signal
//! mask, the alternate signal stack, and the interval timers (`alarm` is `ITIMER_REAL`). For a
//! pool worker that runs untrusted tasks one after another (`PoolBuilder::reset_signals`):
//! what one task sets must not decide how the next one ends.
//!
//! A repeating interval timer that was running when the state was saved (started by a pool's
//! initializer, say a profiler's `ITIMER_PROF`) is left alone; the others are stopped, a
//! one-shot `alarm` the initializer left included (it would fire in some later task).
//! Not covered: POSIX timers (`timer_create`, which cannot be listed), and signals already
//! queued for the process when the state is put back (they are delivered then, under the
//! saved dispositions; see [`SignalState::restore`]).

use super::cvt;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;

/// The saved state (see the module docs).
pub(crate) struct SignalState {
    mask: libc::sigset_t,
    /// Every signal whose disposition could be read (not `SIGKILL`/`SIGSTOP`, and not the
    /// real-time signals glibc keeps for itself, which refuse a query).
    actions: Vec<(libc::c_int, libc::sigaction)>,
    /// The alternate signal stack (std's guard-page handler runs on one).
    altstack: libc::stack_t,
    /// The interval timers to stop: all but those repeating when the state was saved.
    timers: Vec<libc::c_int>,
}

/// The interval timers a task can arm with `alarm` or `setitimer`.
const TIMERS: [libc::c_int; 3] = [libc::ITIMER_REAL, libc::ITIMER_VIRTUAL, libc::ITIMER_PROF];

impl SignalState {
    /// Reads the calling thread's signal mask and the process's dispositions.
    pub(crate) fn save() -> io::Result<SignalState> {
        let mut mask = MaybeUninit::<libc::sigset_t>::zeroed();
        // SAFETY: a null `set` only reads the mask into `mask`, which is valid for writes
        // ([pthread_sigmask(3)](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html)).
        super::cvt_pthread(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), mask.as_mut_ptr()) })?;
        // SAFETY: initialised by the call above (it succeeded).
        let mask = unsafe { mask.assume_init() };
        let mut actions = Vec::with_capacity(64);
        for sig in 1..=libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old = MaybeUninit::<libc::sigaction>::zeroed();
            // SAFETY: a null `act` only reads the disposition into `old`, valid for writes
            // ([sigaction(2)](https://man7.org/linux/man-pages/man2/sigaction.2.html)).
            if unsafe { libc::sigaction(sig, ptr::null(), old.as_mut_ptr()) } == 0 {
                // SAFETY: filled by the successful call.
                actions.push((sig, unsafe { old.assume_init() }));
            }
        }
        let mut altstack = MaybeUninit::<libc::stack_t>::zeroed();
        // SAFETY: a null `ss` only reads the current stack into `altstack`, valid for writes
        // ([sigaltstack(2)](https://man7.org/linux/man-pages/man2/sigaltstack.2.html)).
        cvt(unsafe { libc::sigaltstack(ptr::null(), altstack.as_mut_ptr()) })?;
        // SAFETY: filled by the successful call.
        let altstack = unsafe { altstack.assume_init() };
        let mut timers = Vec::with_capacity(TIMERS.len());
        for which in TIMERS {
            let mut now = MaybeUninit::<libc::itimerval>::zeroed();
            // SAFETY: `now` is valid for writes ([getitimer(2)](https://man7.org/linux/man-pages/man2/getitimer.2.html)).
            cvt(unsafe { libc::getitimer(which, now.as_mut_ptr()) })?;
            // SAFETY: filled by the successful call.
            let t = unsafe { now.assume_init() };
            let repeating = (t.it_value.tv_sec, t.it_value.tv_usec) != (0, 0)
                && (t.it_interval.tv_sec, t.it_interval.tv_usec) != (0, 0);
            if !repeating {
                timers.push(which);
            }
        }
        Ok(SignalState { mask, actions, altstack, timers })
    }

    /// Puts the saved state back: the timers stopped first (a task's handler for its own
    /// timer is about to go, and a tick in between would meet the default action, which ends
    /// the process), then the alternate stack and the dispositions, then the mask last, so
    /// that a signal a task blocked and raised, delivered when the mask is put back, meets
    /// the saved disposition (by default, for most signals, the end of the process) while the
    /// caller can still say which task it came from.
    pub(crate) fn restore(&self) -> io::Result<()> {
        let off = libc::itimerval {
            it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
            it_value: libc::timeval { tv_sec: 0, tv_usec: 0 },
        };
        for &which in &self.timers {
            // SAFETY: `off` is a valid timer value (zero: disarmed); a null `old_value` reads
            // nothing back ([setitimer(2)](https://man7.org/linux/man-pages/man2/setitimer.2.html)).
            cvt(unsafe { libc::setitimer(which, &off, ptr::null_mut()) })?;
        }
        // SAFETY: `self.altstack` is the stack this thread had when `save` ran (still mapped:
        // it is std's, or the initializer's), or "disabled"; a null `old_ss` reads nothing.
        cvt(unsafe { libc::sigaltstack(&self.altstack, ptr::null_mut()) })?;
        for (sig, act) in &self.actions {
            // SAFETY: `act` is a disposition this process had (read by `save`); a null
            // `oldact` reads nothing back.
            cvt(unsafe { libc::sigaction(*sig, act, ptr::null_mut()) })?;
        }
        // SAFETY: `self.mask` is a mask read by `save`; a null `oldset` reads nothing back.
        super::cvt_pthread(unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.mask, ptr::null_mut()) })
    }
}

#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;

    /// A disposition, the mask and an armed timer changed after `save` are all back (or
    /// off) after `restore`; checked in a forked child, since dispositions are per process.
    #[test]
    fn restore_puts_back_dispositions_the_mask_and_disarms_timers() {
        use crate::sys::process::{exit_now, fork, waitpid_blocking, Fork, WaitStatus};
        // SAFETY: the child makes system calls, one allocation (glibc's allocator is
        // fork-safe) and `_exit`s.
        let pid = match unsafe { fork() }.expect("fork") {
            Fork::Parent(pid) => pid,
            Fork::Child => {
                let code = (|| -> Option<()> {
                    let saved = SignalState::save().ok()?;
                    // SAFETY: plain system calls on this (single-threaded) child's own state.
                    unsafe {
                        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
                        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
                        libc::sigemptyset(set.as_mut_ptr());
                        libc::sigaddset(set.as_mut_ptr(), libc::SIGUSR2);
                        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), ptr::null_mut());
                        libc::alarm(100);
                    }
                    saved.restore().ok()?;
                    // SAFETY: queries only.
                    unsafe {
                        let mut act = MaybeUninit::<libc::sigaction>::zeroed();
                        libc::sigaction(libc::SIGUSR1, ptr::null(), act.as_mut_ptr());
                        let mut mask = MaybeUninit::<libc::sigset_t>::zeroed();
                        libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), mask.as_mut_ptr());
                        let ok = act.assume_init().sa_sigaction == libc::SIG_DFL
                            && libc::sigismember(mask.as_ptr(), libc::SIGUSR2) == 0
                            && libc::alarm(0) == 0;
                        ok.then_some(())
                    }
                })();
                exit_now(if code.is_some() { 0 } else { 1 })
            }
        };
        assert_eq!(waitpid_blocking(pid).expect("waitpid"), WaitStatus::Exited(0));
    }
}
