//! `Address`: where a `Listener` listens and a `Client` connects.

use super::ConnError;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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

impl FromStr for Address {
    type Err = ConnError;

    fn from_str(s: &str) -> Result<Address, ConnError> {
        let bad = |reason| ConnError::BadAddress { address: s.to_owned(), reason };
        let (scheme, rest) =
            s.split_once(':').ok_or_else(|| bad("expected unix:PATH, abstract:NAME or tcp:HOST:PORT"))?;
        match scheme {
            "unix" if !rest.is_empty() => Ok(Address::Unix(PathBuf::from(rest))),
            "abstract" if !rest.is_empty() && rest.len() <= 100 && !rest.contains('\0') => {
                Ok(Address::Abstract(rest.to_owned()))
            }
            "tcp" => {
                let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("tcp addresses are tcp:HOST:PORT"))?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(bad("tcp addresses are tcp:HOST:PORT with a port from 0 to 65535"));
                }
                Ok(Address::Tcp(rest.to_owned()))
            }
            "unix" | "abstract" => Err(bad("empty, too long (over 100 bytes) or NUL-holding name")),
            _ => Err(bad("unknown scheme: expected unix:, abstract: or tcp:")),
        }
    }
}

/// What [`Listener::bind`](super::Listener::bind) and [`Client::connect`](super::Client::connect)
/// accept as an address: an [`Address`] or its text.
pub trait ToAddress {
    /// The address.
    ///
    /// # Errors
    /// [`ConnError::BadAddress`] for text that is not an address.
    fn to_address(&self) -> Result<Address, ConnError>;
}

impl ToAddress for Address {
    fn to_address(&self) -> Result<Address, ConnError> {
        Ok(self.clone())
    }
}

impl ToAddress for &Address {
    fn to_address(&self) -> Result<Address, ConnError> {
        Ok((*self).clone())
    }
}

impl ToAddress for &str {
    fn to_address(&self) -> Result<Address, ConnError> {
        self.parse()
    }
}

impl ToAddress for String {
    fn to_address(&self) -> Result<Address, ConnError> {
        self.parse()
    }
}

impl ToAddress for &String {
    fn to_address(&self) -> Result<Address, ConnError> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for s in [
            "unix:/tmp/a.sock",
            "unix:rel.sock",
            "abstract:svc-1",
            "tcp:127.0.0.1:0",
            "tcp:[::1]:80",
            "tcp:localhost:7000",
        ] {
            assert_eq!(s.parse::<Address>().unwrap().to_string(), s);
        }
        for s in ["", "/tmp/x", "unix:", "abstract:", "tcp:1.2.3.4", "tcp::80", "tcp:h:99999", "udp:x:1"] {
            assert!(matches!(s.parse::<Address>(), Err(ConnError::BadAddress { .. })), "{s:?}");
        }
        assert!(!Address::Tcp("h:1".into()).is_local() && Address::unique().is_local());
    }
}
