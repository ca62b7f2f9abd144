//! Attestations: what a run produced and how, signed, so that anyone holding the public key and
//! the store can check a run without trusting Theory. The form is the supply-chain world's: an
//! [in-toto Statement v1](https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
//! whose subjects are the run's outputs (world path, digests by algorithm) and whose predicate is
//! the receipt, in a [DSSE](https://github.com/secure-systems-lab/dsse/blob/master/envelope.md)
//! envelope signed with Ed25519 over the pre-authentication encoding (PAE) of its payload.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use theory_protocol::OutputEntry;

use crate::receipt::Receipt;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a Theory receipt.
pub const PREDICATE_TYPE: &str = "https://theory.dev/attestation/receipt/v1";
/// The DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Why a key or an attestation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// A key that does not decode.
    #[error("not an Ed25519 key in PEM ({0})")]
    Key(String),
    /// No source of randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
    /// The envelope is not one this build writes.
    #[error("not a DSSE envelope of an in-toto statement: {0}")]
    Malformed(String),
    /// No signature by a trusted key verifies.
    #[error("no signature by a trusted key verifies ({0})")]
    Untrusted(String),
}

/// An Ed25519 public key and the id signatures name it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: ed25519_dalek::VerifyingKey,
    key_id: String,
}

impl PublicKey {
    fn new(key: ed25519_dalek::VerifyingKey) -> PublicKey {
        let hash = blake3::hash(key.as_bytes()).to_hex();
        PublicKey { key, key_id: format!("ed25519:{}", &hash[..32]) }
    }

    /// Reads a public key in PEM (`-----BEGIN PUBLIC KEY-----`, `SubjectPublicKeyInfo`).
    pub fn from_pem(pem: &str) -> Result<PublicKey, AttestationError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
            .map(PublicKey::new)
            .map_err(|error| AttestationError::Key(error.to_string()))
    }

    /// The key in PEM, as `theory keys show` prints it.
    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The id a signature by this key carries: `ed25519:` and 32 hex digits of the BLAKE3 of
    /// its 32 bytes.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// An Ed25519 signing key.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        formatter
            .debug_struct("SigningKey")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn new(key: ed25519_dalek::SigningKey) -> SigningKey {
        let public = PublicKey::new(key.verifying_key());
        SigningKey { key, public }
    }

    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<SigningKey, AttestationError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|error| AttestationError::Random(error.to_string()))?;
        let key = SigningKey::new(ed25519_dalek::SigningKey::from_bytes(&secret));
        secret.fill(0);
        Ok(key)
    }

    /// Reads a private key in PEM (`-----BEGIN PRIVATE KEY-----`, PKCS #8).
    pub fn from_pem(pem: &str) -> Result<SigningKey, AttestationError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(SigningKey::new)
            .map_err(|error| AttestationError::Key(error.to_string()))
    }

    /// The key in PEM (PKCS #8), to be kept where only its owner reads it.
    pub fn to_pem(&self) -> Result<String, AttestationError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|error| AttestationError::Key(error.to_string()))
    }

    /// Its public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs a statement: a DSSE envelope of its canonical JSON (RFC 8785).
    pub fn sign(&self, statement: &Statement) -> Envelope {
        let payload = statement.to_canonical_json().into_bytes();
        let signature = self.key.sign(&pae(PAYLOAD_TYPE, &payload));
        Envelope {
            payload: STANDARD.encode(&payload),
            payload_type: PAYLOAD_TYPE.to_owned(),
            signatures: vec![EnvelopeSignature {
                keyid: self.public.key_id.clone(),
                sig: STANDARD.encode(signature.to_bytes()),
            }],
        }
    }
}

/// One subject of a statement: an output by its world path and its digests by algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The output's world path.
    pub name: String,
    /// `{"blake3": hex}`.
    pub digest: BTreeMap<String, String>,
}

/// An in-toto Statement v1 about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The outputs.
    pub subject: Vec<Subject>,
    /// [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The receipt.
    pub predicate: Value,
}

impl Subject {
    /// The subjects naming `outputs`: each by its world path and the BLAKE3 digest of its CID.
    pub fn of(outputs: &[OutputEntry]) -> Vec<Subject> {
        outputs
            .iter()
            .map(|output| {
                let cid = output.cid.to_string();
                let hex = cid.strip_prefix("b3:").unwrap_or(&cid).to_owned();
                Subject {
                    name: output.path.clone(),
                    digest: BTreeMap::from([("blake3".into(), hex)]),
                }
            })
            .collect()
    }
}

