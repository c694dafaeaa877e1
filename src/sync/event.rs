//! `Event`: a flag that processes set, clear and wait for (Python's `multiprocessing.Event`).

use super::raw::event::RawEvent;
use crate::forms::{Timeout, WouldBlock};
use crate::shm::{self, Segment, ShmError, ShmRef};
use crate::wait::Limit;
use std::fmt;
use std::time::{Duration, Instant};

/// A flag in shared memory that processes set, clear and wait for.
///
/// `set` costs one atomic swap and no system call when nobody waits; waiters sleep on a futex.
/// A setter that dies is harmless (the flag is one word, written atomically); a waiter that
/// dies only leaves a "someone may be waiting" bit, which costs the next `set` one wake-up call.
///
/// # Examples
///
/// ```
/// use multiproc::{Event, Process};
/// use std::time::Duration;
///
/// let ready = Event::new()?;
/// let child = Process::new({
///     let ready = ready.clone();
///     move || ready.set()
/// });
/// child.start()?;
/// ready.wait_timeout(Duration::from_secs(10))?;
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Event {
    raw: ShmRef<RawEvent>,
}

impl fmt::Debug for Event {
    /// `Event(set)` or `Event(unset)` (EVT-3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event({})", if self.is_set() { "set" } else { "unset" })
    }
}

impl Event {
    /// A new, unset event in this process's default shared arena, shared with every child
    /// forked afterwards.
    ///
    /// # Errors
    /// [`ShmError`] if the shared memory cannot be mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = multiproc::Event::new()?;
    /// assert!(!e.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Event, ShmError> {
        Ok(Event { raw: shm::alloc_default()? })
    }

    /// A new, unset event allocated in `segment` (for example a named one).
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = multiproc::Segment::anonymous(4096)?;
    /// let e = multiproc::Event::new_in(&seg)?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_in(segment: &Segment) -> Result<Event, ShmError> {
        Ok(Event { raw: segment.alloc_object()? })
    }

    /// A new, unset event under `name`, for processes that are not forked from this one: they
    /// call [`open`](Self::open). The name is removed when this handle's last clone drops,
    /// unless [`persist`](Self::persist) is called.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, and the errors of [`Segment::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-event-create-{}", std::process::id());
    /// let e = multiproc::Event::create(&name)?;
    /// multiproc::Event::open(&name)?.set(); // typically in another program
    /// assert!(e.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<Event, ShmError> {
        shm::create_named(name, std::mem::size_of::<RawEvent>(), |seg| {
            Ok::<_, ShmError>([seg.alloc_object::<RawEvent>()?.offset() as u64, 0, 0, 0, 0, 0])
        })
    }

    crate::shm::named_methods!("```\nlet name = format!(\"doc-event-{}\", std::process::id());\nlet created = multiproc::Event::create(&name)?;\nlet opened = multiproc::Event::open_timeout(&name, std::time::Duration::from_secs(1))?;\ncreated.set();\nassert!(opened.is_set());\nassert_eq!(opened.name(), Some(name.as_str())); // as given, like Python's `name`\ncreated.persist(); // the name outlives `created` now\ndrop(created);\nassert!(multiproc::Event::open(&name).is_ok());\nmultiproc::Segment::unlink(&name)?;\n# Ok::<(), Box<dyn std::error::Error>>(())\n```");

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = multiproc::Event::new()?;
    /// e.set();
    /// assert!(e.is_set());
    /// e.clear();
    /// assert!(!e.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.raw.is_set()
    }

    /// For [`wait`](crate::wait): raises the waiters flag and returns the word with the value
    /// to sleep on (see [`RawEvent::announce_waiter`]).
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce_waiter(&self) -> (&crate::loom::atomic::AtomicU32, u32) {
        self.raw.announce_waiter()
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = multiproc::Event::new()?;
    /// e.set();
    /// e.wait();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self) {
        self.raw.set()
    }

    /// Clears the flag.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = multiproc::Event::new()?;
    /// e.set();
    /// e.clear();
    /// assert!(e.wait_timeout(std::time::Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) {
        self.raw.clear()
    }

    /// Blocks until the flag is set (Python's `wait()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = multiproc::Event::new()?;
    /// e.set();
    /// e.wait();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) {
        self.raw.wait(Limit::Forever);
    }

    /// Returns at once: `Ok` if the flag is set (Python's `wait(0)`; the same as
    /// [`is_set`](Self::is_set), in the four forms of a wait).
    ///
    /// # Errors
    /// [`WouldBlock`] if the flag is clear.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = multiproc::Event::new()?;
    /// assert!(e.try_wait().is_err());
    /// e.set();
    /// e.try_wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_wait(&self) -> Result<(), WouldBlock> {
        if self.raw.is_set() {
            Ok(())
        } else {
            Err(WouldBlock)
        }
    }

    /// Waits up to `timeout` for the flag (Python's `wait(timeout)`, whose `False` is
    /// `Err(Timeout)`; `Duration::MAX` waits forever).
    ///
    /// # Errors
    /// [`Timeout`] if the flag was still clear when the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Event, Timeout};
    ///
    /// let e = Event::new()?;
    /// assert_eq!(e.wait_timeout(std::time::Duration::from_millis(10)), Err(Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.timed(Limit::timeout(timeout))
    }

    /// Waits until `deadline` for the flag.
    ///
    /// # Errors
    /// [`Timeout`] if the flag was still clear at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = multiproc::Event::new()?;
    /// let t = std::time::Instant::now() + std::time::Duration::from_millis(10);
    /// assert!(e.wait_deadline(t).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.timed(Limit::deadline(deadline))
    }

    fn timed(&self, limit: Limit) -> Result<(), Timeout> {
        if self.raw.wait(limit) {
            Ok(())
        } else {
            Err(Timeout)
        }
    }
}

impl shm::Named for Event {
    const KIND: shm::ObjectKind = shm::ObjectKind::Event;

    fn from_named(seg: &Segment, w: &shm::Words) -> Result<Self, ShmError> {
        Ok(Event { raw: seg.object_at(shm::word_usize(w[0])?)? })
    }

    fn segment(&self) -> &Segment {
        self.raw.segment()
    }

    fn words(&self) -> shm::Words {
        [self.raw.offset() as u64, 0, 0, 0, 0, 0]
    }
}

/// Ready when set.
impl crate::wait::Waitable for Event {
    fn is_ready(&self) -> bool {
        self.is_set()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        let (word, v) = Event::announce_waiter(self);
        Some(crate::wait::WaitWord::new(word, v))
    }
}
