//! Three processes pass a `Barrier` three times. At each phase every process records the index
//! its `wait` returned; the parent then prints, per phase, the indices handed out, which must be
//! each of 0, 1 and 2 exactly once.
//!
//! Prints `phase 0: indices [0, 1, 2]`, `phase 1: indices [0, 1, 2]`, `phase 2: indices [0, 1, 2]`.

use multiproc::{Barrier, Process, RawArray};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let barrier = Barrier::new(3)?;
    let indices = RawArray::<u32>::zeroed(9)?;
    let workers: Vec<Process> = (0..3)
        .map(|me| {
            let (barrier, indices) = (barrier.clone(), indices.clone());
            Process::new(move || {
                for phase in 0..3 {
                    let idx = barrier.wait().map_err(|e| e.to_string())?;
                    indices.set(phase * 3 + me, idx).map_err(|e| e.to_string())?;
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
    let all = indices.to_vec();
    for (phase, chunk) in all.chunks(3).enumerate() {
        let mut got = chunk.to_vec();
        got.sort_unstable();
        println!("phase {phase}: indices {got:?}");
    }
    Ok(())
}
