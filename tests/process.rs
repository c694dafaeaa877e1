//! Process (fork start method): PROC-1 … PROC-16, PROC-B1, PROC-B2 (`docs/BEHAVIOURS.md`).
//!
//! Every test forks real children, holds `common::fork_lock()` and a watchdog. Children report
//! back through their exit status, their failure message, or a pipe (for grandchildren, which
//! the test cannot reap).
#![allow(clippy::disallowed_types)] // test code: a plain stop flag
#![allow(clippy::disallowed_methods)] // raw libc in test helpers (pipes, /proc)

mod common;

use common::{fork_lock, Watchdog};
use multiproc::{active_children, cpu_count, current_process, parent_process, JoinError, Process, ProcessError};
use multiproc::{StartError, TryJoinError};
use std::error::Error;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// A pipe whose ends children inherit; closed on drop in the test process.
struct Pipe {
    r: RawFd,
    w: RawFd,
}

impl Pipe {
    fn new() -> Pipe {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a writable array of two ints.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        Pipe { r: fds[0], w: fds[1] }
    }

    /// Writes one line (atomic: shorter than PIPE_BUF).
    fn send(w: RawFd, line: &str) {
        let msg = format!("{line}\n");
        // SAFETY: `msg` is valid for `len` bytes.
        let n = unsafe { libc::write(w, msg.as_ptr().cast(), msg.len()) };
        assert_eq!(n as usize, msg.len());
    }

    /// Reads one line, waiting at most `limit`.
    fn recv(&self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut line = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd { fd: self.r, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) } <= 0 {
                return None;
            }
            let mut b = 0u8;
            // SAFETY: reads one byte into `b`.
            if unsafe { libc::read(self.r, (&mut b as *mut u8).cast(), 1) } != 1 {
                return None;
            }
            if b == b'\n' {
                return Some(String::from_utf8(line).unwrap());
            }
            line.push(b);
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(self.r);
            libc::close(self.w);
        }
    }
}

/// Whether `pid` (not our child) has ended: gone, or a zombie waiting for its new parent.
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) == Some("Z"),
    }
}

fn wait_ended(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ended(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn sleeper() -> Process {
    Process::new(|| std::thread::sleep(Duration::from_secs(100)))
}

#[test]
fn proc_1_before_start() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_1_before_start", LIMIT);
    let p = Process::new(|| ());
    assert!(!p.is_alive());
    assert_eq!(p.pid(), None);
    assert_eq!(p.exitcode(), None);
    assert!(!p.is_daemon());
    assert!(!active_children().iter().any(|c| c.name() == p.name()));
    assert!(matches!(p.join(), Err(JoinError::NotStarted)));
    assert!(matches!(p.try_join(), Err(TryJoinError::NotStarted)));
    assert!(matches!(p.terminate(), Err(ProcessError::NotStarted)));
    assert!(matches!(p.kill(), Err(ProcessError::NotStarted)));
}

#[test]
fn proc_2_after_start() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_2_after_start", LIMIT);
    let p = sleeper();
    p.start().unwrap();
    assert!(p.is_alive());
    let pid = p.pid().unwrap();
    assert!(pid > 0);
    assert!(active_children().iter().any(|c| c.pid() == Some(pid)));
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    p.join().unwrap();
}

#[test]
fn proc_3_name_and_pid_seen_in_child() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_3_name_and_pid_seen_in_child", LIMIT);
    let pipe = Pipe::new();
    let w = pipe.w;
    let args = (1, 2, String::from("hello"));
    let p = Process::builder()
        .name("SomeProcess")
        .target(move || -> Result<(), String> {
            let me = current_process();
            if me.name() != "SomeProcess" || args != (1, 2, "hello".to_string()) {
                return Err(format!("saw name {:?} and args {args:?}", me.name()));
            }
            Pipe::send(w, &me.pid().to_string());
            Ok(())
        })
        .unwrap();
    p.start().unwrap();
    let st = p.join().unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(pipe.recv(Duration::from_secs(5)), Some(p.pid().unwrap().to_string()));
}

