//! Scenario (e) of `docs/BEHAVIOURS.md`: a sender process sends "hello", "world", "from", "pipe",
//! "END" through a `Pipe`; the receiver collects each message until "END".
//!
//! Prints `["hello", "world", "from", "pipe"]`, as Python's version prints
//! `['hello', 'world', 'from', 'pipe']`.

use multiproc::{Pipe, Process};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut rx, tx) = Pipe::one_way()?; // one-way: (reader, writer)
    let sender = Process::new(move || {
        let mut tx = tx;
        for msg in ["hello", "world", "from", "pipe", "END"] {
            tx.send(&msg.to_string()).map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    });
    sender.start()?;
    let mut got = Vec::new();
    loop {
        let msg: String = rx.recv()?;
        if msg == "END" {
            break;
        }
        got.push(msg);
    }
    sender.join()?.exit_ok()?;
    println!("{got:?}");
    assert_eq!(got, ["hello", "world", "from", "pipe"]);
    Ok(())
}
