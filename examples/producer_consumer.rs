//! Scenario (d) of `docs/BEHAVIOURS.md`: a producer process puts 0..10 then a sentinel (`None`); a consumer process
//! prints each item as it gets it, in order.
//!
//! Prints the lines `0` … `9`.

use multiproc::{Process, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q: Queue<Option<u32>> = Queue::new()?;
    let producer = Process::new({
        let q = q.clone();
        move || {
            for i in 0..10 {
                q.put(&Some(i))?;
            }
            q.put(&None)
        }
    });
    let consumer = Process::new({
        let q = q.clone();
        move || {
            while let Some(i) = q.get()? {
                println!("{i}");
            }
            Ok::<(), multiproc::GetError>(())
        }
    });
    consumer.start()?;
    producer.start()?;
    producer.join()?.exit_ok()?;
    consumer.join()?.exit_ok()?;
    Ok(())
}