#[test]
fn proc_4_normal_return() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_4_normal_return", LIMIT);
    let p = Process::new(|| ());
    p.start().unwrap();
    let pid = p.pid();
    let st = p.join().unwrap();
    assert_eq!((st.exitcode(), st.code(), st.signal(), st.message()), (0, Some(0), None, None));
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    assert!(!active_children().iter().any(|c| c.pid() == pid));
}

#[test]
fn proc_5_default_names() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_5_default_names", LIMIT);
    let a = Process::new(|| ());
    let b = Process::new(|| ());
    let n: u32 = a.name().strip_prefix("Process-").unwrap().parse().unwrap();
    assert_eq!(b.name(), format!("Process-{}", n + 1));
    let named = Process::builder().name("kept").target(|| ()).unwrap();
    assert_eq!(named.name(), "kept");
    // A child numbers its own children after its identity: Process-<n>:1, Process-<n>:2.
    let c = Process::new(|| -> Result<(), String> {
        let me = current_process().name().to_string();
        let x = Process::new(|| ());
        let y = Process::new(|| ());
        if x.name() != format!("{me}:1") || y.name() != format!("{me}:2") {
            return Err(format!("{me} named its children {} and {}", x.name(), y.name()));
        }
        Ok(())
    });
    c.start().unwrap();
    let st = c.join().unwrap();
    assert!(st.success(), "{st}");
}

#[test]
fn proc_6_join_timeouts_on_running_child() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_6_join_timeouts_on_running_child", LIMIT);
    let p = sleeper();
    p.start().unwrap();
    assert!(p.try_join().unwrap_err().is_would_block());
    assert!(p.join_timeout(Duration::ZERO).unwrap_err().is_timeout());
    let t = Instant::now();
    assert!(p.join_timeout(Duration::from_millis(300)).unwrap_err().is_timeout());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(200) && took <= Duration::from_millis(2300), "{took:?}");
    assert!(p.join_deadline(Instant::now()).unwrap_err().is_timeout());
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    assert_eq!(p.join().unwrap().exitcode(), -9);
}

#[test]
fn proc_7_terminate_and_kill_exitcodes() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_7_terminate_and_kill_exitcodes", LIMIT);
    for (sig, code) in [("term", -15), ("kill", -9)] {
        let p = sleeper();
        p.start().unwrap();
        let pid = p.pid();
        if sig == "term" {
            p.terminate().unwrap();
        } else {
            p.kill().unwrap();
        }
        let st = p.join_timeout(Duration::from_secs(10)).expect("prompt");
        assert_eq!(st.exitcode(), code);
        assert_eq!(st.signal(), Some(-code));
        assert_eq!(st.message(), None);
        assert!(!p.is_alive());
        assert!(!active_children().iter().any(|c| c.pid() == pid));
        // Signalling a reaped child is not an error (Python ignores it too).
        p.terminate().unwrap();
        p.kill().unwrap();
    }
}

#[test]
fn proc_8_panic_gives_exitcode_1() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_8_panic_gives_exitcode_1", LIMIT);
    let p = Process::new(|| -> () { panic!("oh no") });
    p.start().unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 1);
    assert!(st.panicked());
}

#[test]
fn proc_9_exit_status_mapping() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_9_exit_status_mapping", LIMIT);
    let cases: Vec<(Process, i32, Option<&str>)> = vec![
        (Process::new(|| -> () { std::process::exit(8) }), 8, None),
        (Process::new(|| -> () { std::process::exit(0) }), 0, None),
        (Process::new(|| 3), 3, None),
        (Process::new(|| true as i32), 1, None),
        (Process::new(|| Ok::<(), String>(())), 0, None),
        (Process::new(|| Err::<(), _>("ignore this")), 1, Some("ignore this")),
        (Process::new(|| Err::<(), _>(format!("{:?}", [1, 2, 3]))), 1, Some("[1, 2, 3]")),
    ];
    for (p, code, msg) in cases {
        p.start().unwrap();
        let st = p.join().unwrap();
        assert_eq!((st.code(), st.message()), (Some(code), msg), "{}", p.name());
        assert!(!st.panicked());
    }
}

