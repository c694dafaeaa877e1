//! Processes: fork, exit, wait, pidfd, signals, process groups, parent-death signal, CPU affinity,
//! pipes and poll.
//!
//! What nix wraps safely (getpid, waitpid, kill, killpg, setpgid, the parent-death signal,
//! pipe2, poll) goes through nix, with its typed flags and errno; what it does not (fork's
//! contract, `_exit`, pidfd, affinity counts, `pthread_atfork`) stays on libc here, each call
//! with its proof.
#![allow(clippy::disallowed_methods)]

use super::clock::Deadline;
use super::cvt;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Which side of a `fork` we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fork {
    /// In the parent; the child's pid.
    Parent(libc::pid_t),
    /// In the child.
    Child,
}

/// Creates a child process ([fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html)).
///
/// # Safety
/// In a multi-threaded parent, the child has only the forking thread; every lock another thread
/// held at the fork stays locked forever in the child. The caller must make sure the child
/// either only calls async-signal-safe functions until it `exec`s or `_exit`s, or knows that no
/// lock it needs (the allocator's, stdout's, …) can have been held by another thread.
pub(crate) unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller upholds the contract above.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Fork::Child } else { Fork::Parent(pid) })
}

/// Closes descriptor `fd` that this (forked) process inherited inside an object it will never
/// use or drop.
///
/// # Safety
/// Nothing in this process uses `fd` afterwards (its owner is never used or dropped here, as
/// in a forked child that leaves through [`exit_now`]).
#[cfg(feature = "serde")] // the fork server's children
pub(crate) unsafe fn close_inherited(fd: std::os::fd::RawFd) {
    // SAFETY: the caller guarantees nothing uses `fd` again; close has no memory arguments.
    unsafe { libc::close(fd) };
}

/// Ends this process at once with `code`, running no destructors, atexit handlers or stdio
/// flushes ([_exit(2)](https://man7.org/linux/man-pages/man2/_exit.2.html)).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// This process's id.
pub(crate) fn getpid() -> libc::pid_t {
    nix::unistd::getpid().as_raw()
}

/// The parent's process id (1 or a subreaper once the parent has died).
pub(crate) fn getppid() -> libc::pid_t {
    nix::unistd::getppid().as_raw()
}

/// `nix`'s errors as `io::Error`s (the crate's error types carry `io::Error`).
fn io_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A signal number as nix's `Signal` (an unknown number is `EINVAL`, as kill(2) says).
fn signal(sig: i32) -> io::Result<nix::sys::signal::Signal> {
    nix::sys::signal::Signal::try_from(sig).map_err(io_err)
}

/// How a waited-for child ended, as the raw `waitpid` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// `waitpid` on `pid` with `flags`, retrying `EINTR`; `None` while it runs (with `WNOHANG`).
/// Only exits and deaths are asked for (no `WUNTRACED`/`WCONTINUED`), so nothing else comes.
fn waitpid(pid: libc::pid_t, flags: Option<nix::sys::wait::WaitPidFlag>) -> io::Result<Option<WaitStatus>> {
    use nix::sys::wait::WaitStatus as W;
    loop {
        return match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), flags) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => Err(io_err(e)),
            Ok(W::Exited(_, code)) => Ok(Some(WaitStatus::Exited(code))),
            Ok(W::Signaled(_, sig, _)) => Ok(Some(WaitStatus::Signaled(sig as i32))),
            Ok(_) => Ok(None), // StillAlive under WNOHANG
        };
    }
}

/// Reaps `pid`, blocking until it ends ([waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)).
pub(crate) fn waitpid_blocking(pid: libc::pid_t) -> io::Result<WaitStatus> {
    loop {
        if let Some(s) = waitpid(pid, None)? {
            return Ok(s);
        }
    }
}

/// Reaps `pid` if it has ended; `None` while it runs.
pub(crate) fn waitpid_nohang(pid: libc::pid_t) -> io::Result<Option<WaitStatus>> {
    waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
}

