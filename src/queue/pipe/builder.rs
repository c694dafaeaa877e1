//! `Pipe` and its builder: the segment with one ring per direction, the liveness pipes, the
//! optional descriptor socket.

use super::super::ring::{Consumer, Producer, Ring, RingCtl};
use super::conn::Connection;
use super::liveness::{Rx, Tx};
use super::WaitStrategy;
use crate::shm::{Segment, ShmError};
use crate::sys::process::pipe_cloexec;
use std::os::fd::OwnedFd;

/// Builder for a [`Pipe`]: ring capacity, maximum message size, wait strategy.
///
/// # Examples
///
/// ```
/// use multiproc::{Pipe, WaitStrategy};
/// let (mut r, mut w) = Pipe::builder().capacity(4096).max_message(1 << 20).wait(WaitStrategy::Park).one_way()?;
/// // Larger than the ring: sent in fragments while the reader drains them, received whole.
/// let h = std::thread::spawn(move || w.send_bytes(&vec![7u8; 100_000]));
/// assert_eq!(r.recv_bytes()?.len(), 100_000);
/// h.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder {
    capacity: usize,
    max_message: usize,
    wait: WaitStrategy,
    fd_passing: bool,
    integrity: bool,
}

impl Default for PipeBuilder {
    fn default() -> PipeBuilder {
        PipeBuilder {
            capacity: 1 << 18,
            max_message: 1 << 30,
            wait: WaitStrategy::default(),
            fd_passing: false,
            integrity: false,
        }
    }
}

