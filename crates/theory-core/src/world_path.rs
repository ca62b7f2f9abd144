//! World paths: canonical names of artifacts and streams, such as
//! `/artifacts/outputs/llm_litellm/E1/text/response.txt`.
//!
//! Two facets hold records and are written only by the orchestrator: `/artifacts/execution/`
//! (each run's index and receipt) and `/artifacts/inputs/` (attachments, by CID). A write prefix
//! may lie in neither (see [`RESERVED_FACETS`]).
//!
//! Canonicalization, applied once at the edge: percent-decoding once (`%2F` and a literal `%`
//! refused, so the result never decodes further), Unicode NFC, then the rules: a facet root
//! (`/artifacts/` or `/streams/`), no `.`/`..`/empty segment, no `.git`/`.well-known` segment, no
//! backslash or control character, at most 1024 characters and 255 per segment. Case is kept.

use std::fmt;
use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;

/// The longest world path, in characters.
pub const MAX_PATH_CHARS: usize = 1024;
/// The longest segment, in characters.
pub const MAX_SEGMENT_CHARS: usize = 255;
/// Facet roots a world path may start under.
pub const FACETS: &[&str] = &["artifacts", "streams"];
/// Facets only the orchestrator writes: a write prefix inside one is refused.
pub const RESERVED_FACETS: &[&str] = &["/artifacts/execution/", "/artifacts/inputs/"];
const FORBIDDEN_SEGMENTS: &[&str] = &[".git", ".well-known"];

/// The reason a string is not a world path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldPathError {
    /// Not under `/artifacts/` or `/streams/` (or only the facet root itself).
    #[error("{0:?} is not under /artifacts/ or /streams/")]
    Facet(String),
    /// A `%` not followed by two hex digits, or an encoded byte that is not UTF-8.
    #[error("{0:?} has a malformed percent-encoding")]
    Percent(String),
    /// `%2F` (an encoded slash) or a literal `%` after decoding.
    #[error("{0:?} encodes a / or a % (%2F and %25 are refused)")]
    EncodedSeparator(String),
    /// An empty, `.` or `..` segment.
    #[error("{0:?} has an empty, . or .. segment")]
    Segment(String),
    /// A `.git` or `.well-known` segment.
    #[error("{0:?} has a .git or .well-known segment")]
    Forbidden(String),
    /// A backslash, a control character or an invisible formatting character (a bidirectional
    /// override such as U+202E, a zero-width character): see
    /// [`theory_protocol::is_refused_path_char`].
    #[error(
        "{0:?} holds a backslash, a control character or an invisible formatting character such as a bidirectional override"
    )]
    Character(String),
    /// Longer than 1024 characters, or a segment longer than 255.
    #[error("{0:?} is longer than 1024 characters or has a segment longer than 255")]
    TooLong(String),
    /// A write prefix outside `/artifacts/`, or without its trailing `/`.
    #[error("{0}")]
    Prefix(String),
}

/// Decodes `%XX` once; a decoded `/` or `%` is refused so the result is final.
fn percent_decode_once(raw: &str) -> Result<String, WorldPathError> {
    if !raw.contains('%') {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex =
                bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
            let byte = hex
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| WorldPathError::Percent(raw.to_owned()))?;
            if byte == b'/' || byte == b'%' {
                return Err(WorldPathError::EncodedSeparator(raw.to_owned()));
            }
            decoded.push(byte);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| WorldPathError::Percent(raw.to_owned()))
}