#[test]
fn proc_10_sentinel() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_10_sentinel", LIMIT);
    let p = Process::new(|| std::thread::sleep(Duration::from_millis(200)));
    assert!(matches!(p.sentinel(), Err(ProcessError::NotStarted)));
    p.start().unwrap();
    let s = p.sentinel().unwrap();
    let poll = |ms: i32| {
        let mut pfd = libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, ms) }
    };
    assert_eq!(poll(0), 0, "not ready while the child runs");
    assert_eq!(poll(10_000), 1, "ready once the child has ended");
    assert!(p.join().unwrap().success());
    assert_eq!(poll(0), 1, "still ready after the join");
}

#[test]
fn proc_11_close() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_11_close", LIMIT);
    let p = sleeper();
    p.start().unwrap();
    assert!(matches!(p.close(), Err(ProcessError::StillRunning)));
    p.terminate().unwrap();
    p.join().unwrap();
    p.close().unwrap();
    assert!(!p.is_alive());
    assert!(matches!(p.join(), Err(JoinError::Closed)));
    assert!(matches!(p.terminate(), Err(ProcessError::Closed)));
    assert!(matches!(p.sentinel(), Err(ProcessError::Closed)));
    assert!(matches!(p.start(), Err(StartError::Closed)));
    p.close().unwrap(); // a second close is a no-op
    Process::new(|| ()).close().unwrap(); // closing an unstarted process is fine
}

#[test]
fn proc_12_start_twice() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_12_start_twice", LIMIT);
    let p = Process::new(|| ());
    p.start().unwrap();
    let e = p.start().unwrap_err();
    assert!(matches!(e, StartError::AlreadyStarted));
    assert_eq!(e.to_string(), "cannot start a process twice");
    assert!(p.join().unwrap().success());
    assert!(matches!(p.start(), Err(StartError::AlreadyStarted)));
}

#[test]
fn proc_13_daemon_flag_and_no_children() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_13_daemon_flag_and_no_children", LIMIT);
    assert!(Process::builder().daemon(true).target(|| ()).unwrap().is_daemon());
    assert!(!Process::builder().daemon(false).target(|| ()).unwrap().is_daemon());
    let p = Process::builder()
        .daemon(true)
        .start(|| -> Result<(), StartError> {
            assert!(current_process().is_daemon());
            let child = Process::new(|| ());
            assert!(child.is_daemon(), "inherits the creator's flag");
            child.start()
        })
        .unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 1);
    assert_eq!(st.message(), Some("daemonic processes are not allowed to have children"));
}

#[test]
fn proc_13_daemon_dies_with_parent() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_13_daemon_dies_with_parent", LIMIT);
    let pipe = Pipe::new();
    let w = pipe.w;
    let middle = Process::new(move || -> Result<(), Box<dyn Error>> {
        let d = Process::builder().daemon(true).start(|| std::thread::sleep(Duration::from_secs(100)))?;
        Pipe::send(w, &d.pid().unwrap().to_string());
        Ok(()) // leaves without joining the daemon
    });
    middle.start().unwrap();
    let daemon: u32 = pipe.recv(Duration::from_secs(10)).unwrap().parse().unwrap();
    assert!(middle.join().unwrap().success());
    assert!(wait_ended(daemon, Duration::from_secs(10)), "daemon {daemon} outlived its parent");
}

#[test]
fn proc_14_current_and_parent_process() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_14_current_and_parent_process", LIMIT);
    let me = current_process();
    assert_eq!((me.name(), me.pid(), me.is_daemon(), me.is_alive()), ("MainProcess", std::process::id(), false, true));
    assert!(parent_process().is_none());
    let ppid = std::process::id();
    let p = Process::builder()
        .name("middle")
        .start(move || -> Result<(), String> {
            let parent = parent_process().ok_or("no parent")?;
            if parent.pid() != ppid || parent.name() != "MainProcess" || !parent.is_alive() {
                return Err(format!("parent {} {:?} alive={}", parent.pid(), parent.name(), parent.is_alive()));
            }
            let inner = Process::new(|| {
                let p = parent_process().unwrap();
                (p.name() != "middle") as i32
            });
            inner.start().map_err(|e| e.to_string())?;
            inner.join().map_err(|e| e.to_string())?.exit_ok().map_err(|e| e.to_string())
        })
        .unwrap();
    let st = p.join().unwrap();
    assert!(st.success(), "{st}");
}

