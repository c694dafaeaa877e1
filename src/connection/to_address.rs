//! Reading an [`Address`] from text (`unix:PATH`, `abstract:NAME`, `tcp:HOST:PORT`), and
//! [`ToAddress`], what `Listener::bind` and `Client::connect` accept.

use super::{Address, ConnError};
use std::path::PathBuf;
use std::str::FromStr;

impl FromStr for Address {
    type Err = ConnError;

    fn from_str(s: &str) -> Result<Address, ConnError> {
        let bad = |reason| ConnError::BadAddress { address: s.to_owned(), reason };
        let (scheme, rest) =
            s.split_once(':').ok_or_else(|| bad("expected unix:PATH, abstract:NAME or tcp:HOST:PORT"))?;
        match scheme {
            // sun_path holds 108 bytes with its NUL.
            "unix" if rest.len() > 107 => Err(bad("unix socket paths are at most 107 bytes")),
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
