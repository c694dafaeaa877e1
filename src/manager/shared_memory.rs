//! `SharedMemoryManager`: Python's `multiprocessing.managers.SharedMemoryManager`, segments
//! that die with their manager (SHM-11, SHM-12 and SHM-B2 in `docs/BEHAVIOURS.md`).
//!
//! # How it works
//!
//! [`SharedMemoryManager::start`] forks a *keeper*: a small process that only remembers names.
//! Every [`shared_memory`](SharedMemoryManager::shared_memory) or
//! [`shareable_list`](SharedMemoryManager::shareable_list) call, in the starting process or in
//! a child it forked, first tells the keeper the new name (through a shared [`Queue`]), then
//! creates the segment and marks it persistent, so dropping the returned handle does not remove
//! it: as in Python, it lives until the manager stops. The keeper removes every name it was
//! told when
//! * [`shutdown`](SharedMemoryManager::shutdown) is called, or the starting process drops its
//!   last handle (the queue is shut down; the keeper drains it, then cleans up), or
//! * the starting process dies, however it dies: the keeper holds a pidfd of it and wakes
//!   when it ends. Python's manager cannot do this: a `SharedMemoryManager` whose owner is
//!   killed leaks every segment it made.
//!
//! Telling the keeper *before* creating leaves no window in which a segment exists that the
//! keeper does not know of; a segment whose creation raced the end of the manager is removed by
//! its maker, which looks at the manager again once the segment exists. The starter's death
//! ends the manager too: a child of it that makes a segment afterwards gets `ServerGone`. A keeper that is itself killed cleans nothing: the segments then
//! stay until `multiproc shm clean` (or [`Segment::clean_stale`]) removes them once their
//! creators have ended.

use super::{ManagerError, ManagerStartError};
use crate::{wait, Process, PutError, Queue, Segment, ShareableItem, ShareableList, SharedMemory, ShmError};
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// What the keeper is told.
#[derive(Debug, Serialize, Deserialize)]
enum Note {
    /// A segment of this name is about to be created: remove it at the end.
    Made(String),
}

/// A manager of shared-memory segments (Python's `SharedMemoryManager`): every segment made
/// through it is removed when the manager stops, or when the process that started it dies.
///
/// Cheap to clone; a child forked after [`start`](Self::start) may make segments through its
/// copy, and spawned children receive it as an argument (it is plain data). Only the starting
/// process's handles stop it.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, SharedMemory, SharedMemoryManager};
///
/// let smm = SharedMemoryManager::start()?;
/// let shm = smm.shared_memory(128)?;
/// let sl = smm.shareable_list([1.into(), "two".into()])?;
/// let name = shm.name().unwrap().to_owned();
/// let child = Process::new(move || SharedMemory::open(&name)?.write_at(0, b"hi"));
/// child.start()?;
/// child.join()?.exit_ok()?;
/// let mut buf = [0u8; 2];
/// shm.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hi");
/// let (shm_name, sl_name) = (shm.name().unwrap().to_owned(), sl.name().unwrap().to_owned());
/// smm.shutdown()?;
/// assert!(SharedMemory::open(&shm_name).is_err(), "gone with the manager");
/// assert!(multiproc::ShareableList::open(&sl_name).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct SharedMemoryManager {
    notes: Queue<Note>,
    /// The keeper's pid: part of every name, so names of two managers never meet.
    keeper_pid: u32,
    #[serde(skip)]
    owner: Option<Arc<Owner>>,
}

impl std::fmt::Debug for SharedMemoryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemoryManager")
            .field("keeper_pid", &self.keeper_pid)
            .field("owner", &self.owner.is_some())
            .finish()
    }
}

/// The keeper this process started: stopped when the last handle drops (in this process;
/// copies in forked children do nothing).
struct Owner {
    keeper: Process,
    notes: Queue<Note>,
    pid: u32,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if std::process::id() == self.pid {
            self.notes.shutdown();
            let _ = self.keeper.join();
        }
    }
}

/// Numbers the segments this process makes (with the pid, unique on the host). Process-local,
/// never shared: a `core` atomic (loom's cannot live in statics).
#[allow(clippy::disallowed_types)]
static SEQ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

