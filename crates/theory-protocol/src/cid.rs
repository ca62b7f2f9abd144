//! Content identifiers: `b3:` followed by the lowercase hex BLAKE3 digest of the bytes.

use std::fmt;
use std::str::FromStr;

const PREFIX: &str = "b3:";
const HEX_LEN: usize = 64;

/// A content identifier, `b3:<64 lowercase hex>`, that can only hold a well-formed value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid([u8; 32]);

/// The reason a string is not a [`Cid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CID {value:?}: expected b3: followed by 64 lowercase hex digits")]
pub struct CidError {
    value: String,
}

impl Cid {
    /// Computes the CID of a byte slice held in memory.
    pub fn of(bytes: &[u8]) -> Cid {
        Cid(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps a raw 32-byte BLAKE3 digest.
    pub fn from_digest(digest: [u8; 32]) -> Cid {
        Cid(digest)
    }

    /// Returns the raw 32-byte BLAKE3 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the 64 lowercase hex digits, without the `b3:` prefix.
    pub fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

/// An incremental hasher for data that streams through in chunks.
#[derive(Default, Clone)]
pub struct CidHasher {
    hasher: blake3::Hasher,
    size_bytes: u64,
}

impl CidHasher {
    /// Starts an empty hash.
    pub fn new() -> CidHasher {
        CidHasher::default()
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        // Large chunks take the SIMD path that hashes several 1 KiB blocks at once.
        self.hasher.update(chunk);
        self.size_bytes += chunk.len() as u64;
    }

    /// Returns how many bytes were fed so far.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Finishes and returns the CID of everything fed.
    pub fn finalize(&self) -> Cid {
        Cid(*self.hasher.finalize().as_bytes())
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{PREFIX}{}", blake3::Hash::from_bytes(self.0).to_hex())
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = CidError;

    fn from_str(value: &str) -> Result<Cid, CidError> {
        let invalid = || CidError { value: value.to_owned() };
        let hex = value.strip_prefix(PREFIX).ok_or_else(invalid)?;
        if hex.len() != HEX_LEN || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid());
        }
        let hash = blake3::Hash::from_hex(hex).map_err(|_| invalid())?;
        Ok(Cid(*hash.as_bytes()))
    }
}

crate::serde_via_str!(Cid);

#[cfg(test)]
mod tests {
    use super::{Cid, CidHasher};

    #[test]
    fn known_value() {
        let cid = Cid::of(b"");
        assert_eq!(
            cid.to_string(),
            "b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(cid.to_string().parse::<Cid>().unwrap(), cid);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut hasher = CidHasher::new();
        for chunk in data.chunks(4096) {
            hasher.update(chunk);
        }
        assert_eq!(hasher.finalize(), Cid::of(&data));
        assert_eq!(hasher.size_bytes(), data.len() as u64);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "b3:",
            "sha256:00",
            "b3:AF1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
            "b3:af13",
        ] {
            assert!(bad.parse::<Cid>().is_err(), "{bad}");
        }
    }
}
