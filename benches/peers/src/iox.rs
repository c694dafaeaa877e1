//! iceoryx2 (feature `iceoryx2`, on by default): publish-subscribe over `ipc::Service`.
//!
//! The child is forked before any iceoryx2 object exists; each process then makes its own
//! node and ports (services are named per parent pid and row instance, so runs never meet).
//! The child creates its ports first and reports on a pipe(2); the parent's publishers are
//! created afterwards and so are connected to the child's subscribers from the first sample.
//!
//! * `iceoryx2.rt.64B.event`: `[u8; 64]` samples (`send_copy`) on a "ping" and a "pong"
//!   publish-subscribe service; each side blocks in an event service's
//!   `Listener::blocking_wait` (iceoryx2's blocking path; on Linux a Unix datagram socket),
//!   woken by the peer's `Notifier::notify` after its `send`. Both placements.
//! * `iceoryx2.rt.64B.poll`: the same without the event services: both sides busy-poll
//!   `Subscriber::receive` (cross only, like `multiproc.pipe.rt.64B.spin`; on one CPU a
//!   polling side hands over only at the end of its time slice).
//! * `iceoryx2.stream.{64B,64KiB}`: one publisher, `enable_safe_overflow(false)` and
//!   `BackpressureStrategy::RetryUntilDelivered` (the publisher waits — iceoryx2's adaptive
//!   wait: yield, then sleep — while the subscriber's buffer of 1024 / 16 samples is full); the
//!   batch size and the acknowledgement travel on pipe(2)s (one syscall each per ≥ 5 ms batch).
//!   The child polls `receive` (spinning 1024 times, then `sched_yield`). 64 B: `[u8; 64]` via
//!   `send_copy`; 64 KiB: a `[u8]` slice service, `loan_slice_uninit` + `write_from_slice`.
//!   Like every other row, both ends copy: the sender copies the message into shared memory and
//!   the receiver copies each sample out into its own buffer, so this is not iceoryx2's
//!   zero-copy best case (where the receiver reads the sample in place).

use crate::sys::{self, Child};
use crate::{err, row, Driver, Kind, Placement, Row, BOTH, CROSS};
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

pub fn rows() -> Vec<Row> {
    let base = Some("pipe2.rt.64B");
    vec![
        row("iceoryx2.rt.64B.event", Kind::RoundTrip, BOTH, base, |p| rt(p, true)),
        row("iceoryx2.rt.64B.poll", Kind::RoundTrip, &[CROSS], Some("multiproc.pipe.rt.64B.spin"), |p| rt(p, false)),
        row("iceoryx2.stream.64B", Kind::Stream(64), BOTH, Some("pipe2.stream.64B"), stream_64),
        row("iceoryx2.stream.64KiB", Kind::Stream(64 << 10), BOTH, Some("pipe2.stream.64KiB"), stream_64k),
    ]
}

type Msg = [u8; 64];
const QUIT: u8 = 0xff;
/// How long a polling parent waits for a silent child.
const PEER_LIMIT: Duration = Duration::from_secs(10);

fn e(x: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2: {x:?}"))
}

/// A unique service name prefix for one row instance.
fn prefix() -> String {
    thread_local!(static SEQ: Cell<u64> = const { Cell::new(0) });
    let seq = SEQ.with(|s| s.replace(s.get() + 1));
    format!("multiproc-peers/{}/{seq}", std::process::id())
}

fn node() -> io::Result<Node<ipc::Service>> {
    set_log_level(LogLevel::Error);
    NodeBuilder::new().signal_handling_mode(SignalHandlingMode::Disabled).create::<ipc::Service>().map_err(e)
}

fn name(prefix: &str, what: &str) -> io::Result<ServiceName> {
    ServiceName::new(&format!("{prefix}/{what}")).map_err(e)
}

/// The `[u8; 64]` service (both sides build it the same way; `buffer` samples per subscriber).
fn pubsub64(
    node: &Node<ipc::Service>,
    prefix: &str,
    what: &str,
    buffer: usize,
) -> io::Result<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, Msg, ()>> {
    node.service_builder(&name(prefix, what)?)
        .publish_subscribe::<Msg>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(buffer)
        .open_or_create()
        .map_err(e)
}

fn listener(node: &Node<ipc::Service>, prefix: &str, what: &str) -> io::Result<Listener<ipc::Service>> {
    let ev = node.service_builder(&name(prefix, what)?).event().open_or_create().map_err(e)?;
    ev.listener_builder().create().map_err(e)
}

fn notifier(node: &Node<ipc::Service>, prefix: &str, what: &str) -> io::Result<Notifier<ipc::Service>> {
    let ev = node.service_builder(&name(prefix, what)?).event().open_or_create().map_err(e)?;
    ev.notifier_builder().create().map_err(e)
}

