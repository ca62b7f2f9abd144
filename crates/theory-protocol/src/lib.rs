//! `theory.run.v1`: the wire contract between the Theory orchestrator and processors.
//!
//! This crate's documentation **is** the specification. It holds serde types only, shared by the
//! processor SDK (`theory-processor`) and the orchestrator, so the two ends cannot drift.
//!
//! # Transport
//!
//! A processor is an HTTP server on `PORT` (default 8000):
//!
//! - `GET /healthz` → `200`, `Content-Type: application/json`, body exactly [`HEALTHZ_BODY`]
//!   (`{"ok":true}`). No auth, no side effects, well under 250 ms even while runs are in flight.
//!   Any other method → `405`.
//! - `GET /info` **(ext)** → [`Info`]:
//!   `{"protocol":"theory.run.v1","ref":"llm/litellm@1","image_digest":"sha256:…"|null,"processor_info":"…"}`.
//! - `WS /run` → the client must offer the subprotocol [`SUBPROTOCOL`]; otherwise the handshake is
//!   refused with an HTTP 4xx and no upgrade. The server accepts with that subprotocol.
//!
//! # Frames
//!
//! Text frames are JSON objects `{"kind": K, "content": {...}, "t": <epoch ms, optional>}`
//! ([`Frame::to_json`], [`Frame::from_json`]). Binary frames carry the bytes of an output or an
//! input file right after its header frame. A text frame may come as one WebSocket message in
//! several fragments (RFC 6455 §5.4): the orchestrator sends a `RunOpen` whose inputs are over
//! 1 MiB that way, and a server reassembles it as any WebSocket server does.
//!
//! ## Client → server
//!
//! 1. [`RunOpen`], always first:
//!    `{"kind":"RunOpen","content":{"role":"client","execution_id":"E1","payload":{…}}}` with
//!    [`RunPayload`] `{execution_id, mode, inputs, write_prefix, put_urls, files}`.
//!    - Not JSON, or `kind` ≠ `RunOpen` → close [`close_code::PROTOCOL_ERROR`] (1002).
//!    - `role` not `client|controller|observer` (any case), or an empty (or path-unsafe)
//!      `execution_id` → close [`close_code::POLICY_VIOLATION`] (1008).
//!      [`RunOpen::parse_first_frame`] applies both rules.
//!    - The server answers [`Ack`] `{"execution_id":"E1"}`.
//!    - A `client` on a run that has not started starts it. Another connection with the same
//!      `execution_id` attaches to the same run; **(ext)** it first receives every frame already
//!      emitted (replay), so a reconnecting client misses nothing. Once the run's client has
//!      its whole log, a processor may stop keeping the bytes of large outputs: a replay that
//!      needs them ends after that output's header with close
//!      [`close_code::INTERNAL_ERROR`] (1011) and a reason, never with short bytes.
//!    - `{execution_id}` and `{{execution_id}}` in `write_prefix` are expanded and a missing
//!      trailing `/` is added ([`expand_write_prefix`]).
//! 2. **(ext)** [`FileHeader`]: for each `payload.files` entry without `get_url`, right after
//!    `RunOpen`, a `File` frame followed by binary frames holding exactly `size_bytes` bytes. The
//!    handler starts once every file arrived and verified; a CID or size mismatch fails the run
//!    with [`ErrorCode::InputIntegrity`].
//! 3. [`Control`] from a `controller`: `{"op":"preempt"}` (alias `cancel`) cancels the run — the
//!    handler is asked to stop, then stopped hard after a grace period; the result is an error
//!    envelope [`ErrorCode::Cancelled`]. An unknown op is answered with
//!    `Event {"phase":"control_noop","op":…}` (the op cut to 64 characters) to its sender alone,
//!    and never kept in the run's log, so a flood of ops costs the processor nothing lasting.
//!
//! ## Server → client
//!
//! - [`Event`] `{"phase":"started"|"completed"|"failed"|"preempted"|"control_noop"}` ([`Phase`]).
//! - [`Token`] `{"text":"…"}`, streamed text in order.
//! - [`Log`] `{"level":"info","msg":"…"}`.
//! - **(ext)** [`OutputHeader`] `{"path":"<rel>","mime":…,"size_bytes":N,"cid":"b3:…"}` then binary
//!   frames holding exactly N bytes, for each output, when the payload has no `put_urls`. The
//!   receiver hashes while it stores and fails the run with [`ErrorCode::OutputIntegrity`] if the
//!   CID differs.
//! - With `put_urls` (the client's plan) no binary frame is sent: each output that has a URL is
//!   PUT to `put_urls["outputs/<rel>"]` with the header `If-None-Match: *` (a presigned URL signs
//!   it, so the store creates the object but never replaces one; a 412 on a retry means an
//!   earlier attempt stored it), then the index (`{"outputs":[…]}`, sorted by path, compact
//!   JSON, [`OutputsIndex`]) to `put_urls["outputs.json"]` last. `RunResult` lists only the uploaded
//!   outputs and names the others in `meta.skipped_outputs`. A failed PUT (after retries) →
//!   [`ErrorCode::Upload`].
//! - Last, exactly once: `RunResult` with an [`Envelope`]. Success carries `outputs` (each `path` =
//!   `write_prefix + rel`, sorted), `index_path` (`write_prefix + "outputs.json"`) and [`Meta`];
//!   error carries `{code, message}` ([`ErrorBody`]). Any failure in the handler, a panic included,
//!   still ends in a `RunResult` with [`ErrorCode::Runtime`]. The server then closes with 1000.
//!
//! Output relative paths must be clean ([`validate_relpath`]): no `..` or `.`, no leading `/`, no
//! empty segment; anything else fails the run with [`ErrorCode::OutputPath`].
//!
//! # Mode
//!
//! `payload.mode` ([`Mode`]) decides: `mock` makes no network call, needs no secret and gives the
//! same outputs for the same inputs; `real` uses the provider. A `real` run whose required secret
//! is absent fails with [`ErrorCode::MissingSecret`], naming the variable, never its value.
//!
//! # Inputs
//!
//! Runners see inputs in the normalized `v1` form `{"schema":"v1","params":{…},"files"?:{…}}`
//! ([`normalize_inputs`]); the short form `{"messages":[…],"model":"…"}` is accepted everywhere.
//!
//! # Example
//!
//! ```
//! use theory_protocol::{Frame, Token};
//!
//! let frame = Frame::Token(Token { text: "Hel".into() });
//! let wire = frame.to_json(Some(1_700_000_000_000));
//! assert_eq!(wire, r#"{"kind":"Token","content":{"text":"Hel"},"t":1700000000000}"#);
//! assert_eq!(Frame::from_json(&wire).unwrap(), (frame, Some(1_700_000_000_000)));
//! ```

