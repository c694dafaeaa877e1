//! Rows of the integrity mode (a CRC32C per message, `PipeBuilder::integrity` and
//! `QueueBuilder::integrity`), each beside its plain row as the baseline, so the ratio is the
//! mode's cost:
//!
//! * `pipe.stream.64B.crc`, `pipe.stream.64KiB.crc`: as `pipe.stream.64B` / `.64KiB`.
//! * `queue.stream.64B.crc`, `queue.stream.64KiB.crc`: as `queue.stream.64B` / `.64KiB`.
//! * `arrayqueue.stream.u64.crc`: as `arrayqueue.stream.u64`.

use super::{Ctx, Driver, Placement, Row, Unit};
use std::io;
use std::time::Duration;

pub(crate) fn rows() -> Vec<Row> {
    let both: &'static [Placement] = &[Placement::Cross, Placement::Same];
    let small = |name, base, build| Row {
        min_batch: Duration::from_millis(5),
        ..Row::new(name, Unit::MsgPerSec, both, Some(base), build)
    };
    let big = |name, base, build| Row {
        min_batch: Duration::from_millis(5),
        bytes_per_op: 64 << 10,
        ..Row::new(name, Unit::GbPerSec, both, Some(base), build)
    };
    vec![
        small("pipe.stream.64B.crc", "pipe.stream.64B", pipe_64 as fn(&Ctx, Placement) -> _),
        big("pipe.stream.64KiB.crc", "pipe.stream.64KiB", pipe_64k as fn(&Ctx, Placement) -> _),
        small("queue.stream.64B.crc", "queue.stream.64B", queue_64),
        big("queue.stream.64KiB.crc", "queue.stream.64KiB", queue_64k),
        small("arrayqueue.stream.u64.crc", "arrayqueue.stream.u64", array_queue),
    ]
}

fn pipe_64(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::loan::pipe_stream(ctx, p, 64, 1 << 20, false, true)
}

fn pipe_64k(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::loan::pipe_stream(ctx, p, 64 << 10, 1 << 20, false, true)
}

fn queue_64(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::batch::queue_stream(ctx, p, false, true)
}

fn queue_64k(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::queue::queue_stream_big(ctx, p, true, false)
}

fn array_queue(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    super::queue::aq_stream_with(ctx, p, true)
}