/// Blocks until the child wrote its ready byte (or died).
fn await_ready(ready: &mut File) -> io::Result<()> {
    let mut b = [0u8; 1];
    ready.read_exact(&mut b)?;
    if b[0] != 1 {
        return Err(io::Error::other("iceoryx2 child failed to set up"));
    }
    Ok(())
}

/// Field order: ports and node drop first (removing the services), then the child is awaited.
struct Rt {
    publisher: Publisher<ipc::Service, Msg, ()>,
    subscriber: Subscriber<ipc::Service, Msg, ()>,
    events: Option<(Notifier<ipc::Service>, Listener<ipc::Service>)>,
    buf: Msg,
    _node: Node<ipc::Service>,
    child: Child,
}

fn rt_child(prefix: &str, event: bool, mut ready: File) -> io::Result<()> {
    let node = node()?;
    let subscriber = pubsub64(&node, prefix, "ping", 2)?.subscriber_builder().create().map_err(e)?;
    let publisher = pubsub64(&node, prefix, "pong", 2)?.publisher_builder().create().map_err(e)?;
    let events =
        if event { Some((listener(&node, prefix, "ping-ev")?, notifier(&node, prefix, "pong-ev")?)) } else { None };
    ready.write_all(&[1])?;
    loop {
        match subscriber.receive().map_err(e)? {
            Some(s) => {
                let m: Msg = *s.payload();
                drop(s);
                if m[0] == QUIT {
                    return Ok(());
                }
                publisher.send_copy(m).map_err(e)?;
                if let Some((_, n)) = &events {
                    n.notify().map_err(e)?;
                }
            }
            None => match &events {
                Some((l, _)) => {
                    l.blocking_wait(|_| {}).map_err(e)?;
                }
                None => std::hint::spin_loop(),
            },
        }
    }
}

fn rt(p: Placement, event: bool) -> io::Result<Box<dyn Driver>> {
    let prefix = prefix();
    let (mut ready_r, ready_w) = sys::pipe()?;
    let child = {
        let prefix = prefix.clone();
        Child::spawn(p.child_mask(), move || match rt_child(&prefix, event, ready_w) {
            Ok(()) => 0,
            Err(_) => 1,
        })?
    };
    await_ready(&mut ready_r)?;
    let node = node()?;
    let publisher = pubsub64(&node, &prefix, "ping", 2)?.publisher_builder().create().map_err(e)?;
    let subscriber = pubsub64(&node, &prefix, "pong", 2)?.subscriber_builder().create().map_err(e)?;
    let events =
        if event { Some((notifier(&node, &prefix, "ping-ev")?, listener(&node, &prefix, "pong-ev")?)) } else { None };
    Ok(Box::new(Rt { publisher, subscriber, events, buf: [7; 64], _node: node, child }))
}

impl Rt {
    fn send(&self, m: Msg) -> io::Result<()> {
        self.publisher.send_copy(m).map_err(e)?;
        if let Some((n, _)) = &self.events {
            n.notify().map_err(e)?;
        }
        Ok(())
    }
}

impl Driver for Rt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.send(self.buf)?;
            let t = Instant::now();
            loop {
                if let Some(s) = self.subscriber.receive().map_err(e)? {
                    self.buf = *s.payload();
                    break;
                }
                match &self.events {
                    Some((_, l)) => {
                        l.blocking_wait(|_| {}).map_err(e)?;
                    }
                    None => {
                        if t.elapsed() > PEER_LIMIT {
                            return Err(io::Error::other("iceoryx2 peer stopped answering"));
                        }
                        std::hint::spin_loop();
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if self.send([QUIT; 64]).is_ok() {
            self.child.expect_exit();
        }
    }
}

/// The payload of one streamed message, both directions.
trait StreamPayload: 'static {
    const BUFFER: usize;
    type Pub;
    type Sub;
    fn publisher(node: &Node<ipc::Service>, prefix: &str) -> io::Result<Self::Pub>;
    fn subscriber(node: &Node<ipc::Service>, prefix: &str) -> io::Result<Self::Sub>;
    fn send(p: &Self::Pub, msg: &[u8]) -> io::Result<()>;
    /// Copies one received sample into `buf`; `false` if none is pending.
    fn recv(s: &Self::Sub, buf: &mut [u8]) -> io::Result<bool>;
}

struct Small;

impl StreamPayload for Small {
    const BUFFER: usize = 1024;
    type Pub = Publisher<ipc::Service, Msg, ()>;
    type Sub = Subscriber<ipc::Service, Msg, ()>;

    fn publisher(node: &Node<ipc::Service>, prefix: &str) -> io::Result<Self::Pub> {
        pubsub64(node, prefix, "data", Self::BUFFER)?
            .publisher_builder()
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(e)
    }

    fn subscriber(node: &Node<ipc::Service>, prefix: &str) -> io::Result<Self::Sub> {
        pubsub64(node, prefix, "data", Self::BUFFER)?.subscriber_builder().buffer_size(Self::BUFFER).create().map_err(e)
    }

