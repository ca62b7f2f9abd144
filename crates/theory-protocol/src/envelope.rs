//! The envelope: the one JSON result of every invocation, success or error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Cid, ErrorCode, ExecutionId, Mode};

/// The result of a run, the `content` of `RunResult` and the document `theory run --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Envelope {
    /// Every output was produced and stored.
    Success(SuccessEnvelope),
    /// The run failed; nothing it produced may be trusted.
    Error(ErrorEnvelope),
}

/// A successful run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccessEnvelope {
    /// The run.
    pub execution_id: ExecutionId,
    /// The outputs, sorted by `path`.
    pub outputs: Vec<OutputEntry>,
    /// Where the index of the outputs lives.
    pub index_path: String,
    /// What ran and how.
    #[serde(default)]
    pub meta: Meta,
}

/// A failed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The run.
    pub execution_id: ExecutionId,
    /// What went wrong.
    pub error: ErrorBody,
    /// What ran and how, as far as it is known.
    #[serde(default)]
    pub meta: Meta,
}

/// The code and safe message of a failure. The message never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The catalogue code.
    pub code: ErrorCode,
    /// A human-readable sentence, safe to print and store.
    pub message: String,
}

/// One stored output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutputEntry {
    /// Its world path, `write_prefix + rel`.
    pub path: String,
    /// The CID of its bytes.
    pub cid: Cid,
    /// Its length in bytes.
    pub size_bytes: u64,
    /// Its media type.
    pub mime: String,
}

/// The `meta` object of an envelope. Every field is optional on the wire; unknown fields are kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Meta {
    /// The processor that ran, `ns/name@ver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_ref: Option<String>,
    /// `local` or `modal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// How the local adapter ran it: `docker` or `process`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `mock` or `real`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The digest of the image that ran, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The deterministic summary of the setup (secret names only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_fingerprint: Option<String>,
    /// Wall time of the run in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// What the run consumed, as the processor reports it (token counts, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Map<String, Value>>,
    /// Whether the result came from the memo cache without running anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// The processor's human-readable description of itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_info: Option<String>,
    /// Outputs that a `put_urls` plan left without a URL, by relative path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_outputs: Option<Vec<String>>,
    /// Anything else a peer put in `meta`, kept as received.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Envelope {
    /// Returns the run this envelope belongs to.
    pub fn execution_id(&self) -> &ExecutionId {
        match self {
            Envelope::Success(success) => &success.execution_id,
            Envelope::Error(error) => &error.execution_id,
        }
    }

    /// Returns the envelope's `meta`.
    pub fn meta(&self) -> &Meta {
        match self {
            Envelope::Success(success) => &success.meta,
            Envelope::Error(error) => &error.meta,
        }
    }

    /// Builds an error envelope with empty `meta`.
    pub fn error(
        execution_id: ExecutionId,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Envelope {
        Envelope::Error(ErrorEnvelope {
            execution_id,
            error: ErrorBody { code, message: message.into() },
            meta: Meta::default(),
        })
    }

    /// Returns the error code, when this is an error envelope.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match self {
            Envelope::Success(_) => None,
            Envelope::Error(error) => Some(&error.error.code),
        }
    }
}

/// The index document `outputs.json`: `{"outputs":[…]}`, entries sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputsIndex {
    /// The entries, sorted by `path`.
    pub outputs: Vec<OutputEntry>,
}

impl OutputsIndex {
    /// Builds an index, sorting the entries by path.
    pub fn new(mut outputs: Vec<OutputEntry>) -> OutputsIndex {
        outputs.sort();
        OutputsIndex { outputs }
    }

    /// Returns the compact JSON form with sorted keys, as it is stored.
    pub fn to_canonical_json(&self) -> String {
        // Through `Value`, whose maps are ordered, so keys come out sorted.
        serde_json::to_value(self).map(|value| value.to_string()).unwrap_or_default()
    }
}