#[test]
fn proc_14_grandchild_observes_parent_death() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_14_grandchild_observes_parent_death", LIMIT);
    let pipe = Pipe::new();
    let w = pipe.w;
    let middle = Process::new(move || -> Result<(), Box<dyn Error>> {
        let _gc = Process::builder().start(move || {
            let parent = parent_process().unwrap();
            Pipe::send(w, if parent.is_alive() { "alive" } else { "not alive" });
            match parent.join_timeout(Duration::from_secs(15)) {
                Ok(()) if !parent.is_alive() => Pipe::send(w, "not alive"),
                _ => Pipe::send(w, "still alive?"),
            }
        })?;
        std::thread::sleep(Duration::from_secs(100));
        Ok(())
    });
    middle.start().unwrap();
    assert_eq!(pipe.recv(Duration::from_secs(10)).as_deref(), Some("alive"));
    middle.terminate().unwrap();
    assert_eq!(middle.join().unwrap().exitcode(), -15);
    assert_eq!(pipe.recv(Duration::from_secs(10)).as_deref(), Some("not alive"));
}

fn recurse(w: RawFd, id: Vec<u32>) -> Result<(), Box<dyn Error>> {
    Pipe::send(w, &format!("{id:?}"));
    if id.len() < 2 {
        for i in 0..2 {
            let mut next = id.clone();
            next.push(i);
            let p = Process::new(move || recurse(w, next));
            p.start()?;
            p.join()?.exit_ok()?;
        }
    }
    Ok(())
}

#[test]
fn proc_15_nested_and_many() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_15_nested_and_many", LIMIT);
    let pipe = Pipe::new();
    recurse(pipe.w, vec![]).unwrap();
    let got: Vec<String> = (0..7).map(|_| pipe.recv(Duration::from_secs(5)).unwrap()).collect();
    assert_eq!(got, ["[]", "[0]", "[0, 0]", "[0, 1]", "[1]", "[1, 0]", "[1, 1]"]);

    let short: Vec<Process> =
        (0..100).map(|_| Process::new(|| std::thread::sleep(Duration::from_millis(10)))).collect();
    for p in &short {
        p.start().unwrap();
    }
    for p in &short {
        assert_eq!(p.join().unwrap().exitcode(), 0);
    }
    let long: Vec<Process> = (0..100).map(|_| sleeper()).collect();
    for p in &long {
        p.start().unwrap();
    }
    std::thread::sleep(Duration::from_millis(1));
    for p in &long {
        p.terminate().unwrap();
    }
    for p in &long {
        assert_eq!(p.join().unwrap().exitcode(), -15);
    }
    assert!(active_children().is_empty());
}

#[test]
fn proc_16_closed_stdio_still_exits_zero() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_16_closed_stdio_still_exits_zero", LIMIT);
    let p = Process::new(|| {
        use std::io::Write;
        // SAFETY: closes this child's own stdout and stderr descriptors.
        unsafe {
            libc::close(1);
            libc::close(2);
        }
        let _ = std::io::stdout().write_all(b"into the void");
        let _ = std::io::stderr().write_all(b"into the void");
    });
    p.start().unwrap();
    assert_eq!(p.join().unwrap().exitcode(), 0);
}

