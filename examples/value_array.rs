//! Scenario (c) of `docs/BEHAVIOURS.md`: two processes each add 1 to a `Value<i32>` (0) 100 times and add 1 to every
//! element of an `Array<f64>` [0, 100, 200] 100 times, under their locks.
//!
//! Prints `200` then `[200.0, 300.0, 400.0]`.

use multiproc::{Array, Process, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let num = Value::new(0i32)?;
    let arr = Array::from_slice(&[0.0f64, 100.0, 200.0])?;
    let workers: Vec<Process> = (0..2)
        .map(|_| {
            let (num, arr) = (num.clone(), arr.clone());
            Process::new(move || {
                for _ in 0..100 {
                    num.update(|n| *n += 1).map_err(|e| e.to_string())?;
                    arr.update(|xs| xs.iter_mut().for_each(|x| *x += 1.0)).map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for w in &workers {
        w.start()?;
    }
    for w in &workers {
        w.join()?.exit_ok()?;
    }
    println!("{}", num.get().map_err(|e| e.to_string())?);
    println!("{:?}", arr.to_vec()?);
    Ok(())
}