/// Opens a pidfd for `pid` ([pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)):
/// a descriptor that becomes readable (`POLLIN`) when the process ends, and that names this
/// process and no other even after its pid is reused.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a fresh descriptor that nothing else owns; pidfd_open sets O_CLOEXEC itself.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` to the process behind `pidfd` ([pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)).
/// `ESRCH` means the process has already ended (it may still be unreaped).
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a null siginfo makes the kernel fill in the same info as kill(2).
    cvt(unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
    })
    .map(drop)
}

/// Sends `sig` to a process ([kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html)).
pub(crate) fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal(sig)?).map_err(io_err)
}

/// Sends `sig` to every process in process group `pgid`.
pub(crate) fn killpg(pgid: libc::pid_t, sig: i32) -> io::Result<()> {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal(sig)?).map_err(io_err)
}

/// Puts process `pid` (0: this one) into process group `pgid` (0: a new group named after it).
pub(crate) fn setpgid(pid: libc::pid_t, pgid: libc::pid_t) -> io::Result<()> {
    nix::unistd::setpgid(nix::unistd::Pid::from_raw(pid), nix::unistd::Pid::from_raw(pgid)).map_err(io_err)
}

/// Asks the kernel to send `sig` to this process when the thread that forked it ends
/// ([prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html), `PR_SET_PDEATHSIG`).
pub(crate) fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(signal(sig)?).map_err(io_err)
}

/// Waits until `fd` is readable or `deadline` passes; `Ok(true)` when readable.
/// `EINTR` is retried against the same deadline.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, deadline: Option<Deadline>) -> io::Result<bool> {
    poll_events(fd, libc::POLLIN, deadline).map(|r| r != 0)
}

/// Waits until `fd` reports one of `events` (or an error or hang-up) or `deadline` passes;
/// returns the events seen (0 on timeout). `EINTR` is retried against the same deadline.
pub(crate) fn poll_events(fd: BorrowedFd<'_>, events: i16, deadline: Option<Deadline>) -> io::Result<i16> {
    loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.remaining();
                // Round up so that we never wake a hair early and spin.
                let ms = left.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = [PollFd::new(fd, PollFlags::from_bits_truncate(events))];
        match nix::poll::poll(&mut pfd, PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE)) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io_err(e)),
            Ok(r) if r > 0 => return Ok(revents_of(&pfd[0])),
            Ok(_) => {}
        }
        match deadline {
            Some(d) if d.has_passed() => return Ok(0),
            _ => continue,
        }
    }
}

/// Number of CPUs this process may run on (its affinity mask), at least 1.
pub(crate) fn usable_cpus() -> usize {
    // SAFETY: an all-zero cpu_set_t is a valid value to be overwritten.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable and of the size we pass.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r == 0 {
        // SAFETY: `set` is an initialized cpu_set_t.
        (unsafe { libc::CPU_COUNT(&set) } as usize).max(1)
    } else {
        online_cpus()
    }
}

/// Number of CPUs online, at least 1.
pub(crate) fn online_cpus() -> usize {
    // SAFETY: sysconf with a valid name cannot fault.
    let r = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if r > 0 {
        r as usize
    } else {
        1
    }
}

/// The state letter (field 3) and start time in clock ticks since boot (field 22) of process
/// `pid`, from `/proc/<pid>/stat`; `None` if there is no such process (or it cannot be read).
/// The start time with the pid names a process uniquely even after the pid is reused.
fn process_stat(pid: libc::pid_t) -> Option<(u8, u64)> {
    match read_stat(pid) {
        Stat::Found(state, start) => Some((state, start)),
        Stat::Gone | Stat::Unknown => None,
    }
}

/// What `/proc/<pid>/stat` says of a process.
enum Stat {
    /// Its state letter and start time.
    Found(u8, u64),
    /// No such process.
    Gone,
    /// It could not be read or parsed for another reason (this process out of descriptors or
    /// memory, a `/proc` mounted with `hidepid`, a process in another pid namespace): nothing
    /// is known, and nothing may be concluded from it.
    Unknown,
}

