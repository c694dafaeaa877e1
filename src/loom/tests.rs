//! Models that prove the shim itself: the futex model must catch a lost wake-up.

use super::atomic::{
    AtomicU32,
    Ordering::{Acquire, Release},
};
use super::futex;
use loom::sync::Arc;
use loom::thread;

/// A one-shot flag over the futex: `set` stores then wakes; `wait` re-checks after each wake-up.
struct OneShot {
    word: AtomicU32,
}

impl OneShot {
    fn set(&self, wake: bool) {
        // SYNC(release → wait): publishes everything before `set` to the waiter.
        self.word.store(1, Release);
        if wake {
            futex::wake(&self.word, u32::MAX);
        }
    }

    fn wait(&self) {
        // SYNC(acquire ← set).
        while self.word.load(Acquire) == 0 {
            let _ = futex::wait(&self.word, 0, None);
        }
    }
}

#[test]
fn loom_shim_one_shot_flag_wakes_its_waiter() {
    loom::model(|| {
        let f = Arc::new(OneShot { word: AtomicU32::new(0) });
        let w = {
            let f = f.clone();
            thread::spawn(move || f.wait())
        };
        f.set(true);
        w.join().unwrap();
    });
}

/// The same flag with the wake-up forgotten must be reported as a deadlock by the model: this is
/// the property that makes the other models meaningful. Loom aborts the process after reporting
/// a deadlock (a second panic while unwinding its generators), so `#[should_panic]` cannot catch
/// it: the model runs in a child test process, and the parent checks the report.
#[test]
fn loom_shim_forgotten_wake_is_a_deadlock() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "loom::tests::forgotten_wake_model", "--ignored", "--nocapture", "--test-threads=1"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the model without a wake-up passed");
    assert!(stderr.contains("deadlock"), "expected a loom deadlock report, got:\n{stderr}");
}

#[test]
#[ignore = "run by loom_shim_forgotten_wake_is_a_deadlock in a child process"]
fn forgotten_wake_model() {
    loom::model(|| {
        let f = Arc::new(OneShot { word: AtomicU32::new(0) });
        let w = {
            let f = f.clone();
            thread::spawn(move || f.wait())
        };
        f.set(false);
        w.join().unwrap();
    });
}

#[test]
fn loom_shim_timed_wait_explores_timeout() {
    loom::model(|| {
        let w = AtomicU32::new(0);
        let d = crate::sys::clock::Deadline::after(std::time::Duration::from_secs(1));
        assert_eq!(futex::wait(&w, 0, d), Err(futex::TimedOut));
    });
}
