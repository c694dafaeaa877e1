//! Helpers shared by the multi-process integration tests.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code: std atomics and raw libc are fine here
#![allow(unreachable_pub)] // shared by the test crates through `mod common;`
//!
//! * [`FORK_LOCK`]: forking tests in one test binary never overlap, so a child never inherits
//!   another test's half-held locks.
//! * [`Watchdog`]: aborts the whole test binary if a test hangs, so a hang fails fast instead
//!   of eating CI time. Never used to assert a maximum runtime. Before aborting it kills every
//!   descendant; a panic in the test process does the same (a hook installed by
//!   [`fork_lock`]), so no child of a failed test outlives the run holding the harness's output
//!   pipe open (which would make `cargo test` wait for it forever).
//! * [`fork_child`] / [`wait_child`]: raw fork for tests that exercise a primitive without the
//!   crate's `Process` (children leave through `_exit`, never through the test harness).
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Serializes the tests that fork within one test binary.
pub static FORK_LOCK: Mutex<()> = Mutex::new(());

/// Takes [`FORK_LOCK`], ignoring poison from an earlier failed test.
pub fn fork_lock() -> MutexGuard<'static, ()> {
    static REAPER: std::sync::Once = std::sync::Once::new();
    REAPER.call_once(install_panic_reaper);
    FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// On a panic in the test process itself (not in its children, which inherit the hook), kill
/// every descendant before the usual report: a failed test's children must not run on.
/// Panics on the crate's own threads (named `multiproc-*`, e.g. a pool's manager running a
/// callback that a test makes panic on purpose) are the crate's to handle, not test failures.
fn install_panic_reaper() {
    let main = std::process::id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let ours = std::thread::current().name().is_some_and(|n| n.starts_with("multiproc"));
        if std::process::id() == main && !ours {
            kill_descendants("a test panicked");
        }
        previous(info);
    }));
}

/// SIGKILLs every live descendant of this process, saying where each was blocked.
fn kill_descendants(why: &str) {
    for pid in descendants(std::process::id() as i32) {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        eprintln!("{why}: killing descendant {pid} (blocked in {wchan:?})");
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Aborts the process (failing the test run) if dropped later than `limit` after creation.
pub struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    /// Starts a watchdog named after the test.
    pub fn new(test: &'static str, limit: Duration) -> Watchdog {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                if d.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("WATCHDOG: test {test} still running after {limit:?}: aborting");
            // Children live in their own process groups, so nothing else would stop them: kill
            // every descendant so that none outlives the run, holding the test harness's output
            // pipe open.
            kill_descendants("WATCHDOG");
            std::process::abort();
        });
        Watchdog { done }
    }
}

/// Every live descendant of `root` (children first), from `/proc/*/stat`.
fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|&&(_, pp)| pp == p).map(|&(c, _)| c));
        i += 1;
    }
    out.remove(0);
    out
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Forks; the child runs `f` and `_exit`s with its return value (101 if it panics). Returns the
/// child's pid in the parent. Hold [`fork_lock`] while calling this.
pub fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: test children only use the crate's shared-memory objects and plain Rust, and leave
    // through `_exit`; FORK_LOCK keeps other forking tests out. glibc's malloc is fork-safe.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: _exit is always safe; it skips the test harness's exit path.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// How a forked child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// Waits for `pid` (blocking; a [`Watchdog`] bounds it).
pub fn wait_child(pid: libc::pid_t) -> Ended {
    let mut status = 0;
    loop {
        // SAFETY: `status` is writable; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "waitpid: {e}");
    }
    if libc::WIFEXITED(status) {
        Ended::Code(libc::WEXITSTATUS(status))
    } else {
        Ended::Signal(libc::WTERMSIG(status))
    }
}

