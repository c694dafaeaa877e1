//! A dict shared through a manager (the tutorial's program): three processes each insert
//! `process_<i>_item_<j>` → `Value from process <i>` for j in 0..3; the parent prints the nine
//! entries sorted by key, one per line as `key: value`.

use multiproc::Process;
use multiproc::{DictProxy, Manager, ManagerError};

fn fill(d: DictProxy<String, String>, i: u32) -> Result<(), ManagerError> {
    for j in 0..3 {
        d.insert(format!("process_{i}_item_{j}"), format!("Value from process {i}"))?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::start()?;
    let d = manager.dict::<String, String>()?;
    let workers: Vec<Process> = (0..3)
        .map(|i| {
            let d = d.clone();
            Process::new(move || fill(d, i))
        })
        .collect();
    for w in &workers {
        w.start()?;
    }
    for w in &workers {
        w.join()?.exit_ok()?;
    }
    let mut items = d.items()?;
    items.sort();
    for (k, v) in items {
        println!("{k}: {v}");
    }
    Ok(())
}
