//! A small coverage-guided fuzzer on the pool: two of them, started as two programs, share the
//! inputs that found new coverage through a named `Broadcast` (the shape of LibAFL's LLMP).
//!
//! ```text
//! cargo run --release --example fuzz_loop -- 1        # node 1 (in one terminal)
//! cargo run --release --example fuzz_loop -- 2        # node 2 (in another)
//! cargo run --release --example fuzz_loop -- 1 --secs 30
//! ```
//!
//! Each node mutates inputs from its corpus and runs them through a `Pool` with a time limit,
//! one outcome per input (`imap_unordered_outcomes_with`): the run never stops for a crash or a
//! hang. The target aborts on inputs that start with `FUZZ` and hangs on inputs that start
//! with `HANG`. Workers write the branches they reach into a coverage bitmap in `SharedMemory`;
//! an input that set a bit nobody had set before joins the corpus and is published to the other
//! node, which runs it too. A node stops when it has found both the crash and the hang, or at
//! `--secs` (default 20), and prints the count of each outcome and the exact inputs that
//! crashed and hung. The first node to start creates the broadcast; the other opens it.

use multiproc::{Broadcast, Pool, PoolError, PoolOptions, SharedMemory, ShmError, TryBroadcastRecvError};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The broadcast both nodes meet on: (sender node, input).
const NAME: &str = "multiproc-example-fuzz-loop";
/// Branch ids the target can reach (bits of the bitmap).
const EDGES: usize = 64;
/// Inputs run per round.
const ROUND: usize = 512;
/// The time limit of one input: past it, its worker is killed and the input is a hang.
const LIMIT: Duration = Duration::from_millis(200);

/// This node's coverage bitmap, one byte per branch. Made before the pool: the workers are
/// forked copies of this process, so they see the same mapping.
static BITMAP: OnceLock<SharedMemory> = OnceLock::new();

/// Marks branch `id` as reached; true if no input had reached it before.
fn edge(id: usize, new: &mut bool) {
    let map = BITMAP.get().expect("the bitmap is made before the pool").as_atomic_bytes();
    if map[id % EDGES].fetch_or(1, Ordering::Relaxed) == 0 {
        *new = true;
    }
}

/// The program under test: a magic-byte maze with a crash and a hang at two of its ends.
fn target(input: &[u8], new: &mut bool) {
    edge(0, new);
    let [a, b, c, d, ..] = *input else { return };
    edge(1, new);
    if a == b'F' {
        edge(2, new);
        if b == b'U' {
            edge(3, new);
            if c == b'Z' {
                edge(4, new);
                if d == b'Z' {
                    std::process::abort(); // the crash: SIGABRT kills the worker
                }
            }
        }
    }
    if a == b'H' {
        edge(5, new);
        if b == b'A' {
            edge(6, new);
            if c == b'N' {
                edge(7, new);
                if d == b'G' {
                    loop {
                        std::thread::sleep(Duration::from_secs(1)); // the hang: the limit fires
                    }
                }
            }
        }
    }
}

/// One execution, in a worker: true if the input reached a branch nobody had reached.
fn run_one(input: Vec<u8>) -> bool {
    let mut new = false;
    target(&input, &mut new);
    new
}

/// xorshift64*: enough randomness for a mutator, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One mutation: set a random byte to a random value, or grow the input by one byte.
fn mutate(rng: &mut Rng, parent: &[u8]) -> Vec<u8> {
    let mut child = parent.to_vec();
    if child.is_empty() || (child.len() < 8 && rng.below(4) == 0) {
        child.push(rng.next() as u8);
    } else {
        let i = rng.below(child.len());
        child[i] = rng.next() as u8;
    }
    child
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let node: u32 = args.next().ok_or("usage: fuzz_loop NODE [--secs N]")?.parse()?;
    let secs: u64 = match (args.next().as_deref(), args.next()) {
        (Some("--secs"), Some(n)) => n.parse()?,
        (None, _) => 20,
        _ => return Err("usage: fuzz_loop NODE [--secs N]".into()),
    };

    BITMAP.set(SharedMemory::anonymous(EDGES)?).map_err(|_| "bitmap made twice")?;
    let shared: Broadcast<(u32, Vec<u8>)> = match Broadcast::create(NAME, 256, 1024) {
        Ok(b) => b,
        Err(ShmError::Exists { .. }) => Broadcast::open(NAME)?,
        Err(e) => return Err(e.into()),
    };
    let mut from_others = shared.subscribe_oldest();
    let pool = Pool::builder().time_limit(LIMIT).build()?;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(node).wrapping_mul(0xff51_afd7_ed55_8ccd));
    let mut corpus: Vec<Vec<u8>> = vec![b"seed".to_vec()];
    let (mut execs, mut plain, mut new_cov, mut received) = (0u64, 0u64, 0u64, 0u64);
    let (mut crashes, mut hangs) = (BTreeSet::new(), BTreeSet::new());
    let (mut crash_execs, mut hang_execs) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(secs);

    while Instant::now() < end && (crashes.is_empty() || hangs.is_empty()) {
        // The other node's finds first (run here, so they count in this node's bitmap), then
        // this round's mutants.
        let mut batch = Vec::with_capacity(ROUND);
        loop {
            match from_others.try_recv() {
                Ok((from, input)) if from != node => {
                    received += 1;
                    batch.push(input);
                }
                Ok(_) => {} // our own publication
                Err(TryBroadcastRecvError::Empty) => break,
                Err(TryBroadcastRecvError::Lagged(_)) => {} // missed some: go on from here
                Err(e) => return Err(e.into()),
            }
        }
        while batch.len() < ROUND {
            let parent = &corpus[rng.below(corpus.len())];
            batch.push(mutate(&mut rng, parent));
        }

        for o in pool.imap_unordered_outcomes_with(run_one, batch.clone(), PoolOptions::new().chunksize(1))? {
            execs += 1;
            let input = &batch[o.index];
            match o.result {
                Ok(true) => {
                    new_cov += 1;
                    corpus.push(input.clone());
                    shared.publish(&(node, input.clone()))?;
                }
                Ok(false) => plain += 1,
                Err(PoolError::WorkerDied { signal, .. }) => {
                    crash_execs += 1;
                    if crashes.insert(input.clone()) {
                        println!("node {node}: crash (signal {signal:?}) on {:?}", String::from_utf8_lossy(input));
                    }
                }
                Err(PoolError::TimeLimit { limit, .. }) => {
                    hang_execs += 1;
                    if hangs.insert(input.clone()) {
                        println!("node {node}: hang (past {limit:?}) on {:?}", String::from_utf8_lossy(input));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    let show = |set: &BTreeSet<Vec<u8>>| {
        set.iter().map(|i| format!("{:?}", String::from_utf8_lossy(i))).collect::<Vec<_>>().join(", ")
    };
    println!(
        "node {node}: {execs} execs: {plain} ok, {new_cov} new coverage, {crash_execs} crashed, {hang_execs} hung; \
         {} distinct crashing and {} hanging inputs; {received} inputs from the other node",
        crashes.len(),
        hangs.len()
    );
    println!("node {node}: crashing inputs: {}", show(&crashes));
    println!("node {node}: hanging inputs: {}", show(&hangs));
    if crashes.is_empty() || hangs.is_empty() {
        return Err(format!("node {node}: not both found in {secs} s").into());
    }
    Ok(())
}
