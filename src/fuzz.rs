//! Entry points for the cargo-fuzz targets in `fuzz/` (always built, hidden from the docs), and
//! for the corpus replay in `tests/fuzz_corpus.rs`.

/// Feeds arbitrary bytes to the segment-header validation: must return, never panic or read
/// out of bounds, whatever the input.
pub fn validate_header(bytes: &[u8]) {
    let mapping_len = bytes.len() as u64;
    if let Ok(info) = crate::shm::validate_header(bytes, mapping_len) {
        // The object and type fields (header v2): describing and matching them must not panic.
        let _ = info.describe();
        let _ = info.matches(crate::shm::ObjectKind::Queue, &crate::shm::TypeInfo::encoded::<u64>());
        let _ = info.matches(crate::shm::ObjectKind::Value, &crate::shm::TypeInfo::plain::<u64>());
    }
}

/// A hostile creator of a named object: the first 48 bytes are its directory words, the rest
/// is written over the segment after the header. Opening it as each kind of object (what
/// `X::open` does after the header checks) and using it must give values or errors, never a
/// panic, a hang or an out-of-bounds access.
pub fn named_open(data: &[u8]) {
    use crate::shm::{Named, Segment, Words, HEADER_LEN};
    use std::time::Duration;
    let Ok(seg) = Segment::anonymous(8192) else { return };
    let mut words: Words = [0; crate::shm::DIR_WORDS];
    for (i, w) in words.iter_mut().enumerate() {
        let b = data.get(8 * i..8 * i + 8).map_or([0; 8], |s| s.try_into().unwrap_or([0; 8]));
        // Small offsets most of the time, so that the checks past the bounds get exercised too.
        *w = u64::from_le_bytes(b) % 16384;
    }
    let body = data.get(48..).unwrap_or(&[]);
    let room = seg.len() - HEADER_LEN;
    if let Ok(p) = seg.bytes_at(HEADER_LEN, room) {
        // SAFETY: `p..p+room` is inside the fresh segment (checked by `bytes_at`), which nothing
        // else uses yet; the copy stays within it.
        unsafe { std::ptr::copy_nonoverlapping(body.as_ptr(), p.as_ptr(), body.len().min(room)) };
    }
    let z = Duration::ZERO;
    if let Ok(q) = <crate::queue::ArrayQueue<u64> as Named>::from_named(&seg, &words) {
        let _ = q.try_push(1);
        let _ = q.try_pop();
        let _ = q.len();
    }
    if let Ok(q) = <crate::queue::Queue<Vec<u8>> as Named>::from_named(&seg, &words) {
        let _ = q.put_bytes_timeout(b"x", z);
        let _ = q.get_bytes_into_timeout(&mut Vec::new(), z);
        let _ = q.try_put_loan(3).map(|mut l| {
            l.copy_from_slice(b"abc");
            l.commit()
        });
        let _ = q.try_get_loan().map(|l| l.iter().map(|&b| u32::from(b)).sum::<u32>());
        let _ = q.qsize();
    }
    if let Ok(a) = <crate::sync::Array<u32> as Named>::from_named(&seg, &words) {
        let _ = a.get(0);
        let _ = a.lock_timeout(z).map(drop);
    }
    if let Ok(a) = <crate::sync::RawArray<u16> as Named>::from_named(&seg, &words) {
        let _ = a.get(a.len().saturating_sub(1));
    }
    if let Ok(v) = <crate::sync::Value<u64> as Named>::from_named(&seg, &words) {
        let _ = v.lock_timeout(z).map(drop);
    }
    if let Ok(m) = <crate::shm::SharedMemory as Named>::from_named(&seg, &words) {
        let mut b = [0u8; 4];
        let _ = m.read_at(m.len().saturating_sub(4), &mut b);
    }
    if let Ok(s) = <crate::sync::Semaphore as Named>::from_named(&seg, &words) {
        let _ = s.try_acquire();
        // A guard's journeys wait for lanes and turns a peer may have scribbled: bounded.
        let _ = s.try_acquire_guard().map(drop);
    }
    if let Ok(b) = <crate::sync::Barrier as Named>::from_named(&seg, &words) {
        let _ = b.n_waiting();
    }
    // Readers only: they take no lock, so a hostile segment must never hold them up.
    if let Ok(b) = <crate::queue::Broadcast<Vec<u8>> as Named>::from_named(&seg, &words) {
        let mut sub = b.subscribe_oldest();
        for _ in 0..8 {
            let _ = sub.try_recv_bytes();
        }
        let _ = b.published();
    }
}

/// Operation sequences on a heap ring checked against a `VecDeque` model: byte 0 picks the
/// capacity, then an even byte pushes a message whose length is the next byte, an odd byte pops.
/// Panics only on a real ring bug (a mismatch with the model).
pub fn ring_ops(data: &[u8]) {
    crate::queue::ring::model_ops(data);
}