/// Canonicalizes `raw`; returns the canonical text, which ends with `/` when `raw` did.
fn canonicalize(raw: &str) -> Result<String, WorldPathError> {
    let decoded = percent_decode_once(raw)?;
    if decoded.contains('%') {
        return Err(WorldPathError::EncodedSeparator(raw.to_owned()));
    }
    let text: String = decoded.nfc().collect();
    if text.chars().any(theory_protocol::is_refused_path_char) {
        return Err(WorldPathError::Character(raw.to_owned()));
    }
    if text.chars().count() > MAX_PATH_CHARS {
        return Err(WorldPathError::TooLong(raw.to_owned()));
    }
    let rest = text.strip_prefix('/').ok_or_else(|| WorldPathError::Facet(raw.to_owned()))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments = rest.split('/');
    if !segments.next().is_some_and(|facet| FACETS.contains(&facet)) {
        return Err(WorldPathError::Facet(raw.to_owned()));
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(WorldPathError::Segment(raw.to_owned()));
        }
        if FORBIDDEN_SEGMENTS.iter().any(|forbidden| segment.eq_ignore_ascii_case(forbidden)) {
            return Err(WorldPathError::Forbidden(raw.to_owned()));
        }
        if segment.chars().count() > MAX_SEGMENT_CHARS {
            return Err(WorldPathError::TooLong(raw.to_owned()));
        }
    }
    Ok(text)
}

/// The canonical path of one object: under a facet root, no trailing `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorldPath(String);

impl WorldPath {
    /// Returns the canonical text, starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the object key in a store: the path without its leading `/`.
    pub fn key(&self) -> &str {
        &self.0[1..]
    }

    /// Returns the last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// Joins a relative path to a prefix; the result always lies under the prefix.
    pub fn join(prefix: &WritePrefix, relative: &str) -> Result<WorldPath, WorldPathError> {
        let joined: WorldPath = format!("{}{relative}", prefix.as_str()).parse()?;
        if joined.0.starts_with(prefix.as_str()) {
            Ok(joined)
        } else {
            Err(WorldPathError::Segment(relative.to_owned()))
        }
    }
}

impl FromStr for WorldPath {
    type Err = WorldPathError;

    fn from_str(raw: &str) -> Result<WorldPath, WorldPathError> {
        let text = canonicalize(raw)?;
        if text.ends_with('/') {
            return Err(WorldPathError::Segment(raw.to_owned()));
        }
        if text.matches('/').count() < 2 {
            return Err(WorldPathError::Facet(raw.to_owned()));
        }
        Ok(WorldPath(text))
    }
}

/// A prefix outputs are written under: under `/artifacts/`, ending with `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WritePrefix(String);

impl WritePrefix {
    /// Returns the canonical text, ending with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns whether `path` lies under this prefix.
    pub fn contains(&self, path: &WorldPath) -> bool {
        path.as_str().starts_with(&self.0)
    }

    /// Returns whether the two prefixes overlap (one contains the other).
    pub fn overlaps(&self, other: &WritePrefix) -> bool {
        self.0.starts_with(&other.0) || other.0.starts_with(&self.0)
    }
}

impl FromStr for WritePrefix {
    type Err = WorldPathError;

    fn from_str(raw: &str) -> Result<WritePrefix, WorldPathError> {
        if !raw.ends_with('/') {
            return Err(WorldPathError::Prefix("--write-prefix must end with /".into()));
        }
        let text = canonicalize(raw)?;
        if !text.starts_with("/artifacts/") || text == "/artifacts/" {
            return Err(WorldPathError::Prefix(format!(
                "write prefix {raw:?} must lie under /artifacts/"
            )));
        }
        // Compared without case: on a case-insensitive file system (macOS by default)
        // `/artifacts/Execution/` is the same folder.
        let lowered = text.to_lowercase();
        if let Some(facet) = RESERVED_FACETS.iter().find(|facet| lowered.starts_with(*facet)) {
            return Err(WorldPathError::Prefix(format!(
                "write prefix {raw:?} lies in {facet}, which holds the records of runs and only Theory writes"
            )));
        }
        Ok(WritePrefix(text))
    }
}

macro_rules! display_debug {
    ($type:ident) => {
        impl fmt::Display for $type {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl fmt::Debug for $type {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({})", stringify!($type), self.0)
            }
        }

        theory_protocol::serde_via_str!($type);
    };
}

