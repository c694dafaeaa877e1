//! This process's own record ([`Me`]: name, identity, parent) and the registry of the children
//! it started ([`ACTIVE`], Python's `_children`). Both are locked across `fork` by the fork
//! launcher, so that the child gets them consistent, and rewritten in every child.

use super::lock::lock;
use super::record::{Record, Spec};
use super::{ProcFail, MAIN_NAME};
use crate::sys::process as sys;
use std::sync::{Arc, Mutex};

pub(super) struct Me {
    /// `None` in a process this crate did not start: "MainProcess".
    pub(super) name: Option<String>,
    pub(super) daemon: bool,
    /// Python's `_identity`: `[]` in main, the parent's identity plus the child's number.
    pub(super) identity: Vec<u32>,
    /// Children created so far (names `Process-<identity>:<n>`); reset in every child.
    pub(super) counter: u32,
    /// The parent's pid and name, in a child started by this crate.
    pub(super) parent: Option<(libc::pid_t, String)>,
}

pub(super) static ME: Mutex<Me> =
    Mutex::new(Me { name: None, daemon: false, identity: Vec::new(), counter: 0, parent: None });

/// Started children not yet reaped (Python's `_children`). Locked across fork, cleared in the
/// child.
pub(super) static ACTIVE: Mutex<Vec<Arc<Record>>> = Mutex::new(Vec::new());

impl Me {
    /// What a child of this process made from `spec` will be: its identity (ours plus its
    /// number) and its parent (us). A daemonic process may not have children.
    pub(super) fn child(&self, spec: &Spec) -> Result<Me, ProcFail> {
        if self.daemon {
            return Err(ProcFail::DaemonicParent);
        }
        let mut identity = self.identity.clone();
        identity.push(spec.number);
        Ok(Me {
            name: Some(spec.name.clone()),
            daemon: spec.daemon,
            identity,
            counter: 0,
            parent: Some((sys::getpid(), self.name.clone().unwrap_or_else(|| MAIN_NAME.to_string()))),
        })
    }
}

/// Adds a started child to the registry.
pub(super) fn register(record: Arc<Record>) {
    lock(&ACTIVE).push(record);
}

/// Removes a reaped child from the registry.
pub(super) fn unregister(record: &Arc<Record>) {
    lock(&ACTIVE).retain(|r| !Arc::ptr_eq(r, record));
}

/// The registered children (clones of the `Arc`s; the lock is released on return).
pub(super) fn active() -> Vec<Arc<Record>> {
    lock(&ACTIVE).clone()
}