fn read_stat(pid: libc::pid_t) -> Stat {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => return Stat::Gone,
        Err(_) => return Stat::Unknown,
    };
    let parsed = (|| {
        // The command name (field 2) is in parentheses and may hold spaces: split after the
        // last ')'.
        let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
        let state = *rest.next()?.as_bytes().first()?;
        // `rest` was at field 3; field 22 is 19 further.
        let start = rest.nth(18)?.parse().ok()?;
        Some((state, start))
    })();
    parsed.map_or(Stat::Unknown, |(state, start)| Stat::Found(state, start))
}

/// Whether a process with this pid exists, by `kill(pid, 0)` (`EPERM`: it exists, not ours to
/// signal): the fall-back when `/proc` cannot tell.
fn signal_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
/// `None` if the process does not exist.
pub(crate) fn process_start_time(pid: libc::pid_t) -> Option<u64> {
    process_stat(pid).map(|(_, start)| start)
}

/// This process's (pid, start time), cached; recomputed after a fork.
///
/// `getpid` is a real system call in glibc ≥ 2.25 (no pid cache), and `ArrayQueue` records its
/// identity on every push and pop: reading the cache is one atomic load. A `pthread_atfork`
/// child handler (registered on first use) clears the cache in every forked child before
/// `fork` returns there, so a child never reports its parent's identity.
#[allow(clippy::disallowed_types)] // sys may use core atomics: this cache is process-local
pub(crate) fn self_identity() -> (u32, u64) {
    use std::sync::atomic::Ordering::{Acquire, Release};
    let pid = IDENTITY_PID.load(Acquire);
    if pid != 0 {
        return (pid, IDENTITY_START.load(std::sync::atomic::Ordering::Relaxed));
    }
    let cached = fork_handler_registered();
    let pid = cached_pid();
    let Some(start) = process_start_time(pid as i32) else {
        // Our own start time could not be read (out of descriptors, say): 0, which `is_alive`
        // reads as "unknown start" (judged by the pid alone). Not cached, so that the next
        // call tries again: a cached 0 would stay for the process's life.
        return (pid, 0);
    };
    if !cached {
        // No handler (registration failed for lack of memory): never cache.
        return (pid, start);
    }
    IDENTITY_START.store(start, std::sync::atomic::Ordering::Relaxed);
    // SYNC(release → the Acquire load above): the start time is visible with the pid.
    IDENTITY_PID.store(pid, Release);
    (pid, IDENTITY_START.load(std::sync::atomic::Ordering::Relaxed))
}

/// This process's pid, cached (one atomic load after the first call); cleared in every forked
/// child by a `pthread_atfork` handler registered before the first value is cached, so a child
/// never reads its parent's. For guards that must tell the process that made them from a
/// forked copy (`sync::mutex`, `sync::guarded`).
#[allow(clippy::disallowed_types)] // sys may use core atomics: this cache is process-local
#[inline]
pub(crate) fn cached_pid() -> u32 {
    let pid = CACHED_PID.load(std::sync::atomic::Ordering::Relaxed);
    if pid != 0 {
        return pid;
    }
    cache_pid()
}

#[cold]
#[inline(never)]
fn cache_pid() -> u32 {
    let cached = fork_handler_registered();
    let pid = getpid() as u32;
    if cached {
        // Relaxed: a process-local value that every thread computes alike. A fork between the
        // handler's registration and this store leaves the child's copy 0 either way.
        CACHED_PID.store(pid, std::sync::atomic::Ordering::Relaxed);
    }
    pid
}