impl PipeBuilder {
    /// Bytes of each direction's ring (power of two, 64 B ..= 1 GiB; default 256 KiB).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, _b) = multiproc::Pipe::builder().capacity(1 << 12).duplex()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(mut self, bytes: usize) -> PipeBuilder {
        self.capacity = bytes;
        self
    }

    /// Largest message accepted by `send` and `recv` (default 1 GiB).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::builder().max_message(4).duplex()?;
    /// assert!(matches!(a.send_bytes(b"12345"), Err(multiproc::SendError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_message(mut self, bytes: usize) -> PipeBuilder {
        self.max_message = bytes;
        self
    }

    /// Lets the ends pass file descriptors ([`Connection::send_fd`] / [`Connection::recv_fd`],
    /// Python's `reduction.send_handle` / `recv_handle`; PIPE-13). Off by default: it costs a
    /// Unix socket pair (two descriptors) per pipe, which most pipes never use.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// let file = std::fs::File::open("/dev/null")?;
    /// a.send_fd(std::os::fd::AsFd::as_fd(&file))?;
    /// let _same_file: std::os::fd::OwnedFd = b.recv_fd()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd_passing(mut self, on: bool) -> PipeBuilder {
        self.fd_passing = on;
        self
    }

    /// The integrity mode (off by default): every record in the rings carries a CRC32C of its
    /// payload (computed with the CPU's CRC32C instruction where it has one), checked before a
    /// message is handed out, so that bytes changed in the shared memory by anyone but the
    /// sender (a scribbling target, a stray write) are [`RecvError::Corrupt`](crate::RecvError)
    /// instead of data. Without it, only damage to the framing is caught (a record header read
    /// at the wrong position). It costs a pass over each message on both sides and 8 bytes per
    /// record (`pipe.stream.*.crc` in `multiproc bench`). Both ends, and ends passed to other
    /// processes, follow the pipe's setting; a loan's bytes are checked when the loan is taken,
    /// and a writer that changes them while the reader holds the loan is not caught.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().integrity(true).duplex()?;
    /// a.send_bytes(b"checked")?;
    /// assert_eq!(b.recv_bytes()?, b"checked");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn integrity(mut self, on: bool) -> PipeBuilder {
        self.integrity = on;
        self
    }

    /// How both ends wait (changeable per end with [`Connection::set_wait`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, _b) = multiproc::Pipe::builder().wait(multiproc::WaitStrategy::Park).duplex()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(mut self, w: WaitStrategy) -> PipeBuilder {
        self.wait = w;
        self
    }

    /// A duplex pipe: two ends that both send and receive.
    ///
    /// # Errors
    /// [`ShmError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().duplex()?;
    /// b.send_bytes(b"pong")?;
    /// assert_eq!(a.recv_bytes()?, b"pong");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn duplex(self) -> Result<(Connection, Connection), ShmError> {
        let (seg, r1, r2) = self.segment(2)?;
        let r2 = r2.expect("two rings");
        let (l1r, l1w) = pipe_cloexec().map_err(ShmError::Os)?;
        let (l2r, l2w) = pipe_cloexec().map_err(ShmError::Os)?;
        let (sa, sb) = self.sockets()?;
        let a = self.conn(seg.clone(), Some((r1, l1w)), Some((r2, l2r)), sa);
        let b = self.conn(seg, Some((r2, l2w)), Some((r1, l1r)), sb);
        Ok((a, b))
    }

    /// A one-way pipe: `(reader, writer)`.
    ///
    /// # Errors
    /// [`ShmError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut r, mut w) = multiproc::Pipe::builder().one_way()?;
    /// w.send_bytes(b"x")?;
    /// assert_eq!(r.recv_bytes()?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn one_way(self) -> Result<(Connection, Connection), ShmError> {
        let (seg, r1, _) = self.segment(1)?;
        let (lr, lw) = pipe_cloexec().map_err(ShmError::Os)?;
        let (sr, sw) = self.sockets()?;
        let reader = self.conn(seg.clone(), None, Some((r1, lr)), sr);
        let writer = self.conn(seg, Some((r1, lw)), None, sw);
        Ok((reader, writer))
    }

    /// The descriptor-passing socket pair, if enabled.
    fn sockets(&self) -> Result<(Option<OwnedFd>, Option<OwnedFd>), ShmError> {
        if !self.fd_passing {
            return Ok((None, None));
        }
        let (a, b) = crate::sys::fdpass::socketpair_seqpacket().map_err(ShmError::Os)?;
        Ok((Some(a), Some(b)))
    }

    fn segment(&self, rings: usize) -> Result<(Segment, Ring, Option<Ring>), ShmError> {
        let cap = self.capacity;
        if !cap.is_power_of_two() || !(64..=1 << 30).contains(&cap) {
            return Err(ShmError::InvalidArgument {
                what: "ring capacity (a power of two in 64..=1 GiB)",
                value: cap as u64,
            });
        }
        let seg = Segment::anonymous(rings * (cap + 512) + 4096)?;
        let make = || -> Result<Ring, ShmError> {
            let ctl = seg.alloc_object::<RingCtl>()?;
            if self.integrity {
                ctl.set_integrity();
            }
            let off = seg.alloc(cap, 128)?;
            let data = seg.bytes_at(off, cap)?;
            let ctl_ptr = std::ptr::NonNull::from(&*ctl);
            // SAFETY: both live in `seg`, which every Connection keeps mapped; `cap` is a power of
            // two ≥ 64 and the region is 128-aligned; one producer and one consumer per ring.
            Ok(unsafe { Ring::from_raw(ctl_ptr, data, cap) })
        };
        let r1 = make()?;
        let r2 = if rings == 2 { Some(make()?) } else { None };
        Ok((seg, r1, r2))
    }

    fn conn(
        &self,
        seg: Segment,
        tx: Option<(Ring, OwnedFd)>,
        rx: Option<(Ring, OwnedFd)>,
        fd_sock: Option<OwnedFd>,
    ) -> Connection {
        // A fresh segment's sides are free; a claim that cannot be made leaves them unchecked.
        let claim = |r: &Ring, producer| super::held::claim(&seg, r, producer).ok().flatten();
        let tx = tx.map(|(r, fd)| Tx::new(Producer::new(r), fd, claim(&r, true)));
        let rx = rx.map(|(r, fd)| Rx::new(Consumer::new(r), fd, claim(&r, false)));
        Connection::from_parts(seg, tx, rx, fd_sock, self.wait, self.max_message)
    }
}

/// Python's `multiprocessing.Pipe`.
///
/// # Examples
///
/// ```
/// let (mut a, mut b) = multiproc::Pipe::duplex()?;
/// a.send_bytes(b"hi")?;
/// assert_eq!(b.recv_bytes()?, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Pipe;

