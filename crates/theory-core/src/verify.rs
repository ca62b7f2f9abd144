//! Checking a finished run against the store: every output its index lists still hashes to its
//! CID and size, the index says what the run's envelope said, and the receipt (both copies)
//! agrees with the index, and the run's attestation (when it has one) is signed by a trusted key
//! over exactly these outputs and this receipt. `theory verify` runs it for the runs the ledger knows; the ledger's
//! own checks (its chain, its plans, its length against the receipts) are `theory ledger
//! verify`'s.

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use theory_protocol::{ExecutionId, OutputEntry};

use crate::attestation::{Envelope, Statement, Trust};
use crate::{ArtifactStore, Receipt, WorldPath};

/// The most bytes of an index or receipt read into memory: records are small; anything larger
/// is not one.
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// What a run claims, as the ledger recorded it.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// The outputs of its success envelope, if the ledger has one.
    pub outputs: Option<Vec<OutputEntry>>,
    /// The index path of its envelope (another run's for a memo-cache hit).
    pub index_path: Option<String>,
    /// Its write prefix (where the second copy of the receipt is).
    pub write_prefix: Option<String>,
    /// What the ledger's log recorded of the signing of the records (of the run that wrote
    /// them).
    pub signed_by: SignedBy,
}

/// What the ledger's log recorded of the signing of a run's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SignedBy {
    /// Signed by this key id.
    Key(String),
    /// Not signed.
    Nobody,
    /// The run's finishing entry does not say (it finished before signers were recorded): the
    /// receipt is all there is.
    #[default]
    Unrecorded,
    /// The log has no finishing entry for the run at all: for a run recorded as a success, a
    /// log cut short or with entries deleted.
    Missing,
}

/// The run whose record folder holds `index` (`/artifacts/execution/{id}/…`): the run itself,
/// or the run a memo-cache hit reused.
pub fn record_owner(index: &WorldPath) -> Option<&str> {
    Some(index.as_str().strip_prefix("/artifacts/execution/")?.split_once('/')?.0)
}

/// What checking a run's attestation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationStatus {
    /// Signed by a trusted key over exactly the indexed outputs and the stored receipt.
    Verified,
    /// The run has no attestation, and is recorded as not signed (by the ledger, else by its
    /// receipt).
    Unsigned,
    /// The attestation is missing, untrusted, or says something else than the records (the
    /// drifts say what).
    Failed,
    /// Not looked at: the run's records did not hold far enough to compare it with them.
    Unchecked,
}

/// What checking one run found.
#[derive(Debug, Clone, Serialize)]
pub struct RunCheck {
    /// The run.
    pub execution_id: String,
    /// Outputs re-hashed.
    pub outputs_checked: usize,
    /// Their bytes.
    pub bytes_checked: u64,
    /// Where the record did not hold, one sentence each; empty when all of it did.
    pub drifts: Vec<String>,
    /// What its attestation's check found.
    pub attestation: AttestationStatus,
    /// The key that signed it, when one did.
    pub key_id: Option<String>,
    /// The receipt, when it could be read.
    #[serde(skip)]
    pub receipt: Option<Receipt>,
}

impl RunCheck {
    /// A check of `execution_id` that has found nothing yet.
    pub fn new(execution_id: impl Into<String>) -> RunCheck {
        RunCheck {
            execution_id: execution_id.into(),
            outputs_checked: 0,
            bytes_checked: 0,
            drifts: Vec::new(),
            attestation: AttestationStatus::Unchecked,
            key_id: None,
            receipt: None,
        }
    }

    /// Whether everything held.
    pub fn ok(&self) -> bool {
        self.drifts.is_empty()
    }
}

/// Reads a small object whole; `None` when missing.
async fn read_small(store: &dyn ArtifactStore, path: &WorldPath) -> Result<Option<Bytes>, String> {
    let Some(mut stream) = store.open(path).await.map_err(|error| error.to_string())? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(|error| format!("{path}: {error}"))?);
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(format!("{path} is larger than any record ({MAX_RECORD_BYTES} bytes)"));
        }
    }
    Ok(Some(Bytes::from(bytes)))
}