    fn send(p: &Self::Pub, msg: &[u8]) -> io::Result<()> {
        p.send_copy(msg.try_into().map_err(err)?).map_err(e).map(drop)
    }

    fn recv(s: &Self::Sub, buf: &mut [u8]) -> io::Result<bool> {
        Ok(match s.receive().map_err(e)? {
            Some(x) => {
                buf.copy_from_slice(x.payload());
                true
            }
            None => false,
        })
    }
}

struct Large;
const LARGE: usize = 64 << 10;

impl Large {
    fn service(
        node: &Node<ipc::Service>,
        prefix: &str,
    ) -> io::Result<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>> {
        node.service_builder(&name(prefix, "data")?)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(Self::BUFFER)
            .open_or_create()
            .map_err(e)
    }
}

impl StreamPayload for Large {
    const BUFFER: usize = 16;
    type Pub = Publisher<ipc::Service, [u8], ()>;
    type Sub = Subscriber<ipc::Service, [u8], ()>;

    fn publisher(node: &Node<ipc::Service>, prefix: &str) -> io::Result<Self::Pub> {
        Self::service(node, prefix)?
            .publisher_builder()
            .initial_max_slice_len(LARGE)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(e)
    }

    fn subscriber(node: &Node<ipc::Service>, prefix: &str) -> io::Result<Self::Sub> {
        Self::service(node, prefix)?.subscriber_builder().buffer_size(Self::BUFFER).create().map_err(e)
    }

    fn send(p: &Self::Pub, msg: &[u8]) -> io::Result<()> {
        let s = p.loan_slice_uninit(msg.len()).map_err(e)?;
        s.write_from_slice(msg).send().map_err(e).map(drop)
    }

    fn recv(s: &Self::Sub, buf: &mut [u8]) -> io::Result<bool> {
        Ok(match s.receive().map_err(e)? {
            Some(x) => {
                buf.copy_from_slice(x.payload());
                true
            }
            None => false,
        })
    }
}

/// A batch size that tells the child to return (dropping its ports, removing its files).
const STOP: u64 = u64::MAX;

/// Field order: the parent's ports and node drop before the child is awaited.
struct Stream<P: StreamPayload> {
    control: File,
    ack: File,
    publisher: P::Pub,
    _node: Node<ipc::Service>,
    msg: Vec<u8>,
    child: Child,
}

fn stream_child<P: StreamPayload>(
    prefix: &str,
    size: usize,
    mut ready: File,
    mut control: File,
    mut ack: File,
) -> io::Result<()> {
    let node = node()?;
    let subscriber = P::subscriber(&node, prefix)?;
    ready.write_all(&[1])?;
    let mut buf = vec![0u8; size];
    let mut n = [0u8; 8];
    while control.read_exact(&mut n).is_ok() && u64::from_le_bytes(n) != STOP {
        let mut spins = 0u32;
        let mut got = 0;
        while got < u64::from_le_bytes(n) {
            if P::recv(&subscriber, &mut buf)? {
                got += 1;
                spins = 0;
            } else if spins < 1024 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        ack.write_all(&[1])?;
    }
    Ok(())
}

fn stream<P: StreamPayload>(p: Placement, size: usize) -> io::Result<Box<dyn Driver>> {
    let prefix = prefix();
    let (mut ready_r, ready_w) = sys::pipe()?;
    let (c_control, control) = sys::pipe()?;
    let (ack, c_ack) = sys::pipe()?;
    let child = {
        let prefix = prefix.clone();
        Child::spawn(p.child_mask(), move || match stream_child::<P>(&prefix, size, ready_w, c_control, c_ack) {
            Ok(()) => 0,
            Err(_) => 1,
        })?
    };
    await_ready(&mut ready_r)?;
    let node = node()?;
    let publisher = P::publisher(&node, &prefix)?;
    Ok(Box::new(Stream::<P> { control, ack, publisher, _node: node, msg: vec![5; size], child }))
}

fn stream_64(p: Placement) -> io::Result<Box<dyn Driver>> {
    stream::<Small>(p, 64)
}

fn stream_64k(p: Placement) -> io::Result<Box<dyn Driver>> {
    stream::<Large>(p, LARGE)
}

impl<P: StreamPayload> Driver for Stream<P> {
    fn run(&mut self, n: u64) -> io::Result<()> {
        self.control.write_all(&n.to_le_bytes())?;
        for _ in 0..n {
            P::send(&self.publisher, &self.msg)?;
        }
        let mut a = [0u8; 1];
        self.ack.read_exact(&mut a)
    }
}

impl<P: StreamPayload> Drop for Stream<P> {
    fn drop(&mut self) {
        if self.control.write_all(&STOP.to_le_bytes()).is_ok() {
            self.child.expect_exit();
        }
    }
}
