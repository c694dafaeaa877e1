//! Criterion benches of the synchronisation primitives' in-process costs (`cargo bench --bench
//! sync`): uncontended paths, one thread. Cross-process figures are in `multiproc bench`.

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use multiproc::{Event, Lock, RLock, RawValue, Semaphore, Value};

fn locks(c: &mut Criterion) {
    let l = Lock::new().unwrap();
    c.bench_function("lock_uncontended", |b| b.iter(|| drop(black_box(l.lock().unwrap()))));
    let r = RLock::new().unwrap();
    let _outer = r.lock().unwrap();
    c.bench_function("rlock_reentry", |b| b.iter(|| drop(black_box(r.lock().unwrap()))));
}

fn semaphore_and_event(c: &mut Criterion) {
    let s = Semaphore::new(1).unwrap();
    c.bench_function("semaphore_acquire_release", |b| {
        b.iter(|| {
            s.acquire();
            s.release();
        })
    });
    let e = Event::new().unwrap();
    c.bench_function("event_is_set", |b| b.iter(|| black_box(e.is_set())));
    c.bench_function("event_set_clear", |b| {
        b.iter(|| {
            e.set();
            e.clear();
        })
    });
}

fn values(c: &mut Criterion) {
    let v = Value::new(0u64).unwrap();
    c.bench_function("value_get_locked", |b| b.iter(|| black_box(v.get().unwrap())));
    c.bench_function("value_set_locked", |b| b.iter(|| v.set(black_box(7)).unwrap()));
    let r = RawValue::new(0u64).unwrap();
    c.bench_function("raw_value_get", |b| b.iter(|| black_box(r.get())));
}

criterion_group!(benches, locks, semaphore_and_event, values);
criterion_main!(benches);
