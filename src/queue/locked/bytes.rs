//! The byte path of `Queue<Vec<u8>>`: no serde on either side (and no `serde` feature needed).
//!
//! postcard encodes a `Vec<u8>` as a LEB128 varint length followed by the bytes, so
//! [`put_bytes`](Queue::put_bytes) writes exactly what `put(&vec)` would, straight from the
//! caller's slice into the ring, and [`get_bytes_into`](Queue::get_bytes_into) copies an item's
//! bytes straight into the caller's buffer. The two paths mix freely: an item put with
//! `put_bytes` can be read with `get`, and the other way round. (serde would otherwise visit a
//! `Vec<u8>` one byte at a time: at 64 KiB that costs more than the copies.)

use super::{Queue, QueueError};
use crate::wait::Limit;
use std::time::Duration;

impl Queue<Vec<u8>> {
    /// Puts `bytes` as one item, blocking while the queue is full.
    ///
    /// # Errors
    /// [`QueueError::Closed`], [`QueueError::TooLarge`] (can never fit), [`QueueError::Os`],
    /// [`QueueError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes(b"abc")?;
    /// assert_eq!(q.get()?, b"abc"); // the typed path reads it too
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(), QueueError> {
        self.put_bytes_until(bytes, Limit::Forever)
    }

    /// Puts `bytes` if there is room now; [`QueueError::Full`] if not.
    pub fn try_put_bytes(&self, bytes: &[u8]) -> Result<(), QueueError> {
        self.put_bytes_until(bytes, Limit::Now)
    }

    /// Puts `bytes`, waiting at most `timeout` for room; [`QueueError::Full`] after that.
    pub fn put_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), QueueError> {
        self.put_bytes_until(bytes, Limit::timeout(timeout))
    }

    fn put_bytes_until(&self, bytes: &[u8], limit: Limit) -> Result<(), QueueError> {
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
    /// As [`get`](Queue::get); [`QueueError::NotBytes`] if the item is not a byte string
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
    /// # Ok::<(), multiproc::QueueError>(())
    /// ```
    pub fn get_bytes_into(&self, out: &mut Vec<u8>) -> Result<usize, QueueError> {
        self.get_bytes_until(out, Limit::Forever)
    }

    /// As [`get_bytes_into`](Self::get_bytes_into) if an item is there now;
    /// [`QueueError::Empty`] if not.
    pub fn try_get_bytes_into(&self, out: &mut Vec<u8>) -> Result<usize, QueueError> {
        self.get_bytes_until(out, Limit::Now)
    }

    /// As [`get_bytes_into`](Self::get_bytes_into), waiting at most `timeout`;
    /// [`QueueError::Empty`] after that.
    pub fn get_bytes_into_timeout(&self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, QueueError> {
        self.get_bytes_until(out, Limit::timeout(timeout))
    }

    fn get_bytes_until(&self, out: &mut Vec<u8>, limit: Limit) -> Result<usize, QueueError> {
        self.check_open()?;
        out.clear();
        self.ring.get_record(limit, |r| {
            let mut prefix = [0u8; 10];
            let peek = (r.len as usize).min(prefix.len());
            r.read(0, &mut prefix[..peek]);
            // The item must be exactly a varint length and that many bytes.
            let (n, plen) = parse_varint(&prefix[..peek]).ok_or(QueueError::NotBytes)?;
            if n.checked_add(plen as u64) != Some(r.len) {
                return Err(QueueError::NotBytes);
            }
            r.read_append(plen as u64, n as usize, out);
            Ok(n as usize)
        })
    }
}

/// `n` as a LEB128 varint (postcard's length prefix): the bytes and how many are used.
fn varint(mut n: u64) -> ([u8; 10], usize) {
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
fn parse_varint(b: &[u8]) -> Option<(u64, usize)> {
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
        assert!(matches!(q.try_get_bytes_into(&mut out), Err(QueueError::Empty)));
        // A record that wraps around the ring's end.
        for round in 0..10u8 {
            q.put_bytes(&big[..15_000]).unwrap();
            q.put_bytes(&[round; 9]).unwrap();
            q.get_bytes_into(&mut out).unwrap();
            assert_eq!(out, &big[..15_000]);
            q.get_bytes_into(&mut out).unwrap();
            assert_eq!(out, [round; 9]);
        }
        assert!(matches!(q.try_put_bytes(&vec![0; 1 << 16]), Err(QueueError::TooLarge { capacity: 65536, .. })));
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
        assert!(matches!(q.get_bytes_into(&mut out), Err(QueueError::NotBytes)));
        assert_eq!(q.get_bytes_into(&mut out).unwrap(), 2);
        assert_eq!(out, b"ok");
    }
}
