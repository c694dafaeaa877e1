//! [`Builder`]: a [`Process`]'s name, daemon flag and process group.

use super::current::{lock, ME};
use super::handle::{Inner, Process, State, Target};
use super::{ChildOutcome, ProcessError, MAX_NAME_LEN};
use std::sync::{Arc, Mutex};

/// Sets a [`Process`]'s name, daemon flag and process group before it is made.
///
/// # Examples
///
/// ```
/// use multiproc::Process;
///
/// let p = Process::builder().name("w").daemon(false).process_group(true).target(|| ())?;
/// assert_eq!((p.name(), p.is_daemon()), ("w", false));
/// p.start()?;
/// p.join()?;
/// # Ok::<(), multiproc::ProcessError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    daemon: Option<bool>,
    group: bool,
}

impl Builder {
    /// The process name (default `Process-<n>`, `n` counting this process's children; in a
    /// child `Process-<parent's n>:<n>`, as in Python). At most [`MAX_NAME_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().name("SomeProcess").target(|| ())?;
    /// assert_eq!(p.name(), "SomeProcess");
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Whether the child is daemonic (default: the creator's own flag, so `false` in main).
    /// A daemonic child gets `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`; strictly, when
    /// the parent **thread** that started it ends) and may not start children.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().daemon(true).target(|| ())?;
    /// assert!(p.is_daemon());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = Some(daemon);
        self
    }

    /// Whether the child leads a new process group (default `false`), which its descendants
    /// inherit, so that [`Process::terminate_tree`]/[`Process::kill_tree`] reach them all.
    ///
    /// The group is set in both parent and child (no race with an early `kill_tree`). A child
    /// in its own group no longer gets the terminal's Ctrl-C (SIGINT goes to the foreground
    /// group only): make it a daemon if it must not outlive you.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().process_group(true).start(|| std::thread::sleep(std::time::Duration::from_secs(60)))?;
    /// p.kill_tree()?;
    /// assert_eq!(p.join()?.exitcode(), -9);
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn process_group(mut self, own_group: bool) -> Builder {
        self.group = own_group;
        self
    }

    /// Makes the (unstarted) process that will run `f`.
    ///
    /// # Errors
    /// [`ProcessError::NameTooLong`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().target(|| ())?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn target<F, R>(self, f: F) -> Result<Process, ProcessError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        if let Some(n) = &self.name {
            if n.len() > MAX_NAME_LEN {
                return Err(ProcessError::NameTooLong { len: n.len() });
            }
        }
        let (name, number, daemon) = {
            let mut me = lock(&ME);
            me.counter += 1;
            let name = self.name.unwrap_or_else(|| {
                let mut n = String::from("Process-");
                for id in me.identity.iter().chain(std::iter::once(&me.counter)) {
                    if n.len() > "Process-".len() {
                        n.push(':');
                    }
                    n.push_str(&id.to_string());
                }
                n
            });
            (name, me.counter, self.daemon.unwrap_or(me.daemon))
        };
        let target: Target = Box::new(move || f().into_exit());
        let state = State { target: Some(target), ..State::default() };
        Ok(Process { inner: Arc::new(Inner { name, number, daemon, group: self.group, state: Mutex::new(state) }) })
    }

    /// [`target`](Self::target) then [`Process::start`].
    ///
    /// # Errors
    /// Those of both.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiproc::Process::builder().start(|| ())?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), multiproc::ProcessError>(())
    /// ```
    pub fn start<F, R>(self, f: F) -> Result<Process, ProcessError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildOutcome,
    {
        let p = self.target(f)?;
        p.start()?;
        Ok(p)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn name_limit() {
        assert!(matches!(
            Process::builder().name("x".repeat(MAX_NAME_LEN + 1)).target(|| ()),
            Err(ProcessError::NameTooLong { len }) if len == MAX_NAME_LEN + 1
        ));
        assert!(Process::builder().name("x".repeat(MAX_NAME_LEN)).target(|| ()).is_ok());
    }
}
