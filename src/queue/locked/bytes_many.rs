//! The byte path of `Queue<Vec<u8>>`, in batches: `put_bytes_many` / `get_bytes_many` (the
//! byte-string forms of `put_many` / `get_many_into`, with no serde and no allocation per item).

use super::batch::Records;
use super::bytes::{parse_varint, varint};
use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, QueueFail, TryGetError, TryPutError};
use crate::wait::Limit;
use std::time::{Duration, Instant};

impl Queue<Vec<u8>> {
    /// Puts every byte string of `items` as one item each, in order, taking the lock once for
    /// as many as fit at a time; waits for room as [`put_bytes`](Self::put_bytes) does.
    /// Returns how many were put: all, or those before a failure stopped it.
    ///
    /// # Errors
    /// As [`put_bytes`](Self::put_bytes), when not one item was put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// assert_eq!(q.put_bytes_many(&[b"ab", b"cd"])?, 2);
    /// let mut got = Vec::new();
    /// assert_eq!(q.get_bytes_many(8, |b| got.push(b.to_vec()))?, 2);
    /// assert_eq!(got, [b"ab", b"cd"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes_many<B: AsRef<[u8]>>(&self, items: &[B]) -> Result<usize, PutError> {
        self.put_bytes_many_until(items, Limit::Forever).map_err(QueueFail::put)
    }

    /// `put_bytes_many` without waiting: puts the items that fit now.
    ///
    /// # Errors
    /// [`TryPutError::Full`] when not even the first fits, or as
    /// [`put_bytes_many`](Self::put_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::with_maxsize(1)?;
    /// assert_eq!(q.try_put_bytes_many(&[b"a", b"b"])?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_bytes_many<B: AsRef<[u8]>>(&self, items: &[B]) -> Result<usize, TryPutError> {
        self.put_bytes_many_until(items, Limit::Now).map_err(QueueFail::try_put)
    }

    /// `put_bytes_many` waiting at most `timeout` for room in all.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] when not one item could be put in time, or as
    /// [`put_bytes_many`](Self::put_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::with_maxsize(1)?;
    /// assert_eq!(q.put_bytes_many_timeout(&[b"a", b"b"], Duration::from_millis(5))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes_many_timeout<B: AsRef<[u8]>>(
        &self,
        items: &[B],
        timeout: Duration,
    ) -> Result<usize, PutTimeoutError> {
        self.put_bytes_many_until(items, Limit::timeout(timeout)).map_err(QueueFail::put_timeout)
    }

    /// `put_bytes_many` waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put_bytes_many_timeout`](Self::put_bytes_many_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// assert_eq!(q.put_bytes_many_deadline(&[b"a"], Instant::now() + Duration::from_millis(5))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes_many_deadline<B: AsRef<[u8]>>(
        &self,
        items: &[B],
        deadline: Instant,
    ) -> Result<usize, PutTimeoutError> {
        self.put_bytes_many_until(items, Limit::deadline(deadline)).map_err(QueueFail::put_timeout)
    }

    fn put_bytes_many_until<B: AsRef<[u8]>>(&self, items: &[B], limit: Limit) -> Result<usize, QueueFail> {
        self.check_open()?;
        // Each item as `put(&vec)` would encode it: a varint length, then the bytes, all in
        // one buffer (one copy of the batch; the ring takes it under one lock).
        let mut recs = Records::default();
        recs.bytes.reserve(items.iter().map(|b| b.as_ref().len() + 2).sum());
        for b in items {
            let b = b.as_ref();
            let (prefix, plen) = varint(b.len() as u64);
            recs.bytes.extend_from_slice(&prefix[..plen]);
            recs.bytes.extend_from_slice(b);
            recs.end_record();
        }
        self.ring.put_all(&recs, limit)
    }

    /// Removes up to `max` items, waiting for the first as [`get_bytes_into`](Self::get_bytes_into)
    /// does, then taking every one already there (up to `max`) under the same hold of the
    /// lock; calls `f` with each one's bytes, in order, after the lock is given back. Returns
    /// how many were taken. An item that is not a byte string is removed and reported as
    /// `NotBytes` after `f` saw the others.
    ///
    /// # Errors
    /// As [`get_bytes_into`](Self::get_bytes_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes_many(&[[1u8; 4], [2u8; 4], [3u8; 4]])?;
    /// let mut sum = 0;
    /// assert_eq!(q.get_bytes_many(2, |b| sum += b[0])?, 2);
    /// assert_eq!(sum, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes_many(&self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, GetError> {
        self.get_bytes_many_until(max, f, Limit::Forever).map_err(QueueFail::get)
    }

    /// `get_bytes_many` without waiting.
    ///
    /// # Errors
    /// [`TryGetError::Empty`], or as [`get_bytes_many`](Self::get_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// assert!(q.try_get_bytes_many(4, |_| {}).unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_bytes_many(&self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, TryGetError> {
        self.get_bytes_many_until(max, f, Limit::Now).map_err(QueueFail::try_get)
    }

    /// `get_bytes_many` waiting at most `timeout` for the first item.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`], or as [`get_bytes_many`](Self::get_bytes_many).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// assert!(q.get_bytes_many_timeout(4, |_| {}, Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes_many_timeout(
        &self,
        max: usize,
        f: impl FnMut(&[u8]),
        timeout: Duration,
    ) -> Result<usize, GetTimeoutError> {
        self.get_bytes_many_until(max, f, Limit::timeout(timeout)).map_err(QueueFail::get_timeout)
    }

    /// `get_bytes_many` waiting until `deadline` for the first item.
    ///
    /// # Errors
    /// As [`get_bytes_many_timeout`](Self::get_bytes_many_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let q: multiproc::Queue<Vec<u8>> = multiproc::Queue::new()?;
    /// q.put_bytes(b"z")?;
    /// assert_eq!(q.get_bytes_many_deadline(4, |b| assert_eq!(b, b"z"), Instant::now() + Duration::from_millis(5))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes_many_deadline(
        &self,
        max: usize,
        f: impl FnMut(&[u8]),
        deadline: Instant,
    ) -> Result<usize, GetTimeoutError> {
        self.get_bytes_many_until(max, f, Limit::deadline(deadline)).map_err(QueueFail::get_timeout)
    }

    fn get_bytes_many_until(&self, max: usize, mut f: impl FnMut(&[u8]), limit: Limit) -> Result<usize, QueueFail> {
        self.check_open()?;
        if max == 0 {
            return Ok(0);
        }
        let recs = self.ring.get_records(max, limit)?;
        let mut bad = false;
        for rec in recs.iter() {
            // Exactly a varint length and that many bytes, as `get_bytes_into` checks.
            match parse_varint(&rec[..rec.len().min(10)]) {
                Some((len, plen)) if len.checked_add(plen as u64) == Some(rec.len() as u64) => f(&rec[plen..]),
                _ => bad = true,
            }
        }
        if bad {
            Err(QueueFail::NotBytes)
        } else {
            Ok(recs.count())
        }
    }
}
