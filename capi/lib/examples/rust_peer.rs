//! The Rust side of a mixed program: a Rust process and a C (or Python) process, started as
//! two programs, share a named `Queue`, `Lock` and `Broadcast`.
//!
//! ```text
//! rust_peer -- PEER-COMMAND [ARGS…]
//! ```
//! This program makes the objects under a fresh prefix, starts the peer with the prefix as
//! its last argument, and plays its part:
//! 1. it publishes "news from rust", then starts the peer;
//! 2. the peer takes the lock and says "peer has the lock" on `PREFIX-to-rust`; this side
//!    checks that it cannot take the lock now, then says "release" on `PREFIX-to-peer`;
//! 3. the peer releases the lock (this side then takes it), reads the news from the oldest
//!    message, publishes "news from peer", which this side reads, and says "bye".
//!
//! Used by `capi/lib/tests/mixed.rs` with the C peer `examples/c/peer.c`, and by `.ci/run`
//! with the Python peer `examples/c/peer.py`. Exits 0 when every step checked out.

use multiproc::{Broadcast, Lock, Queue};
use std::error::Error;
use std::process::Command;
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(20);

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let (program, rest) = args.split_first().ok_or("usage: rust_peer -- PEER-COMMAND [ARGS...]")?;
    let prefix = format!("mp-mixed-{}", std::process::id());

    let to_peer = Queue::<Vec<u8>>::create(&format!("{prefix}-to-peer"))?;
    let to_rust = Queue::<Vec<u8>>::create(&format!("{prefix}-to-rust"))?;
    let lock = Lock::create(&format!("{prefix}-lock"))?;
    let news = Broadcast::<Vec<u8>>::create(&format!("{prefix}-news"), 8, 256)?;
    news.publish_bytes(b"news from rust")?;
    // From the next message on: the peer's.
    let mut sub = news.subscribe();

    let mut peer = Command::new(program).args(rest).arg(&prefix).spawn()?;
    let started = Instant::now();
    let outcome = (|| -> Result<(), Box<dyn Error>> {
        let mut msg = Vec::new();
        to_rust.get_bytes_into_timeout(&mut msg, STEP)?;
        if msg != b"peer has the lock" {
            return Err(format!("peer said {:?}", String::from_utf8_lossy(&msg)).into());
        }
        if lock.try_lock().is_ok() {
            return Err("took the lock while the peer said it held it".into());
        }
        to_peer.put_bytes(b"release")?;
        drop(lock.lock_timeout(STEP)?);
        let news_from_peer = sub.recv_bytes_timeout(STEP)?;
        if news_from_peer != b"news from peer" {
            return Err(format!("the peer published {:?}", String::from_utf8_lossy(&news_from_peer)).into());
        }
        to_rust.get_bytes_into_timeout(&mut msg, STEP)?;
        if msg != b"bye" {
            return Err(format!("peer said {:?} instead of bye", String::from_utf8_lossy(&msg)).into());
        }
        Ok(())
    })();
    // The watchdog: a peer that is still running this long after is killed.
    while peer.try_wait()?.is_none() && started.elapsed() < STEP * 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    if peer.try_wait()?.is_none() {
        peer.kill()?;
    }
    let status = peer.wait()?;
    outcome?;
    if !status.success() {
        return Err(format!("the peer failed: {status}").into());
    }
    println!("rust_peer: the peer ({program}) and this program saw each other's messages");
    Ok(())
}
