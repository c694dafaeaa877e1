//! The tutorial's benchmark (scenario (j) of `docs/BEHAVIOURS.md`): factorials of 0..N (big integers), serially and with `Pool::new(5)`.
//!
//! `cargo run --release --example factorial [N]` prints both times, the speed-up, and, so that
//! the speed-up can be judged on this host, how much faster two processes burn CPU than one
//! (a loaded or single-core host shows ≈1×, an idle 2-CPU host ≈2×).

use multiproc::{Pool, PoolOptions};
use std::time::{Duration, Instant};

/// A big unsigned integer as little-endian base-10⁹ limbs: all factorial needs.
type Big = Vec<u32>;

const BASE: u64 = 1_000_000_000;

fn factorial(n: u32) -> Big {
    let mut acc: Big = vec![1];
    for k in 2..=u64::from(n) {
        let mut carry = 0u64;
        for limb in acc.iter_mut() {
            let v = u64::from(*limb) * k + carry;
            *limb = (v % BASE) as u32;
            carry = v / BASE;
        }
        while carry > 0 {
            acc.push((carry % BASE) as u32);
            carry /= BASE;
        }
    }
    acc
}

fn digits(b: &Big) -> usize {
    let top = b.last().copied().unwrap_or(0);
    (b.len() - 1) * 9 + top.to_string().len()
}

fn burn(iters: u64) -> u64 {
    let mut x = iters;
    for i in 0..iters {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|_| format!("N must be a non-negative integer, got {a:?}"))?,
        None => 3000,
    };

    let t = Instant::now();
    let serial: Vec<Big> = (0..n).map(factorial).collect();
    let serial_time = t.elapsed();

    let pool = Pool::new(5)?;
    let t = Instant::now();
    let parallel = pool.map(factorial, 0..n)?;
    let pool_time = t.elapsed();
    assert!(serial == parallel, "pool results differ from the serial ones");

    // The host's own parallel capacity: one burner alone vs two burner processes at once.
    let iters = 200_000_000;
    let t = Instant::now();
    std::hint::black_box(burn(iters));
    let one = t.elapsed();
    let two_pool = Pool::new(2)?;
    let t = Instant::now();
    two_pool.map_with(burn, [iters, iters], PoolOptions::new().chunksize(1))?;
    let two = t.elapsed();

    let largest = serial.last().map_or(0, digits);
    println!("factorials of 0..{n} (largest has {largest} digits)");
    println!("serial:      {:.2} s", secs(serial_time));
    println!("Pool(5):     {:.2} s", secs(pool_time));
    println!("speed-up:    {:.2}x", secs(serial_time) / secs(pool_time));
    println!(
        "host check:  2 burner processes got {:.2}x the work of 1 done per second ({} CPUs; ideal 2.00x)",
        2.0 * secs(one) / secs(two),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
