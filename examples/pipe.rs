//! SPEC.md §14, scenario (e): a sender process sends "hello", "hey", "hru?", "END" through a `Pipe`; the
//! receiver prints each message until "END".
//!
//! Prints `hello`, `hey`, `hru?`.

use multiproc::{Pipe, Process};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut rx, tx) = Pipe::one_way()?; // one-way: (reader, writer)
    let sender = Process::new(move || {
        let mut tx = tx;
        for msg in ["hello", "hey", "hru?", "END"] {
            tx.send(&msg.to_string()).map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    });
    sender.start()?;
    loop {
        let msg: String = rx.recv()?;
        if msg == "END" {
            break;
        }
        println!("{msg}");
    }
    sender.join()?.exit_ok()?;
    Ok(())
}
