//! Processor references: `{namespace}/{name}@{version}`.

use std::fmt;
use std::str::FromStr;

/// A processor reference such as `llm/litellm@1`; only well-formed values exist.
///
/// Namespace and name are lowercase ASCII letters, digits, `_` and `-`, starting with a letter or
/// digit; the version is letters, digits, `.`, `_` and `-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessorRef {
    text: String,
    slash: usize,
    at: usize,
}

/// The reason a string is not a [`ProcessorRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid processor ref {value:?}: {reason}")]
pub struct ProcessorRefError {
    value: String,
    reason: &'static str,
}

fn is_name(part: &str) -> bool {
    part.len() <= 64
        && part
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        && part.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
        })
}

fn is_version(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 32
        && part
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

impl ProcessorRef {
    /// Returns the namespace (`llm`).
    pub fn namespace(&self) -> &str {
        &self.text[..self.slash]
    }

    /// Returns the name (`litellm`).
    pub fn name(&self) -> &str {
        &self.text[self.slash + 1..self.at]
    }

    /// Returns the version (`1`).
    pub fn version(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// Returns `{namespace}_{name}` (`llm_litellm`), the default output folder and app name.
    pub fn slug(&self) -> String {
        format!("{}_{}", self.namespace(), self.name())
    }

    /// Returns the whole reference as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for ProcessorRef {
    type Err = ProcessorRefError;

    fn from_str(value: &str) -> Result<ProcessorRef, ProcessorRefError> {
        let error = |reason| ProcessorRefError { value: value.to_owned(), reason };
        let slash = value.find('/').ok_or_else(|| error("expected namespace/name@version"))?;
        let at = value
            .rfind('@')
            .filter(|&at| at > slash)
            .ok_or_else(|| error("expected namespace/name@version"))?;
        if !is_name(&value[..slash]) || !is_name(&value[slash + 1..at]) {
            return Err(error("namespace and name are lowercase letters, digits, _ and -"));
        }
        if !is_version(&value[at + 1..]) {
            return Err(error("the version is letters, digits, ., _ and -"));
        }
        Ok(ProcessorRef { text: value.to_owned(), slash, at })
    }
}

impl fmt::Display for ProcessorRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl fmt::Debug for ProcessorRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ProcessorRef({})", self.text)
    }
}

theory_protocol::serde_via_str!(ProcessorRef);

#[cfg(test)]
mod tests {
    use super::ProcessorRef;

    #[test]
    fn parts_and_slug() {
        let reference: ProcessorRef = "llm/litellm@1".parse().unwrap();
        assert_eq!(
            (reference.namespace(), reference.name(), reference.version()),
            ("llm", "litellm", "1")
        );
        assert_eq!(reference.slug(), "llm_litellm");
        assert_eq!(
            "image/thumbnail@2.1".parse::<ProcessorRef>().unwrap().slug(),
            "image_thumbnail"
        );
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "llm",
            "llm/litellm",
            "llm@1",
            "/litellm@1",
            "llm/@1",
            "llm/litellm@",
            "LLM/litellm@1",
            "llm/lite llm@1",
            "a/b/c@1",
            "llm/litellm@1/x",
        ] {
            assert!(bad.parse::<ProcessorRef>().is_err(), "{bad}");
        }
    }
}
