//! Named-segment names: validation, and the temporary names that record their creator.

use super::ShmError;
use crate::loom::atomic::Ordering::Relaxed;
use crate::sys;

/// Longest name we accept, without the leading `/` (NAME_MAX is 255 on tmpfs).
pub(crate) const MAX_NAME_LEN: usize = 250;

/// Checks `name` and returns it with exactly one leading `/`, as `shm_open` wants.
///
/// Accepted: 1 to [`MAX_NAME_LEN`] characters from `[A-Za-z0-9._-]`, optionally preceded by one
/// `/` that the user may or may not have written; not `.` or `..`.
pub(crate) fn normalize(name: &str) -> Result<String, ShmError> {
    let bad = |reason| Err(ShmError::InvalidName { name: name.to_owned(), reason });
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return bad("empty name");
    }
    if bare.len() > MAX_NAME_LEN {
        return bad("longer than 250 bytes");
    }
    if bare == "." || bare == ".." {
        return bad("'.' and '..' are not segment names");
    }
    if !bare.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(format!("/{bare}"))
}

/// The prefix of the temporary names used where `O_TMPFILE` is missing.
const TEMP_PREFIX: &str = "/.mp-";

/// `/.mp-<pid>-<start>-<seq>`: unique per creation, and it names its creator.
pub(crate) fn temp_name() -> String {
    // Process-local, never shared: a `core` atomic (loom's cannot live in statics).
    #[allow(clippy::disallowed_types)]
    static SEQ: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let (pid, start) = sys::process::self_identity();
    format!("{TEMP_PREFIX}{pid}-{start}-{}", SEQ.fetch_add(1, Relaxed))
}

/// The creator `(pid, start)` a temporary name records.
pub(crate) fn temp_creator(name: &str) -> Option<(u32, u64)> {
    // With or without the leading `/`: `list_named` shows names without it.
    let bare = TEMP_PREFIX.trim_start_matches('/');
    let mut parts = name.trim_start_matches('/').strip_prefix(bare)?.split('-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next().is_none().then_some((pid, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_slash_is_optional() {
        assert_eq!(normalize("abc").unwrap(), "/abc");
        assert_eq!(normalize("/abc").unwrap(), "/abc");
    }

    #[test]
    fn bad_names_are_rejected_with_a_reason() {
        for n in ["", "/", "a/b", "//a", "..", "a b", "é", &"x".repeat(251)] {
            assert!(matches!(normalize(n), Err(ShmError::InvalidName { .. })), "{n:?} accepted");
        }
        assert!(normalize(&"x".repeat(250)).is_ok());
    }
}
