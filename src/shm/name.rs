//! Validation of named-segment names.

use super::ShmError;

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
