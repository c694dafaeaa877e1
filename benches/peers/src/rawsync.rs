//! raw_sync: events over shared memory (on Linux a pthread mutex + condition variable, both
//! `PTHREAD_PROCESS_SHARED`, placed in memory the caller provides). raw_sync has no channel,
//! so it is compared with multiproc's `Event` only.
//!
//! * `raw_sync.event.rt`: two auto-reset `raw_sync::events::Event`s in a shared anonymous
//!   mapping made before the fork; the parent sets `ping` and waits on `pong`, the child waits
//!   on `ping` and sets `pong` (an auto-reset wait clears the event: the `wait(); clear()` of
//!   the `multiproc.event.rt` row). Baseline: `multiproc.event.rt`.

use crate::sys::{Child, SharedMap};
use crate::{row, Driver, Kind, Placement, Row, BOTH};
use raw_sync::events::{Event, EventImpl, EventInit, EventState};
use raw_sync::Timeout;
use std::io;

pub fn rows() -> Vec<Row> {
    vec![row("raw_sync.event.rt", Kind::RoundTrip, BOTH, Some("multiproc.event.rt"), event_rt)]
}

fn rs_err(e: Box<dyn std::error::Error>) -> io::Error {
    io::Error::other(e.to_string())
}

/// Field order: the events (their `Box`es, not the shared state) drop before the child is
/// reaped, and the mapping is unmapped last.
struct EventRt {
    ping: Box<dyn EventImpl>,
    pong: Box<dyn EventImpl>,
    _child: Child,
    _map: SharedMap,
}

fn event_rt(p: Placement) -> io::Result<Box<dyn Driver>> {
    let map = SharedMap::new(4096)?;
    // SAFETY: both events lie inside the fresh 4 KiB mapping (the second one at 2 KiB, far
    // beyond the first one's size), which outlives them (`_map` drops last) and is shared with
    // the child forked below.
    let (ping, _) = unsafe { Event::new(map.at(0), true) }.map_err(rs_err)?;
    // SAFETY: as above.
    let (pong, _) = unsafe { Event::new(map.at(2048), true) }.map_err(rs_err)?;
    assert!(Event::size_of(None) < 2048);
    let child = Child::spawn(p.child_mask(), || loop {
        if ping.wait(Timeout::Infinite).is_err() || pong.set(EventState::Signaled).is_err() {
            return 1;
        }
    })?;
    Ok(Box::new(EventRt { ping, pong, _child: child, _map: map }))
}

impl Driver for EventRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.ping.set(EventState::Signaled).map_err(rs_err)?;
            self.pong.wait(Timeout::Infinite).map_err(rs_err)?;
        }
        Ok(())
    }
}
