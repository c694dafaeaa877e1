//! How a child ended ([`ExitStatus`]) and what its closure may return ([`ChildOutcome`]).

use super::report::Kind;
use crate::sys::process as sys;
use std::fmt;

/// How a child ended, and why it failed if it did.
///
/// | child did                          | `exitcode()` | `code()`  | `signal()` | `message()`                  |
/// |------------------------------------|--------------|-----------|------------|------------------------------|
/// | returned `()` / `Ok(())`           | 0            | `Some(0)` | `None`     | `None`                       |
/// | returned `n: i32`                  | `n & 0xff`   | `Some(..)`| `None`     | `None`                       |
/// | returned `Err(e)`                  | 1            | `Some(1)` | `None`     | `Some(e.to_string())`        |
/// | panicked                           | 1            | `Some(1)` | `None`     | `Some("panicked at …: msg")` |
/// | `std::process::exit(8)`            | 8            | `Some(8)` | `None`     | `None`                       |
/// | killed by signal N                 | −N           | `None`    | `Some(N)`  | `None`                       |
///
/// The message comes from the child's shared report area and is untrusted: a child killed
/// while writing it may leave a cut or garbled text (never more than about 4 KiB; longer texts
/// are cut and end with `…`).
///
/// # Examples
///
/// ```
/// use multiproc::Process;
///
/// let p = Process::new(|| -> () { panic!("boom") }); // a closure that never returns needs `-> ()`
/// p.start()?;
/// let s = p.join()?;
/// assert_eq!((s.exitcode(), s.code(), s.signal(), s.success()), (1, Some(1), None, false));
/// assert!(s.panicked() && s.message().unwrap().ends_with("boom"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    pub(super) ended: sys::WaitStatus,
    pub(super) failure: Option<(Kind, String)>,
}

