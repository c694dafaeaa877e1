//! Criterion benches of the segment layer (`cargo bench --bench shm`): creating anonymous
//! segments, and the named segment life cycle (create, open from the same process, drop, which
//! unlinks). Cross-process figures are in `multiproc bench` instead.

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use multiproc::Segment;

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

criterion_group!(benches, anonymous, named);
criterion_main!(benches);
