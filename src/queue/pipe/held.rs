//! Which ring sides this process holds (PIPE-B4 in `docs/BEHAVIOURS.md`).
//!
//! A ring has one producer and one consumer, and within a process each side belongs to one
//! `Connection` end: the ring's writes and loans (`&mut [u8]` into the ring) rely on it. An end
//! sent to the very process that holds it (`send_object`, then `recv_object` here), or words
//! forged by a peer that point at one of this process's rings, would make a second handle to
//! the same side in one address space: two loans aliasing one region, or two threads writing
//! the ring at once. So every end claims its sides here when it is made, and an imported end
//! whose side is already claimed is refused.
//!
//! A side is named by what a peer cannot change: the segment's file (device and inode, from
//! `fstat`) and the side's control block offset in it, hashed into one word (a collision could
//! only refuse an import, never admit a duplicate). The table is a fixed array of atomic words
//! rather than a locked map, so that a fork taken while another thread claims (the child gets a
//! copy of the table, as it gets copies of the ends) can never leave a lock held in the child.
//! A process that holds more sides than the table has slots makes the excess unchecked.

// Process-local bookkeeping that the fork copies as it copies the ends; loom does not model it.
#![allow(clippy::disallowed_types)]

use crate::queue::ring::Ring;
use crate::shm::Segment;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// Room for 256 duplex connections (four sides each) in one process; more are unchecked. A
/// claim scans the table twice: at this size that is a few microseconds a pipe.
const SLOTS: usize = 1024;

/// Claimed sides (0: free).
static HELD: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// A side this process holds, released on drop.
#[derive(Debug)]
pub(super) struct Held {
    slot: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD[self.slot].store(0, SeqCst);
    }
}

/// The side is already held by another end in this process.
#[derive(Debug)]
pub(super) struct AlreadyHeld;

/// The key of `ring`'s producer (`producer`) or consumer side; `None` if the segment cannot be
/// identified (then nothing is checked).
fn key(seg: &Segment, ring: &Ring, producer: bool) -> Option<u64> {
    let (dev, ino) = seg.file_id()?;
    let off = seg.offset_of(ring.parts().0)? as u64;
    // splitmix64's finalizer over the four parts: a well-mixed word; 0 is kept for "free".
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let h = [dev, ino, off, u64::from(producer)]
        .iter()
        .fold(0x9e37_79b9_7f4a_7c15_u64, |h, &x| mix(h ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15));
    Some(h.max(1))
}

/// Claims a side: `Ok(Some)` while it lives, `Ok(None)` if it could not be checked (the table
/// is full, or the segment has no identity), `Err` if another end of this process holds it.
pub(super) fn claim(seg: &Segment, ring: &Ring, producer: bool) -> Result<Option<Held>, AlreadyHeld> {
    let Some(key) = key(seg, ring, producer) else { return Ok(None) };
    if HELD.iter().any(|s| s.load(SeqCst) == key) {
        return Err(AlreadyHeld);
    }
    for (i, s) in HELD.iter().enumerate() {
        if s.compare_exchange(0, key, SeqCst, SeqCst).is_ok() {
            // Two claims of one side racing (two imports of the same end): each sees the
            // other's slot after taking its own, so at least one of them backs off. SeqCst:
            // of two claimers, the later store is seen by the other's scan.
            if HELD.iter().enumerate().any(|(j, t)| j != i && t.load(SeqCst) == key) {
                s.store(0, SeqCst);
                return Err(AlreadyHeld);
            }
            return Ok(Some(Held { slot: i }));
        }
    }
    Ok(None)
}
