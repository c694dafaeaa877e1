//! What [`ForkServer::run_input`](crate::ForkServer::run_input) hands each input's child: the
//! [`InputArea`] the parent writes the input into, and the [`FuzzInput`] the child reads it
//! from (a leaf of the process layer: the station machinery and the call tokens both name it).

use crate::shm::{SharedMemory, ShmError};

/// Bytes before the input in the area: its length (`u64`, little-endian).
const LEN: usize = 8;

/// Where [`ForkServer::run_input`](crate::ForkServer::run_input) puts each input: shared memory of a fixed capacity, written
/// by the parent before each child starts and read by that child.
///
/// # Examples
///
/// ```
/// let area = multiproc::InputArea::new(1 << 16)?;
/// assert_eq!(area.capacity(), 1 << 16);
/// area.set(b"an input")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InputArea {
    pub(super) shm: SharedMemory,
    /// Unique in this process: names the area's stations (`ServerInner::stations`).
    pub(super) id: u64,
}

impl InputArea {
    /// An area for inputs of up to `capacity` bytes.
    ///
    /// # Errors
    /// [`ShmError`] if the memory cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::InputArea::new(4096).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(capacity: usize) -> Result<InputArea, ShmError> {
        // A process-wide counter, not part of any shared-memory algorithm (so not loom's type).
        #[allow(clippy::disallowed_types)]
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let shm = SharedMemory::anonymous(capacity.saturating_add(LEN))?;
        Ok(InputArea { shm, id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) })
    }

    /// The largest input the area holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::InputArea::new(100)?.capacity(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.shm.len() - LEN
    }

    /// Makes `input` the input of the next child (no child may be running from this area).
    ///
    /// # Errors
    /// [`ShmError::InvalidArgument`] if `input` is longer than [`capacity`](Self::capacity)
    /// (the area keeps its previous input).
    ///
    /// # Examples
    ///
    /// ```
    /// let area = multiproc::InputArea::new(4)?;
    /// assert!(area.set(b"four").is_ok());
    /// assert!(area.set(b"five!").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, input: &[u8]) -> Result<(), ShmError> {
        if input.len() > self.capacity() {
            return Err(ShmError::InvalidArgument { what: "input longer than the area", value: input.len() as u64 });
        }
        self.shm.write_at(LEN, input)?;
        self.shm.write_at(0, &(input.len() as u64).to_le_bytes())
    }
}

/// The input of a child started by [`ForkServer::run_input`](crate::ForkServer::run_input): the argument of its target.
///
/// # Examples
///
/// ```
/// fn target(input: multiproc::FuzzInput) -> i32 {
///     input.bytes().len() as i32
/// }
/// # let _ = target;
/// ```
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FuzzInput {
    pub(super) shm: SharedMemory,
}

impl FuzzInput {
    /// A copy of the input. The area is shared memory: its length word is checked against the
    /// area (a longer one is cut to what the area holds).
    ///
    /// # Examples
    ///
    /// See [`ForkServer::run_input`](crate::ForkServer::run_input).
    pub fn bytes(&self) -> Vec<u8> {
        let mut len = [0u8; LEN];
        if self.shm.read_at(0, &mut len).is_err() {
            return Vec::new();
        }
        let n = (u64::from_le_bytes(len) as usize).min(self.shm.len() - LEN);
        let mut v = vec![0u8; n];
        if self.shm.read_at(LEN, &mut v).is_err() {
            v.clear();
        }
        v
    }
}
