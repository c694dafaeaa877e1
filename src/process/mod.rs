//! Processes (fork start method): `Process`, exit status, child error transport, process
//! groups, parent-death signal, `current_process`, `parent_process`, `active_children`,
//! `cpu_count`.

#[cfg(feature = "serde")]
pub(crate) mod call;
