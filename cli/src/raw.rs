//! The command's own thin layer over `libc`: the raw baselines are meant to be raw, so they call
//! the kernel directly instead of going through the library (whose `sys` module is private).
//! Everything here is for the benchmark children and their parent; none of it is library API.
#![allow(clippy::disallowed_methods)] // raw baselines: fork, mmap, kill and futex syscalls on purpose
#![allow(clippy::disallowed_types)] // the command does not use the library's private loom shim

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A CPU affinity mask.
#[derive(Clone, Copy)]
pub(crate) struct CpuMask(libc::cpu_set_t);

impl std::fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CpuMask({} cpus)", self.count())
    }
}

impl CpuMask {
    /// The calling thread's mask.
    pub(crate) fn current() -> io::Result<CpuMask> {
        // SAFETY: an all-zero cpu_set_t is the empty set, overwritten below.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is writable and of the size we pass; pid 0 is the calling thread.
        cvt(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
        Ok(CpuMask(set))
    }

    /// The mask holding only `cpu`.
    pub(crate) fn single(cpu: usize) -> CpuMask {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        if cpu < 8 * std::mem::size_of::<libc::cpu_set_t>() {
            // SAFETY: `cpu` is below the set's capacity (checked above).
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        CpuMask(set)
    }

    /// Whether `cpu` is in the mask.
    pub(crate) fn has(&self, cpu: usize) -> bool {
        // SAFETY: CPU_ISSET only reads the set; out-of-range CPUs are rejected first.
        cpu < 8 * std::mem::size_of::<libc::cpu_set_t>() && unsafe { libc::CPU_ISSET(cpu, &self.0) }
    }

    /// Number of CPUs in the mask.
    pub(crate) fn count(&self) -> usize {
        // SAFETY: CPU_COUNT only reads the set.
        unsafe { libc::CPU_COUNT(&self.0) as usize }
    }

    /// Applies the mask to the calling thread (the whole process: the command is single-threaded).
    pub(crate) fn apply(&self) -> io::Result<()> {
        // SAFETY: `self.0` is a valid cpu_set_t of the size we pass; pid 0 is the calling thread.
        cvt(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) }).map(drop)
    }
}

/// A forked child that is killed and reaped when dropped (also while a panic unwinds), so a
/// failing bench leaves no orphan. The child also gets SIGKILL if the parent dies.
#[derive(Debug)]
pub(crate) struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

impl Child {
    /// Forks; the child applies `mask` (if any), runs `f` and exits with its return value (101
    /// if it panics). Call only while the process is single-threaded.
    pub(crate) fn spawn(mask: Option<CpuMask>, f: impl FnOnce() -> i32) -> io::Result<Child> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the command is single-threaded, so the child may run arbitrary code; it
        // leaves only through `_exit`, never by returning into the parent's stack.
        let pid = cvt(unsafe { libc::fork() })?;
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number; no memory is passed.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
                // SAFETY: getppid has no preconditions.
                if unsafe { libc::getppid() } != parent {
                    return 102; // the parent died before the death signal was armed
                }
                if let Some(m) = mask {
                    if m.apply().is_err() {
                        return 103;
                    }
                }
                f()
            }))
            .unwrap_or(101);
            // SAFETY: _exit ends the child at once, without running the parent's atexit
            // handlers or destructors of state copied from the parent.
            unsafe { libc::_exit(code) };
        }
        Ok(Child { pid, reaped: false })
    }

    /// Waits for the child to exit and returns its exit code (128 + signal if killed).
    #[cfg(test)]
    pub(crate) fn join(mut self) -> io::Result<i32> {
        let code = waitpid(self.pid)?;
        self.reaped = true;
        Ok(code)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: `pid` is our unreaped child, so the pid cannot have been recycled.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = waitpid(self.pid);
        }
    }
}

/// Blocking waitpid (EINTR retried); returns the exit code, or 128 + the signal.
pub(crate) fn waitpid(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Ok(128 + libc::WTERMSIG(status))
    }
}

/// The raw fork + `_exit(0)` + waitpid round trip (the `os.fork.rt` row).
pub(crate) fn fork_exit_wait() -> io::Result<()> {
    // SAFETY: the child calls only the async-signal-safe `_exit`.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        // SAFETY: `_exit` is async-signal-safe and ends the child at once.
        unsafe { libc::_exit(0) };
    }
    match waitpid(pid)? {
        0 => Ok(()),
        c => Err(io::Error::other(format!("forked child exited with {c}"))),
    }
}

/// A shared anonymous mapping, inherited by children forked later.
#[derive(Debug)]
pub(crate) struct SharedMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMap {
    /// Maps `len` zeroed bytes `MAP_SHARED | MAP_ANONYMOUS`.
    pub(crate) fn new(len: usize) -> io::Result<SharedMap> {
        // SAFETY: a fresh anonymous mapping, no address hint, no fd.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap { ptr: NonNull::new(p.cast()).expect("mmap returned null"), len })
    }

