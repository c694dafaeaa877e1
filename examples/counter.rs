//! Scenario (a) of `docs/BEHAVIOURS.md`: 4 processes each add 1 to a shared `Value<u64>` 100,000 times under its lock.
//!
//! Prints `400000`.

use multiproc::{Process, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counter = Value::new(0u64)?;
    let workers: Vec<Process> = (0..4)
        .map(|_| {
            let c = counter.clone();
            Process::new(move || {
                for _ in 0..100_000 {
                    // One read-modify-write under the lock (Python's `v.value += 1` is two).
                    c.update(|v| *v += 1).map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for w in &workers {
        w.start()?;
    }
    for w in &workers {
        w.join()?.exit_ok()?;
    }
    println!("{}", counter.get().map_err(|e| e.to_string())?);
    Ok(())
}
