//! The floors, as rows any harness can measure first and compare with: what the hardware and
//! the kernel allow for a round trip between two processes, measured without the crate's
//! primitives (a shared word, the raw futex calls, two pipes).
//!
//! | row | placements | one operation |
//! |---|---|---|
//! | [`FLOOR_SPIN`] `floor.spin.rt` | cross, free | a value there and back through one busy-polled cache line |
//! | [`FLOOR_FUTEX`] `floor.futex.rt` | same, cross | the same with `FUTEX_WAIT`/`FUTEX_WAKE` on both sides |
//! | [`FLOOR_PIPE`] `os.pipe.rt.64B` | same, cross, free | 64 bytes there and back over two pipe(2)s |

use super::{Bench, BenchError, BenchResult, BenchRow, BenchUnit, Placement};
use crate::loom::atomic::Ordering::{Acquire, Release};
use crate::shm::WordArray;
use crate::sys::clock::Deadline;
use crate::sys::futex;
use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `floor.spin.rt`: a round trip through one busy-polled cache line (no `same`: a spinning
/// peer on one CPU hands over only at the end of a time slice).
pub const FLOOR_SPIN: &str = "floor.spin.rt";
/// `floor.futex.rt`: a round trip of raw `FUTEX_WAKE`/`FUTEX_WAIT` on one shared word.
pub const FLOOR_FUTEX: &str = "floor.futex.rt";
/// `os.pipe.rt.64B`: 64 bytes there and back over two pipe(2)s.
pub const FLOOR_PIPE: &str = "os.pipe.rt.64B";

/// How long a floor waits for its peer before the operation fails (the harness's watchdog
/// cannot stop a spin).
const PEER_WAIT: Duration = Duration::from_secs(10);

impl Bench {
    /// Measures the three floors ([`FLOOR_SPIN`], [`FLOOR_FUTEX`], [`FLOOR_PIPE`]) at their
    /// placements, so that later rows can name them as baselines.
    ///
    /// # Errors
    /// As [`Bench::measure`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut bench = multiproc::Bench::new()?.quick();
    /// bench.floors()?;
    /// assert!(bench.report().measurements.iter().any(|m| m.name == multiproc::FLOOR_FUTEX));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn floors(&mut self) -> Result<&mut Bench, BenchError> {
        self.floors_only(&[FLOOR_SPIN, FLOOR_FUTEX, FLOOR_PIPE])
    }

    /// Measures the floors named in `names` (others are ignored).
    ///
    /// # Errors
    /// As [`Bench::measure`].
    ///
    /// # Examples
    ///
    /// See the [module docs](crate::Bench).
    pub fn floors_only(&mut self, names: &[&str]) -> Result<&mut Bench, BenchError> {
        if names.contains(&FLOOR_SPIN) {
            let row = BenchRow::new(FLOOR_SPIN).unit(BenchUnit::Ns).placements(&[Placement::Cross, Placement::Free]);
            self.measure(&row, |peers| spin(peers, false))?;
        }
        if names.contains(&FLOOR_FUTEX) {
            let row = BenchRow::new(FLOOR_FUTEX).unit(BenchUnit::Ns).placements(&[Placement::Same, Placement::Cross]);
            self.measure(&row, |peers| spin(peers, true))?;
        }
        if names.contains(&FLOOR_PIPE) {
            let row = BenchRow::new(FLOOR_PIPE).unit(BenchUnit::Ns).placements(&[
                Placement::Same,
                Placement::Cross,
                Placement::Free,
            ]);
            self.measure(&row, pipe)?;
        }
        Ok(self)
    }
}

/// The parent writes an odd value, the peer answers with the next one; with `sleep`, each side
/// waits in `FUTEX_WAIT` and is woken by the other's `FUTEX_WAKE` (on the word's low half).
fn spin(peers: &mut super::BenchPeers, sleep: bool) -> BenchResult<impl FnMut(u64) -> BenchResult> {
    let words = WordArray::new(1)?;
    let theirs = words.clone();
    peers.spawn(move || {
        let Some(w) = theirs.word(0) else { return 1 };
        let mut last = 0u64;
        loop {
            let v = w.load(Acquire); // pairs with the parent's Release store of `v`
            if v == last {
                if sleep {
                    let _ = futex::wait_low(w, last as u32, None);
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            last = v.wrapping_add(1) & 0xffff_ffff;
            w.store(last, Release); // pairs with the parent's Acquire load
            if sleep {
                futex::wake_low(w, 1);
            }
        }
    })?;
    let mut next = 1u64;
    Ok(move |n: u64| -> BenchResult {
        let w = words.word(0).ok_or("no word")?;
        for _ in 0..n {
            let v = next;
            w.store(v, Release); // pairs with the peer's Acquire load
            if sleep {
                futex::wake_low(w, 1);
            }
            let want = v.wrapping_add(1) & 0xffff_ffff;
            let start = Instant::now();
            let mut spins = 0u32;
            while w.load(Acquire) != want {
                // pairs with the peer's Release store
                if sleep {
                    if futex::wait_low(w, v as u32, Deadline::after(PEER_WAIT)).is_err() {
                        return Err("the peer did not answer".into());
                    }
                } else {
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    if spins % 4096 == 0 && start.elapsed() > PEER_WAIT {
                        return Err("the peer did not answer".into());
                    }
                }
            }
            next = want.wrapping_add(1) & 0xffff_ffff;
        }
        Ok(())
    })
}

/// 64 bytes to the peer and back over two pipes.
fn pipe(peers: &mut super::BenchPeers) -> BenchResult<impl FnMut(u64) -> BenchResult> {
    let (their_in, to_peer) = crate::sys::process::pipe_cloexec()?;
    let (from_peer, their_out) = crate::sys::process::pipe_cloexec()?;
    let (mut their_in, mut their_out) = (File::from(their_in), File::from(their_out));
    peers.spawn(move || {
        let mut buf = [0u8; 64];
        while their_in.read_exact(&mut buf).is_ok() {
            if their_out.write_all(&buf).is_err() {
                return 1;
            }
        }
        0
    })?;
    let (mut to_peer, mut from_peer) = (File::from(to_peer), File::from(from_peer));
    let mut buf = [7u8; 64];
    Ok(move |n: u64| -> BenchResult {
        for _ in 0..n {
            to_peer.write_all(&buf)?;
            from_peer.read_exact(&mut buf)?;
        }
        Ok(())
    })
}