    /// Raw pointer to byte `offset` (inside the mapping).
    pub(crate) fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset < self.len, "offset outside the mapping");
        // SAFETY: in bounds (asserted).
        unsafe { self.ptr.as_ptr().add(offset) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: we own this mapping and hand out no references that outlive `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A pipe: (read end, write end), close-on-exec.
pub(crate) fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both fds are fresh and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((r.into(), w.into()))
}

/// A robust, process-shared pthread mutex in a shared mapping (the raw baseline of `Lock`).
#[derive(Debug)]
pub(crate) struct RobustMutex {
    map: SharedMap,
}

impl RobustMutex {
    /// Initializes a robust pshared mutex in a fresh shared mapping.
    pub(crate) fn new() -> io::Result<RobustMutex> {
        let map = SharedMap::new(4096)?;
        let m = map.at(0).cast::<libc::pthread_mutex_t>();
        // SAFETY: an all-zero attr is overwritten by pthread_mutexattr_init.
        let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is writable; `m` points into our page-aligned mapping, large enough for
        // a pthread_mutex_t and not yet shared with anyone; attr is destroyed after use.
        unsafe {
            let mut r = libc::pthread_mutexattr_init(&mut attr);
            if r == 0 {
                r = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            }
            if r == 0 {
                r = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            }
            if r == 0 {
                r = libc::pthread_mutex_init(m, &attr);
            }
            libc::pthread_mutexattr_destroy(&mut attr);
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
        }
        Ok(RobustMutex { map })
    }

    /// Locks and unlocks `n` times.
    pub(crate) fn lock_unlock(&self, n: u64) -> io::Result<()> {
        let m = self.map.at(0).cast::<libc::pthread_mutex_t>();
        for _ in 0..n {
            // SAFETY: `m` is an initialized mutex that lives as long as `self`.
            let r = unsafe { libc::pthread_mutex_lock(m) };
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            // SAFETY: we hold the lock (acquired just above).
            unsafe { libc::pthread_mutex_unlock(m) };
        }
        Ok(())
    }
}

/// Arms (`Some`) or cancels (`None`) a SIGALRM that ends the whole command after `limit`: the
/// last line of defence against a hung measurement (children die with it: parent-death signal).
pub(crate) fn alarm(limit: Option<Duration>) {
    let secs = limit.map_or(0, |d| d.as_secs().clamp(1, u32::MAX as u64) as libc::c_uint);
    // SAFETY: alarm has no memory arguments.
    unsafe { libc::alarm(secs) };
}

/// The environment variable that makes this command exit at once (0) at the top of `main`: the
/// `os.posix_spawn.rt` baseline starts the executable that way (the cost of exec, the dynamic
/// loader and Rust's start-up, which a `Spawn` child pays too).
pub(crate) const NOOP_ENV: &str = "MULTIPROC_BENCH_NOOP";

/// `posix_spawn`s this executable with [`NOOP_ENV`] set and waits for it.
pub(crate) fn posix_spawn_self_noop() -> io::Result<()> {
    use std::ffi::CString;
    let exe = CString::new("/proc/self/exe").expect("no NUL");
    let arg0 = CString::new("multiproc").expect("no NUL");
    let env = CString::new(format!("{NOOP_ENV}=1")).expect("no NUL");
    let argv = [arg0.as_ptr().cast_mut(), std::ptr::null_mut()];
    let envp = [env.as_ptr().cast_mut(), std::ptr::null_mut()];
    let mut pid: libc::pid_t = 0;
    // SAFETY: `exe`, `argv` and `envp` (null-terminated) live across the call; no file actions
    // or attributes.
    let r = unsafe {
        libc::posix_spawn(&mut pid, exe.as_ptr(), std::ptr::null(), std::ptr::null(), argv.as_ptr(), envp.as_ptr())
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    match waitpid(pid)? {
        0 => Ok(()),
        code => Err(io::Error::other(format!("the no-op child exited with {code}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_gone(pid: libc::pid_t) -> bool {
        // SAFETY: signal 0 only checks for existence; the pid was our child and is reaped.
        unsafe { libc::kill(pid, 0) == -1 }
    }

    #[test]
    fn children_are_killed_and_reaped_on_drop_and_on_panic() {
        let c = Child::spawn(None, || loop {
            std::thread::sleep(Duration::from_secs(1));
        })
        .unwrap();
        let pid = c.pid;
        drop(c);
        assert!(is_gone(pid), "child {pid} survived its guard");

        let mut pid = 0;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let c = Child::spawn(None, || loop {
                std::thread::sleep(Duration::from_secs(1));
            })
            .unwrap();
            pid = c.pid;
            panic!("a failing bench");
        }));
        assert!(r.is_err() && pid > 0);
        assert!(is_gone(pid), "child {pid} survived a panic");
    }

    #[test]
    fn a_panicking_child_exits_101() {
        // `resume_unwind`, not `panic!`: it unwinds without running the panic hook, which
        // takes locks (stderr's, the hook's) that another thread of this multi-threaded test
        // binary may have held at the fork, and then waits in the child for ever.
        let c = Child::spawn(None, || std::panic::resume_unwind(Box::new("in the child"))).unwrap();
        let pid = c.pid;
        std::mem::forget(c); // reaped below instead
        assert_eq!(waitpid(pid).unwrap(), 101);
    }
}
