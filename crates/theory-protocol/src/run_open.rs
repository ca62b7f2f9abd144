//! `RunOpen`, the first frame of every connection, and the rules that refuse a bad one.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

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
    /// The processor's inputs, normalized or not (the processor normalizes them again). Shared,
    /// so a sender that keeps its inputs does not copy them to send them.
    #[serde(default = "empty_object")]
    pub inputs: Arc<Value>,
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

/// A first frame as it nearly always comes: decoded in one pass.
#[derive(Deserialize)]
struct TypedFirstFrame<'a> {
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    content: RunOpen,
}

/// The envelope of a first frame, its parts left undecoded (to say what is wrong with it).
#[derive(Default, Deserialize)]
struct FirstFrame<'a> {
    #[serde(default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

/// What the handshake checks in `RunOpen` content before decoding it.
#[derive(Default, Deserialize)]
struct FirstFrameHead<'a> {
    #[serde(default, borrow)]
    role: Option<&'a RawValue>,
    #[serde(default, borrow)]
    execution_id: Option<&'a RawValue>,
}

/// Why `RunOpen` content that does not decode is refused: a bad role or execution id is a
/// policy violation; anything else is malformed.
fn refusal_of(content: &RawValue, error: &serde_json::Error) -> HandshakeError {
    let head: FirstFrameHead<'_> = serde_json::from_str(content.get()).unwrap_or_default();
    let role = head.role.and_then(borrowed_str).unwrap_or_default();
    if let Err(reason) = role.parse::<Role>() {
        return HandshakeError::Policy(reason);
    }
    let execution_id = head.execution_id.and_then(borrowed_str).unwrap_or_default();
    if execution_id.is_empty() {
        return HandshakeError::Policy("execution_id is empty".into());
    }
    if let Err(reason) = execution_id.parse::<ExecutionId>() {
        return HandshakeError::Policy(reason.to_string());
    }
    HandshakeError::Malformed(format!("RunOpen content: {error}"))
}

/// The string a raw JSON value holds, if it is one.
fn borrowed_str(raw: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    serde_json::from_str(raw.get()).ok()
}

fn empty_object() -> Arc<Value> {
    Arc::new(Value::Object(serde_json::Map::new()))
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
        // Decoded in one pass, straight into the frame: the payload's inputs may be megabytes,
        // each pass over them costs, and they are never held twice. The finer checks below, on
        // borrowed slices of the text, run only to say what is wrong with a frame that does not.
        if let Ok(typed) = serde_json::from_str::<TypedFirstFrame<'_>>(text)
            && typed.kind == "RunOpen"
        {
            return typed.content.checked();
        }
        let Ok(wire) = serde_json::from_str::<FirstFrame<'_>>(text) else {
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => malformed("first frame must be a RunOpen"),
                Err(_) => malformed("first frame is not JSON"),
            });
        };
        if wire.kind.and_then(borrowed_str).as_deref() != Some("RunOpen") {
            return Err(malformed("first frame must be a RunOpen"));
        }
        let Some(content) = wire.content.filter(|content| content.get().starts_with('{')) else {
            return Err(malformed("RunOpen content must be an object"));
        };
        match serde_json::from_str::<RunOpen>(content.get()) {
            Ok(open) => open.checked(),
            Err(error) => Err(refusal_of(content, &error)),
        }
    }

    /// The rule decoding alone does not apply: a payload's `execution_id` is the frame's.
    fn checked(self) -> Result<RunOpen, HandshakeError> {
        if let Some(inner) = self.payload.as_ref().and_then(|payload| payload.execution_id.as_ref())
            && *inner != self.execution_id
        {
            return Err(HandshakeError::Policy(
                "payload.execution_id differs from execution_id".into(),
            ));
        }
        Ok(self)
    }
}