#[test]
fn proc_b1_kill_tree_takes_grandchild() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_b1_kill_tree_takes_grandchild", LIMIT);
    let spawn = |group: bool| {
        let pipe = Pipe::new();
        let w = pipe.w;
        let middle = Process::builder()
            .process_group(group)
            .start(move || -> Result<(), Box<dyn Error>> {
                let gc = Process::new(|| std::thread::sleep(Duration::from_secs(100)));
                gc.start()?;
                Pipe::send(w, &gc.pid().unwrap().to_string());
                std::thread::sleep(Duration::from_secs(100));
                Ok(())
            })
            .unwrap();
        let gc: u32 = pipe.recv(Duration::from_secs(10)).unwrap().parse().unwrap();
        (middle, gc)
    };
    // Python's behaviour with a plain kill(): the grandchild is orphaned and keeps running.
    let (middle, gc) = spawn(true);
    middle.kill().unwrap();
    assert_eq!(middle.join().unwrap().exitcode(), -9);
    // An absence (the grandchild still runs) is observed over a while: not synchronisation.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!ended(gc), "a plain kill() only reaches the child");
    // kill_tree() after the reap still reaches the orphan through the group.
    middle.kill_tree().unwrap();
    assert!(wait_ended(gc, Duration::from_secs(10)));

    // kill_tree() on a live child takes the whole tree at once.
    let (middle, gc) = spawn(true);
    middle.kill_tree().unwrap();
    assert_eq!(middle.join().unwrap().exitcode(), -9);
    assert!(wait_ended(gc, Duration::from_secs(10)), "grandchild {gc} left behind");

    // Without a group of its own there is no tree to kill.
    let p = sleeper();
    p.start().unwrap();
    assert!(matches!(p.kill_tree(), Err(ProcessError::NoProcessGroup)));
    p.kill().unwrap();
    p.join().unwrap();
}

#[test]
fn proc_b2_panic_message_reaches_parent() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_b2_panic_message_reaches_parent", LIMIT);
    let p = Process::new(|| -> () {
        let v: Vec<u32> = Vec::new();
        panic!("index {} out of {}", 7, v.len())
    });
    p.start().unwrap();
    let st = p.join().unwrap();
    let msg = st.message().unwrap();
    assert!(st.panicked());
    assert!(msg.starts_with("panicked at tests/process.rs:"), "{msg}");
    assert!(msg.ends_with(": index 7 out of 0"), "{msg}");
    assert!(st.to_string().starts_with("exit code 1: panicked at"), "{st}");
    assert!(matches!(st.exit_ok(), Err(e) if *e.status() == st));

    // An Err's Display, and a huge message cut to the report area.
    let p = Process::new(|| Err::<(), _>(std::io::Error::other("x".repeat(100_000))));
    p.start().unwrap();
    let st = p.join().unwrap();
    let msg = st.message().unwrap();
    assert!(msg.len() <= 4096 && msg.ends_with('…') && msg.starts_with("xxxx"), "{}", msg.len());

    // A panic the target caught itself leaves no report.
    let p = Process::new(|| {
        let _ = std::panic::catch_unwind(|| -> () { panic!("caught") });
    });
    p.start().unwrap();
    let st = p.join().unwrap();
    assert_eq!((st.exitcode(), st.message()), (0, None));

    // Recycled report areas carry no stale text.
    for i in 0..40 {
        let p = Process::new(move || if i % 2 == 0 { Err(format!("n{i}")) } else { Ok(()) });
        p.start().unwrap();
        let st = p.join().unwrap();
        assert_eq!(st.message().map(str::to_string), (i % 2 == 0).then(|| format!("n{i}")));
    }

    // A grandchild forked from the child's thread does not write the child's report.
    let pipe = Pipe::new();
    let w = pipe.w;
    let p = Process::new(move || {
        let gc = common::fork_child(|| -> i32 { panic!("grandchild") });
        assert_eq!(common::wait_child(gc), common::Ended::Code(101));
        Pipe::send(w, "done");
        std::thread::sleep(Duration::from_secs(100));
    });
    p.start().unwrap();
    assert_eq!(pipe.recv(Duration::from_secs(10)).as_deref(), Some("done"));
    p.kill().unwrap();
    assert_eq!(p.join().unwrap().message(), None);

    // Killed at any point: the signal, no message.
    let p = sleeper();
    p.start().unwrap();
    p.kill().unwrap();
    assert_eq!(p.join().unwrap().message(), None);
}