/// Checks one run: its index against its claims and the store, its receipts against its index,
/// its attestation against `trust` and both.
pub async fn check_run(
    store: &dyn ArtifactStore,
    execution_id: &ExecutionId,
    claims: &Claims,
    trust: &Trust,
) -> RunCheck {
    let mut check = RunCheck::new(execution_id.to_string());
    let index_text = claims
        .index_path
        .clone()
        .unwrap_or_else(|| format!("/artifacts/execution/{execution_id}/outputs.json"));
    let Ok(index_path) = index_text.parse::<WorldPath>() else {
        check.drifts.push(format!("the index path {index_text:?} is not a world path"));
        return check;
    };
    // The run whose record folder holds the index: this one, or the run a memo hit reused.
    let owner = record_owner(&index_path).map_or_else(|| execution_id.to_string(), str::to_owned);
    let indexed = match read_small(store, &index_path).await {
        Ok(Some(bytes)) => match serde_json::from_slice::<theory_protocol::OutputsIndex>(&bytes) {
            Ok(index) => {
                if bytes != index.to_canonical_json().as_bytes() {
                    check.drifts.push(format!("{index_path} is not in its canonical form"));
                }
                index.outputs
            }
            Err(error) => {
                check.drifts.push(format!("{index_path} is not an index: {error}"));
                return check;
            }
        },
        Ok(None) => {
            check.drifts.push(format!("the index {index_path} is missing"));
            return check;
        }
        Err(error) => {
            check.drifts.push(error);
            return check;
        }
    };
    if let Some(claimed) = &claims.outputs
        && *claimed != indexed
    {
        check.drifts.push(format!("{index_path} does not list what the run's envelope lists"));
    }
    for output in &indexed {
        check_output(store, output, &mut check).await;
    }
    let receipt = check_receipts(store, &owner, &index_path, &indexed, claims, &mut check).await;
    if let Some(receipt) = receipt {
        let signed_by = claims.signed_by.clone();
        check_attestation(store, &owner, (&indexed, &receipt), signed_by, trust, &mut check).await;
    }
    check
}

async fn check_output(store: &dyn ArtifactStore, output: &OutputEntry, check: &mut RunCheck) {
    let Ok(path) = output.path.parse::<WorldPath>() else {
        check.drifts.push(format!("the index lists {:?}, which is not a world path", output.path));
        return;
    };
    match store.hash(&path).await {
        Ok(Some((cid, size_bytes))) => {
            check.outputs_checked += 1;
            check.bytes_checked += size_bytes;
            if cid != output.cid || size_bytes != output.size_bytes {
                check.drifts.push(format!(
                    "{path} hashes to {cid} ({size_bytes} bytes); its record says {} ({} bytes)",
                    output.cid, output.size_bytes
                ));
            }
        }
        Ok(None) => check.drifts.push(format!("{path} is missing from the store")),
        Err(error) => check.drifts.push(format!("{path}: {error}")),
    }
}

async fn check_receipts(
    store: &dyn ArtifactStore,
    owner: &str,
    index_path: &WorldPath,
    indexed: &[OutputEntry],
    claims: &Claims,
    check: &mut RunCheck,
) -> Option<serde_json::Value> {
    let receipt_path =
        format!("/artifacts/execution/{owner}/determinism.json").parse::<WorldPath>().ok()?;
    let bytes = match read_small(store, &receipt_path).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            check.drifts.push(format!("the receipt {receipt_path} is missing"));
            return None;
        }
        Err(error) => {
            check.drifts.push(error);
            return None;
        }
    };
    let (receipt, value) = match serde_json::from_slice::<serde_json::Value>(&bytes)
        .and_then(|value| Ok((serde_json::from_value::<Receipt>(value.clone())?, value)))
    {
        Ok(parsed) => parsed,
        Err(error) => {
            check.drifts.push(format!("{receipt_path} is not a receipt: {error}"));
            return None;
        }
    };
    let cids: Vec<_> = indexed.iter().map(|output| output.cid).collect();
    if receipt.output_cids != cids {
        check.drifts.push(format!("{receipt_path} lists other output CIDs than {index_path}"));
    }
    if receipt.outputs_index != index_path.as_str() {
        check.drifts.push(format!("{receipt_path} names another index: {}", receipt.outputs_index));
    }
    if receipt.execution_id.as_str() != owner {
        check.drifts.push(format!("{receipt_path} is the receipt of {}", receipt.execution_id));
    }
    // The second copy, beside the outputs, must be the same bytes (for the run that wrote them).
    if owner == check.execution_id
        && let Some(prefix) = &claims.write_prefix
        && let Ok(copy_path) = format!("{prefix}receipt.json").parse::<WorldPath>()
    {
        match read_small(store, &copy_path).await {
            Ok(Some(copy)) if copy == bytes => {}
            Ok(Some(_)) => check.drifts.push(format!("{copy_path} differs from {receipt_path}")),
            Ok(None) => check.drifts.push(format!("the receipt copy {copy_path} is missing")),
            Err(error) => check.drifts.push(error),
        }
    }
    check.receipt = Some(receipt);
    Some(value)
}

