//! Iterators over a queue's items: `iter()` (blocking) and `try_iter()` (what is there now).

use super::{GetError, QueueFail};
use crate::wait::Limit;
use std::fmt;

/// An iterator over a queue's items, from [`Queue::iter`](crate::Queue::iter),
/// [`Queue::try_iter`](crate::Queue::try_iter) and the same methods of
/// [`SimpleQueue`](crate::SimpleQueue), [`JoinableQueue`](crate::JoinableQueue) and
/// [`Consumer`](crate::Consumer).
///
/// Each item is a `Result`, as [`std::io::BufRead::lines`]'s are: an item that cannot be
/// decoded is reported (it was removed from the queue) and the iteration goes on; any other
/// error is reported once and ends it. The iteration also ends, without an error, when the
/// handle was [`close`](crate::Queue::close)d, when a [`Consumer`](crate::Consumer) finds every
/// producer gone and the queue empty, and (for `try_iter`) when the queue is empty.
pub struct QueueIter<'a, T> {
    get: Box<dyn Fn(Limit) -> Result<T, QueueFail> + 'a>,
    now: bool,
    done: bool,
}

impl<'a, T> QueueIter<'a, T> {
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // typed `get` makes them
    pub(super) fn new(get: impl Fn(Limit) -> Result<T, QueueFail> + 'a, now: bool) -> QueueIter<'a, T> {
        QueueIter { get: Box::new(get), now, done: false }
    }
}

impl<T> fmt::Debug for QueueIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueIter").field("try", &self.now).field("done", &self.done).finish()
    }
}

impl<T> Iterator for QueueIter<'_, T> {
    type Item = Result<T, GetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match (self.get)(if self.now { Limit::Now } else { Limit::Forever }) {
            Ok(v) => Some(Ok(v)),
            Err(QueueFail::Closed | QueueFail::Disconnected | QueueFail::ShutDown | QueueFail::Empty) => {
                self.done = true;
                None
            }
            #[cfg(feature = "serde")]
            Err(e @ QueueFail::Decode(_)) => Some(Err(e.get())),
            Err(e) => {
                self.done = true;
                Some(Err(e.get()))
            }
        }
    }
}

impl<T> std::iter::FusedIterator for QueueIter<'_, T> {}
