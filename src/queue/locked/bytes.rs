//! The byte path of `Queue<Vec<u8>>`: no serde on either side (and no `serde` feature needed).
//!
//! postcard encodes a `Vec<u8>` as a LEB128 varint length followed by the bytes, so
//! [`put_bytes`](Queue::put_bytes) writes exactly what `put(&vec)` would, straight from the
//! caller's slice into the ring, and [`get_bytes_into`](Queue::get_bytes_into) copies an item's
//! bytes straight into the caller's buffer. The two paths mix freely: an item put with
//! `put_bytes` can be read with `get`, and the other way round. (serde would otherwise visit a
//! `Vec<u8>` one byte at a time: at 64 KiB that costs more than the copies.)

use super::record::RecordReader;
use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, QueueFail, TryGetError, TryPutError};
use crate::wait::Limit;
use std::time::{Duration, Instant};

impl Queue<Vec<u8>> {
    /// Puts `bytes` as one item, blocking while the queue is full.
    ///
    /// # Errors
    /// [`PutError::Closed`], [`PutError::TooLarge`] (can never fit), [`PutError::Os`],
    /// [`PutError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes(b"abc")?;
    /// assert_eq!(q.get()?, b"abc"); // the typed path reads it too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(), PutError> {
        self.put_bytes_until(bytes, Limit::Forever).map_err(QueueFail::put)
    }

    /// Puts `bytes` if there is room now.
    ///
    /// # Errors
    /// [`TryPutError::Full`] if there is none, or as [`put_bytes`](Self::put_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::with_maxsize(1)?;
    /// q.try_put_bytes(b"a")?;
    /// assert!(q.try_put_bytes(b"b").unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_bytes(&self, bytes: &[u8]) -> Result<(), TryPutError> {
        self.put_bytes_until(bytes, Limit::Now).map_err(QueueFail::try_put)
    }

    /// Puts `bytes`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] if no room came, or as [`put_bytes`](Self::put_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::with_maxsize(1)?;
    /// q.put_bytes_timeout(b"a", std::time::Duration::from_millis(5))?;
    /// assert!(q.put_bytes_timeout(b"b", std::time::Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), PutTimeoutError> {
        self.put_bytes_until(bytes, Limit::timeout(timeout)).map_err(QueueFail::put_timeout)
    }

    /// Puts `bytes`, waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put_bytes_timeout`](Self::put_bytes_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes_deadline(b"a", std::time::Instant::now())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes_deadline(&self, bytes: &[u8], deadline: Instant) -> Result<(), PutTimeoutError> {
        self.put_bytes_until(bytes, Limit::deadline(deadline)).map_err(QueueFail::put_timeout)
    }

    fn put_bytes_until(&self, bytes: &[u8], limit: Limit) -> Result<(), QueueFail> {
        self.check_open()?;
        let (prefix, plen) = varint(bytes.len() as u64);
        let prefix = &prefix[..plen];
        self.ring.put_record((plen + bytes.len()) as u64, limit, |w| {
            w.write(0, prefix);
            w.write(plen as u64, bytes);
        })
    }

    /// Removes the oldest item and copies its bytes into `out` (cleared first; its allocation
    /// is reused), blocking while the queue is empty. Returns the item's length.
    ///
    /// # Errors
    /// As [`get`](Queue::get); [`GetError::NotBytes`] if the item is not a byte string
    /// (it is removed, as with `get`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put(&vec![1, 2, 3])?;
    /// let mut buf = Vec::new();
    /// assert_eq!(q.get_bytes_into(&mut buf)?, 3);
    /// assert_eq!(buf, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes_into(&self, out: &mut Vec<u8>) -> Result<usize, GetError> {
        self.get_bytes_until(out, Limit::Forever).map_err(QueueFail::get)
    }

    /// As [`get_bytes_into`](Self::get_bytes_into) if an item is there now.
    ///
    /// # Errors
    /// [`TryGetError::Empty`] if there is none, or as [`get_bytes_into`](Self::get_bytes_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// let mut buf = Vec::new();
    /// assert!(q.try_get_bytes_into(&mut buf).unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_bytes_into(&self, out: &mut Vec<u8>) -> Result<usize, TryGetError> {
        self.get_bytes_until(out, Limit::Now).map_err(QueueFail::try_get)
    }

    /// As [`get_bytes_into`](Self::get_bytes_into), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`] if no item came, or as
    /// [`get_bytes_into`](Self::get_bytes_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// let mut buf = Vec::new();
    /// let r = q.get_bytes_into_timeout(&mut buf, std::time::Duration::from_millis(5));
    /// assert!(r.unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes_into_timeout(&self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, GetTimeoutError> {
        self.get_bytes_until(out, Limit::timeout(timeout)).map_err(QueueFail::get_timeout)
    }

    /// As [`get_bytes_into`](Self::get_bytes_into), waiting until `deadline`.
    ///
    /// # Errors
    /// As [`get_bytes_into_timeout`](Self::get_bytes_into_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes(b"xy")?;
    /// let mut buf = Vec::new();
    /// assert_eq!(q.get_bytes_into_deadline(&mut buf, std::time::Instant::now())?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes_into_deadline(&self, out: &mut Vec<u8>, deadline: Instant) -> Result<usize, GetTimeoutError> {
        self.get_bytes_until(out, Limit::deadline(deadline)).map_err(QueueFail::get_timeout)
    }

    fn get_bytes_until(&self, out: &mut Vec<u8>, limit: Limit) -> Result<usize, QueueFail> {
        self.check_open()?;
        out.clear();
        self.ring.get_record(limit, |r| {
            let (plen, n) = byte_item(r)?;
            r.read_append(plen, n, out);
            Ok(n)
        })
    }
}