/// The attestation of run `owner`, verified with `trusted`, and the id of the key whose
/// signature verified it: `Ok(None)` when the run has none.
pub async fn signed_statement(
    store: &dyn ArtifactStore,
    owner: &str,
    trusted: &[crate::attestation::PublicKey],
) -> Result<Option<(Statement, String)>, String> {
    let path = format!("/artifacts/execution/{owner}/attestation.json")
        .parse::<WorldPath>()
        .map_err(|error| error.to_string())?;
    let Some(bytes) = read_small(store, &path).await? else { return Ok(None) };
    let envelope: Envelope = serde_json::from_slice(&bytes)
        .map_err(|error| format!("{path} is not a DSSE envelope: {error}"))?;
    if trusted.is_empty() {
        let keys: Vec<_> = envelope.signatures.iter().map(|sig| sig.keyid.as_str()).collect();
        return Err(format!(
            "{path} is signed by {}, and no public key is trusted to check it (trust it in registry/keys/ or [trust] in theory.toml; theory verify also takes --key)",
            keys.join(", ")
        ));
    }
    envelope
        .verify_by(trusted)
        .map(|(statement, key)| Some((statement, key.key_id().to_owned())))
        .map_err(|error| format!("{path}: {error}"))
}

/// Who signed a run, as far as one witness says: `None` unsigned, `Some("")` signed by a key it
/// does not name.
type Signer = Option<String>;

fn named(key: &str) -> &str {
    if key.is_empty() { "a key" } else { key }
}

/// The signer the records must agree with: the ledger's log, which a store writer cannot
/// rewrite, else (a run finished before the log recorded signers) the receipt's note.
fn expected_signer(logged: SignedBy, said: Signer, check: &mut RunCheck) -> (Signer, &'static str) {
    let logged = match logged {
        SignedBy::Key(key) => Some(key),
        SignedBy::Nobody => None,
        SignedBy::Unrecorded => return (said, "the receipt says"),
        SignedBy::Missing => {
            check.drifts.push(
                "the ledger has no finishing entry for the run that wrote these records: it was cut short, or entries were deleted".into(),
            );
            return (said, "the receipt says");
        }
    };
    let agree = match (&said, &logged) {
        (Some(said), Some(logged)) => said.is_empty() || said == logged,
        (None, None) => true,
        _ => false,
    };
    if !agree {
        check.drifts.push(format!(
            "the receipt says the run was {}; the ledger records it {}",
            said.as_deref().map_or("not signed".into(), |key| format!("signed by {}", named(key))),
            logged.as_deref().map_or("not signed".into(), |key| format!("signed by {key}"))
        ));
    }
    (logged, "the ledger records")
}

/// The run's attestation must verify with a trusted key — the key the ledger's log (else the
/// receipt) says signed it — and sign exactly its indexed outputs and its stored receipt; a run
/// without one must be recorded as unsigned.
async fn check_attestation(
    store: &dyn ArtifactStore,
    owner: &str,
    (indexed, receipt): (&[OutputEntry], &serde_json::Value),
    logged: SignedBy,
    trust: &Trust,
    check: &mut RunCheck,
) {
    let before = check.drifts.len();
    let said = check.receipt.as_ref().and_then(|receipt| receipt.attestation.as_ref());
    let said = said.filter(|note| note.signed).map(|note| note.key_id.clone().unwrap_or_default());
    let (expected, witness) = expected_signer(logged, said, check);
    match signed_statement(store, owner, &trust.keys).await {
        Ok(Some((statement, key_id))) => {
            match &expected {
                Some(expected) if !expected.is_empty() && *expected != key_id => {
                    check.drifts.push(format!(
                        "the attestation is signed by {key_id}; {witness} {expected} signed the run"
                    ));
                }
                None => check.drifts.push(format!(
                    "{witness} the run was not signed, yet an attestation by {key_id} is stored for it"
                )),
                Some(_) => {}
            }
            check.key_id = Some(key_id);
            if let Some(drift) = statement.subjects_differ(indexed) {
                check.drifts.push(drift);
            }
            let fields = statement.predicate_differs(receipt);
            if !fields.is_empty() {
                check.drifts.push(format!(
                    "the stored receipt differs from the one signed, in: {}",
                    fields.join(", ")
                ));
            }
        }
        Ok(None) => match &expected {
            Some(key) => check.drifts.push(format!(
                "{witness} the run was signed by {}, and its attestation is missing",
                named(key)
            )),
            None if trust.require_signed => {
                check.drifts.push("the run is unsigned, and signatures are required".into());
            }
            None if check.drifts.len() == before => {
                check.attestation = AttestationStatus::Unsigned;
                return;
            }
            None => {}
        },
        Err(error) => check.drifts.push(error),
    }
    check.attestation = if check.drifts.len() == before {
        AttestationStatus::Verified
    } else {
        AttestationStatus::Failed
    };
}