impl Pipe {
    /// `Pipe()`: a duplex pipe with default settings.
    ///
    /// # Errors
    /// [`ShmError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = multiproc::Pipe::duplex()?;
    /// assert!(a.readable() && a.writable() && b.readable() && b.writable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn duplex() -> Result<(Connection, Connection), ShmError> {
        PipeBuilder::default().duplex()
    }

    /// `Pipe(duplex=False)`: `(reader, writer)`. The direction is in the name because
    /// Python's `Pipe()` is duplex: a `Pipe::new()` that gave one-way ends surprised readers of
    /// Python code (see [`Pipe::new`]).
    ///
    /// # Errors
    /// [`ShmError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = multiproc::Pipe::one_way()?;
    /// assert!(r.readable() && !r.writable() && w.writable() && !w.readable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn one_way() -> Result<(Connection, Connection), ShmError> {
        PipeBuilder::default().one_way()
    }

    /// The one-way pipe of 0.1, renamed [`one_way`](Self::one_way): Python's `Pipe()` is
    /// duplex, so a `new` that is not is a trap; say the direction instead.
    ///
    /// # Errors
    /// [`ShmError`].
    #[deprecated(
        since = "0.2.0",
        note = "say the direction: `Pipe::one_way()` (this), or `Pipe::duplex()` (Python's `Pipe()`)"
    )]
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Result<(Connection, Connection), ShmError> {
        PipeBuilder::default().one_way()
    }

    /// A [`PipeBuilder`] with the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_r, _w) = multiproc::Pipe::builder().capacity(1 << 16).one_way()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> PipeBuilder {
        PipeBuilder::default()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::queue::pipe::conn::Link;
    use crate::RecvError;

    /// Flips one byte of the payload of the message waiting in `c`'s receiving ring.
    fn flip_payload_byte(c: &Connection) {
        let Link::Rings(r) = &c.link else { panic!("a pipe end has rings") };
        let rx = r.rx.as_ref().expect("a receiving end");
        let (_, data, _) = rx.cons.ring().parts();
        // The first record starts at offset 0: header, checksum word, then the payload.
        // SAFETY: the ring's region is mapped while `c` lives, and offset 20 is inside it (the
        // capacity is at least 64); nobody else touches it during the test.
        unsafe { *data.cast_mut().add(20) ^= 0x01 };
    }

    #[test]
    fn pipe_b3_integrity_reports_a_changed_payload_as_corrupt() {
        let (mut a, mut b) = Pipe::builder().integrity(true).duplex().unwrap();
        a.send_bytes(b"0123456789abcdef").unwrap();
        flip_payload_byte(&b);
        assert!(matches!(b.recv_bytes(), Err(RecvError::Corrupt(_))));
        // Without the mode, the same change is delivered as data.
        let (mut a, mut b) = Pipe::builder().duplex().unwrap();
        a.send_bytes(b"0123456789abcdef").unwrap();
        let Link::Rings(r) = &b.link else { panic!() };
        let (_, data, _) = r.rx.as_ref().unwrap().cons.ring().parts();
        // SAFETY: as above (no checksum word: the payload starts at offset 8).
        unsafe { *data.cast_mut().add(12) ^= 0x01 };
        assert_eq!(b.recv_bytes().unwrap(), b"0123556789abcdef");
    }

    #[test]
    fn pipe_b3_integrity_delivers_every_form_intact() {
        let (mut a, mut b) = Pipe::builder().integrity(true).capacity(1 << 12).duplex().unwrap();
        // Fragments (larger than a record), batches and loans all carry their checksums.
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let t = std::thread::spawn(move || {
            a.send_bytes(&big).unwrap();
            a.send_bytes_many(&[b"x".as_slice(), b"yz"]).unwrap();
            let mut loan = a.send_loan(5).unwrap();
            loan.copy_from_slice(b"loan!");
            loan.commit().unwrap();
            big
        });
        let got = b.recv_bytes().unwrap();
        assert_eq!(got, t.join().unwrap());
        assert_eq!(b.recv_bytes().unwrap(), b"x");
        assert_eq!(b.recv_bytes().unwrap(), b"yz");
        assert_eq!(&*b.recv_loan().unwrap(), b"loan!");
    }
}
