//! The first example of the Python tutorial (scenario (b) of `docs/BEHAVIOURS.md`): `Pool(5).map(square, [1, 2, 3, 4, 5, 6])`.
//!
//! Prints `[1, 4, 9, 16, 25, 36]`.

fn square(x: u64) -> u64 {
    x * x
}

fn main() -> Result<(), multiproc::PoolError> {
    let pool = multiproc::Pool::new(5)?;
    println!("{:?}", pool.map(square, 1..=6)?);
    Ok(())
}
