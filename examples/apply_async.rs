//! `apply_async` with an `error_callback` (Python scenario i): 10/x for x in [1, 2, 0, 4].
//!
//! Prints, one result per line in submission order: `10`, `5`, an error line naming the
//! division by zero, `2.5`; the error callback runs exactly once.

use multiproc::{AsyncOptions, Pool, PoolError};
use std::sync::{Arc, Mutex};

/// The error our division reports, like Python's `ZeroDivisionError`.
#[derive(Debug)]
struct ZeroDivisionError;

impl std::fmt::Display for ZeroDivisionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("division by zero")
    }
}

fn divide(x: i32) -> Result<f64, ZeroDivisionError> {
    if x == 0 {
        Err(ZeroDivisionError)
    } else {
        Ok(10.0 / f64::from(x))
    }
}

fn main() -> Result<(), PoolError> {
    let pool = Pool::new(2)?;
    let error_calls = Arc::new(Mutex::new(0));
    let results: Vec<_> = [1, 2, 0, 4]
        .into_iter()
        .map(|x| {
            let calls = error_calls.clone();
            let on_error = AsyncOptions::new().error_callback(move |_| *calls.lock().unwrap() += 1);
            pool.try_apply_async_with(divide, x, on_error)
        })
        .collect::<Result<_, _>>()?;
    for r in &results {
        match r.get_timeout(std::time::Duration::from_secs(5)) {
            Ok(v) => println!("{v}"),
            Err(PoolError::Remote(e)) => println!("error: {} ({})", e.message, e.kind),
            Err(e) => return Err(e),
        }
    }
    pool.close();
    pool.join();
    assert_eq!(*error_calls.lock().unwrap(), 1, "the error callback must run exactly once");
    Ok(())
}
