//! A server and a client that meet by address (Python's `multiprocessing.connection`).
//!
//! ```text
//! cargo run --example listener -- serve     # echoes one message per client, for ever
//! cargo run --example listener -- connect   # sends "hello", prints the echo: hello
//! ```
//!
//! The address is a Unix socket file in the temporary directory; both sides use the same
//! authkey, so each proves it knows it before any message passes. The connection runs over
//! shared-memory rings once the handshake is done.

use multiproc::{Address, Client, Listener};

const AUTHKEY: &[u8] = b"example key";

fn address() -> Address {
    Address::Unix(std::env::temp_dir().join("multiproc-example-listener.sock"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("serve") => {
            let listener = Listener::bind(address(), Some(AUTHKEY))?;
            eprintln!("listening on {}", listener.address());
            loop {
                match listener.accept() {
                    Ok(mut conn) => {
                        let msg = conn.recv_bytes()?;
                        conn.send_bytes(&msg)?;
                    }
                    Err(e) => eprintln!("refused a client: {e}"),
                }
            }
        }
        Some("connect") => {
            let mut conn = Client::connect(address(), Some(AUTHKEY))?;
            conn.send_bytes(b"hello")?;
            println!("{}", String::from_utf8_lossy(&conn.recv_bytes()?));
            Ok(())
        }
        _ => Err("usage: listener serve|connect".into()),
    }
}
