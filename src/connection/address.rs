//! `Address`: where a `Listener` listens and a `Client` connects.

use std::fmt;
use std::path::PathBuf;

/// Where a [`Listener`](super::Listener) listens and a [`Client`](super::Client) connects
/// (Python's `address` and `family`).
///
/// Written as text with a scheme:
///
/// | text | family |
/// |---|---|
/// | `unix:/run/app.sock` (or a relative path) | a Unix socket file (Python's `'AF_UNIX'`) |
/// | `abstract:app-service` | a Linux abstract socket name: no file, gone with the listener (Python: a name starting with `\0`) |
/// | `tcp:127.0.0.1:7000`, `tcp:localhost:7000`, `tcp:[::1]:7000` | TCP (Python's `'AF_INET'`, `(host, port)`); port 0 picks a free port |
///
/// Unix and abstract connections are moved onto shared-memory rings after the handshake (as
/// fast as [`Pipe`](crate::Pipe)); TCP connections stay on the socket.
///
/// # Examples
///
/// ```
/// use multiproc::Address;
///
/// let a: Address = "tcp:127.0.0.1:7000".parse()?;
/// assert_eq!(a.to_string(), "tcp:127.0.0.1:7000");
/// assert!(matches!("abstract:svc".parse::<Address>()?, Address::Abstract(n) if n == "svc"));
/// assert!("ftp:x".parse::<Address>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Address {
    /// A Unix socket file.
    Unix(PathBuf),
    /// A Linux abstract socket name (without the leading NUL).
    Abstract(String),
    /// A TCP `host:port`.
    Tcp(String),
}

impl Address {
    /// A fresh abstract address no other listener uses (Python's `Listener()` with no address
    /// picks a free one too).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiproc::Address::unique();
    /// assert_ne!(a, multiproc::Address::unique());
    /// ```
    pub fn unique() -> Address {
        let mut r = [0u8; 8];
        let salt = match crate::sys::random::fill(&mut r) {
            Ok(()) => u64::from_ne_bytes(r),
            Err(_) => crate::sys::clock::monotonic_nanos(),
        };
        Address::Abstract(format!("multiproc-{}-{salt:016x}", std::process::id()))
    }

    /// Whether connections to this address are moved onto shared-memory rings (same host).
    pub(crate) fn is_local(&self) -> bool {
        !matches!(self, Address::Tcp(_))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Abstract(n) => write!(f, "abstract:{n}"),
            Address::Tcp(h) => write!(f, "tcp:{h}"),
        }
    }
}