mod cid;
mod envelope;
mod error_code;
mod execution_id;
mod frame;
mod info;
mod inputs;
pub mod json_text;
mod mode;
mod paths;
mod run_open;
mod string_serde;

#[doc(hidden)]
pub use serde as __serde;

pub use cid::{Cid, CidError, CidHasher};
pub use envelope::{
    Envelope, ErrorBody, ErrorEnvelope, Meta, OutputEntry, OutputsIndex, SuccessEnvelope,
};
pub use error_code::ErrorCode;
pub use execution_id::{ExecutionId, ExecutionIdError};
pub use frame::{
    Ack, Control, Event, FileHeader, Frame, FrameError, Log, OutputHeader, Phase, Token,
};
pub use info::{HEALTHZ_BODY, Info, close_code};
pub use inputs::{INPUTS_SCHEMA_V1, InputsError, NormalizedInputs, normalize_inputs};
pub use mode::{Mode, ModeError};
pub use paths::{
    MAX_RELPATH_BYTES, MAX_SEGMENT_BYTES, RESERVED_RELPATHS, RelpathError, expand_write_prefix,
    is_refused_path_char, validate_relpath,
};
pub use run_open::{FileSpec, HandshakeError, Role, RunOpen, RunPayload};

/// The WebSocket subprotocol a client must offer on `/run`.
pub const SUBPROTOCOL: &str = "theory.run.v1";
