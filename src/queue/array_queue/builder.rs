//! [`ArrayQueueBuilder`]: an `ArrayQueue` with options (the integrity mode).

use super::ArrayQueue;
use crate::shm::{Segment, ShmError, ShmSafe};
use std::marker::PhantomData;

/// Builds an [`ArrayQueue`] with options.
///
/// # Examples
///
/// ```
/// let q = multiproc::ArrayQueue::<u64>::builder().capacity(64).integrity(true).build()?;
/// q.try_push(7)?;
/// assert_eq!(q.try_pop()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ArrayQueueBuilder<T> {
    capacity: usize,
    integrity: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: ShmSafe> ArrayQueueBuilder<T> {
    /// Number of items the queue holds (default 1024; at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::ArrayQueue::<u8>::builder().capacity(3).build()?.capacity(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(mut self, items: usize) -> Self {
        self.capacity = items;
        self
    }

    /// The integrity mode (off by default): each item carries a CRC32C of its bytes, written
    /// by the producer before it publishes the item and checked by the consumer that takes it,
    /// so that an item changed in the shared memory by anyone but its producer is
    /// [`PopError::Corrupt`](crate::PopError) (that item is dropped; the next pop goes on)
    /// instead of data. It costs a checksum of `size_of::<T>()` bytes on each side
    /// (`arrayqueue.stream.u64.crc` in `multiproc bench`). Every handle of the queue, named
    /// openers included, follows it.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<[u8; 32]>::builder().integrity(true).build()?;
    /// q.push([1; 32])?;
    /// assert_eq!(q.pop()?, [1; 32]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn integrity(mut self, on: bool) -> Self {
        self.integrity = on;
        self
    }

    /// Creates the queue in a fresh anonymous segment.
    ///
    /// # Errors
    /// [`ShmError`] if the memory cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u32>::builder().build()?;
    /// assert_eq!(q.capacity(), 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<ArrayQueue<T>, ShmError> {
        let (cap, len) = ArrayQueue::<T>::segment_len(self.capacity)?;
        let seg = Segment::anonymous(len)?;
        let w = ArrayQueue::<T>::init_in(&seg, cap, self.integrity)?;
        <ArrayQueue<T> as crate::shm::Named>::from_named(&seg, &w)
    }

    /// Creates the queue under `name` (see [`ArrayQueue::create`]).
    ///
    /// # Errors
    /// As [`ArrayQueue::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-aq-builder-{}", std::process::id());
    /// let q = multiproc::ArrayQueue::<u64>::builder().integrity(true).create(&name)?;
    /// let other = multiproc::ArrayQueue::<u64>::open(&name)?; // checks with the same mode
    /// other.try_push(5)?;
    /// assert_eq!(q.try_pop()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(self, name: &str) -> Result<ArrayQueue<T>, ShmError> {
        let (cap, len) = ArrayQueue::<T>::segment_len(self.capacity)?;
        crate::shm::create_named(name, len, |seg| ArrayQueue::<T>::init_in(seg, cap, self.integrity))
    }
}

impl<T: ShmSafe> ArrayQueue<T> {
    /// An [`ArrayQueueBuilder`] with the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::ArrayQueue::<u8>::builder().capacity(8).build()?;
    /// assert_eq!(q.capacity(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ArrayQueueBuilder<T> {
        ArrayQueueBuilder { capacity: 1024, integrity: false, _t: PhantomData }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::queue::{ArrayQueue, TryPopError};

    #[test]
    #[cfg_attr(miri, ignore = "the queue lives in a memfd mapping, which miri does not support")]
    fn que_b10_array_queue_integrity_turns_a_changed_item_into_corrupt_and_goes_on() {
        for integrity in [true, false] {
            let q = ArrayQueue::<u64>::builder().capacity(8).integrity(integrity).build().unwrap();
            for v in [1, 2, 3] {
                q.try_push(v).unwrap();
            }
            q.core().slots[1].scribble(999);
            assert_eq!(q.try_pop().unwrap(), 1);
            if integrity {
                assert!(matches!(q.try_pop(), Err(TryPopError::Corrupt(_))));
            } else {
                assert_eq!(q.try_pop().unwrap(), 999, "without the mode the change is delivered");
            }
            assert_eq!(q.try_pop().unwrap(), 3, "the queue goes on");
            assert!(q.try_pop().is_err());
        }
    }
}
