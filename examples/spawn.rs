//! Three children started with `StartMethod::Spawn` (fresh images of this program, safe from a
//! multi-threaded parent), each putting its index into a queue passed as an argument.
//!
//! Prints `0`, `1`, `2`, one per line.

use multiproc::{Process, Queue, StartMethod};

fn child((queue, index): (Queue<u32>, u32)) -> Result<(), multiproc::PutError> {
    queue.put(&index)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = Queue::<u32>::new()?;
    let children = (0..3)
        .map(|i| Process::builder().start_method(StartMethod::Spawn).spawn(child, (queue.clone(), i)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut got: Vec<u32> = (0..3).map(|_| queue.get()).collect::<Result<_, _>>()?;
    for c in children {
        c.join()?.exit_ok()?;
    }
    got.sort();
    for i in got {
        println!("{i}");
    }
    Ok(())
}