impl Statement {
    /// The statement of a run: its outputs as subjects, its receipt as the predicate.
    pub fn of(receipt: &Receipt, outputs: &[OutputEntry]) -> Statement {
        Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: Subject::of(outputs),
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate: serde_json::to_value(receipt).unwrap_or(Value::Null),
        }
    }

    /// Its canonical JSON (RFC 8785), the bytes that are signed.
    pub fn to_canonical_json(&self) -> String {
        serde_json_canonicalizer::to_string(self).unwrap_or_default()
    }

    /// Where the statement does not name exactly `outputs`, one sentence (`None` when it does).
    pub fn subjects_differ(&self, outputs: &[OutputEntry]) -> Option<String> {
        let expected = Subject::of(outputs);
        if self.subject == expected {
            return None;
        }
        let first = self.subject.iter().zip(&expected).find(|(signed, listed)| signed != listed);
        Some(match first {
            Some((signed, listed)) => format!(
                "the signed subject {} ({}) is not the indexed output {} ({})",
                signed.name,
                digests(signed),
                listed.name,
                digests(listed)
            ),
            None => format!(
                "the attestation names {} outputs, the index {}",
                self.subject.len(),
                expected.len()
            ),
        })
    }

    /// The receipt fields whose value differs from the signed predicate's, sorted (empty when
    /// `receipt` is the predicate). Values are compared in their canonical form (RFC 8785), as
    /// they were signed: `2.0` and `2` are one number.
    pub fn predicate_differs(&self, receipt: &Value) -> Vec<String> {
        let canonical = |value: Option<&Value>| {
            value.map(|value| serde_json_canonicalizer::to_string(value).unwrap_or_default())
        };
        let (Value::Object(signed), Value::Object(stored)) = (&self.predicate, receipt) else {
            return if canonical(Some(&self.predicate)) == canonical(Some(receipt)) {
                Vec::new()
            } else {
                vec!["(whole)".into()]
            };
        };
        let mut fields: Vec<String> = signed
            .keys()
            .chain(stored.keys())
            .filter(|field| canonical(signed.get(*field)) != canonical(stored.get(*field)))
            .cloned()
            .collect();
        fields.sort();
        fields.dedup();
        fields
    }
}

