//! Text frames: `{"kind": K, "content": {...}, "t": <epoch ms, optional>}`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{Cid, Envelope, ExecutionId, RunOpen, RunPayload};

/// One text frame of `theory.run.v1`, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Client → server, always first: opens or attaches to a run.
    RunOpen(RunOpen),
    /// Server → client: the `RunOpen` was accepted.
    Ack(Ack),
    /// Server → client: the run changed phase.
    Event(Event),
    /// Server → client: a piece of streamed text, in order.
    Token(Token),
    /// Server → client: a log line from the processor.
    Log(Log),
    /// **(ext)** Server → client: an output follows as binary frames of exactly `size_bytes`.
    Output(OutputHeader),
    /// **(ext)** Client → server: an input file follows as binary frames of exactly `size_bytes`.
    File(FileHeader),
    /// Controller → server: a control operation (kind `control` on the wire).
    Control(Control),
    /// Server → client, last and exactly once: the run's envelope.
    RunResult(Envelope),
}

/// `content` of `Ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The run the connection is now attached to.
    pub execution_id: ExecutionId,
}

/// `content` of `Event`: a phase name plus any detail fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The phase the run entered.
    pub phase: Phase,
    /// Extra fields, such as `op` for `control_noop`.
    #[serde(flatten)]
    pub detail: BTreeMap<String, Value>,
}

/// The phase names of `Event` frames.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Every input file arrived and the handler started.
    Started,
    /// The handler finished and every output was sent or uploaded.
    Completed,
    /// The run failed; `RunResult` follows with the error.
    Failed,
    /// A controller cancelled the run; `RunResult` follows with `ERR_CANCELLED`.
    Preempted,
    /// A controller sent an op the server does not know; `op` names it.
    ControlNoop,
    /// Any other phase, kept as received.
    Other(String),
}

impl Phase {
    /// Returns the wire form, such as `started`.
    pub fn as_str(&self) -> &str {
        match self {
            Phase::Started => "started",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
            Phase::Preempted => "preempted",
            Phase::ControlNoop => "control_noop",
            Phase::Other(other) => other,
        }
    }

    fn parse(value: &str) -> Phase {
        match value {
            "started" => Phase::Started,
            "completed" => Phase::Completed,
            "failed" => Phase::Failed,
            "preempted" => Phase::Preempted,
            "control_noop" => Phase::ControlNoop,
            other => Phase::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for Phase {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Phase, std::convert::Infallible> {
        Ok(Phase::parse(value))
    }
}

crate::serde_via_str!(Phase);

impl Event {
    /// Builds an event with no detail fields.
    pub fn phase(phase: Phase) -> Event {
        Event { phase, detail: BTreeMap::new() }
    }
}

/// `content` of `Token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The text, to be appended to what came before.
    pub text: String,
}

/// `content` of `Log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub msg: String,
}

/// **(ext)** `content` of `Output`: the header of an output whose bytes follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputHeader {
    /// The output's path relative to the write prefix.
    pub path: String,
    /// Its media type.
    pub mime: String,
    /// The exact number of bytes that follow in binary frames.
    pub size_bytes: u64,
    /// The CID the processor computed; the receiver checks it.
    pub cid: Cid,
}

/// **(ext)** `content` of `File`: the header of an input file whose bytes follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The file's world path, a key of `payload.files`.
    pub path: String,
    /// The CID the bytes must have.
    pub cid: Cid,
    /// The exact number of bytes that follow in binary frames.
    pub size_bytes: u64,
    /// Its media type.
    pub mime: String,
}

/// `content` of `control`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// The operation: `preempt` (alias `cancel`) stops the run; others are answered with a
    /// `control_noop` event.
    pub op: String,
}

impl Control {
    /// Returns whether this op stops the run.
    pub fn is_cancel(&self) -> bool {
        matches!(self.op.to_ascii_lowercase().as_str(), "preempt" | "cancel")
    }
}

/// Why a text frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The text is not a JSON object with `kind` and `content`.
    #[error("frame is not a JSON object with kind and content: {0}")]
    Shape(String),
    /// The kind is not one of this protocol's.
    #[error("unknown frame kind {0:?}")]
    UnknownKind(String),
    /// The content does not fit the kind.
    #[error("{kind} content is malformed: {reason}")]
    Content {
        /// The frame's kind.
        kind: &'static str,
        /// What serde said.
        reason: String,
    },
}

/// Writes a `RunOpen` frame: serde writes the frame with its inputs left out (`null`), and the
/// inputs — possibly megabytes — are written in their place by [`json_text::write_value`], which
/// copies strings that need no escapes instead of escaping them a byte at a time. The text is
/// the same as serde's for the whole frame. The first `"inputs":null` in the frame is the
/// payload's field: only the frame's kind, role and ids come before it, and a string holding
/// those bytes would have its quotes escaped.
fn write_run_open(
    content: &RunOpen,
    t: Option<u64>,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    const FIELD: &[u8] = b"\"inputs\":null";
    let Some(payload) = &content.payload else {
        return serde_json::to_writer(out, &WireOut { kind: "RunOpen", content, t })
            .map_err(std::io::Error::from);
    };
    let without_inputs = RunOpen {
        payload: Some(RunPayload { inputs: std::sync::Arc::new(Value::Null), ..payload.clone() }),
        ..content.clone()
    };
    let frame = serde_json::to_vec(&WireOut { kind: "RunOpen", content: &without_inputs, t })?;
    let Some(at) = frame.windows(FIELD.len()).position(|window| window == FIELD) else {
        return serde_json::to_writer(out, &WireOut { kind: "RunOpen", content, t })
            .map_err(std::io::Error::from);
    };
    let value_at = at + FIELD.len() - b"null".len();
    out.write_all(&frame[..value_at])?;
    crate::json_text::write_value(&payload.inputs, &mut out)?;
    out.write_all(&frame[at + FIELD.len()..])
}

