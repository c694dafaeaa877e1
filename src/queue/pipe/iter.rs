//! `Connection::iter` and `Connection::try_iter`: the messages of a connection as an iterator.

use super::{Connection, RecvError, RecvFail};
use crate::wait::Limit;
use std::marker::PhantomData;

/// An iterator over the messages of a [`Connection`], decoded as `T`, from
/// [`Connection::iter`] (blocking, ending at end of file: every writer closed or dead) and
/// [`Connection::try_iter`] (what is there now).
///
/// Each item is a `Result`: a message that is not a valid `T` is reported (it was consumed) and
/// the iteration goes on; any other error (a message sent as another type, which stays in the
/// pipe; a closed handle; a corrupt ring) is reported once and ends it.
#[derive(Debug)]
pub struct ConnectionIter<'a, T> {
    conn: &'a mut Connection,
    now: bool,
    done: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: serde::de::DeserializeOwned> Iterator for ConnectionIter<'_, T> {
    type Item = Result<T, RecvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.conn.recv_typed::<T>(if self.now { Limit::Now } else { Limit::Forever }) {
            Ok(v) => Some(Ok(v)),
            Err(RecvFail::Eof | RecvFail::Empty | RecvFail::HandleClosed) => {
                self.done = true;
                None
            }
            Err(e @ RecvFail::Decode(_)) => Some(Err(e.recv())),
            Err(e) => {
                self.done = true;
                Some(Err(e.recv()))
            }
        }
    }
}

impl<T: serde::de::DeserializeOwned> std::iter::FusedIterator for ConnectionIter<'_, T> {}

impl Connection {
    /// A blocking iterator over the messages, decoded as `T`, ending at end of file (every
    /// writer of the other end closed or dead): Python's `while True: conn.recv()` until
    /// `EOFError`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, mut tx) = multiproc::Pipe::one_way()?;
    /// for i in 0..3u32 {
    ///     tx.send(&i)?;
    /// }
    /// drop(tx);
    /// let got: Vec<u32> = rx.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter<T: serde::de::DeserializeOwned>(&mut self) -> ConnectionIter<'_, T> {
        ConnectionIter { conn: self, now: false, done: false, _t: PhantomData }
    }

    /// An iterator over the messages there now, without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, mut tx) = multiproc::Pipe::one_way()?;
    /// tx.send(&1u8)?;
    /// tx.send(&2u8)?;
    /// assert_eq!(rx.try_iter::<u8>().collect::<Result<Vec<_>, _>>()?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter<T: serde::de::DeserializeOwned>(&mut self) -> ConnectionIter<'_, T> {
        ConnectionIter { conn: self, now: true, done: false, _t: PhantomData }
    }
}
