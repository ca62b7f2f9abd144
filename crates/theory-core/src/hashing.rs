//! What makes two runs "the same work": the inputs hash and the memo key.

use serde_json::Value;
use theory_protocol::Mode;

use crate::ProcessorRef;

/// The name of the inputs hashing scheme, recorded in receipts.
pub const HASH_SCHEMA: &str = "jcs-blake3-v1";

/// Returns `b3:` + BLAKE3 of the RFC 8785 (JCS) canonical JSON of `inputs`.
pub fn inputs_hash(inputs: &Value) -> String {
    // Canonicalized straight into the hash, through a buffer (the canonical text of megabytes
    // of inputs is never held); a `Value` holds no non-finite numbers, so this cannot fail.
    let mut hasher = blake3::Hasher::new();
    {
        let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, &mut hasher);
        let _ = crate::canonical::write_canonical(inputs, &mut buffered);
        let _ = std::io::Write::flush(&mut buffered);
    }
    format!("b3:{}", hasher.finalize().to_hex())
}

/// Returns the memo key: BLAKE3 over the processor ref, the identity of the image that runs, the
/// mode, the inputs hash and — when the spec declares `config_env` — each setting's name and
/// value (or that it is unset), each part length-prefixed so no two tuples collide.
pub fn memo_key(
    reference: &ProcessorRef,
    image_identity: &str,
    mode: Mode,
    inputs_hash: &str,
    config: &[(String, Option<String>)],
) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut part = |text: &str| {
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    };
    for text in [reference.as_str(), image_identity, mode.as_str(), inputs_hash] {
        part(text);
    }
    for (name, value) in config {
        part(name);
        match value {
            Some(value) => part(&format!("={value}")),
            None => part("unset"),
        }
    }
    format!("b3:{}", hasher.finalize().to_hex())
}

/// Returns the run's seed, derived from the memo key so the same work gets the same seed.
pub fn seed(memo_key: &str) -> u64 {
    let digest = blake3::hash(memo_key.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(bytes) >> 11
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use theory_protocol::Mode;

    use super::{inputs_hash, memo_key};

    #[test]
    fn key_order_and_spacing_do_not_matter() {
        let left: serde_json::Value = serde_json::from_str(r#"{"b": 1, "a": [1.0, "x"]}"#).unwrap();
        let right = json!({"a": [1, "x"], "b": 1});
        assert_eq!(inputs_hash(&left), inputs_hash(&right));
        assert_ne!(inputs_hash(&left), inputs_hash(&json!({"a": [1, "y"], "b": 1})));
    }

    #[test]
    fn memo_keys_separate_every_part() {
        let reference = "llm/litellm@1".parse().unwrap();
        let base = memo_key(&reference, "sha256:x", Mode::Mock, "b3:1", &[]);
        assert_ne!(base, memo_key(&reference, "sha256:x", Mode::Real, "b3:1", &[]));
        assert_ne!(base, memo_key(&reference, "sha256:y", Mode::Mock, "b3:1", &[]));
        assert_ne!(base, memo_key(&reference, "sha256:x", Mode::Mock, "b3:2", &[]));
        let setting = |value: Option<&str>| vec![("BASE".to_owned(), value.map(str::to_owned))];
        let unset = memo_key(&reference, "sha256:x", Mode::Mock, "b3:1", &setting(None));
        let here = memo_key(&reference, "sha256:x", Mode::Mock, "b3:1", &setting(Some("http://a")));
        let there =
            memo_key(&reference, "sha256:x", Mode::Mock, "b3:1", &setting(Some("http://b")));
        let empty = memo_key(&reference, "sha256:x", Mode::Mock, "b3:1", &setting(Some("")));
        assert_eq!(base, memo_key(&reference, "sha256:x", Mode::Mock, "b3:1", &[]));
        for key in [&unset, &here, &there] {
            assert_ne!(&base, key);
        }
        assert_ne!(here, there);
        assert_ne!(unset, empty);
    }
}
