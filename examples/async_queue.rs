//! A forked child puts 0 to 9 into a queue; an async task (tokio, a dev-dependency here; any
//! executor works) awaits them with `get_async` and prints them, one per line. No thread
//! blocks on the queue: a watcher thread sleeps on it for the task (see `multiproc::ReadyFd`).
//!
//! Run: `cargo run --example async_queue`

use multiproc::{GetError, Process, PutError, Queue};
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    multiproc::init();
    let q = Queue::<u32>::new()?;
    let child = {
        let q = q.clone();
        Process::new(move || -> Result<(), PutError> {
            for i in 0..10 {
                q.put(&i)?;
            }
            Ok(())
        })
    };
    child.start()?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async {
        for _ in 0..10 {
            println!("{}", q.get_async().await?);
        }
        Ok::<(), GetError>(())
    })?;
    child.join()?;
    Ok(())
}
