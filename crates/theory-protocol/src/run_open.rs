//! `RunOpen`, the first frame of every connection, and the rules that refuse a bad one.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Cid, ExecutionId, Mode, close_code};

/// What a connection may do on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Starts the run (when it has not started) and receives its frames.
    Client,
    /// Receives the run's frames and may send `control` frames.
    Controller,
    /// Only receives the run's frames.
    Observer,
}

impl Role {
    /// Returns the wire form, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Controller => "controller",
            Role::Observer => "observer",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Role, String> {
        match value.to_ascii_lowercase().as_str() {
            "client" => Ok(Role::Client),
            "controller" => Ok(Role::Controller),
            "observer" => Ok(Role::Observer),
            _ => Err(format!("unknown role {value:?}: expected client, controller or observer")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

crate::serde_via_str!(Role);

/// `content` of a `RunOpen` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOpen {
    /// What this connection may do.
    pub role: Role,
    /// The run this connection opens or attaches to.
    pub execution_id: ExecutionId,
    /// What to run; needed by the `client` that starts the run, ignored on attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<RunPayload>,
}

/// The work a `client` asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPayload {
    /// Repeats the run's id; the original system always sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<ExecutionId>,
    /// `mock` or `real`; `mock` when absent.
    #[serde(default)]
    pub mode: Mode,
    /// The processor's inputs, normalized or not (the processor normalizes them again).
    #[serde(default = "empty_object")]
    pub inputs: Value,
    /// The world-path prefix outputs are written under; `{execution_id}` and
    /// `{{execution_id}}` are expanded and a missing trailing `/` is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_prefix: Option<String>,
    /// Presigned upload URLs: `outputs/<rel>` for each output to upload, `outputs.json` for the
    /// index. When present, outputs are uploaded and never sent as binary frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub put_urls: Option<BTreeMap<String, String>>,
    /// **(ext)** Input files by world path. Entries without `get_url` follow `RunOpen` as `File`
    /// frames on the same connection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileSpec>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// **(ext)** One input file the processor needs before its handler starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// The CID the bytes must have.
    pub cid: Cid,
    /// The exact number of bytes.
    pub size_bytes: u64,
    /// The media type.
    pub mime: String,
    /// A URL to GET the bytes from; absent when they follow as `File` frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_url: Option<String>,
}

/// Why a first frame was refused, with the WebSocket close code to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Not JSON, not a `RunOpen`, or a `RunOpen` whose content is malformed: close 1002.
    #[error("protocol error: {0}")]
    Malformed(String),
    /// A well-formed `RunOpen` that breaks policy (unknown role, empty or unsafe `execution_id`): close 1008.
    #[error("policy violation: {0}")]
    Policy(String),
}

impl HandshakeError {
    /// Returns the WebSocket close code for this refusal.
    pub fn close_code(&self) -> u16 {
        match self {
            HandshakeError::Malformed(_) => close_code::PROTOCOL_ERROR,
            HandshakeError::Policy(_) => close_code::POLICY_VIOLATION,
        }
    }
}

impl RunOpen {
    /// Parses the first text frame of a connection, deciding which close code a refusal gets.
    ///
    /// Role and `execution_id` are checked before the rest of the content, so a frame that is a
    /// `RunOpen` in shape but names a bad role is a policy violation (1008), not a protocol error.
    pub fn parse_first_frame(text: &str) -> Result<RunOpen, HandshakeError> {
        let malformed = |why: &str| HandshakeError::Malformed(why.to_owned());
        let frame: Value =
            serde_json::from_str(text).map_err(|_| malformed("first frame is not JSON"))?;
        let kind = frame.get("kind").and_then(Value::as_str);
        if kind != Some("RunOpen") {
            return Err(malformed("first frame must be a RunOpen"));
        }
        let Some(content) = frame.get("content").filter(|content| content.is_object()) else {
            return Err(malformed("RunOpen content must be an object"));
        };
        let role = content.get("role").and_then(Value::as_str).unwrap_or_default();
        role.parse::<Role>().map_err(HandshakeError::Policy)?;
        let execution_id = content.get("execution_id").and_then(Value::as_str).unwrap_or_default();
        if execution_id.is_empty() {
            return Err(HandshakeError::Policy("execution_id is empty".into()));
        }
        execution_id
            .parse::<ExecutionId>()
            .map_err(|error| HandshakeError::Policy(error.to_string()))?;
        let open = RunOpen::deserialize(content)
            .map_err(|error| HandshakeError::Malformed(format!("RunOpen content: {error}")))?;
        if let Some(inner) = open.payload.as_ref().and_then(|payload| payload.execution_id.as_ref())
            && *inner != open.execution_id
        {
            return Err(HandshakeError::Policy(
                "payload.execution_id differs from execution_id".into(),
            ));
        }
        Ok(open)
    }
}
