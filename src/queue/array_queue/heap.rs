//! The algorithm on heap memory, for loom, miri and the fuzzer, and its loom models.

use super::algo::{Core, Header, Slot};
use crate::shm::ShmSafe;

/// A heap-backed queue for loom, miri and the fuzzer.
pub(crate) struct HeapQueue<T> {
    hdr: Box<Header>,
    slots: Vec<Slot<T>>,
}

impl<T: ShmSafe> HeapQueue<T> {
    pub(crate) fn new(cap: usize) -> HeapQueue<T> {
        HeapQueue { hdr: Box::new(Header::new()), slots: (0..cap.max(1) as u64).map(|i| Slot::new(2 * i)).collect() }
    }

    pub(crate) fn core(&self) -> Core<'_, T> {
        Core { hdr: &self.hdr, slots: &self.slots, crc: false }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::HeapQueue;
    use crate::wait::Limit;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_array_queue_push_pop_across_threads() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u64>::new(2));
            let p = {
                let q = q.clone();
                thread::spawn(move || {
                    q.core().try_push(1).unwrap();
                    q.core().try_push(2).unwrap();
                })
            };
            let mut got = Vec::new();
            while got.len() < 2 {
                if let Ok(v) = q.core().try_pop() {
                    got.push(v);
                } else {
                    thread::yield_now();
                }
            }
            p.join().unwrap();
            assert_eq!(got, vec![1, 2]);
        });
    }

    #[test]
    fn loom_array_queue_blocking_pop_is_woken_by_push() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u64>::new(2));
            let c = {
                let q = q.clone();
                thread::spawn(move || q.core().pop_until(Limit::Forever))
            };
            q.core().try_push(5).unwrap();
            assert_eq!(c.join().unwrap(), Ok(5));
        });
    }

    #[test]
    fn loom_array_queue_blocking_push_is_woken_by_pop() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u64>::new(1));
            q.core().try_push(1).unwrap();
            let p = {
                let q = q.clone();
                thread::spawn(move || q.core().push_until(2, Limit::Forever).map_err(|(_, b)| b))
            };
            let first = loop {
                if let Ok(v) = q.core().try_pop() {
                    break v;
                }
                thread::yield_now();
            };
            assert_eq!(first, 1);
            assert_eq!(p.join().unwrap(), Ok(()));
            assert_eq!(q.core().try_pop(), Ok(2));
        });
    }

    #[test]
    fn loom_array_queue_full_and_wrap() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u32>::new(1));
            q.core().try_push(7).unwrap();
            assert!(q.core().try_push(8).is_err());
            let c = {
                let q = q.clone();
                thread::spawn(move || q.core().try_pop())
            };
            let popped = c.join().unwrap();
            assert_eq!(popped, Ok(7));
            q.core().try_push(9).unwrap();
            assert_eq!(q.core().try_pop(), Ok(9));
        });
    }
}