display_debug!(WorldPath);
display_debug!(WritePrefix);

#[cfg(test)]
mod tests {
    use super::{WorldPath, WorldPathError, WritePrefix};

    fn path(raw: &str) -> Result<String, WorldPathError> {
        raw.parse::<WorldPath>().map(|path| path.to_string())
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(path("/artifacts/outputs/Résumé.txt").unwrap(), "/artifacts/outputs/Résumé.txt");
        assert_eq!(
            path("/artifacts/outputs/Re\u{301}sume\u{301}.txt").unwrap(),
            "/artifacts/outputs/R\u{e9}sum\u{e9}.txt"
        );
        assert_eq!(path("/artifacts/a%20b/C.TXT").unwrap(), "/artifacts/a b/C.TXT");
        assert_eq!(path("/streams/s1/events").unwrap(), "/streams/s1/events");
        assert_eq!(
            "/artifacts/inputs/x/photo.jpg".parse::<WorldPath>().unwrap().key(),
            "artifacts/inputs/x/photo.jpg"
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "artifacts/x",
            "/other/x",
            "/artifacts",
            "/artifacts/",
            "/artifacts/a/",
            "/artifacts//a",
            "/artifacts/./a",
            "/artifacts/a/..",
            "/artifacts/a%2Fb",
            "/artifacts/a%2fb",
            "/artifacts/a%25b",
            "/artifacts/a%zz",
            "/artifacts/%2e%2e/x",
            "/artifacts/.git/config",
            "/artifacts/.Well-Known/x",
            "/artifacts/a\\b",
            "/artifacts/a\u{0}b",
            "/artifacts/%ff",
            "/artifacts/outputs/evil\u{202e}gpj.exe",
            "/artifacts/outputs/a\u{2066}b",
            "/artifacts/outputs/zero\u{200b}width",
            "/artifacts/outputs/%E2%80%AEx",
        ] {
            assert!(path(bad).is_err(), "{bad}");
        }
        assert!(path(&format!("/artifacts/{}", "a".repeat(256))).is_err());
        assert!(path(&format!("/artifacts/{}", "a/".repeat(600))).is_err());
    }

    #[test]
    fn write_prefixes() {
        assert_eq!(
            "/artifacts/outputs/x/".parse::<WritePrefix>().unwrap().as_str(),
            "/artifacts/outputs/x/"
        );
        let missing_slash = "/artifacts/outputs/x".parse::<WritePrefix>().unwrap_err();
        assert_eq!(missing_slash.to_string(), "--write-prefix must end with /");
        assert!("/streams/x/".parse::<WritePrefix>().is_err());
        assert!("/artifacts/".parse::<WritePrefix>().is_err());
        let prefix: WritePrefix = "/artifacts/out/".parse().unwrap();
        assert!(WorldPath::join(&prefix, "text/response.txt").is_ok());
        assert!(WorldPath::join(&prefix, "../escape").is_err());
        assert!(WorldPath::join(&prefix, "%2e%2e/escape").is_err());
        assert!("/artifacts/out/a/".parse::<WritePrefix>().unwrap().overlaps(&prefix));
    }

    #[test]
    fn write_prefixes_stay_out_of_the_record_facets() {
        for reserved in [
            "/artifacts/execution/",
            "/artifacts/execution/E1/",
            "/artifacts/inputs/",
            "/artifacts/inputs/b3:00/",
            "/artifacts/%65xecution/E1/",
            "/artifacts/Execution/E1/",
            "/artifacts/INPUTS/",
        ] {
            let error = reserved.parse::<WritePrefix>().unwrap_err();
            assert!(error.to_string().contains("only Theory writes"), "{reserved}: {error}");
        }
        for allowed in ["/artifacts/executions/", "/artifacts/outputs/inputs/"] {
            assert!(allowed.parse::<WritePrefix>().is_ok(), "{allowed}");
        }
    }
}