/// Where the bytes of the byte-string item in `r` start, and how many there are: the item must
/// be exactly a varint length and that many bytes ([`QueueFail::NotBytes`] otherwise).
pub(super) fn byte_item(r: &RecordReader<'_>) -> Result<(u64, usize), QueueFail> {
    let mut prefix = [0u8; 10];
    let peek = (r.len as usize).min(prefix.len());
    r.read(0, &mut prefix[..peek]);
    let (n, plen) = parse_varint(&prefix[..peek]).ok_or(QueueFail::NotBytes)?;
    if n.checked_add(plen as u64) != Some(r.len) {
        return Err(QueueFail::NotBytes);
    }
    Ok((plen as u64, n as usize))
}

/// `n` as a LEB128 varint (postcard's length prefix): the bytes and how many are used.
pub(super) fn varint(mut n: u64) -> ([u8; 10], usize) {
    let mut buf = [0u8; 10];
    let mut i = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = byte;
            return (buf, i + 1);
        }
        buf[i] = byte | 0x80;
        i += 1;
    }
}

/// Parses a LEB128 varint at the start of `b`: the value and its length, `None` if it is
/// truncated or overlong.
pub(super) fn parse_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let bits = (byte & 0x7f) as u64;
        if i == 9 && bits > 1 {
            return None; // more than 64 bits
        }
        n |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(all(test, not(loom), feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_postcard_and_round_trips() {
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, 1 << 32, u64::MAX] {
            let (b, len) = varint(n);
            assert_eq!(parse_varint(&b[..len]), Some((n, len)));
            // postcard's own length prefix for a sequence of n bytes.
            let pc = postcard::to_allocvec(&n).unwrap();
            assert_eq!(&b[..len], &pc[..], "n = {n}");
        }
        assert_eq!(parse_varint(&[0x80]), None, "truncated");
        assert_eq!(parse_varint(&[0xff; 10]), None, "more than 64 bits");
    }

    #[test]
    fn bytes_path_and_typed_path_mix() {
        let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(1 << 16).build().unwrap();
        let big: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        q.put_bytes(&big).unwrap();
        q.put(&vec![7, 8]).unwrap();
        q.put_bytes(b"").unwrap();
        assert_eq!(q.get().unwrap(), big);
        let mut out = vec![1, 2, 3];
        assert_eq!(q.get_bytes_into(&mut out).unwrap(), 2);
        assert_eq!(out, [7, 8]);
        assert_eq!(q.try_get_bytes_into(&mut out).unwrap(), 0);
        assert!(out.is_empty());
        assert!(matches!(q.try_get_bytes_into(&mut out), Err(crate::TryGetError::Empty)));
        // A record that wraps around the ring's end.
        for round in 0..10u8 {
            q.put_bytes(&big[..15_000]).unwrap();
            q.put_bytes(&[round; 9]).unwrap();
            q.get_bytes_into(&mut out).unwrap();
            assert_eq!(out, &big[..15_000]);
            q.get_bytes_into(&mut out).unwrap();
            assert_eq!(out, [round; 9]);
        }
        assert!(matches!(
            q.try_put_bytes(&vec![0; 1 << 16]),
            Err(crate::TryPutError::TooLarge { capacity: 65536, .. })
        ));
        assert!(q.empty(), "a refused item leaves nothing behind");
    }

    #[test]
    fn get_bytes_into_refuses_an_item_that_is_not_bytes_and_removes_it() {
        let q: Queue<Vec<u8>> = Queue::new().unwrap();
        // Reach the raw path through a queue of another type over the same state.
        let raw: Queue<(u32, String)> = Queue::from_ring(q.ring.clone());
        raw.put(&(1_000_000, "not bytes".to_string())).unwrap();
        q.put_bytes(b"ok").unwrap();
        let mut out = Vec::new();
        assert!(matches!(q.get_bytes_into(&mut out), Err(crate::GetError::NotBytes)));
        assert_eq!(q.get_bytes_into(&mut out).unwrap(), 2);
        assert_eq!(out, b"ok");
    }
}
