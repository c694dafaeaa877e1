//! `apply_async` with an `error_callback` (the tutorial's Python program `apply_async(divide,
//! (x,), callback=..., error_callback=...)` for x in [1, 2, 0, 4]).
//!
//! Prints, one result per line in submission order: `10`, `5`, an error line naming the
//! division by zero, `2.5`; the error callback runs exactly once. A task fails the way a
//! Python function raises: it panics (a value it returns, `Result` included, is a result).

use multiproc::{Pool, PoolOptions, PoolTimeoutError};
use std::sync::{Arc, Mutex};

fn divide(x: i32) -> f64 {
    if x == 0 {
        panic!("division by zero"); // Python's ZeroDivisionError
    }
    10.0 / f64::from(x)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(2)?;
    let error_calls = Arc::new(Mutex::new(0));
    let results: Vec<_> = [1, 2, 0, 4]
        .into_iter()
        .map(|x| {
            let calls = error_calls.clone();
            let on_error = PoolOptions::new().error_callback(move |_| *calls.lock().unwrap() += 1);
            pool.apply_async_with(divide, x, on_error)
        })
        .collect::<Result<_, _>>()?;
    for r in &results {
        match r.get_timeout(std::time::Duration::from_secs(5)) {
            Ok(v) => println!("{v}"),
            Err(PoolTimeoutError::Remote(e)) => println!("error: {} ({})", e.message, e.kind),
            Err(e) => return Err(e.into()),
        }
    }
    pool.close();
    pool.join();
    assert_eq!(*error_calls.lock().unwrap(), 1, "the error callback must run exactly once");
    Ok(())
}