#[allow(clippy::disallowed_types)]
static CACHED_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[allow(clippy::disallowed_types)]
static IDENTITY_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
#[allow(clippy::disallowed_types)]
static IDENTITY_START: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registers (once) the `pthread_atfork` child handler that clears this process's caches of
/// itself (`cached_pid`, `self_identity`); false if it could not be (then nothing is cached).
fn fork_handler_registered() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: registers a child handler that only performs atomic stores (async-signal
        // safe, as a handler run in a forked child of a multithreaded process must be).
        unsafe { libc::pthread_atfork(None, None, Some(clear_caches_in_child)) == 0 }
    })
}

extern "C" fn clear_caches_in_child() {
    CACHED_PID.store(0, std::sync::atomic::Ordering::Relaxed);
    IDENTITY_PID.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the process with this pid and start time still runs: the crate's one liveness
/// check, for every record of a process in shared memory (semaphore holders, barrier parties,
/// queue claimants, segment creators).
///
/// A process that has exited is dead **whether or not it has been reaped**: a zombie (`Z`) or
/// one being torn down (`X`) has run its last instruction. (The usual deadlock this avoids:
/// the parent that must reap a killed child is itself blocked waiting for that child's permit
/// or barrier arrival.) A reused pid is told apart by its start time; a start of 0 is one its
/// process could not read, judged by the pid alone.
///
/// Dead means known dead: `/proc` shows a zombie or a reused pid, or neither `/proc` nor
/// `kill(pid, 0)` finds the process. When `/proc` cannot tell (this process out of
/// descriptors, `hidepid`, another pid namespace), `kill(pid, 0)` decides, and a process that
/// may exist counts as alive: recovering a live holder's permits would hand them out twice,
/// while sparing a dead one's only delays them.
pub(crate) fn is_alive(pid: u32, start: u64) -> bool {
    let Some(pid) = i32::try_from(pid).ok().filter(|&p| p > 0) else { return false };
    match read_stat(pid) {
        Stat::Found(state, s) => (start == 0 || s == start) && !matches!(state, b'Z' | b'X' | b'x'),
        // No entry: gone, unless `/proc` hides it (`hidepid=2` hides other users' processes,
        // a process in another pid namespace has none): `kill(pid, 0)` confirms.
        Stat::Gone | Stat::Unknown => signal_alive(pid),
    }
}

/// Whether a process with this pid runs (and is not a zombie), whoever it is: for records
/// that hold no start time because they live only microseconds. As [`is_alive`] when `/proc`
/// cannot tell.
pub(crate) fn pid_alive(pid: u32) -> bool {
    is_alive(pid, 0)
}

/// Whether thread `tid` (of any process, in this pid namespace) exists.
pub(crate) fn thread_exists(tid: i32) -> bool {
    tid > 0 && std::fs::metadata(format!("/proc/{tid}")).is_ok()
}

/// A pipe(2) pair `(read end, write end)`, close-on-exec (fork still inherits it).
/// See [pipe(2)](https://man7.org/linux/man-pages/man2/pipe.2.html).
pub(crate) fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io_err)
}

/// The `revents` bits of a polled fd (0 for none).
fn revents_of(p: &PollFd<'_>) -> i16 {
    p.revents().map_or(0, |r| r.bits())
}

/// Polls several fds for `events` once, waiting at most `timeout_ms` (0: no wait, -1: forever);
/// writes each fd's `revents` into `revents` and returns how many fds are ready. `EINTR` counts as
/// nothing ready. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
pub(crate) fn poll_many(
    fds: &[BorrowedFd<'_>],
    events: i16,
    timeout_ms: i32,
    revents: &mut Vec<i16>,
) -> io::Result<usize> {
    let flags = PollFlags::from_bits_truncate(events);
    let mut pfds: Vec<PollFd<'_>> = fds.iter().map(|&f| PollFd::new(f, flags)).collect();
    let r = nix::poll::poll(&mut pfds, PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE));
    revents.clear();
    revents.extend(pfds.iter().map(revents_of));
    match r {
        Ok(n) => Ok(n as usize),
        Err(nix::errno::Errno::EINTR) => Ok(0),
        Err(e) => Err(io_err(e)),
    }
}

