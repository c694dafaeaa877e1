//! The watcher threads behind every [`ReadyFd`](super::ReadyFd) of a process: one thread per
//! *group* of up to [`GROUP_WORDS`] objects, not one per object.
//!
//! An object whose receivers sleep on a futex word (queues, pipes' rings) joins a word group:
//! its thread sleeps in one `futex_waitv(2)` on the armed objects' words plus the group's own
//! `changed` word (bumped by [`Group::poke`] whenever an object is rearmed, added or dropped),
//! so 1,000 ready descriptors cost 8 threads. An object with no word but a descriptor (a TCP
//! connection) joins a descriptor group, whose thread sleeps in one `poll(2)` on them and an
//! eventfd that plays `changed`. Every sleep lasts at most [`SLICE`], after which the thread
//! looks at each armed object again: a sender that died between publishing and waking, or a
//! peer's death, is noticed within a slice, as before. Where `futex_waitv` is missing (Linux
//! before 5.16) a word group holds one object, which is the old thread-per-object design.
//!
//! A group's thread ends when its last object is dropped; the next registration starts a new
//! one. Threads do not survive `fork`: the registry is per process (keyed by pid), so a child
//! starts its own groups.

use crate::loom::atomic::{
    AtomicBool, AtomicU32, AtomicU64,
    Ordering::{Acquire, Release},
};
use crate::loom::futex;
use crate::sys::clock::Deadline;
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

/// How long a watcher sleeps before looking again on its own.
pub(super) const SLICE: Duration = Duration::from_millis(50);

/// Objects per word group: `futex_waitv` takes 128 words, one of which is the group's own.
#[cfg(not(all(test, loom)))]
pub(super) const GROUP_WORDS: usize = crate::sys::futex::WAIT_ANY_MAX - 1;
#[cfg(all(test, loom))]
pub(super) const GROUP_WORDS: usize = 1;

/// Objects per descriptor group.
const GROUP_FDS: usize = 1024;

/// How a group's thread sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sleep {
    /// On futex words (the probe's `announce`).
    Word,
    /// In `poll(2)` on descriptors (the probe's `fd`).
    Fd,
}

/// What a watcher thread watches.
pub(crate) trait Probe: Send + Sync + 'static {
    /// Whether a receive would not block now.
    fn ready(&self) -> bool;
    /// Raises the object's sleeper flag and names the word and the value to sleep on; `None`
    /// when the object has none (the watcher then polls).
    fn announce(&self) -> Option<(&crate::loom::atomic::AtomicU32, u32)>;
    /// A descriptor to sleep on in `poll(2)` when there is no word (readable or hung up when
    /// something changed).
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// What the watcher sleeps on for this object: its word (the default) or its descriptor.
    fn sleep(&self) -> Sleep {
        Sleep::Word
    }
}

/// One watched object: what the watcher and the `ReadyFd` share.
pub(super) struct Entry {
    /// The watcher should look (set by `rearm`, cleared when it signals).
    pub(super) armed: AtomicBool,
    /// Set by the watcher when it found the object ready; taken by the receiver.
    pub(super) signaled: AtomicBool,
    /// The receiver dropped its `ReadyFd`: the watcher forgets the object.
    pub(super) stop: AtomicBool,
    /// Futures waiting for readiness.
    /// Futures waiting for readiness, each under the id of its `Readable` (which takes its
    /// waker out again when it is dropped first).
    pub(super) wakers: Mutex<Vec<(u64, Waker)>>,
    /// The next `Readable` id.
    #[cfg_attr(not(feature = "async"), allow(dead_code))] // only the `async` futures use it
    pub(super) next_id: AtomicU64,
    pub(super) efd: EventFd,
    /// Used by the watcher thread alone: a panic on a `ReadyFd`'s side cannot leave it half
    /// changed, so the handle stays unwind-safe as it was when the thread owned the probe.
    probe: std::panic::AssertUnwindSafe<Box<dyn Probe>>,
    pub(super) group: Arc<Group>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("armed", &self.armed)
            .field("signaled", &self.signaled)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The object is ready: disarm, make the eventfd readable, wake the futures.
    fn signal(&self) {
        // Release: the receiver that sees `signaled` (Acquire) sees it disarmed.
        self.armed.store(false, Release);
        self.signaled.store(true, Release);
        let _ = self.efd.write(1);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, w) in wakers {
            // A waker is the caller's code: one that panics must not take this thread, and with
            // it every object of its group, down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.wake()));
        }
    }
}

