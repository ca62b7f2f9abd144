//! Path rules shared by both ends: `write_prefix` expansion and output relative paths.

use crate::ExecutionId;

/// The longest relative path accepted for an output, in bytes.
pub const MAX_RELPATH_BYTES: usize = 1024;
/// The longest single segment of a relative path, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Names a processor may not use at the root of its prefix: the index and the receipt live there.
pub const RESERVED_RELPATHS: &[&str] = &["outputs.json", "receipt.json"];

/// Expands `{{execution_id}}` and `{execution_id}` in a `write_prefix` and adds a missing
/// trailing `/`.
///
/// ```
/// # use theory_protocol::{expand_write_prefix, ExecutionId};
/// let id: ExecutionId = "E1".parse().unwrap();
/// assert_eq!(expand_write_prefix("/artifacts/outputs/{execution_id}", &id), "/artifacts/outputs/E1/");
/// assert_eq!(expand_write_prefix("/artifacts/{{execution_id}}/x/", &id), "/artifacts/E1/x/");
/// ```
pub fn expand_write_prefix(template: &str, execution_id: &ExecutionId) -> String {
    // The double-brace form first, or `{{execution_id}}` would become `{E1}`.
    let mut prefix = template
        .replace("{{execution_id}}", execution_id.as_str())
        .replace("{execution_id}", execution_id.as_str());
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    prefix
}

/// The reason an output's relative path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelpathError {
    /// The path is empty.
    #[error("output path is empty")]
    Empty,
    /// The path starts with `/`.
    #[error("output path {0:?} starts with /")]
    Absolute(String),
    /// The path has an empty segment (`a//b`, a trailing `/`).
    #[error("output path {0:?} has an empty segment")]
    EmptySegment(String),
    /// The path has a `.` or `..` segment.
    #[error("output path {0:?} has a . or .. segment")]
    DotSegment(String),
    /// The path holds a backslash or a control character.
    #[error("output path {0:?} holds a backslash or a control character")]
    BadCharacter(String),
    /// The path or one of its segments is too long.
    #[error("output path {0:?} is longer than 1024 bytes or has a segment longer than 255 bytes")]
    TooLong(String),
    /// The path names the index or the receipt.
    #[error("output path {0:?} is reserved for the index or the receipt")]
    Reserved(String),
}

/// Checks that `relpath` is a clean relative path that stays inside the write prefix.
///
/// ```
/// # use theory_protocol::validate_relpath;
/// assert!(validate_relpath("text/response.txt").is_ok());
/// assert!(validate_relpath("../escape").is_err());
/// assert!(validate_relpath("/etc/passwd").is_err());
/// assert!(validate_relpath("a//b").is_err());
/// ```
pub fn validate_relpath(relpath: &str) -> Result<(), RelpathError> {
    let owned = || relpath.to_owned();
    if relpath.is_empty() {
        return Err(RelpathError::Empty);
    }
    if relpath.starts_with('/') {
        return Err(RelpathError::Absolute(owned()));
    }
    if relpath.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(RelpathError::BadCharacter(owned()));
    }
    if relpath.len() > MAX_RELPATH_BYTES {
        return Err(RelpathError::TooLong(owned()));
    }
    for segment in relpath.split('/') {
        match segment {
            "" => return Err(RelpathError::EmptySegment(owned())),
            "." | ".." => return Err(RelpathError::DotSegment(owned())),
            long if long.len() > MAX_SEGMENT_BYTES => return Err(RelpathError::TooLong(owned())),
            _ => {}
        }
    }
    if RESERVED_RELPATHS.contains(&relpath) {
        return Err(RelpathError::Reserved(owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{RelpathError, validate_relpath};

    #[test]
    fn refuses_every_escape() {
        let cases = [
            ("", RelpathError::Empty),
            ("/abs", RelpathError::Absolute("/abs".into())),
            ("a/", RelpathError::EmptySegment("a/".into())),
            ("a//b", RelpathError::EmptySegment("a//b".into())),
            ("a/../b", RelpathError::DotSegment("a/../b".into())),
            ("./a", RelpathError::DotSegment("./a".into())),
            ("a\\b", RelpathError::BadCharacter("a\\b".into())),
            ("a\nb", RelpathError::BadCharacter("a\nb".into())),
            ("outputs.json", RelpathError::Reserved("outputs.json".into())),
        ];
        for (path, expected) in cases {
            assert_eq!(validate_relpath(path), Err(expected), "{path:?}");
        }
        assert!(matches!(validate_relpath(&"a".repeat(256)), Err(RelpathError::TooLong(_))));
    }

    #[test]
    fn accepts_nested_and_unicode_paths() {
        for path in
            ["meta.json", "text/response.txt", "images/été 1.png", "sub/outputs.json", "..a/b.."]
        {
            assert_eq!(validate_relpath(path), Ok(()), "{path:?}");
        }
    }
}