fn digests(subject: &Subject) -> String {
    subject
        .digest
        .iter()
        .map(|(algorithm, hex)| format!("{algorithm}:{hex}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which public keys an attestation must verify with, and whether an unsigned run is accepted.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The trusted public keys.
    pub keys: Vec<PublicKey>,
    /// Whether a run without an attestation is a failure rather than reported as unsigned.
    pub require_signed: bool,
}

/// A DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id ([`PublicKey::key_id`]).
    pub keyid: String,
    /// The Ed25519 signature of the PAE, base64.
    pub sig: String,
}

/// A DSSE envelope, stored as `attestation.json` beside the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The statement's canonical JSON, base64.
    pub payload: String,
    /// [`PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// At least one signature.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// The envelope as stored: compact JSON, keys sorted.
    pub fn to_canonical_json(&self) -> String {
        serde_json_canonicalizer::to_string(self).unwrap_or_default()
    }

    /// The statement, once a signature by one of `trusted` verifies over exactly the payload.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<Statement, AttestationError> {
        self.verify_by(trusted).map(|(statement, _)| statement)
    }

    /// The statement and the trusted key whose signature verified it.
    pub fn verify_by<'k>(
        &self,
        trusted: &'k [PublicKey],
    ) -> Result<(Statement, &'k PublicKey), AttestationError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(AttestationError::Malformed(format!(
                "payloadType {:?}, not {PAYLOAD_TYPE:?}",
                self.payload_type
            )));
        }
        let payload = STANDARD
            .decode(&self.payload)
            .map_err(|error| AttestationError::Malformed(format!("payload: {error}")))?;
        let signed = pae(&self.payload_type, &payload);
        let mut tried = Vec::new();
        for signature in &self.signatures {
            let Some(key) = trusted.iter().find(|key| key.key_id == signature.keyid) else {
                tried.push(format!("{} is not a trusted key", signature.keyid));
                continue;
            };
            let verified = STANDARD
                .decode(&signature.sig)
                .ok()
                .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
                .is_some_and(|sig| key.key.verify_strict(&signed, &sig).is_ok());
            if verified {
                let statement: Statement = serde_json::from_slice(&payload)
                    .map_err(|error| AttestationError::Malformed(format!("statement: {error}")))?;
                if statement.statement_type != STATEMENT_TYPE
                    || statement.predicate_type != PREDICATE_TYPE
                {
                    return Err(AttestationError::Malformed(
                        "the statement's _type or predicateType is not Theory's".into(),
                    ));
                }
                return Ok((statement, key));
            }
            tried.push(format!("the signature by {} does not verify", signature.keyid));
        }
        if tried.is_empty() {
            tried.push("it has no signature".into());
        }
        Err(AttestationError::Untrusted(tried.join("; ")))
    }
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded =
        format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Statement {
        Statement {
            statement_type: STATEMENT_TYPE.into(),
            subject: vec![Subject {
                name: "/artifacts/outputs/x/01J/echo.txt".into(),
                digest: BTreeMap::from([("blake3".into(), "ab".repeat(32))]),
            }],
            predicate_type: PREDICATE_TYPE.into(),
            predicate: serde_json::json!({"memo_key": "b3:00", "mode": "mock"}),
        }
    }

    #[test]
    fn a_changed_receipt_field_or_subject_is_named() {
        let signed = statement();
        assert!(signed.predicate_differs(&signed.predicate).is_empty());
        let mut receipt = signed.predicate.clone();
        receipt["mode"] = "real".into();
        receipt["added"] = 1.into();
        assert_eq!(signed.predicate_differs(&receipt), ["added", "mode"]);
        // A number is compared as it was signed: 2.0 is 2.
        let mut floats = statement();
        floats.predicate["usage"] = serde_json::json!({"seconds": 2.0});
        let mut whole = floats.predicate.clone();
        whole["usage"]["seconds"] = 2.into();
        assert!(floats.predicate_differs(&whole).is_empty());
        assert_eq!(signed.predicate_differs(&serde_json::json!([])), ["(whole)"]);

        let output = |cid: &str| OutputEntry {
            path: "/artifacts/outputs/x/01J/echo.txt".into(),
            cid: cid.parse().unwrap(),
            size_bytes: 1,
            mime: "text/plain".into(),
        };
        assert_eq!(signed.subjects_differ(&[output(&format!("b3:{}", "ab".repeat(32)))]), None);
        let changed = signed.subjects_differ(&[output(&format!("b3:{}", "cd".repeat(32)))]);
        assert!(changed.unwrap().contains("is not the indexed output"));
        assert!(signed.subjects_differ(&[]).unwrap().contains("names 1 outputs, the index 0"));
    }

    #[test]
    fn pae_is_dsse_s_encoding() {
        // The DSSE specification's own example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_signed_statement_verifies_with_its_key_and_not_another() {
        let key = SigningKey::generate().unwrap();
        let envelope = key.sign(&statement());
        assert_eq!(envelope.verify(&[key.public().clone()]).unwrap(), statement());
        let other = SigningKey::generate().unwrap();
        let refused = envelope.verify(&[other.public().clone()]).unwrap_err();
        assert!(matches!(refused, AttestationError::Untrusted(_)), "{refused}");
    }

    #[test]
    fn a_changed_payload_or_signature_is_refused() {
        let key = SigningKey::generate().unwrap();
        let trusted = [key.public().clone()];
        let envelope = key.sign(&statement());
        let mut changed = statement();
        changed.predicate["mode"] = "real".into();
        let mut forged = envelope.clone();
        forged.payload = STANDARD.encode(changed.to_canonical_json());
        assert!(forged.verify(&trusted).is_err(), "a payload changed under its signature");
        let mut forged = envelope.clone();
        let mut sig = STANDARD.decode(&forged.signatures[0].sig).unwrap();
        sig[0] ^= 1;
        forged.signatures[0].sig = STANDARD.encode(sig);
        assert!(forged.verify(&trusted).is_err(), "a changed signature");
        let mut forged = envelope;
        forged.payload_type = "application/json".into();
        assert!(forged.verify(&trusted).is_err(), "another payload type");
    }

    #[test]
    fn keys_go_through_pem_and_keep_their_id() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem().unwrap()).unwrap();
        assert_eq!(again.public(), key.public());
        let public = PublicKey::from_pem(&key.public().to_pem()).unwrap();
        assert_eq!(public.key_id(), key.public().key_id());
        assert!(key.public().to_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(format!("{key:?}").contains(key.public().key_id()), "its Debug names the id only");
        assert!(PublicKey::from_pem("not a key").is_err());
    }
}
