//! A processor's word is checked, never trusted: wrong bytes (streamed or uploaded directly), a
//! dropped connection, an upload that never happened, or a result
//! that lists what never arrived all fail the run and leave nothing in the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use theory_core::orchestrator::MemoCache;
use theory_core::registry::ProcessorSpec;
use theory_core::{
    Adapter, AdapterOptions, EnvSnapshot, Failure, Instance, Launch, Mode, Orchestrator, Plan,
    Redactor,
};
use theory_protocol::{Cid, Envelope, Frame, OutputHeader, SUBPROTOCOL};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::support::{MemoryStore, registry, request};

/// How the fake processor misbehaves.
#[derive(Clone, Copy)]
enum Lie {
    WrongBytes,
    HangUp,
    ListsGhost,
    /// Given upload URLs, uploads other bytes than it announces.
    UploadsOtherBytes,
    /// Given upload URLs, announces an output it never uploaded.
    NeverUploads,
}

async fn lying_server(lie: Lie, store: MemoryStore) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        #[expect(clippy::result_large_err, reason = "the callback's signature is tungstenite's")]
        let accept = |_: &Request, mut response: Response| {
            response.headers_mut().insert("Sec-WebSocket-Protocol", SUBPROTOCOL.parse().unwrap());
            Ok(response)
        };
        let mut socket = tokio_tungstenite::accept_hdr_async(stream, accept).await.unwrap();
        let Some(Ok(Message::Text(open))) = socket.next().await else { return };
        let Ok((Frame::RunOpen(open), _)) = Frame::from_json(open.as_str()) else { return };
        let id = open.execution_id.to_string();
        let payload = open.payload.unwrap();
        let planned = payload.put_urls.unwrap_or_default();
        let prefix = payload.write_prefix.unwrap_or_default();
        let send = |text: String| Message::Text(text.into());
        socket
            .send(send(json!({"kind": "Ack", "content": {"execution_id": id}}).to_string()))
            .await
            .unwrap();
        let header = OutputHeader {
            path: "x.txt".into(),
            mime: "text/plain".into(),
            size_bytes: 5,
            cid: Cid::of(b"right"),
        };
        match lie {
            Lie::WrongBytes => {
                socket.send(send(Frame::Output(header).to_json(None))).await.unwrap();
                socket.send(Message::Binary(bytes::Bytes::from_static(b"wrong"))).await.unwrap();
            }
            Lie::HangUp => {
                socket.send(send(Frame::Output(header).to_json(None))).await.unwrap();
                socket.send(Message::Binary(bytes::Bytes::from_static(b"rig"))).await.unwrap();
                return;
            }
            Lie::ListsGhost | Lie::UploadsOtherBytes | Lie::NeverUploads => {
                let (name, cid) = match lie {
                    Lie::ListsGhost => ("ghost.txt", Cid::of(b"boo")),
                    _ => ("echo.txt", Cid::of(b"right")),
                };
                if matches!(lie, Lie::UploadsOtherBytes) {
                    let url = &planned["outputs/echo.txt"];
                    store.insert(
                        url.trim_start_matches("memory://"),
                        bytes::Bytes::from_static(b"wrong"),
                    );
                }
                let result = json!({"status": "success", "execution_id": id, "index_path": format!("{prefix}outputs.json"),
                    "outputs": [{"path": format!("{prefix}{name}"), "cid": cid.to_string(), "size_bytes": 5, "mime": "text/plain"}]});
                socket
                    .send(send(json!({"kind": "RunResult", "content": result}).to_string()))
                    .await
                    .unwrap();
            }
        }
        let _ = socket.next().await;
    });
    endpoint
}

struct FixedEndpoint(String);

struct Borrowed(String);

#[async_trait]
impl Instance for Borrowed {
    fn endpoint(&self) -> &str {
        &self.0
    }

    async fn stop(self: Box<Self>) {}
}

#[async_trait]
impl Adapter for FixedEndpoint {
    fn kind(&self) -> theory_core::AdapterKind {
        theory_core::AdapterKind::Local
    }

    async fn plan(
        &self,
        _spec: &ProcessorSpec,
        _options: &AdapterOptions,
        _mode: Mode,
    ) -> Result<Plan, Failure> {
        Ok(Plan {
            runtime: theory_core::Runtime::Process,
            image_identity: "test:liar".into(),
            pinned: false,
            target: self.0.clone(),
            platform: None,
            secrets_held: false,
            reaches_host_loopback: true,
        })
    }

    async fn start(
        &self,
        _spec: &ProcessorSpec,
        _plan: &Plan,
        _launch: &Launch,
    ) -> Result<Box<dyn Instance>, Failure> {
        Ok(Box::new(Borrowed(self.0.clone())))
    }
}

#[tokio::test]
async fn lies_fail_the_run_and_leave_nothing() {
    for (lie, expected) in [
        (Lie::WrongBytes, "ERR_OUTPUT_INTEGRITY"),
        (Lie::HangUp, "ERR_CONNECTION"),
        (Lie::ListsGhost, "ERR_PROTOCOL"),
        (Lie::UploadsOtherBytes, "ERR_OUTPUT_INTEGRITY"),
        (Lie::NeverUploads, "ERR_UPLOAD"),
    ] {
        let direct = matches!(lie, Lie::UploadsOtherBytes | Lie::NeverUploads);
        let store = if direct { MemoryStore::presigning() } else { MemoryStore::default() };
        let memo = tempfile::tempdir().unwrap();
        let orchestrator = Orchestrator {
            registry: Arc::new(registry()),
            store: Arc::new(store.clone()),
            adapters: BTreeMap::from([(
                theory_core::AdapterKind::Local,
                Arc::new(FixedEndpoint(lying_server(lie, store.clone()).await)) as Arc<dyn Adapter>,
            )]),
            memo: MemoCache::new(memo.path()),
            env: EnvSnapshot::default(),
            redactor: Redactor::default(),
            ledger: None,
            warm: None,
            signer: None,
        };
        let outcome = orchestrator.run(request("theory/probe@1", Mode::Mock, json!({}))).await;
        assert_eq!(
            outcome.envelope.error_code().map(ToString::to_string).as_deref(),
            Some(expected),
            "{:?}",
            outcome.envelope
        );
        assert!(matches!(outcome.envelope, Envelope::Error(_)));
        assert!(store.paths().is_empty(), "left {:?}", store.paths());
    }
}