/// Waits (up to 10 s) until process `pid` sleeps in a futex wait: how a test knows that a
/// child reached its blocking call, instead of sleeping a guessed while. Panics otherwise.
#[allow(dead_code)] // not every test binary uses it
pub fn until_in_futex(pid: u32) {
    let t = std::time::Instant::now();
    loop {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.contains("futex") {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "process {pid} never blocked in a futex (wchan {wchan:?})");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// This thread's id (for [`until_asleep`] run from another thread or a forked child).
#[allow(dead_code)] // not every test binary uses it
pub fn this_thread() -> (u32, u32) {
    // SAFETY: gettid has no arguments and cannot fail.
    (std::process::id(), unsafe { libc::gettid() } as u32)
}

/// Waits (up to 10 s) until thread `tid` of process `pid` sleeps in the kernel (state `S`
/// with a wait channel): how a waker knows that the other side reached its blocking call, so
/// that a test of a wake-up tests the wake-up and not, on a loaded machine, the fast path.
/// Panics otherwise.
#[allow(dead_code)] // not every test binary uses it
pub fn until_asleep((pid, tid): (u32, u32)) {
    let t = std::time::Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses and may hold spaces.
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).unwrap_or_default();
        if state == Some('S') && !wchan.is_empty() && wchan != "0" {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "thread {tid} of {pid} never blocked (state {state:?})");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends SIGKILL to `pid`.
pub fn sigkill(pid: libc::pid_t) {
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// A small deterministic PRNG (xorshift64*) for randomized tests, seeded from the time unless
/// `MULTIPROC_TEST_SEED` is set; the seed is printed so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    /// A new generator; prints its seed.
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("MULTIPROC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("{test}: MULTIPROC_TEST_SEED={seed}");
        Rng(seed)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// Names of the `/dev/shm` entries that carry this crate's segment header: tests compare them
/// before and after to prove nothing leaked.
pub fn our_named_segments() -> Vec<String> {
    multiproc::list_named().unwrap_or_default().into_iter().map(|s| s.name).collect()
}

/// How long "at once" may take in a test's assertion: generous, because a loaded 2-CPU machine
/// can delay any thread by hundreds of milliseconds. Tests never assert speed with it, only that
/// a call did not wait for a timeout or a slice many times longer.
pub const AT_ONCE: Duration = Duration::from_millis(500);

/// What a multi-process test holds: the fork lock and a watchdog named after the test.
pub struct Guard {
    _wd: Watchdog,
    _fork: MutexGuard<'static, ()>,
}

/// The fork lock and a 60 s watchdog named after the running test (libtest names each test's
/// thread after it).
pub fn guard() -> Guard {
    guard_for(Duration::from_secs(60))
}

/// [`guard`] with another watchdog limit.
pub fn guard_for(limit: Duration) -> Guard {
    let fork = fork_lock();
    let name: &'static str = Box::leak(std::thread::current().name().unwrap_or("a test").to_string().into_boxed_str());
    Guard { _wd: Watchdog::new(name, limit), _fork: fork }
}

/// Seconds a chaos test runs: `MULTIPROC_CHAOS_SECS`, or `default` (a few seconds, so that
/// `cargo test` stays quick; set it higher for a long run).
pub fn chaos_secs(default: u64) -> Duration {
    Duration::from_secs(std::env::var("MULTIPROC_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default))
}

/// The start method the pool tests use: `MULTIPROC_TEST_POOL_METHOD` (`fork`, `spawn` or
/// `forkserver`; default `fork`). `tests/pool.rs` runs itself again under the other two, so
/// the same pool tests cover every method.
#[allow(dead_code)] // only the pool tests use it
#[cfg(feature = "serde")]
pub fn pool_method() -> multiproc::StartMethod {
    match std::env::var("MULTIPROC_TEST_POOL_METHOD").as_deref() {
        Ok("spawn") => multiproc::StartMethod::Spawn,
        Ok("forkserver") => multiproc::StartMethod::ForkServer,
        _ => multiproc::StartMethod::Fork,
    }
}

/// `Pool::builder()` with [`pool_method`].
#[allow(dead_code)]
#[cfg(feature = "serde")]
pub fn pool_builder() -> multiproc::PoolBuilder {
    multiproc::Pool::builder().start_method(pool_method())
}

/// `Pool::new(n)` with [`pool_method`].
#[allow(dead_code)]
#[cfg(feature = "serde")]
pub fn pool_new(n: usize) -> Result<multiproc::Pool, multiproc::PoolError> {
    pool_builder().processes(n).build()
}

/// A pool input that encodes as its number, except two: [`Picky::REFUSED`] fails to encode
/// (its `Serialize` returns an error) and [`Picky::PANICS`] panics while encoding.
#[allow(dead_code)]
#[cfg(feature = "serde")]
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Picky(pub u64);

#[allow(dead_code)]
#[cfg(feature = "serde")]
impl Picky {
    /// The number that refuses to be encoded.
    pub const REFUSED: u64 = 999;
    /// The number whose encoding panics.
    pub const PANICS: u64 = 4_999;
}

#[cfg(feature = "serde")]
impl serde::Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        assert_ne!(self.0, Picky::PANICS, "Picky panics");
        if self.0 == Picky::REFUSED {
            return Err(serde::ser::Error::custom("Picky refuses"));
        }
        s.serialize_u64(self.0)
    }
}

/// A pool task over a [`Picky`]: its number.
#[allow(dead_code)]
#[cfg(feature = "serde")]
pub fn unpick(p: Picky) -> u64 {
    p.0
}
