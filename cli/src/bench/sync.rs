//! Rows of the sync layer.
//!
//! * `lock.uncontended`: `Lock::lock` + drop in one process, baseline
//!   `os.pthread_robust.uncontended` (target ≤ 1.1×).
//! * `semaphore.uncontended`: `acquire` + `release`, no waiters (no syscall).
//! * `semaphore.guard.uncontended`: `acquire_guard` + drop, no waiters: the tracked permit
//!   (holder slot plus transit lane, SEM-B1/B2), baseline `semaphore.uncontended`.
//! * `event.set_clear`: `set` + `clear` with nobody waiting (no syscall; target ≤ 20 ns).
//! * `lock.contended.2proc`: 2 processes × 1,000,000 locked increments of a shared counter,
//!   seconds per job (`--quick` runs 100,000 each and scales to the full job).
//! * `value.increment.4proc`: the counter example's work, 4 processes × 100,000 increments of a
//!   `Value<u64>` under its lock, seconds per job.
//! * `event.rt`, `barrier.rt`: two processes, blocking round trip (each side wakes the other
//!   once), baseline `floor.futex.rt` at the same placement (target ≤ 1.15×).

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::Child;
use multiproc::{Barrier, Event, Lock, Process, RawValue, Semaphore, Value};
use std::io;

const SAME: Placement = Placement::Same;
const CROSS: Placement = Placement::Cross;

pub(crate) fn rows() -> Vec<Row> {
    let row = Row::new;
    vec![
        row("lock.uncontended", Unit::Ns, &[SAME], Some("os.pthread_robust.uncontended"), lock_uncontended),
        row("semaphore.uncontended", Unit::Ns, &[SAME], None, semaphore_uncontended),
        row("semaphore.guard.uncontended", Unit::Ns, &[SAME], Some("semaphore.uncontended"), semaphore_guard),
        row("event.set_clear", Unit::Ns, &[SAME], None, event_set_clear),
        row("lock.contended.2proc", Unit::S, &[Placement::Free], None, lock_contended),
        row("value.increment.4proc", Unit::S, &[Placement::Free], None, value_increment),
        row("event.rt", Unit::Ns, &[SAME, CROSS], Some("floor.futex.rt"), event_rt),
        row("barrier.rt", Unit::Ns, &[SAME, CROSS], Some("floor.futex.rt"), barrier_rt),
    ]
}

fn shm_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct FnDriver<F: FnMut(u64) -> io::Result<()>>(F);

impl<F: FnMut(u64) -> io::Result<()>> Driver for FnDriver<F> {
    fn run(&mut self, n: u64) -> io::Result<()> {
        (self.0)(n)
    }
}

fn lock_uncontended(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    let lock = Lock::new().map_err(shm_err)?;
    Ok(Box::new(FnDriver(move |n| {
        for _ in 0..n {
            // No `black_box`: the calls into glibc cannot be optimized away, and the baseline
            // row measures its lock and unlock the same way (a guard forced to the stack
            // would measure the spill, not the lock).
            drop(lock.lock().map_err(shm_err)?);
        }
        Ok(())
    })))
}

fn semaphore_uncontended(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    let s = Semaphore::new(1).map_err(shm_err)?;
    Ok(Box::new(FnDriver(move |n| {
        for _ in 0..n {
            s.acquire();
            s.release();
        }
        Ok(())
    })))
}

fn semaphore_guard(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    let s = Semaphore::new(1).map_err(shm_err)?;
    Ok(Box::new(FnDriver(move |n| {
        for _ in 0..n {
            drop(s.acquire_guard());
        }
        Ok(())
    })))
}

fn event_set_clear(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    let e = Event::new().map_err(shm_err)?;
    Ok(Box::new(FnDriver(move |n| {
        for _ in 0..n {
            e.set();
            e.clear();
        }
        Ok(())
    })))
}

/// Runs `procs` processes doing `body(per_proc)` and waits for them.
fn job(procs: usize, per_proc: u64, body: impl Fn(u64) + Clone + Send + 'static) -> io::Result<()> {
    let ps: Vec<Process> = (0..procs)
        .map(|_| {
            let body = body.clone();
            Process::new(move || body(per_proc))
        })
        .collect();
    for p in &ps {
        p.start().map_err(shm_err)?;
    }
    for p in &ps {
        p.join().map_err(shm_err)?.exit_ok().map_err(shm_err)?;
    }
    Ok(())
}

fn lock_contended(ctx: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    const FULL: u64 = 1_000_000;
    let per_proc = if ctx.quick { FULL / 10 } else { FULL };
    let lock = Lock::new().map_err(shm_err)?;
    let counter = RawValue::new(0u64).map_err(shm_err)?;
    Ok(Box::new(FnDriver(move |n| {
        for _ in 0..n {
            let (lock, counter) = (lock.clone(), counter.clone());
            let t = std::time::Instant::now();
            job(2, per_proc, move |k| {
                for _ in 0..k {
                    let _g = lock.lock().expect("lock");
                    counter.set(counter.get() + 1);
                }
            })?;
            // In --quick mode, stand in for the full job (the work is linear in its size).
            if per_proc != FULL {
                std::thread::sleep(t.elapsed() * ((FULL / per_proc) as u32 - 1));
            }
        }
        Ok(())
    })))
}

fn value_increment(_: &Ctx, _: Placement) -> io::Result<Box<dyn Driver>> {
    let counter = Value::new(0u64).map_err(shm_err)?;
    Ok(Box::new(FnDriver(move |n| {
        for _ in 0..n {
            let c = counter.clone();
            job(4, 100_000, move |k| {
                for _ in 0..k {
                    c.update(|v| *v += 1).expect("lock");
                }
            })?;
        }
        Ok(())
    })))
}

/// Parent sets `ping` and waits for `pong`; the child waits for `ping`, clears it, sets `pong`.
fn event_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let ping = Event::new().map_err(shm_err)?;
    let pong = Event::new().map_err(shm_err)?;
    let child = {
        let (ping, pong) = (ping.clone(), pong.clone());
        Child::spawn(super::child_mask(p, ctx), move || loop {
            ping.wait();
            ping.clear();
            pong.set();
        })?
    };
    Ok(Box::new(EventRt { ping, pong, _child: child }))
}

struct EventRt {
    ping: Event,
    pong: Event,
    _child: Child,
}

impl Driver for EventRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            self.ping.set();
            self.pong.wait();
            self.pong.clear();
        }
        Ok(())
    }
}

/// Two parties; one round trip is two generations (each side wakes the other once).
fn barrier_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let b = Barrier::new(2).map_err(shm_err)?;
    let child = {
        let b = b.clone();
        Child::spawn(super::child_mask(p, ctx), move || loop {
            if b.wait().is_err() {
                return 1;
            }
        })?
    };
    Ok(Box::new(BarrierRt { b, _child: child }))
}

struct BarrierRt {
    b: Barrier,
    _child: Child,
}

impl Driver for BarrierRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..2 * n {
            self.b.wait().map_err(shm_err)?;
        }
        Ok(())
    }
}
