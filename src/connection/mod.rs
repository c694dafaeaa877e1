//! Connections made by address between processes that were not forked from each other:
//! [`Listener`] and [`Client`] (Python's `multiprocessing.connection`).
//!
//! A listener binds an [`Address`] (a Unix socket file, a Linux abstract name, or TCP), a
//! client connects to it, and both get a [`Connection`](crate::Connection) with the API of a
//! [`Pipe`](crate::Pipe) end. With an authkey, each side proves it knows the key before any
//! message passes (an HMAC-SHA256 challenge in both directions; see `auth.rs` for the
//! protocol).
//!
//! Same-host connections (Unix and abstract addresses) are moved onto the crate's
//! shared-memory rings after the handshake, so they are as fast as a `Pipe`; TCP connections
//! stay on the socket (16-byte frame header per message).
//!
//! ```
//! use multiproc::{Client, Listener};
//!
//! let listener = Listener::bind("tcp:127.0.0.1:0", Some(b"key"))?;
//! let address = listener.address().clone();
//! let t = std::thread::spawn(move || Client::connect(&address, Some(b"key")).map(|mut c| c.send(&"hi".to_string())));
//! let mut conn = listener.accept()?;
//! assert_eq!(conn.recv::<String>()?, "hi");
//! t.join().unwrap()??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod auth;
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use auth::{answer as handshake_answer, serve as handshake_serve};
mod error;
mod listener;
mod pending;
mod socket;
mod stream;
mod to_address;

pub use address::Address;
pub use auth::{HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES};
pub use error::{ConnError, ConnTimeoutError, TryConnError};
pub use listener::{Client, Listener};
pub use to_address::ToAddress;
