//! Criterion benches of the queues' and pipes' in-process costs (`cargo bench --bench queue`):
//! one thread puts then gets (or sends then receives), so the figures are the data path's own
//! work (encoding, copies, locking, index updates) without any wake-up. Cross-process figures
//! are in `multiproc bench`.

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use multiproc::{ArrayQueue, Pipe, Queue, SimpleQueue};

fn pipe(c: &mut Criterion) {
    let (mut a, mut b) = Pipe::duplex().unwrap();
    let mut g = c.benchmark_group("pipe_send_recv_bytes");
    for len in [64usize, 4096, 64 << 10] {
        let msg = vec![7u8; len];
        let mut buf = vec![0u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::from_parameter(len), &len, |bch, _| {
            bch.iter(|| {
                a.send_bytes(&msg).unwrap();
                black_box(b.recv_bytes_into(&mut buf, 0).unwrap());
            })
        });
    }
    g.finish();
    c.bench_function("pipe_send_recv_serde_tuple", |bch| {
        bch.iter(|| {
            a.send(&(1u32, 2.5f64, "x")).unwrap();
            black_box(b.recv::<(u32, f64, String)>().unwrap());
        })
    });
    c.bench_function("pipe_poll_empty", |bch| bch.iter(|| black_box(b.try_poll().is_ok())));
}

fn queues(c: &mut Criterion) {
    let q = Queue::<u64>::new().unwrap();
    c.bench_function("queue_put_get_u64", |b| {
        b.iter(|| {
            q.put(&black_box(42)).unwrap();
            black_box(q.get().unwrap());
        })
    });
    c.bench_function("queue_qsize", |b| b.iter(|| black_box(q.qsize())));
    let qb = Queue::<Vec<u8>>::new().unwrap();
    let mut g = c.benchmark_group("queue_put_get_bytes");
    for len in [64usize, 64 << 10] {
        let msg = vec![7u8; len];
        let mut out = Vec::with_capacity(len);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("byte_path", len), &len, |b, _| {
            b.iter(|| {
                qb.put_bytes(&msg).unwrap();
                black_box(qb.get_bytes_into(&mut out).unwrap());
            })
        });
        g.bench_with_input(BenchmarkId::new("serde", len), &len, |b, _| {
            b.iter(|| {
                qb.put(&msg).unwrap();
                black_box(qb.get().unwrap());
            })
        });
    }
    g.finish();
    let sq = SimpleQueue::<u64>::new().unwrap();
    c.bench_function("simple_queue_put_get_u64", |b| {
        b.iter(|| {
            sq.put(&black_box(42)).unwrap();
            black_box(sq.get().unwrap());
        })
    });
    let aq = ArrayQueue::<u64>::new(64).unwrap();
    c.bench_function("array_queue_push_pop_u64", |b| {
        b.iter(|| {
            aq.try_push(black_box(42)).unwrap();
            black_box(aq.try_pop().unwrap());
        })
    });
}

criterion_group!(benches, pipe, queues);
criterion_main!(benches);
