//! Path rules shared by both ends: `write_prefix` expansion and output relative paths.

use crate::ExecutionId;

/// The longest relative path accepted for an output, in bytes.
pub const MAX_RELPATH_BYTES: usize = 1024;
/// The longest single segment of a relative path, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Names a processor may not use at the root of its prefix: the index and the receipt live there.
pub const RESERVED_RELPATHS: &[&str] = &["outputs.json", "receipt.json"];

/// Returns whether `c` may not appear in a path: a backslash, a control character (Unicode
/// `Cc`), a line or paragraph separator, or an invisible formatting character (Unicode `Cf`:
/// bidirectional overrides and isolates such as U+202E, zero-width characters, the byte-order
/// mark, tag characters). Such a path can display as another one, so both ends refuse it.
///
/// ```
/// # use theory_protocol::is_refused_path_char;
/// assert!(is_refused_path_char('\u{202e}'));
/// assert!(is_refused_path_char('\n'));
/// assert!(!is_refused_path_char('é'));
/// ```
pub fn is_refused_path_char(c: char) -> bool {
    c == '\\' || c.is_control() || is_format_char(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The Unicode `Cf` (format) characters, from the Unicode 15 character database.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

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
    /// The path holds a backslash, a control character or an invisible formatting character
    /// (see [`is_refused_path_char`]).
    #[error(
        "output path {0:?} holds a backslash, a control character or an invisible formatting character such as a bidirectional override"
    )]
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
    if relpath.chars().any(is_refused_path_char) {
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
            ("evil\u{202e}txt.exe", RelpathError::BadCharacter("evil\u{202e}txt.exe".into())),
            ("a\u{200b}b", RelpathError::BadCharacter("a\u{200b}b".into())),
            ("\u{feff}a", RelpathError::BadCharacter("\u{feff}a".into())),
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