/// Arbitrary bytes as a faulty peer's writes into a pipe's ring (the first 8 bytes are its
/// `tail`): every receive, one message at a time, in batches or in place (a loan), must return
/// a message or an error, never panic, hang or read out of bounds. When the top bit of the
/// first byte is set, the rest is read as records (a kind byte, a length byte, that many
/// payload bytes) whose headers are stamped for where they land, so that the fuzzer reaches
/// reassembly and batches with well-placed but lying headers, which random bytes (whose
/// stamps must match their position) seldom are.
pub fn pipe_frames(data: &[u8]) {
    let Ok((mut r, w)) = crate::queue::Pipe::builder().capacity(256).max_message(4096).fd_passing(true).one_way()
    else {
        return;
    };
    let (tail, body) = match data.split_first_chunk::<8>() {
        Some((t, b)) => (u64::from_le_bytes(*t) % 512, b),
        None => (data.len() as u64, data),
    };
    if let Some(ring) = w.tx_ring() {
        if data.first().is_some_and(|b| b & 0x80 != 0) {
            ring.scribble_records(&data[1..]);
        } else {
            ring.scribble(body, tail);
        }
    }
    let mut small = [0u8; 16];
    let mut seen = 0usize;
    for i in 0..64 {
        // `None`: nothing there (or not in time).
        let res = match i % 5 {
            0 => r.try_recv_bytes().map(drop).map_err(|e| e.failure()),
            1 => r.recv_bytes_into_timeout(&mut small, 0, std::time::Duration::ZERO).map(drop).map_err(|e| e.failure()),
            2 => r.try_recv_bytes_many(4, |m| seen += m.len()).map(drop).map_err(|e| e.failure()),
            3 => r.try_recv_loan().map(|m| seen += m.len()).map_err(|e| e.failure()),
            // A descriptor marker forged by the peer has no descriptor behind it: an error.
            _ => r.recv_fd_timeout(std::time::Duration::ZERO).map(drop).map_err(|e| e.failure()),
        };
        match res {
            // The message stays: the other kind of receive takes it next time round.
            Err(Some(crate::queue::RecvError::NotAnFd | crate::queue::RecvError::FdPending)) => {}
            Err(_) => break,
            Ok(()) => {}
        }
    }
    drop(w);
}

