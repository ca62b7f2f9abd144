//! Image digests (`sha256:<64 hex>`) and pins (`repo@sha256:<64 hex>`).

use std::fmt;
use std::str::FromStr;

/// An OCI content digest, `sha256:` and 64 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// The reason a string is not a [`Digest`] or an [`ImagePin`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected {expected}")]
pub struct DigestError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl Digest {
    /// Returns `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(value: &str) -> Result<Digest, DigestError> {
        let hex = value.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError {
                what: "digest",
                value: value.to_owned(),
                expected: "sha256: and 64 lowercase hex digits",
            });
        }
        Ok(Digest(value.to_owned()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Digest({})", self.0)
    }
}

theory_protocol::serde_via_str!(Digest);

/// A pinned image, `repository@sha256:…`, such as `ghcr.io/org/repo/llm-litellm@sha256:…`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImagePin {
    repository: String,
    digest: Digest,
}

impl ImagePin {
    /// Returns the repository part (which may carry a tag before the digest).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Returns the digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

impl FromStr for ImagePin {
    type Err = DigestError;

    fn from_str(value: &str) -> Result<ImagePin, DigestError> {
        let error = || DigestError {
            what: "image pin",
            value: value.to_owned(),
            expected: "repository@sha256:<64 hex>",
        };
        let (repository, digest) = value.rsplit_once('@').ok_or_else(error)?;
        let repository_ok = !repository.is_empty()
            && repository.bytes().all(|byte| {
                byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'/' | b':')
            });
        if !repository_ok {
            return Err(error());
        }
        Ok(ImagePin {
            repository: repository.to_owned(),
            digest: digest.parse().map_err(|_| error())?,
        })
    }
}

impl fmt::Display for ImagePin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}@{}", self.repository, self.digest)
    }
}

impl fmt::Debug for ImagePin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ImagePin({self})")
    }
}

theory_protocol::serde_via_str!(ImagePin);

#[cfg(test)]
mod tests {
    use super::{Digest, ImagePin};

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pins_split_into_repository_and_digest() {
        let pin: ImagePin = format!("ghcr.io/org/repo/llm:v1@sha256:{HEX}").parse().unwrap();
        assert_eq!(pin.repository(), "ghcr.io/org/repo/llm:v1");
        assert_eq!(pin.digest().as_str(), format!("sha256:{HEX}"));
        assert_eq!(pin.to_string(), format!("ghcr.io/org/repo/llm:v1@sha256:{HEX}"));
    }

    #[test]
    fn refuses_malformed() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(format!("sha256:{}", HEX.to_uppercase()).parse::<Digest>().is_err());
        assert!(format!("@sha256:{HEX}").parse::<ImagePin>().is_err());
        assert!("ghcr.io/x:latest".parse::<ImagePin>().is_err());
    }
}
