//! Inputs that misbehave part-way through a call (POOL-B8 in `docs/BEHAVIOURS.md`): an
//! iterator that states a wrong exact length (the call fails with `InvalidArgument`, where
//! Python loses items or hangs), an iterator or a value's `Serialize` that panics after some
//! chunks were queued (the panic reaches the caller). Either way the pool stays whole: later
//! calls and `close` + `join` work.
#![cfg(feature = "serde")] // pool tasks carry serde values
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{guard_for, unpick, Picky};
use multiproc::{Pool, PoolError, PoolOptions};
use std::time::Duration;

fn double(x: u64) -> u64 {
    x * 2
}

/// Yields `0..yields` while stating an exact length of `states` (a buggy `size_hint`).
struct Liar {
    next: u64,
    yields: u64,
    states: usize,
}

impl Iterator for Liar {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        (self.next < self.yields).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.states, Some(self.states))
    }
}

#[test]
fn pool_b8_exact_length_iterators_are_mapped_in_order_without_a_list() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Pool::new(2).unwrap();
    // A range, a vector's iterator, an adapter that keeps the length, and chunk sizes that do
    // and do not divide the length.
    for cs in [1, 7, 100, 1000, 5000] {
        let want: Vec<u64> = (0..1000).map(double).collect();
        let opts = || PoolOptions::new().chunksize(cs);
        assert_eq!(pool.map_with(double, 0..1000u64, opts()).unwrap(), want, "range, chunksize {cs}");
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(pool.map_with(double, v, opts()).unwrap(), want, "vector, chunksize {cs}");
        assert_eq!(pool.map_with(double, (0..2000u64).step_by(2).map(|x| x / 2), opts()).unwrap(), want);
    }
    // `imap` and `imap_unordered` read them the same way.
    let it = pool.imap_with(double, 0..1000u64, PoolOptions::new().chunksize(7)).unwrap();
    assert_eq!(it.collect::<Result<Vec<_>, _>>().unwrap(), (0..1000).map(double).collect::<Vec<_>>());
    let it = pool.imap_unordered_with(double, (0..1000u64).collect::<Vec<_>>(), PoolOptions::new()).unwrap();
    let mut got = it.collect::<Result<Vec<_>, _>>().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..1000).map(double).collect::<Vec<_>>());
    // An iterator without an exact length is collected first, as before.
    let filtered = (0..2000u64).filter(|x| x % 2 == 0).map(|x| x / 2);
    assert_eq!(pool.map(double, filtered).unwrap(), (0..1000).map(double).collect::<Vec<_>>());
    assert_eq!(pool.map(double, std::iter::empty::<u64>()).unwrap(), Vec::<u64>::new());
}

#[test]
fn pool_b8_an_iterator_whose_stated_length_is_wrong_fails_the_call_clearly() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Pool::new(2).unwrap();
    // (yields, states, chunksize; `None`: the default, sized from the stated length): more
    // than stated, fewer (with a chunk left empty, or only the last one short), and lengths
    // no buffer could ever be sized for.
    let cases = [
        (250, 10, Some(3)),
        (250, 100, Some(10)),
        (250, 1, Some(1)),
        (250, 500, Some(10)),
        (9, 10, Some(4)),
        (9, 10, None),
        (250, 1 << 40, None),
        (250, usize::MAX, None),
        (250, usize::MAX, Some(1)),
    ];
    for (yields, states, cs) in cases {
        let it = Liar { next: 0, yields, states };
        let opts = cs.map_or(PoolOptions::new(), |cs| PoolOptions::new().chunksize(cs));
        match pool.map_with(double, it, opts) {
            Err(PoolError::InvalidArgument(why)) => assert!(why.contains("length"), "{why}"),
            other => panic!("yields {yields}, states {states}: expected InvalidArgument, got {other:?}"),
        }
    }
    // An imap ends with the same error, once.
    for (yields, states) in [(250, 10), (250, 500), (9, 10)] {
        let it = pool.imap_with(double, Liar { next: 0, yields, states }, PoolOptions::new().chunksize(4)).unwrap();
        let outcomes: Vec<Result<u64, PoolError>> = it.collect();
        assert!(
            matches!(outcomes.last(), Some(Err(PoolError::InvalidArgument(_)))),
            "imap, yields {yields}, states {states}: {outcomes:?}"
        );
        assert_eq!(outcomes.iter().filter(|r| r.is_err()).count(), 1, "{outcomes:?}");
    }
    // The pool goes on, and winds down.
    assert_eq!(pool.map(double, 0..10u64).unwrap(), (0..10).map(double).collect::<Vec<_>>());
    pool.close();
    pool.join();
}

