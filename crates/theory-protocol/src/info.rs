//! The HTTP side of the contract: `/healthz` and `/info`.

use serde::{Deserialize, Serialize};

/// The exact body of `GET /healthz`.
pub const HEALTHZ_BODY: &str = r#"{"ok":true}"#;

/// **(ext)** The body of `GET /info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Always [`crate::SUBPROTOCOL`].
    pub protocol: String,
    /// The processor's ref, `ns/name@ver`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The digest of the image the processor runs in, when it was told (`sha256:…`).
    pub image_digest: Option<String>,
    /// A human-readable description of the processor build.
    pub processor_info: String,
}

/// WebSocket close codes the server uses.
pub mod close_code {
    /// The run is over; `RunResult` was sent.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The first frame was not JSON or not a `RunOpen`, or a frame broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The `RunOpen` broke policy: unknown role, empty or unsafe `execution_id`.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// **(ext)** The server cannot go on with this connection: a replay needs the bytes of an
    /// output it no longer keeps (its run was delivered to its client), or a file changed
    /// under it.
    pub const INTERNAL_ERROR: u16 = 1011;
}