/// `revents` of one fd polled for `events` without waiting (0 when nothing is ready or on EINTR).
pub(crate) fn poll_now(fd: BorrowedFd<'_>, events: i16) -> i16 {
    let mut pfd = [PollFd::new(fd, PollFlags::from_bits_truncate(events))];
    match nix::poll::poll(&mut pfd, PollTimeout::ZERO) {
        Ok(n) if n > 0 => revents_of(&pfd[0]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_names_this_process() {
        let me = process_start_time(getpid()).expect("own /proc entry");
        assert_eq!(process_start_time(getpid()), Some(me));
        assert_eq!(process_start_time(i32::MAX), None);
        assert!(is_alive(getpid() as u32, me));
        assert!(!is_alive(getpid() as u32, me + 1), "another start time is another process");
        assert!(!is_alive(0, 0) && !is_alive(u32::MAX, 0));
    }

    #[test]
    fn an_unreaped_dead_child_is_dead() {
        // SAFETY: the child only `_exit`s.
        let pid = match unsafe { fork() }.unwrap() {
            Fork::Child => exit_now(0),
            Fork::Parent(pid) => pid,
        };
        let start = process_start_time(pid).unwrap_or(0);
        // Not reaped: a zombie. It must read as dead within a moment (it exits at once).
        let t = std::time::Instant::now();
        while is_alive(pid as u32, start) {
            assert!(t.elapsed() < std::time::Duration::from_secs(10), "a zombie counted as alive");
            std::thread::yield_now();
        }
        assert!(process_start_time(pid).is_some(), "still unreaped: its /proc entry exists");
        waitpid_blocking(pid).unwrap();
        assert!(!is_alive(pid as u32, start));
    }

    /// A process that cannot read `/proc` (out of descriptors here) does not take a live
    /// process for dead: that would hand a live holder's permits out again. Before, any read
    /// error counted as "dead".
    #[test]
    fn a_proc_read_that_fails_does_not_make_a_live_process_dead() {
        let parent = getpid();
        let start = process_start_time(parent).expect("own /proc entry");
        // SAFETY: the child only calls `setrlimit`, reads `/proc` and `_exit`s.
        let pid = match unsafe { fork() }.unwrap() {
            Fork::Child => {
                let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: a valid rlimit; no descriptor can be opened after this.
                unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &none) };
                let unreadable = process_start_time(parent).is_none();
                let alive = is_alive(parent as u32, start) && pid_alive(parent as u32);
                let dead_still_dead = !is_alive(i32::MAX as u32, 1);
                exit_now(if unreadable && alive && dead_still_dead { 0 } else { 1 })
            }
            Fork::Parent(pid) => pid,
        };
        assert_eq!(waitpid_blocking(pid).unwrap(), WaitStatus::Exited(0));
    }

    #[test]
    fn cpu_counts_are_positive() {
        assert!(usable_cpus() >= 1);
        assert!(online_cpus() >= usable_cpus());
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn identity_is_cached_and_renewed_in_a_forked_child() {
        let parent = self_identity();
        assert_eq!(parent.0, getpid() as u32);
        assert_eq!(Some(parent.1), process_start_time(getpid()));
        let (r, w) = pipe_cloexec().unwrap();
        // SAFETY: the child only computes its identity, writes it to a pipe and `_exit`s.
        let child = match unsafe { fork() }.unwrap() {
            Fork::Child => {
                let (pid, start) = self_identity();
                let ok = pid == getpid() as u32 && Some(start) == process_start_time(getpid());
                let mut f = std::fs::File::from(w);
                let _ = f.write_all(&[ok as u8]);
                exit_now(0);
            }
            Fork::Parent(pid) => pid,
        };
        drop(w);
        let mut answer = Vec::new();
        std::fs::File::from(r).read_to_end(&mut answer).unwrap();
        waitpid_blocking(child).unwrap();
        assert_eq!(answer, [1], "the child saw its own pid and start time, not its parent's");
        assert_eq!(self_identity(), parent);
    }
}
