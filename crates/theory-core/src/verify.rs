//! Checking a finished run against the store: every output its index lists still hashes to its
//! CID and size, the index says what the run's envelope said, and the receipt (both copies)
//! agrees with the index. `theory verify` runs it for the runs the ledger knows; the ledger's
//! own checks (its chain, its plans, its length against the receipts) are `theory ledger
//! verify`'s.

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use theory_protocol::{ExecutionId, OutputEntry};

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
    /// The receipt, when it could be read.
    #[serde(skip)]
    pub receipt: Option<Receipt>,
}

impl RunCheck {
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

/// Checks one run: its index against its claims and the store, its receipts against its index.
pub async fn check_run(
    store: &dyn ArtifactStore,
    execution_id: &ExecutionId,
    claims: &Claims,
) -> RunCheck {
    let mut check = RunCheck {
        execution_id: execution_id.to_string(),
        outputs_checked: 0,
        bytes_checked: 0,
        drifts: Vec::new(),
        receipt: None,
    };
    let index_text = claims
        .index_path
        .clone()
        .unwrap_or_else(|| format!("/artifacts/execution/{execution_id}/outputs.json"));
    let Ok(index_path) = index_text.parse::<WorldPath>() else {
        check.drifts.push(format!("the index path {index_text:?} is not a world path"));
        return check;
    };
    // The run whose record folder holds the index: this one, or the run a memo hit reused.
    let owner = index_path
        .as_str()
        .strip_prefix("/artifacts/execution/")
        .and_then(|rest| rest.split_once('/'))
        .map_or_else(|| execution_id.to_string(), |(id, _)| id.to_owned());
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
    check_receipts(store, &owner, &index_path, &indexed, claims, &mut check).await;
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
) {
    let Ok(receipt_path) =
        format!("/artifacts/execution/{owner}/determinism.json").parse::<WorldPath>()
    else {
        return;
    };
    let bytes = match read_small(store, &receipt_path).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            check.drifts.push(format!("the receipt {receipt_path} is missing"));
            return;
        }
        Err(error) => {
            check.drifts.push(error);
            return;
        }
    };
    let receipt: Receipt = match serde_json::from_slice(&bytes) {
        Ok(receipt) => receipt,
        Err(error) => {
            check.drifts.push(format!("{receipt_path} is not a receipt: {error}"));
            return;
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
}
