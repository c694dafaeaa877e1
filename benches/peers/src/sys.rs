//! Thin `libc` layer: CPU masks, forked children that are always reaped, pipes, a shared
//! anonymous mapping. Mirrors `cli/src/raw.rs` (which is private to the `multiproc`
//! command) so that children are created and pinned the same way as in `multiproc bench`.
//! The root `clippy.toml` (found by clippy from here too) keeps system calls in a `sys`
//! module; this is this crate's.
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A CPU affinity mask.
#[derive(Clone, Copy)]
pub struct CpuMask(libc::cpu_set_t);

impl CpuMask {
    /// The calling thread's mask.
    pub fn current() -> io::Result<CpuMask> {
        // SAFETY: an all-zero cpu_set_t is the empty set, overwritten below.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is writable and of the size passed; pid 0 is the calling thread.
        cvt(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
        Ok(CpuMask(set))
    }

    /// The mask holding only `cpu`.
    pub fn single(cpu: usize) -> CpuMask {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET checks nothing, so the caller's `cpu` must be below the set's capacity
        // (1024); the bench only uses CPUs 0 and 1.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        CpuMask(set)
    }

    /// Whether `cpu` is in the mask.
    pub fn has(&self, cpu: usize) -> bool {
        // SAFETY: CPU_ISSET only reads the set.
        unsafe { libc::CPU_ISSET(cpu, &self.0) }
    }

    /// Number of CPUs in the mask.
    pub fn count(&self) -> usize {
        // SAFETY: CPU_COUNT only reads the set.
        unsafe { libc::CPU_COUNT(&self.0) as usize }
    }

    /// Applies the mask to the calling thread (the whole process: the bench is single-threaded).
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY: a valid cpu_set_t of the size passed; pid 0 is the calling thread.
        cvt(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) }).map(drop)
    }
}

/// A forked child, killed (or, after [`Child::expect_exit`], awaited) and reaped when dropped.
/// The child also gets SIGKILL if the parent dies.
pub struct Child {
    pid: libc::pid_t,
    graceful: bool,
}

impl Child {
    /// Forks; the child pins itself to `mask`, runs `f` (dropping what it owns, so peers that
    /// keep files in /dev/shm clean up) and `_exit`s with its return value (101 on panic).
    /// Call only while the process is single-threaded.
    pub fn spawn(mask: CpuMask, f: impl FnOnce() -> i32) -> io::Result<Child> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the bench is single-threaded, so the child may run arbitrary code; it leaves
        // only through `_exit`.
        let pid = cvt(unsafe { libc::fork() })?;
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number only.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
                // SAFETY: getppid has no preconditions.
                if unsafe { libc::getppid() } != parent {
                    return 102;
                }
                if mask.apply().is_err() {
                    return 103;
                }
                f()
            }))
            .unwrap_or(101);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        Ok(Child { pid, graceful: false })
    }

    /// The driver told the child to stop: on drop, wait up to 2 s for it before killing it.
    #[cfg_attr(not(feature = "iceoryx2"), allow(dead_code))] // only the iceoryx2 rows stop gracefully
    pub fn expect_exit(&mut self) {
        self.graceful = true;
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let mut status = 0;
        if self.graceful {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(2) {
                // SAFETY: `status` is writable; `pid` is our unreaped child.
                if unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } == self.pid {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // SAFETY: `pid` is our unreaped child, so it cannot have been recycled.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        // SAFETY: as above.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } == -1
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
    }
}

/// A pipe(2): `(read end, write end)`, close-on-exec.
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// SIGALRM after `d` (kills the bench: the last defence against a hung peer), or cancel.
pub fn alarm(d: Option<Duration>) {
    // SAFETY: alarm has no memory arguments.
    unsafe { libc::alarm(d.map_or(0, |d| d.as_secs().max(1) as libc::c_uint)) };
}

/// A `MAP_SHARED | MAP_ANONYMOUS` mapping, inherited by children forked later.
pub struct SharedMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMap {
    /// Maps `len` zeroed bytes.
    pub fn new(len: usize) -> io::Result<SharedMap> {
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

    /// Pointer to byte `offset` (inside the mapping).
    pub fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset < self.len);
        // SAFETY: in bounds (asserted).
        unsafe { self.ptr.as_ptr().add(offset) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `new` with this length and is not used afterwards.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
