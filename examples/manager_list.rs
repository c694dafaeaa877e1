//! A list of records shared through a manager (the tutorial's program): one child appends
//! (Jeff, 8) and prints `New record added!` and an empty line; then another child prints every
//! record as `Name: <name>`, `Score: <score>` and an empty line.

use multiproc::Process;
use multiproc::{ListProxy, Manager, ManagerError};

type Record = (String, u32);

fn insert_record(records: ListProxy<Record>) -> Result<(), ManagerError> {
    records.push(("Jeff".into(), 8))?;
    println!("New record added!\n");
    Ok(())
}

fn print_records(records: ListProxy<Record>) -> Result<(), ManagerError> {
    for (name, score) in records.iter()? {
        println!("Name: {name}\nScore: {score}\n");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::start()?;
    let records = manager.list_from(vec![("Sam".to_string(), 10), ("Adam".into(), 9), ("Kevin".into(), 9)])?;
    let p1 = Process::new({
        let r = records.clone();
        move || insert_record(r)
    });
    let p2 = Process::new(move || print_records(records));
    p1.start()?;
    p1.join()?.exit_ok()?;
    p2.start()?;
    p2.join()?.exit_ok()?;
    Ok(())
}
