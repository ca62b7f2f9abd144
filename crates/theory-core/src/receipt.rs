//! The determinism receipt, `determinism.json`: what ran, on what, with what, producing what.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use theory_protocol::{Cid, ExecutionId, Mode};

use crate::prompts::PromptUse;
use crate::{AdapterKind, Runtime};

/// Every field of DESIGN §5. Stored as compact JSON with sorted keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The run.
    pub execution_id: ExecutionId,
    /// The processor.
    pub processor_ref: String,
    /// The identity of what ran: a pinned image digest, a local image id, or `b3:` of the host binary.
    pub image_digest: String,
    /// The environment fingerprint.
    pub env_fingerprint: String,
    /// `mock` or `real`.
    pub mode: Mode,
    /// `b3:` of the canonical normalized inputs.
    pub inputs_hash: String,
    /// How `inputs_hash` was computed (`jcs-blake3-v1`).
    pub hash_schema: String,
    /// The memo key.
    pub memo_key: String,
    /// The seed derived from the memo key.
    pub seed: u64,
    /// Output CIDs in output path order.
    pub output_cids: Vec<Cid>,
    /// The world path of `outputs.json`.
    pub outputs_index: String,
    /// The processor's description of itself.
    pub processor_info: String,
    /// What the run consumed.
    pub usage: Map<String, Value>,
    /// What the run cost, in micro-USD, when known.
    pub cost_usd_micro: Option<u64>,
    /// When the run finished, RFC 3339 UTC.
    pub timestamp_utc: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Where it ran: `local` or `modal`.
    pub adapter: AdapterKind,
    /// How it ran: `process`, `docker` or `modal`.
    pub runtime: Runtime,
    /// What ran: `pin` (a registry pin), `local-build` (the newest local image, unpinned) or
    /// `host-binary` (the `process` runtime).
    pub image_source: String,
    /// How bytes moved: `direct` (presigned URLs, straight to the store) or `stream` (through
    /// the orchestrator's connection).
    pub transfer: String,
    /// The position in the ledger's event log of the event that admitted the run (its
    /// `execution.started`), when a ledger recorded it: `theory ledger verify` finds a ledger
    /// cut short, or replaced, by receipts that point past its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_position: Option<u64>,
    /// The registry prompts the inputs used (`$prompt`), by id and template hash, sorted by id;
    /// absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<PromptUse>,
    /// Whether the run's attestation is signed, and by which key: `{"signed": false}` when the
    /// project has no signing key (said, never silent). Absent from receipts made before
    /// attestations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<AttestationNote>,
}

/// A receipt's word on its run's attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationNote {
    /// Whether `attestation.json` was signed and stored.
    pub signed: bool,
    /// The signing key's id, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl Receipt {
    /// Returns the stored form: compact JSON, keys sorted.
    pub fn to_canonical_json(&self) -> String {
        serde_json::to_value(self).map(|value| value.to_string()).unwrap_or_default()
    }
}
