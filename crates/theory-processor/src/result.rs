//! What a runner returns: outputs, a description of itself, usage; or an error with its code.

use std::path::PathBuf;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use theory_protocol::{Cid, ErrorCode};

/// The result of one successful run, as the seeds' `ProcessorResult`.
#[derive(Debug, Clone, Default)]
pub struct ProcessorResult {
    /// The files the run produced, each at a path relative to the write prefix.
    pub outputs: Vec<OutputItem>,
    /// A human-readable description of what ran (a string, never a dict).
    pub processor_info: String,
    /// What the run consumed, such as `{"tokens_in": 3, "tokens_out": 12}`.
    pub usage: Map<String, Value>,
    /// Anything else worth recording; it lands in the envelope as `meta.extra`.
    pub extra: Map<String, Value>,
}

/// One output of a run.
#[derive(Debug, Clone)]
pub struct OutputItem {
    /// The path relative to the write prefix, such as `text/response.txt`.
    pub relpath: String,
    /// The bytes, in memory or in a file.
    pub body: OutputBody,
    /// The media type, such as `text/plain`.
    pub mime: String,
}

/// Where an output's bytes are.
#[derive(Debug, Clone)]
pub enum OutputBody {
    /// Small outputs, held in memory.
    Bytes(Bytes),
    /// Large outputs, written to a file (for example under [`crate::Context::scratch_dir`]) and
    /// streamed from there in chunks, never loaded whole; read once to hash them.
    File(PathBuf),
    /// A file written through an [`crate::OutputFile`], hashed as it was written: streamed without
    /// being read an extra time (its size is checked again before it is sent).
    HashedFile {
        /// The file.
        path: PathBuf,
        /// Its CID.
        cid: Cid,
        /// Its size.
        size_bytes: u64,
    },
}

impl OutputItem {
    /// Builds an output from bytes in memory.
    pub fn bytes(
        relpath: impl Into<String>,
        mime: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> OutputItem {
        OutputItem {
            relpath: relpath.into(),
            body: OutputBody::Bytes(bytes.into()),
            mime: mime.into(),
        }
    }

    /// Builds a `text/plain` output.
    pub fn text(relpath: impl Into<String>, text: impl Into<String>) -> OutputItem {
        OutputItem::bytes(relpath, "text/plain", text.into())
    }

    /// Builds an `application/json` output: compact JSON with sorted keys.
    pub fn json(
        relpath: impl Into<String>,
        value: &impl Serialize,
    ) -> Result<OutputItem, ProcessorError> {
        let value = serde_json::to_value(value).map_err(|error| {
            ProcessorError::runtime(format!("cannot encode JSON output: {error}"))
        })?;
        Ok(OutputItem::bytes(relpath, "application/json", value.to_string()))
    }

    /// Builds an output streamed from a file.
    pub fn file(
        relpath: impl Into<String>,
        mime: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> OutputItem {
        OutputItem {
            relpath: relpath.into(),
            body: OutputBody::File(path.into()),
            mime: mime.into(),
        }
    }
}

/// A run failure with its wire code and a message safe to show (never a secret value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProcessorError {
    /// The catalogue code.
    pub code: ErrorCode,
    /// A sentence that says what went wrong.
    pub message: String,
}

impl ProcessorError {
    /// Builds an error with any code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ProcessorError {
        ProcessorError { code, message: message.into() }
    }

    /// The handler failed: `ERR_RUNTIME`.
    pub fn runtime(message: impl Into<String>) -> ProcessorError {
        ProcessorError::new(ErrorCode::Runtime, message)
    }

    /// The provider refused or failed: `ERR_PROVIDER`.
    pub fn provider(message: impl Into<String>) -> ProcessorError {
        ProcessorError::new(ErrorCode::Provider, message)
    }

    /// The inputs do not fit the processor: `ERR_INPUT_SCHEMA`.
    pub fn invalid_inputs(message: impl Into<String>) -> ProcessorError {
        ProcessorError::new(ErrorCode::InputSchema, message)
    }

    /// A secret's environment variable is not set: `ERR_MISSING_SECRET`, naming the variable.
    pub fn missing_secret(name: &str) -> ProcessorError {
        ProcessorError::new(
            ErrorCode::MissingSecret,
            format!("required secret {name} is not set in the processor's environment"),
        )
    }

    /// The run was cancelled: `ERR_CANCELLED`.
    pub fn cancelled() -> ProcessorError {
        ProcessorError::new(ErrorCode::Cancelled, "the run was cancelled")
    }
}

impl From<std::io::Error> for ProcessorError {
    fn from(error: std::io::Error) -> ProcessorError {
        ProcessorError::runtime(format!("I/O error: {error}"))
    }
}
