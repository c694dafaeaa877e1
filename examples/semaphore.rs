//! Scenario (f) of `docs/BEHAVIOURS.md`: 6 workers share a `Semaphore(2)`; each holds a permit for a moment.
//!
//! Prints the peak number of concurrent holders: `2`.

use multiproc::{Process, Semaphore, Value};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sem = Semaphore::new(2)?;
    let inside = Value::new(0i64)?;
    let peak = Value::new(0i64)?;
    let workers: Vec<Process> = (0..6)
        .map(|_| {
            let (sem, inside, peak) = (sem.clone(), inside.clone(), peak.clone());
            Process::new(move || -> Result<(), multiproc::ValueError> {
                let _permit = sem.acquire_guard(); // given back on drop, or if we die
                let now = inside.fetch_add(1)? + 1;
                peak.update(|p| *p = (*p).max(now))?;
                std::thread::sleep(Duration::from_millis(200));
                inside.fetch_add(-1)?;
                Ok(())
            })
        })
        .collect();
    for w in &workers {
        w.start()?;
    }
    for w in &workers {
        w.join()?.exit_ok()?;
    }
    println!("{}", peak.get().map_err(|e| e.to_string())?);
    Ok(())
}