#[test]
fn pool_b8_a_panic_while_the_inputs_are_read_leaves_the_pool_whole() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Pool::new(2).unwrap();
    // The iterator panics after some chunks were queued.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let it = (0..1000u64).map(|x| if x == 555 { panic!("iterator") } else { x });
        pool.map_with(double, it, PoolOptions::new().chunksize(10))
    }));
    assert!(r.is_err(), "the iterator's panic reaches the caller");
    // A value's `Serialize` panics after some chunks were queued.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // From past the number that refuses, so that the panic comes first.
        let items = (Picky::REFUSED + 1..Picky::PANICS + 500).map(Picky);
        pool.map_with(unpick, items, PoolOptions::new().chunksize(10))
    }));
    assert!(r.is_err(), "the serializer's panic reaches the caller");
    // Later calls work, and close + join return (the abandoned calls hold nothing).
    assert_eq!(pool.map(double, 0..100u64).unwrap().len(), 100);
    pool.close();
    pool.join();
}

#[test]
fn pool_b8_an_imap_whose_input_cannot_be_encoded_fails_that_chunk_and_goes_on() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Pool::new(2).unwrap();
    let len = Picky::REFUSED + 10;
    for (ordered, size) in [(true, 1), (false, 1), (true, 4), (false, 4)] {
        let items = (0..len).map(Picky);
        let opts = PoolOptions::new().chunksize(size);
        let it =
            if ordered { pool.imap_with(unpick, items, opts) } else { pool.imap_unordered_with(unpick, items, opts) };
        let outcomes: Vec<Result<u64, PoolError>> = it.unwrap().collect();
        // As Python's imap: the chunk holding the item that cannot be encoded is one error
        // (the local encoding error, not `Terminated`: the pool is fine), in that chunk's
        // place when ordered, and every other item's result comes, before and after it.
        let bad_chunk = |v: u64| v / size as u64 == Picky::REFUSED / size as u64;
        let expected: Vec<u64> = (0..len).filter(|&v| !bad_chunk(v)).collect();
        let errors: Vec<usize> = (0..outcomes.len()).filter(|&i| outcomes[i].is_err()).collect();
        assert_eq!(errors.len(), 1, "ordered {ordered}, chunks of {size}: {outcomes:?}");
        assert!(
            matches!(outcomes[errors[0]], Err(PoolError::Codec { remote: false, .. })),
            "ordered {ordered}, chunks of {size}: {:?}",
            outcomes[errors[0]]
        );
        let mut values: Vec<u64> = outcomes.into_iter().flatten().collect();
        if ordered {
            let first_bad = Picky::REFUSED / size as u64 * size as u64;
            assert_eq!(errors[0] as u64, first_bad, "the error in its chunk's place");
        } else {
            values.sort_unstable();
        }
        assert_eq!(values, expected, "ordered {ordered}, chunks of {size}");
    }
    assert_eq!(pool.map(double, 0..10u64).unwrap().len(), 10);
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn pool_b8_an_imap_cut_short_by_terminate_says_so_once() {
    let _g = guard_for(Duration::from_secs(60));
    for ordered in [true, false] {
        let pool = Pool::new(2).unwrap();
        let (items, opts) = ([0, 5000, 5000, 5000], PoolOptions::new().chunksize(1));
        let it = if ordered { pool.imap_with(nap, items, opts) } else { pool.imap_unordered_with(nap, items, opts) };
        let mut it = it.unwrap();
        assert_eq!(it.next().unwrap().unwrap(), 0);
        pool.terminate();
        let rest: Vec<Result<u64, PoolError>> = it.collect();
        assert!(matches!(rest[..], [Err(PoolError::Terminated)]), "ordered {ordered}: {rest:?}");
    }
}
