//! Scenario (h) of `docs/BEHAVIOURS.md`, shortened: a daemon watchdog process prints a heartbeat every 50 ms, using
//! `Event::wait_timeout` as its sleep, until the main process finishes a computation and sets
//! the `stop` event; the watchdog then exits at once with code 0.
//!
//! Prints `heartbeat 1`, `heartbeat 2`, … (as many as the computation takes), then the result
//! `sum = 1124999887500002500000` and `watchdog exit code: 0`.

use multiproc::{Event, Process};
use std::io::Write;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stop = Event::new()?;
    let watchdog = Process::builder().name("watchdog").daemon(true).start({
        let stop = stop.clone();
        move || {
            let mut n = 0;
            while stop.wait_timeout(Duration::from_millis(50)).is_err() {
                n += 1;
                println!("heartbeat {n}");
                let _ = std::io::stdout().flush();
            }
        }
    })?;
    // The main computation: sum of i*i for i < 15,000,000, as in Python's version of the scenario.
    let sum: u128 = (0..15_000_000u128).map(|i| i * i).sum();
    std::thread::sleep(Duration::from_millis(120)); // let at least a couple of heartbeats show
    stop.set();
    let status = watchdog.join()?;
    println!("sum = {sum}");
    println!("watchdog exit code: {}", status.exitcode());
    Ok(())
}
