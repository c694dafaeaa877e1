//! Typed messages: any serde value, with a type check on receipt.
//!
//! A sender announces the fingerprint of a message's type (`crate::codec::fingerprint`) in the
//! ring when it differs from the previous message's, so a connection that sends one type pays
//! for the announcement once; a receiver compares the announced type with the one it asks for.

use super::{Connection, RecvFail, SendFail};
use super::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::codec;
use crate::wait::Limit;
use std::time::{Duration, Instant};

impl Connection {
    /// Sends any serde value, blocking while the ring is full. The receiver's
    /// [`recv`](Self::recv) checks the type: a message sent as another type is
    /// [`RecvError::WrongType`], never garbage (`&str` and `String`, `&[T]` and `Vec<T>` count
    /// as the same type).
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus [`SendError::Encode`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&(1u32, 2.25f64, None::<u8>))?;
    /// assert_eq!(b.recv::<(u32, f64, Option<u8>)>()?, (1, 2.25, None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SendError> {
        self.send_typed(value, Limit::Forever).map_err(SendFail::send)
    }

    /// `send` without blocking: [`TrySendError::Full`] when it does not fit now.
    ///
    /// # Errors
    /// As [`Connection::send`], plus `Full`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.try_send(&(1u8, 'x'))?;
    /// assert_eq!(b.recv::<(u8, char)>()?, (1, 'x'));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TrySendError> {
        self.send_typed(value, Limit::Now).map_err(SendFail::try_send)
    }

    fn send_typed<T: serde::Serialize + ?Sized>(&mut self, value: &T, limit: Limit) -> Result<(), SendFail> {
        let v = codec::encode(value).map_err(SendFail::Encode)?;
        let fp = self.types.0.get::<T>();
        self.send_inner(&v, fp, limit)
    }

    /// `send` waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Connection::send`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_timeout(&"hi", Duration::from_secs(1))?;
    /// assert_eq!(b.recv::<String>()?, "hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_timeout<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.send_typed(value, Limit::timeout(timeout)).map_err(SendFail::send_timeout)
    }

    /// `send` waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`Connection::send`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_deadline(&5u16, Instant::now() + Duration::from_secs(1))?;
    /// assert_eq!(b.recv::<u16>()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_deadline<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError> {
        self.send_typed(value, Limit::deadline(deadline)).map_err(SendFail::send_timeout)
    }

    /// The one typed receive: the next message if it was sent as `T` (or as plain bytes),
    /// decoded; `WrongType` leaves it in place.
    pub(super) fn recv_typed<T: serde::de::DeserializeOwned>(&mut self, limit: Limit) -> Result<T, RecvFail> {
        let fp = self.types.1.get::<T>();
        let bytes = self.recv_vec(limit, usize::MAX, Some((fp, std::any::type_name::<T>())))?;
        codec::decode(&bytes).map_err(RecvFail::Decode)
    }

    /// Receives a serde value, blocking.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus [`RecvError::WrongType`] (the message was sent as
    /// another type; it stays in the pipe) and [`RecvError::Decode`] (bytes that are not a `T`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&vec![1u8, 2])?;
    /// assert_eq!(b.recv::<Vec<u8>>()?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        self.recv_typed(Limit::Forever).map_err(RecvFail::recv)
    }

    /// `recv` without blocking.
    ///
    /// # Errors
    /// As [`Connection::recv`], plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.try_recv::<u8>(), Err(multiproc::TryRecvError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, TryRecvError> {
        self.recv_typed(Limit::Now).map_err(RecvFail::try_recv)
    }

    /// `recv` waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Connection::recv`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&7u64)?;
    /// assert_eq!(b.recv_timeout::<u64>(Duration::from_secs(1))?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout<T: serde::de::DeserializeOwned>(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_typed(Limit::timeout(timeout)).map_err(RecvFail::recv_timeout)
    }

    /// `recv` waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Connection::recv`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&7u64)?;
    /// assert_eq!(b.recv_deadline::<u64>(Instant::now() + Duration::from_secs(1))?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_deadline<T: serde::de::DeserializeOwned>(&mut self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_typed(Limit::deadline(deadline)).map_err(RecvFail::recv_timeout)
    }
}
