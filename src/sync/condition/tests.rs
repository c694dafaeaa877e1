//! Loom models of the condition's notify and wait handshake.

use super::CondState;
use crate::wait::Limit;
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A waiter that checks its predicate under the lock and waits through the protocol is
/// always woken by a notifier that sets the predicate under the lock: no lost wake-up.
#[test]
fn loom_condition_notify_is_never_lost() {
    loom::model(|| {
        let st = Arc::new(CondState::new());
        let m = Arc::new(Mutex::new(false));
        let waiter = {
            let (st, m) = (st.clone(), m.clone());
            thread::spawn(move || {
                let mut g = m.lock().unwrap();
                while !*g {
                    g = st.wait_protocol(g, drop, || m.lock().unwrap(), Limit::Forever).0;
                }
            })
        };
        {
            let mut g = m.lock().unwrap();
            *g = true;
            st.notify_protocol(1, || Limit::Forever);
        }
        waiter.join().unwrap();
    });
}

/// notify(1) with two waiters wakes exactly one token; the second notify wakes the other.
#[test]
fn loom_condition_notify_one_hands_out_one_token() {
    loom::model(|| {
        let st = Arc::new(CondState::new());
        let m = Arc::new(Mutex::new(0u32)); // permits handed out by notifiers
        let ws: Vec<_> = (0..2)
            .map(|_| {
                let (st, m) = (st.clone(), m.clone());
                thread::spawn(move || {
                    let mut g = m.lock().unwrap();
                    while *g == 0 {
                        g = st.wait_protocol(g, drop, || m.lock().unwrap(), Limit::Forever).0;
                    }
                    *g -= 1;
                })
            })
            .collect();
        for _ in 0..2 {
            let mut g = m.lock().unwrap();
            *g += 1;
            st.notify_protocol(1, || Limit::Forever);
        }
        for w in ws {
            w.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 0);
    });
}