/// Up to [`GROUP_WORDS`] (or [`GROUP_FDS`]) objects and the thread that watches them.
#[derive(Debug)]
pub(super) struct Group {
    sleep: Sleep,
    capacity: usize,
    /// Word groups: bumped and woken on every change the thread must see.
    changed: AtomicU32,
    /// Descriptor groups: written on every change (readable until the thread drains it).
    changed_fd: Option<EventFd>,
    members: Mutex<Members>,
}

#[derive(Debug, Default)]
struct Members {
    entries: Vec<Arc<Entry>>,
    /// The thread has ended (no entries were left): nothing may join.
    closed: bool,
}

impl Group {
    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the thread look again at once.
    pub(super) fn poke(&self) {
        match &self.changed_fd {
            Some(efd) => {
                let _ = efd.write(1);
            }
            None => {
                // Release: the thread's Acquire load of `changed` sees the change that preceded.
                self.changed.fetch_add(1, Release);
                futex::wake(&self.changed, 1);
            }
        }
    }
}

/// The process's groups, with the pid they belong to.
static GROUPS: Mutex<Option<(u32, Vec<Arc<Group>>)>> = Mutex::new(None);

/// The registry, locked: `Process::start` holds it across `fork`, so that a child never
/// inherits it locked by a thread that did not come along (its first `register` would hang).
pub(crate) struct ForkGuard(#[allow(dead_code)] MutexGuard<'static, Option<(u32, Vec<Arc<Group>>)>>);

/// Locks the registry for a `fork` (see [`ForkGuard`]).
pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(GROUPS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Whether `futex_waitv` works here (checked once per process).
fn waitv_works() -> bool {
    #[cfg(not(all(test, loom)))]
    {
        static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *WORKS.get_or_init(|| {
            let w = AtomicU32::new(1);
            // A word that does not hold the expected value: returns at once where supported.
            crate::sys::futex::wait_any(&[(&w, 0)], Deadline::after(Duration::from_millis(1))).is_ok()
        })
    }
    #[cfg(all(test, loom))]
    false
}

/// Starts watching `probe`: joins a group with room (or starts one, with its thread).
pub(super) fn register(probe: Box<dyn Probe>, efd: EventFd) -> std::io::Result<Arc<Entry>> {
    let sleep = probe.sleep();
    let mut all = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    let me = std::process::id();
    if all.as_ref().is_none_or(|(pid, _)| *pid != me) {
        // First use in this process (or a forked child's copy of its parent's registry, whose
        // threads did not come along): start afresh.
        *all = Some((me, Vec::new()));
    }
    let (_, groups) = all.as_mut().expect("set above");
    groups.retain(|g| !g.members().closed);
    let make_entry = |group: &Arc<Group>| {
        Arc::new(Entry {
            armed: AtomicBool::new(true),
            signaled: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            efd,
            probe: std::panic::AssertUnwindSafe(probe),
            group: group.clone(),
        })
    };
    // Checked and joined under one hold of the group's lock: a thread that found its group
    // empty closes it under that lock, and nothing may join a closed group (its thread is gone).
    let open = groups.iter().find_map(|g| {
        let m = g.members();
        (g.sleep == sleep && !m.closed && m.entries.len() < g.capacity).then_some((g, m))
    });
    if let Some((g, mut m)) = open {
        let entry = make_entry(g);
        m.entries.push(entry.clone());
        drop(m);
        g.poke();
        return Ok(entry);
    }
    drop(open);
    let capacity = match sleep {
        Sleep::Word if waitv_works() => GROUP_WORDS,
        Sleep::Word => 1,
        Sleep::Fd => GROUP_FDS,
    };
    let changed_fd = match sleep {
        Sleep::Word => None,
        Sleep::Fd => Some(EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?),
    };
    let group = Arc::new(Group {
        sleep,
        capacity,
        changed: AtomicU32::new(0),
        changed_fd,
        members: Mutex::new(Members::default()),
    });
    let entry = make_entry(&group);
    group.members().entries.push(entry.clone());
    let g = group.clone();
    if let Err(e) = std::thread::Builder::new().name("multiproc-ready".into()).spawn(move || watch(&g)) {
        // No thread: undo the entry, which would otherwise keep the group (and itself) alive.
        group.members().entries.clear();
        return Err(e);
    }
    groups.push(group);
    Ok(entry)
}

/// A group's thread: see the module docs.
fn watch(group: &Group) {
    /// Closes the group if the thread unwinds all the same (a probe that panics), so that
    /// nothing joins a group nobody watches any more.
    struct CloseOnUnwind<'a>(&'a Group);
    impl Drop for CloseOnUnwind<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.members().closed = true;
            }
        }
    }
    let _close = CloseOnUnwind(group);
    let mut revents = Vec::new();
    loop {
        // Acquire: pairs with `poke`; anything changed after this load wakes the sleep below.
        let seen = group.changed.load(Acquire);
        if let Some(efd) = &group.changed_fd {
            let _ = efd.read(); // drain before looking, so a later poke makes it readable again
        }
        let entries = {
            let mut m = group.members();
            // Acquire: pairs with `ReadyFd`'s drop.
            m.entries.retain(|e| !e.stop.load(Acquire));
            if m.entries.is_empty() {
                m.closed = true;
                return;
            }
            m.entries.clone()
        };
        let mut words = Vec::new();
        let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
        let mut spin = false;
        for e in &entries {
            // Acquire: pairs with `rearm`'s Release store.
            if !e.armed.load(Acquire) {
                continue;
            }
            if e.probe.ready() {
                e.signal();
                continue;
            }
            match group.sleep {
                Sleep::Word => match e.probe.announce() {
                    // Re-check after raising the flag (the Dekker pair every announce documents).
                    Some(_) if e.probe.ready() => e.signal(),
                    Some(word) => words.push(word),
                    None => spin = true,
                },
                Sleep::Fd => match e.probe.fd() {
                    Some(fd) => fds.push(fd),
                    None => spin = true,
                },
            }
        }
        // A probe with nothing to sleep on is polled every millisecond (none of the crate's do).
        let slice = Deadline::after(if spin { Duration::from_millis(1) } else { SLICE });
        match &group.changed_fd {
            Some(efd) => {
                fds.push(efd.as_fd());
                let ms = if spin { 1 } else { SLICE.as_millis() as i32 };
                let _ = crate::sys::process::poll_many(&fds, libc::POLLIN, ms, &mut revents);
            }
            None => sleep_on_words(&group.changed, seen, &words, slice),
        }
    }
}

/// Sleeps until `changed` moves from `seen`, any of `words` is woken, or `slice` passes.
fn sleep_on_words(changed: &AtomicU32, seen: u32, words: &[(&AtomicU32, u32)], slice: Option<Deadline>) {
    match words {
        [] => {
            let _ = futex::wait(changed, seen, slice);
        }
        // Without `futex_waitv` a group holds one object: sleep on its word alone (a rearm
        // cannot be missed, since it is armed already; a drop is seen within the slice).
        [(w, v)] if GROUP_WORDS == 1 || !waitv_works() => {
            let _ = futex::wait(w, *v, slice);
        }
        _ => {
            #[cfg(not(all(test, loom)))]
            {
                let mut all: Vec<(&AtomicU32, u32)> = Vec::with_capacity(words.len() + 1);
                all.push((changed, seen));
                all.extend_from_slice(words);
                let _ = crate::sys::futex::wait_any(&all, slice);
            }
        }
    }
}
