//! The process layer's own mutexes (the registries, a process's life, a fork server's control
//! socket). Poison only means another thread panicked while holding one; every update under
//! them is a single assignment, so the data is consistent and the lock is taken anyway.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poison (see the module docs).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