#[cfg(all(test, not(loom)))]
mod pipe_tests {
    #[test]
    #[cfg_attr(miri, ignore = "pipe_frames maps MAP_SHARED memory, which miri does not support")]
    fn fuzz_ring_ops_and_pipe_frames_run_on_samples() {
        let samples: [&[u8]; 6] = [
            b"",
            &[0, 0, 4, 1, 1],
            &[16, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', b'c'],
            &[255; 64],
            &[24, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9, 9, 9, 9],
            &[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0],
        ];
        for s in samples {
            super::ring_ops(s);
            super::pipe_frames(s);
        }
    }
}

/// ArrayQueue operation sequences on a heap queue against a `VecDeque` model: each byte is an
/// operation (even: push the byte, odd: pop); capacity 1 + first byte % 8. `0xff` followed by
/// a selector byte and 8 value bytes overwrites `head`, `tail` or a slot's stamp, as a corrupt
/// segment would: from then on the model is void, and every operation must still return (an
/// item, `Busy` or `Corrupt`) without panicking or spinning.
pub fn array_queue_ops(data: &[u8]) {
    let Some((&c, ops)) = data.split_first() else { return };
    let cap = 1 + (c % 8) as usize;
    let q = crate::queue::array_queue::HeapQueue::<u8>::new(cap);
    let mut model = std::collections::VecDeque::new();
    let mut corrupt = false;
    let mut ops = ops.iter();
    while let Some(&b) = ops.next() {
        if b == 0xff {
            let which = ops.next().copied().unwrap_or(0);
            let mut v = [0u8; 8];
            for x in &mut v {
                *x = ops.next().copied().unwrap_or(0);
            }
            let v = u64::from_le_bytes(v);
            let core = q.core();
            match which % 3 {
                0 => core.set_indices(Some(v), None),
                1 => core.set_indices(None, Some(v)),
                _ => core.set_stamp(usize::from(which / 3) % cap, v),
            }
            corrupt = true;
        } else if b & 1 == 0 {
            let r = q.core().try_push(b);
            if !corrupt {
                assert_eq!(r.is_ok(), model.len() < cap, "push result differs from the model");
                if r.is_ok() {
                    model.push_back(b);
                }
            }
        } else {
            let r = q.core().try_pop();
            if !corrupt {
                assert_eq!(r.ok(), model.pop_front(), "pop differs from the model");
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod array_queue_fuzz_tests {
    #[test]
    fn array_queue_ops_matches_the_model_on_samples() {
        for sample in [
            &b""[..],
            b"\x03\x02\x04\x01\x01\x01",
            b"\x00\x02\x02\x03\x02\x03\x03",
            &[7; 40],
            &[0, 2, 4, 6, 8, 10, 12, 14, 16, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            // A tail far ahead of head, then pushes and pops: errors, not spins.
            &[3, 2, 4, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 1, 2, 1],
            // A stamp from another lap under an unmoved head.
            &[3, 2, 0xff, 2, 99, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 1],
            // Head past tail.
            &[1, 2, 0xff, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1],
        ] {
            super::array_queue_ops(sample);
        }
    }
}

/// What a peer sends during the connection handshake, arbitrary: the bytes are what the
/// listener's side reads from its client, and then what a client's side reads from its
/// listener, with and without an authkey. Every read of the hello, the answers, the digests
/// and the verdicts must end in `Ok` or an error, never a panic or an endless wait (the
/// stream ends where the bytes do).
pub fn handshake(data: &[u8]) {
    use std::io::{Read, Write};
    /// A stream that reads `input` and swallows what is written.
    struct Peer<'a> {
        input: &'a [u8],
    }
    impl Read for Peer<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Peer<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    for key in [None, Some(&b"fuzz key"[..])] {
        let _ = crate::connection::handshake_serve(&mut Peer { input: data }, key, 0);
        let _ = crate::connection::handshake_answer(&mut Peer { input: data }, key);
    }
    // A well-formed hello of this version, followed by the input: the client goes on to
    // read the listener's verdict and digest from the fuzzer.
    let mut framed = b"MPCONN".to_vec();
    framed.push(2);
    framed.push(data.first().copied().unwrap_or(0));
    framed.extend_from_slice(&[0u8; 32]);
    framed.extend_from_slice(data);
    for key in [None, Some(&b"fuzz key"[..])] {
        let _ = crate::connection::handshake_answer(&mut Peer { input: &framed }, key);
    }
}

#[cfg(all(test, not(loom)))]
mod handshake_tests {
    #[test]
    fn fuzz_handshake_runs_on_samples() {
        for s in [&b""[..], b"MPCONN", b"MPCONN\x02\x01", &[0u8; 200], b"#WELCOME#", &[0xff; 77]] {
            super::handshake(s);
        }
    }
}

/// What an authenticated but buggy (or hostile) client sends the Manager's server, arbitrary:
/// the input is a sequence of messages, each a length byte and that many bytes; each is
/// decoded as the server decodes a request and, if it decodes, run against one registry, as
/// one client's calls. The server must answer every message with a reply or an error that it
/// can encode, and never panic. (Pools are not created: they start processes. Blocking calls
/// return after one slice, the client being "gone".)
#[cfg(feature = "serde")]
pub fn manager_requests(data: &[u8]) {
    use crate::manager::{Caller, Kind, Registry, Request};
    let reg = Registry::new(crate::process::call::CallKey::new());
    let gone = || true;
    let caller = Caller { id: 1, gone: &gone };
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (msg, after) = tail.split_at(usize::from(len).min(tail.len()));
        rest = after;
        let reply = match crate::codec::decode::<Request>(msg) {
            Ok(Request::Create(Kind::Pool(_))) => continue,
            Ok(request) => reg.run(&caller, request),
            Err(_) => Err(crate::manager::Failure::WrongOp),
        };
        assert!(crate::codec::encode(&reply).is_ok(), "the server could not encode its answer");
    }
}

#[cfg(all(test, not(loom), feature = "serde"))]
mod manager_tests {
    #[test]
    fn fuzz_manager_requests_runs_on_samples() {
        for s in [&b""[..], &[1, 0], &[2, 0, 0, 3, 1, 1, 0], &[0xff; 64], &[3, 0, 7, 0, 2, 1, 1]] {
            super::manager_requests(s);
        }
    }
}

/// Called from a pool task: corrupts the ring that task's worker sends its results into (its
/// write position no longer aligned), as a task writing through a wild pointer could. The
/// pool must kill that worker and fail the chunk, not hang on a ring it cannot read
/// (`tests/pool_corrupt.rs`). Does nothing outside a pool worker.
#[cfg(feature = "serde")]
pub fn corrupt_pool_results() {
    crate::pool::corrupt_own_results();
}

/// Makes the next `n` pool worker starts in this process fail as `fork` does at the process
/// limit (`EAGAIN`), for the pool's handling of a start that fails
/// (`tests/pool_start_fails.rs`). Process-wide: for a test binary of its own.
#[cfg(feature = "serde")]
pub fn refuse_pool_starts(n: usize) {
    crate::pool::refuse_starts(n);
}

/// Runs `f` (given the fork server's pid) inside `ForkServer::run_input` when it sets up a new
/// station, between sending the server its request and letting go of the station socket's
/// other end: where a fork in another thread copies that end (`tests/fork_station.rs`).
/// `None` clears it. Process-wide: for a test binary of its own.
#[cfg(feature = "serde")]
pub fn before_station_ack(f: Option<fn(libc::pid_t)>) {
    crate::process::exec_input_hooks::set(f);
}