#[test]
fn proc_misc_errors() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_misc_errors", LIMIT);
    let name = "n".repeat(multiproc::MAX_NAME_LEN + 1);
    assert!(matches!(Process::builder().name(name).target(|| ()), Err(StartError::NameTooLong { len: 256 })));
    assert!(cpu_count() >= 1);
    // A handle inherited through fork cannot wait for its sibling.
    let sib = sleeper();
    sib.start().unwrap();
    let s2 = sib.clone();
    let p = Process::new(move || match s2.join() {
        Err(JoinError::NotOurChild) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    p.start().unwrap();
    let st = p.join().unwrap();
    assert!(st.success(), "{st}");
    // Joining twice gives the same cached status; clones share it.
    sib.kill().unwrap();
    let a = sib.join().unwrap();
    assert_eq!(sib.clone().join().unwrap(), a);
    // Dropped unjoined handles are reaped by active_children().
    let d = Process::new(|| ());
    d.start().unwrap();
    let pid = d.pid().unwrap();
    drop(d);
    let t = Instant::now();
    while active_children().iter().any(|c| c.pid() == Some(pid)) {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn proc_fork_while_another_thread_holds_stdout() {
    use std::io::Write;
    let _f = fork_lock();
    let _w = Watchdog::new("proc_fork_while_another_thread_holds_stdout", LIMIT);
    let (tx, rx) = std::sync::mpsc::channel();
    let printer = std::thread::spawn(move || {
        let out = std::io::stdout().lock();
        tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(out);
    });
    rx.recv().unwrap();
    // start() waits for the lock instead of forking a child in which stdout stays locked.
    let p = Process::new(|| {
        let _ = std::io::stdout().write_all(b"");
        let _ = std::io::stdout().flush();
    });
    p.start().unwrap();
    let st = p.join_timeout(Duration::from_secs(10));
    if st.is_err() {
        p.kill().unwrap();
    }
    printer.join().unwrap();
    assert_eq!(st.map(|s| s.exitcode()).ok(), Some(0), "the child hung on a lock held at fork time");
}

#[test]
fn proc_concurrent_joins_agree() {
    let _f = fork_lock();
    let _w = Watchdog::new("proc_concurrent_joins_agree", LIMIT);
    let p = Process::new(|| {
        std::thread::sleep(Duration::from_millis(100));
        Err::<(), _>("done")
    });
    p.start().unwrap();
    let joiners: Vec<_> = (0..4)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || match i {
                0 => p.join().unwrap(),
                1 => p.join_timeout(Duration::from_secs(10)).unwrap(),
                2 => loop {
                    match p.try_join() {
                        Ok(s) => break s,
                        Err(e) => assert!(e.is_would_block(), "{e}"),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                },
                _ => loop {
                    let _ = active_children();
                    if !p.is_alive() {
                        break p.join().unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(5));
                },
            })
        })
        .collect();
    let statuses: Vec<_> = joiners.into_iter().map(|j| j.join().unwrap()).collect();
    for s in &statuses {
        assert_eq!((s.exitcode(), s.message()), (1, Some("done")));
    }
}

/// A thread panicking (and catching) in a loop holds std's panic-hook lock again and again. A
/// child forked while it holds it must still run its closure: the child's start path touches no
/// lock another thread may hold (the crate's hook is installed before the fork and only armed in
/// the child). It used to hang before its closure by the 7th fork, every run.
#[test]
fn proc_fork_while_another_thread_panics() {
    let _g = common::guard_for(Duration::from_secs(120));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Named `multiproc-*` so that the test harness's panic reaper ignores its panics.
    let panicker = std::thread::Builder::new()
        .name("multiproc-test-panicker".into())
        .spawn({
            let stop = stop.clone();
            move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::panic::catch_unwind(|| panic!("deliberate panic {n}"));
                    n += 1;
                }
                n
            }
        })
        .unwrap();
    for i in 0..200 {
        let p = Process::new(move || i % 3);
        p.start().unwrap();
        match p.join_timeout(Duration::from_secs(10)) {
            Ok(s) => assert_eq!(s.exitcode(), i % 3, "child {i}"),
            Err(e) => {
                assert!(e.is_timeout(), "{e}");
                let _ = p.kill();
                panic!("child {i} never ran its closure (blocked on a lock inherited from the fork)");
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let panics = panicker.join().unwrap();
    assert!(panics > 0, "the other thread never panicked");
}

/// `Duration::MAX` means "no deadline" for `join_timeout` too.
#[test]
fn proc_join_with_max_timeout_waits() {
    let _g = common::guard();
    let p = Process::new(|| std::thread::sleep(Duration::from_millis(30)));
    p.start().unwrap();
    assert!(p.join_timeout(Duration::MAX).is_ok_and(|s| s.success()));
}