impl SharedMemoryManager {
    /// Starts the keeper (Python's `SharedMemoryManager().start()`).
    ///
    /// # Errors
    /// [`ManagerError::Start`]: the keeper's queue could not be made
    /// ([`ManagerStartError::Setup`]), this process could not be watched
    /// ([`ManagerStartError::Os`]), or the keeper did not start ([`ManagerStartError::Process`],
    /// for example from a daemonic process, which may not have children).
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::start()?;
    /// smm.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start() -> Result<SharedMemoryManager, ManagerError> {
        let fail = |e| ManagerError::Start(e);
        let notes = Queue::<Note>::new().map_err(|e| fail(ManagerStartError::Setup(e)))?;
        // A pidfd of this process, inherited by the keeper: readable once this process ends.
        let me = crate::sys::process::pidfd_open(std::process::id() as libc::pid_t)
            .map_err(|e| fail(ManagerStartError::Os(e)))?;
        let keeper = Process::builder()
            .name("SharedMemoryManager")
            .target({
                let notes = notes.clone();
                move || keep(notes, me)
            })
            .map_err(|e| fail(ManagerStartError::Process(e)))?;
        keeper.start().map_err(|e| fail(ManagerStartError::Process(e)))?;
        let keeper_pid = keeper.pid().unwrap_or(0);
        let owner = Owner { keeper, notes: notes.clone(), pid: std::process::id() };
        Ok(SharedMemoryManager { notes, keeper_pid, owner: Some(Arc::new(owner)) })
    }

    /// A new segment of `size` bytes that lives until the manager stops (Python's
    /// `smm.SharedMemory(size)`). Its name ([`SharedMemory::name`]) opens it in any process.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`] once the manager has stopped; [`ManagerError::Shm`] if the
    /// segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::start()?;
    /// let shm = smm.shared_memory(64)?;
    /// assert_eq!(shm.len(), 64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shared_memory(&self, size: usize) -> Result<SharedMemory, ManagerError> {
        self.make(|name| SharedMemory::create(name, size).inspect(SharedMemory::persist))
    }

    /// A new [`ShareableList`] holding `items` that lives until the manager stops (Python's
    /// `smm.ShareableList(sequence)`).
    ///
    /// # Errors
    /// As [`shared_memory`](Self::shared_memory).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ShareableItem, SharedMemoryManager};
    ///
    /// let smm = SharedMemoryManager::start()?;
    /// let sl = smm.shareable_list([ShareableItem::Int(1), ShareableItem::None])?;
    /// assert_eq!(sl.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shareable_list(
        &self,
        items: impl IntoIterator<Item = ShareableItem>,
    ) -> Result<ShareableList, ManagerError> {
        let items: Vec<ShareableItem> = items.into_iter().collect();
        self.make(|name| ShareableList::create(name, items.iter().cloned()).inspect(ShareableList::persist))
    }

    /// Stops the manager: every segment made through it is removed (Python's `shutdown()`).
    /// Called in the starting process, it returns once the keeper has removed them; elsewhere,
    /// once the keeper has been told. Later calls to make a segment fail with `ServerGone`.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for a keeper that must be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::start()?;
    /// let name = smm.shared_memory(8)?.name().unwrap().to_owned();
    /// smm.shutdown()?;
    /// assert!(multiproc::SharedMemory::open(&name).is_err());
    /// assert!(smm.shared_memory(8).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) -> Result<(), ManagerError> {
        self.notes.shutdown();
        if let Some(o) = self.owner.as_ref().filter(|o| o.pid == std::process::id()) {
            // The keeper drains the notes, removes every name and exits.
            let _ = o.keeper.join();
        }
        Ok(())
    }

    /// Tells the keeper a fresh name, then makes the segment under it with `create` (which
    /// also makes it persistent: the manager removes it, not the handle).
    ///
    /// A shutdown (or the starter's death) can come between the note and the creation: the
    /// keeper then removes the name before it exists. So the queue is looked at again once the
    /// segment exists, and a segment made too late is removed here.
    fn make<T>(&self, create: impl Fn(&str) -> Result<T, ShmError>) -> Result<T, ManagerError> {
        loop {
            let name = format!(
                "smm-{}-{}-{}",
                self.keeper_pid,
                std::process::id(),
                SEQ.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
            );
            self.notes.put(&Note::Made(name.clone())).map_err(|e| match e {
                PutError::Encode(e) => ManagerError::Codec(e),
                _ => ManagerError::ServerGone,
            })?;
            match create(&name) {
                Ok(_) if self.notes.is_shutdown() => {
                    let _ = Segment::unlink(&name);
                    return Err(ManagerError::ServerGone);
                }
                Ok(made) => return Ok(made),
                // A segment of an earlier keeper with this pid, left behind: the name is ours
                // now (the keeper will remove it with the others); take the next number.
                Err(ShmError::Exists { .. }) => continue,
                Err(e) => return Err(ManagerError::Shm(e)),
            }
        }
    }
}

/// The keeper: remembers names until the notes are shut down or the starter (`starter`, a
/// pidfd) ends, then removes them all.
fn keep(notes: Queue<Note>, starter: OwnedFd) {
    let mut names = Vec::new();
    loop {
        match notes.try_get() {
            Ok(Note::Made(name)) => names.push(name),
            Err(crate::TryGetError::Empty) => {
                let ready = wait(&[&notes, &starter], None);
                // The starter ended: no more names (a child of it still making one sees the
                // shutdown and removes its own), take what was said before, then clean up.
                if ready.contains(&1) {
                    notes.shutdown();
                    while let Ok(Note::Made(name)) = notes.try_get() {
                        names.push(name);
                    }
                    break;
                }
            }
            // Shut down and drained, or a queue that no longer works: clean up either way.
            Err(_) => break,
        }
    }
    for name in names {
        // A name that was never created (its creation failed) or is gone already: fine.
        let _ = Segment::unlink(&name);
    }
}
