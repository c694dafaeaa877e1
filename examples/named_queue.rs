//! Two programs that were not started by one another meet through a named `Queue<u64>`.
//!
//! ```text
//! cargo run --example named_queue -- produce   # puts 0..=9, waits until they are consumed
//! cargo run --example named_queue -- consume   # prints 0 to 9, one per line
//! ```
//!
//! Start them in either order: the consumer waits up to 30 s for the queue's name to appear,
//! the producer up to 30 s for its items to be taken. The producer's exit removes the name.

use multiproc::{Queue, ShmError};
use std::time::{Duration, Instant};

const NAME: &str = "multiproc-example-named-queue";
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("produce") => produce(),
        Some("consume") => consume(),
        _ => Err("usage: named_queue produce|consume".into()),
    }
}

fn produce() -> Result<(), Box<dyn std::error::Error>> {
    let q = match Queue::<u64>::create(NAME) {
        Ok(q) => q,
        Err(ShmError::Exists { .. }) => {
            return Err(format!("{NAME} exists: another producer runs (or `multiproc shm clean` a stale one)").into())
        }
        Err(e) => return Err(e.into()),
    };
    for i in 0..10 {
        q.put(&i)?;
    }
    let end = Instant::now() + PATIENCE;
    while !q.empty() {
        if Instant::now() > end {
            return Err("nobody consumed the items in time".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("all 10 items consumed");
    Ok(()) // dropping `q` (the creator's handle) removes the name
}

fn consume() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::<u64>::open_timeout(NAME, PATIENCE)?;
    for _ in 0..10 {
        println!("{}", q.get_timeout(PATIENCE)?);
    }
    Ok(())
}
