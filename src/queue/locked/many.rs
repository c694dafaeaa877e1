//! `Queue::put_many` and `Queue::get_many_into`: many items under one hold of the lock.

use super::batch::Records;
use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, QueueFail, TryGetError, TryPutError};
use crate::wait::Limit;
use std::time::{Duration, Instant};

impl<T: serde::Serialize + serde::de::DeserializeOwned> Queue<T> {
    /// Puts every value of `values`, in order, taking the lock once for as many as fit at a
    /// time (and waking getters once per batch) instead of once per item; waits for room as
    /// [`put`](Self::put) does. Every value is encoded first: one that cannot be is an error
    /// and nothing is put. Returns how many were put: all of them, or, when a failure stopped
    /// it after some were put, those (the next call reports the failure).
    ///
    /// # Errors
    /// As [`put`](Self::put), when not one value was put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u32>::new()?;
    /// assert_eq!(q.put_many(&[1, 2, 3])?, 3);
    /// let mut got = Vec::new();
    /// assert_eq!(q.get_many_into(&mut got, 10)?, 3);
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many(&self, values: &[T]) -> Result<usize, PutError> {
        self.put_many_until(values, Limit::Forever).map_err(QueueFail::put)
    }

    /// `put_many` without waiting: puts the values that fit now.
    ///
    /// # Errors
    /// [`TryPutError::Full`] when not even the first fits, or as [`put_many`](Self::put_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::with_maxsize(2)?;
    /// assert_eq!(q.try_put_many(&[1, 2, 3])?, 2);
    /// assert!(q.try_put_many(&[4]).unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_many(&self, values: &[T]) -> Result<usize, TryPutError> {
        self.put_many_until(values, Limit::Now).map_err(QueueFail::try_put)
    }

    /// `put_many` waiting at most `timeout` for room in all: returns how many were put by then.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] when not one value could be put in time, or as
    /// [`put_many`](Self::put_many).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::Queue::<u8>::with_maxsize(2)?;
    /// assert_eq!(q.put_many_timeout(&[1, 2, 3], Duration::from_millis(5))?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many_timeout(&self, values: &[T], timeout: Duration) -> Result<usize, PutTimeoutError> {
        self.put_many_until(values, Limit::timeout(timeout)).map_err(QueueFail::put_timeout)
    }

    /// `put_many` waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put_many_timeout`](Self::put_many_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let q = multiproc::Queue::<u8>::new()?;
    /// assert_eq!(q.put_many_deadline(&[1, 2], Instant::now() + Duration::from_millis(5))?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many_deadline(&self, values: &[T], deadline: Instant) -> Result<usize, PutTimeoutError> {
        self.put_many_until(values, Limit::deadline(deadline)).map_err(QueueFail::put_timeout)
    }

    fn put_many_until(&self, values: &[T], limit: Limit) -> Result<usize, QueueFail> {
        self.check_open()?;
        // Encode everything first (QUE-B1), into one buffer.
        let mut recs = Records::default();
        for v in values {
            recs.bytes = crate::codec::encode_append(v, std::mem::take(&mut recs.bytes)).map_err(QueueFail::Encode)?;
            recs.end_record();
        }
        self.ring.put_all(&recs, limit)
    }

    /// Removes up to `max` items, waiting for the first as [`get`](Self::get) does, then
    /// taking every one already there (up to `max`) under the same hold of the lock, and
    /// appends them to `out` in order. Returns how many were taken (≥ 1 unless `max` is 0).
    /// An item that cannot be decoded is removed and reported as `Decode` after the others
    /// were appended (`out` holds every item of the batch that decoded).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<String>::new()?;
    /// q.put_many(&["a".to_string(), "b".to_string()])?;
    /// let mut out = Vec::new();
    /// assert_eq!(q.get_many_into(&mut out, 1)?, 1);
    /// assert_eq!(q.get_many_into(&mut out, 8)?, 1);
    /// assert_eq!(out, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many_into(&self, out: &mut Vec<T>, max: usize) -> Result<usize, GetError> {
        self.get_many_until(out, max, Limit::Forever).map_err(QueueFail::get)
    }

    /// `get_many_into` without waiting.
    ///
    /// # Errors
    /// [`TryGetError::Empty`] when no item is there, or as [`get_many_into`](Self::get_many_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// let mut out = Vec::new();
    /// assert!(q.try_get_many_into(&mut out, 4).unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_many_into(&self, out: &mut Vec<T>, max: usize) -> Result<usize, TryGetError> {
        self.get_many_until(out, max, Limit::Now).map_err(QueueFail::try_get)
    }

    /// `get_many_into` waiting at most `timeout` for the first item.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`], or as [`get_many_into`](Self::get_many_into).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let q = multiproc::Queue::<u8>::new()?;
    /// let mut out = Vec::new();
    /// assert!(q.get_many_into_timeout(&mut out, 4, Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many_into_timeout(
        &self,
        out: &mut Vec<T>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, GetTimeoutError> {
        self.get_many_until(out, max, Limit::timeout(timeout)).map_err(QueueFail::get_timeout)
    }

    /// `get_many_into` waiting until `deadline` for the first item.
    ///
    /// # Errors
    /// As [`get_many_into_timeout`](Self::get_many_into_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let q = multiproc::Queue::<u8>::new()?;
    /// q.put(&7)?;
    /// let mut out = Vec::new();
    /// q.get_many_into_deadline(&mut out, 4, Instant::now() + Duration::from_millis(5))?;
    /// assert_eq!(out, [7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many_into_deadline(
        &self,
        out: &mut Vec<T>,
        max: usize,
        deadline: Instant,
    ) -> Result<usize, GetTimeoutError> {
        self.get_many_until(out, max, Limit::deadline(deadline)).map_err(QueueFail::get_timeout)
    }

    fn get_many_until(&self, out: &mut Vec<T>, max: usize, limit: Limit) -> Result<usize, QueueFail> {
        self.check_open()?;
        if max == 0 {
            return Ok(0);
        }
        let recs = self.ring.get_records(max, limit)?;
        // Decoded after the lock is given back: the lock is held for the copies only.
        let mut bad = None;
        for rec in recs.iter() {
            match crate::codec::decode(rec) {
                Ok(v) => out.push(v),
                Err(e) => bad = bad.or(Some(e)),
            }
        }
        match bad {
            Some(e) => Err(QueueFail::Decode(e)),
            None => Ok(recs.count()),
        }
    }
}