impl ExitStatus {
    /// The exit code if the child exited (0–255), `None` if a signal killed it.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| 3);
    /// p.start()?;
    /// assert_eq!(p.join()?.code(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn code(&self) -> Option<i32> {
        match self.ended {
            sys::WaitStatus::Exited(c) => Some(c),
            sys::WaitStatus::Signaled(_) => None,
        }
    }

    /// The signal that killed the child, if one did.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// p.kill()?;
    /// assert_eq!(p.join()?.signal(), Some(9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signal(&self) -> Option<i32> {
        match self.ended {
            sys::WaitStatus::Exited(_) => None,
            sys::WaitStatus::Signaled(s) => Some(s),
        }
    }

    /// Python's `exitcode`: the exit code, or −N for signal N.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// p.terminate()?;
    /// assert_eq!(p.join()?.exitcode(), -15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exitcode(&self) -> i32 {
        match self.ended {
            sys::WaitStatus::Exited(c) => c,
            sys::WaitStatus::Signaled(s) => -s,
        }
    }

    /// Whether the child exited with code 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| ());
    /// p.start()?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn success(&self) -> bool {
        self.ended == sys::WaitStatus::Exited(0)
    }

    /// The child's failure text: the panic message with its location, or the `Display` of the
    /// `Err` the closure returned. `None` if it succeeded, exited through
    /// `std::process::exit`, or was killed before reporting.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| -> Result<(), std::io::Error> { Err(std::io::Error::other("no route")) });
    /// p.start()?;
    /// assert_eq!(p.join()?.message(), Some("no route"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.failure.as_ref().map(|(_, m)| m.as_str())
    }

    /// Whether the failure text comes from a panic (rather than a returned `Err`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| -> Result<(), String> { Err("no".into()) });
    /// p.start()?;
    /// assert!(!p.join()?.panicked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn panicked(&self) -> bool {
        matches!(self.failure, Some((Kind::Panic, _)))
    }

    /// `Ok(())` if the child succeeded, else an [`ExitStatusError`] with this status, so that
    /// `p.join()?.exit_ok()?` propagates a child's failure.
    ///
    /// # Errors
    /// [`ExitStatusError`] unless [`success`](Self::success).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::new(|| 2);
    /// p.start()?;
    /// let err = p.join()?.exit_ok().unwrap_err();
    /// assert_eq!(err.to_string(), "child process failed: exit code 2");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_ok(&self) -> Result<(), ExitStatusError> {
        if self.success() {
            Ok(())
        } else {
            Err(ExitStatusError(self.clone()))
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ended {
            sys::WaitStatus::Exited(c) => write!(f, "exit code {c}")?,
            sys::WaitStatus::Signaled(s) => match signal_name(s) {
                Some(n) => write!(f, "killed by signal {s} ({n})")?,
                None => write!(f, "killed by signal {s}")?,
            },
        }
        if let Some(m) = self.message() {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// What a [`Process`](crate::Process) closure may return, and how it becomes the child's exit status.
///
/// * `()` → exit code 0;
/// * `i32` → that exit code (the kernel keeps the low 8 bits, as for `exit`);
/// * `Result<T, E: Display>` → `T`'s code for `Ok(t)`; exit code 1 and `e.to_string()` as the
///   [failure message](ExitStatus::message) for `Err(e)`.
///
/// A closure that never returns (Python's `while True:` watchdog, or one that always panics or
/// calls `std::process::exit`) must name its return type: `|| -> Infallible { loop { … } }`
/// (or `-> ()`). Its natural type is `!`, which stable Rust does not let a library implement a
/// trait for, and Rust 2024 no longer silently picks `()` for it.
///
/// ```
/// use std::convert::Infallible;
/// let watchdog = multiproc::Process::new(|| -> Infallible {
///     loop {
///         std::thread::sleep(std::time::Duration::from_millis(250));
///     }
/// });
/// watchdog.start()?;
/// watchdog.kill()?;
/// assert_eq!(watchdog.join()?.exitcode(), -9);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Examples
///
/// ```
/// use multiproc::ChildOutcome;
///
/// assert_eq!(().into_exit(), (0, None));
/// assert_eq!(Ok::<i32, String>(4).into_exit(), (4, None));
/// assert_eq!(Err::<(), _>("bad").into_exit(), (1, Some("bad".to_string())));
/// ```
pub trait ChildOutcome {
    /// The exit code, and the failure text for the parent (`None`: nothing to report).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::ChildOutcome;
    /// assert_eq!(7.into_exit(), (7, None));
    /// ```
    fn into_exit(self) -> (i32, Option<String>);
}

impl ChildOutcome for () {
    fn into_exit(self) -> (i32, Option<String>) {
        (0, None)
    }
}

impl ChildOutcome for i32 {
    fn into_exit(self) -> (i32, Option<String>) {
        (self, None)
    }
}

impl ChildOutcome for std::convert::Infallible {
    fn into_exit(self) -> (i32, Option<String>) {
        match self {}
    }
}

impl<T: ChildOutcome, E: fmt::Display> ChildOutcome for Result<T, E> {
    fn into_exit(self) -> (i32, Option<String>) {
        match self {
            Ok(t) => t.into_exit(),
            Err(e) => (1, Some(e.to_string())),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn outcome_mapping() {
        assert_eq!(().into_exit(), (0, None));
        assert_eq!(5.into_exit(), (5, None));
        assert_eq!(Err::<i32, _>("x").into_exit(), (1, Some("x".into())));
        assert_eq!(Ok::<_, String>(Ok::<(), String>(())).into_exit(), (0, None));
    }

    #[test]
    fn status_display() {
        let s = ExitStatus { ended: sys::WaitStatus::Signaled(9), failure: None };
        assert_eq!(s.to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(s.exitcode(), -9);
        let s = ExitStatus { ended: sys::WaitStatus::Exited(1), failure: Some((Kind::Error, "e".into())) };
        assert_eq!(s.to_string(), "exit code 1: e");
    }
}

/// A child that did not succeed, from [`ExitStatus::exit_ok`] (std's `ExitStatusError`).
///
/// # Examples
///
/// ```
/// use multiproc::Process;
///
/// let p = Process::new(|| -> Result<(), String> { Err("no".into()) });
/// p.start()?;
/// let e = p.join()?.exit_ok().unwrap_err();
/// assert_eq!(e.status().message(), Some("no"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExitStatusError(pub(crate) ExitStatus);

impl ExitStatusError {
    /// The status of the child that failed.
    pub fn status(&self) -> &ExitStatus {
        &self.0
    }
}

impl fmt::Display for ExitStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "child process failed: {}", self.0)
    }
}

impl std::error::Error for ExitStatusError {}
