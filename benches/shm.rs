//! Criterion benches of the segment layer (`cargo bench --bench shm`): creating anonymous
//! segments, and the named segment life cycle (create, open from the same process, drop, which
//! unlinks), and `SharedMemory`'s byte-wise atomic copies. Cross-process figures are in
//! `multiproc bench` instead.

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::Throughput;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use multiproc::{Segment, SharedMemory};

fn anonymous(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_anonymous");
    for len in [4096usize, 1 << 20, 64 << 20] {
        g.bench_with_input(BenchmarkId::from_parameter(len), &len, |b, &len| {
            b.iter(|| black_box(Segment::anonymous(len).unwrap()));
        });
    }
    g.finish();
}

fn named(c: &mut Criterion) {
    let name = format!("mp-bench-{}", std::process::id());
    c.bench_function("segment_named_create_drop_64KiB", |b| {
        b.iter(|| black_box(Segment::create(&name, 64 << 10).unwrap()));
    });
    c.bench_function("segment_named_create_open_drop_64KiB", |b| {
        b.iter(|| {
            let s = Segment::create(&name, 64 << 10).unwrap();
            let o = Segment::open(&name).unwrap();
            black_box((s, o))
        });
    });
    // In case a panic above left it behind.
    let _ = Segment::unlink(&name);
}

/// `read_at` / `write_at` of 64 B and 64 KiB (every byte one atomic access, so that they never
/// race with `as_atomic_bytes` at a different size).
fn copies(c: &mut Criterion) {
    let shm = SharedMemory::anonymous(1 << 20).unwrap();
    let mut g = c.benchmark_group("shared_memory_copy");
    for len in [64usize, 64 << 10] {
        let mut buf = vec![7u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("write_at", len), &len, |b, _| {
            b.iter(|| shm.write_at(black_box(3), black_box(&buf)).unwrap());
        });
        g.bench_with_input(BenchmarkId::new("read_at", len), &len, |b, _| {
            b.iter(|| shm.read_at(black_box(3), black_box(&mut buf)).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, anonymous, named, copies);
criterion_main!(benches);