#[derive(Serialize)]
struct WireOut<'a, T> {
    kind: &'static str,
    content: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<u64>,
}

#[derive(Deserialize)]
struct WireIn<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    content: &'a RawValue,
    #[serde(default)]
    t: Option<u64>,
}

impl Frame {
    /// Returns the wire `kind` of this frame.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::RunOpen(_) => "RunOpen",
            Frame::Ack(_) => "Ack",
            Frame::Event(_) => "Event",
            Frame::Token(_) => "Token",
            Frame::Log(_) => "Log",
            Frame::Output(_) => "Output",
            Frame::File(_) => "File",
            Frame::Control(_) => "control",
            Frame::RunResult(_) => "RunResult",
        }
    }

    /// Encodes the frame as compact JSON, with the timestamp `t` (epoch ms) when given.
    pub fn to_json(&self, t: Option<u64>) -> String {
        let mut text = Vec::new();
        // Writing plain data structs to a `Vec` cannot fail, and JSON is UTF-8.
        let _ = self.write_json(t, &mut text);
        String::from_utf8(text).unwrap_or_default()
    }

    /// Writes the frame as compact JSON to `out` as it is encoded (the text of a frame carrying
    /// megabytes of inputs need not be held whole); the same text as [`Frame::to_json`].
    pub fn write_json(&self, t: Option<u64>, out: impl std::io::Write) -> std::io::Result<()> {
        fn encode<T: Serialize>(
            kind: &'static str,
            content: &T,
            t: Option<u64>,
            out: impl std::io::Write,
        ) -> std::io::Result<()> {
            serde_json::to_writer(out, &WireOut { kind, content, t }).map_err(std::io::Error::from)
        }
        let kind = self.kind();
        match self {
            Frame::RunOpen(content) => write_run_open(content, t, out),
            Frame::Ack(content) => encode(kind, content, t, out),
            Frame::Event(content) => encode(kind, content, t, out),
            Frame::Token(content) => encode(kind, content, t, out),
            Frame::Log(content) => encode(kind, content, t, out),
            Frame::Output(content) => encode(kind, content, t, out),
            Frame::File(content) => encode(kind, content, t, out),
            Frame::Control(content) => encode(kind, content, t, out),
            Frame::RunResult(content) => encode(kind, content, t, out),
        }
    }

    /// Decodes a text frame, returning it with its timestamp `t` when present.
    pub fn from_json(text: &str) -> Result<(Frame, Option<u64>), FrameError> {
        fn content<'a, T: Deserialize<'a>>(
            kind: &'static str,
            raw: &'a RawValue,
        ) -> Result<T, FrameError> {
            serde_json::from_str(raw.get())
                .map_err(|error| FrameError::Content { kind, reason: error.to_string() })
        }
        let wire: WireIn<'_> =
            serde_json::from_str(text).map_err(|error| FrameError::Shape(error.to_string()))?;
        let raw = wire.content;
        let frame = match wire.kind.as_ref() {
            "RunOpen" => Frame::RunOpen(content("RunOpen", raw)?),
            "Ack" => Frame::Ack(content("Ack", raw)?),
            "Event" => Frame::Event(content("Event", raw)?),
            "Token" => Frame::Token(content("Token", raw)?),
            "Log" => Frame::Log(content("Log", raw)?),
            "Output" => Frame::Output(content("Output", raw)?),
            "File" => Frame::File(content("File", raw)?),
            "control" => Frame::Control(content("control", raw)?),
            "RunResult" => Frame::RunResult(content("RunResult", raw)?),
            other => return Err(FrameError::UnknownKind(other.to_owned())),
        };
        Ok((frame, wire.t))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::{Frame, WireOut};
    use crate::{FileSpec, Mode, Role, RunOpen, RunPayload};

    #[test]
    fn a_run_open_is_written_as_serde_writes_it() {
        let id: crate::ExecutionId = "01J0000000000000000000000X".parse().unwrap();
        let inputs = json!({"params": {"inputs": null, "text": "x".repeat(3000), "q": "a\"b\n"}});
        let open = RunOpen {
            role: Role::Client,
            execution_id: id.clone(),
            payload: Some(RunPayload {
                execution_id: Some(id),
                mode: Mode::Mock,
                inputs: inputs.into(),
                write_prefix: Some("/artifacts/\"inputs\":null/".into()),
                put_urls: Some(BTreeMap::from([(
                    "inputs".into(),
                    "https://x/\"inputs\":null".into(),
                )])),
                files: BTreeMap::from([(
                    "/artifacts/inputs/x.bin".into(),
                    FileSpec {
                        cid: crate::Cid::of(b"x"),
                        size_bytes: 1,
                        mime: "a/b".into(),
                        get_url: None,
                    },
                )]),
            }),
        };
        for t in [None, Some(7)] {
            let expected =
                serde_json::to_string(&WireOut { kind: "RunOpen", content: &open, t }).unwrap();
            assert_eq!(Frame::RunOpen(open.clone()).to_json(t), expected);
        }
        let attach = RunOpen { payload: None, ..open };
        let expected =
            serde_json::to_string(&WireOut { kind: "RunOpen", content: &attach, t: None }).unwrap();
        assert_eq!(Frame::RunOpen(attach).to_json(None), expected);
    }
}
