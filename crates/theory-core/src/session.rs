//! The orchestrator's side of `theory.run.v1`: one client session over any endpoint (a local
//! process, a container, Modal), so adapters cannot disagree about semantics. Output bytes are
//! hashed while they stream into the store, and committed only when they match the CID the
//! processor announced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use theory_protocol::{
    Cid, CidHasher, Envelope, ErrorCode, ExecutionId, FileHeader, FileSpec, Frame, Mode,
    OutputHeader, Role, RunOpen, RunPayload, SUBPROTOCOL, validate_relpath,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{ArtifactStore, Failure, ObjectWriter, WorldPath, WritePrefix};

mod send;

/// What a session runs.
#[derive(Clone, Copy)]
pub struct SessionRequest<'a> {
    /// The processor's base URL, `http://host:port` or `https://…`.
    pub endpoint: &'a str,
    /// The run.
    pub execution_id: &'a ExecutionId,
    /// `mock` or `real`.
    pub mode: Mode,
    /// Normalized inputs (shared with the `RunOpen` frame, not copied into it).
    pub inputs: &'a Arc<Value>,
    /// Where outputs go.
    pub write_prefix: &'a WritePrefix,
    /// Input files by world path; those without a `get_url` are sent from the store as `File`
    /// frames right after `RunOpen`.
    pub files: &'a BTreeMap<String, FileSpec>,
    /// Presigned URLs for direct uploads (`outputs/<rel>` → URL); `None` streams outputs back.
    pub put_urls: Option<&'a BTreeMap<String, String>>,
    /// Headers sent with the WebSocket upgrade (a Modal proxy auth token, say).
    pub headers: &'a [(String, String)],
    /// TLS for an `https` endpoint (see `crate::tls`).
    pub tls: Option<&'a std::sync::Arc<rustls::ClientConfig>>,
    /// The ledger, to name the owner of a path an output collides with.
    pub ledger: Option<&'a dyn crate::ledger::RunLedger>,
}

/// Sees every text frame as it arrives (for `--stream`).
pub trait FrameObserver: Send + Sync {
    /// Called once per text frame, in order.
    fn frame(&self, frame: &Frame);
}

/// One output, stored and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutput {
    /// Where it is.
    pub path: WorldPath,
    /// Its CID, computed here while it streamed.
    pub cid: Cid,
    /// Its size.
    pub size_bytes: u64,
    /// Its media type.
    pub mime: String,
}

/// What a finished session gives back.
#[derive(Debug, Clone)]
pub struct SessionResult {
    /// Outputs in the order they arrived.
    pub outputs: Vec<StoredOutput>,
    /// The processor's own envelope (its success; errors become a [`Failure`]).
    pub envelope: Envelope,
}

fn run_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}/run"),
        Some((_, rest)) => format!("ws://{rest}/run"),
        None => format!("ws://{base}/run"),
    }
}

fn connection(message: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::Connection, message)
}

/// An output being received.
struct Receiving {
    header: OutputHeader,
    path: WorldPath,
    writer: Box<dyn ObjectWriter>,
    hasher: CidHasher,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/run` with the subprotocol, sends the client's `RunOpen`, then the input files that
/// have no URL.
async fn open(request: &SessionRequest<'_>, store: &dyn ArtifactStore) -> Result<Socket, Failure> {
    let mut http_request = run_url(request.endpoint).into_client_request().map_err(|error| {
        connection(format!("bad processor endpoint {}: {error}", request.endpoint))
    })?;
    http_request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", http::HeaderValue::from_static(SUBPROTOCOL));
    for (name, value) in request.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|error| connection(format!("bad header name {name:?}: {error}")))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| connection(format!("the value of header {name} is not valid")))?;
        http_request.headers_mut().insert(name, value);
    }
    let connector = request
        .tls
        .map(|config| tokio_tungstenite::Connector::Rustls(std::sync::Arc::clone(config)));
    // Boxed: the TLS handshake's future is large and would bloat every caller's.
    let (mut socket, _) = Box::pin(tokio_tungstenite::connect_async_tls_with_config(
        http_request,
        None,
        true,
        connector,
    ))
    .await
    .map_err(|error| {
        connection(format!(
            "cannot open a session with the processor at {}: {error}",
            request.endpoint
        ))
    })?;
    let open = Frame::RunOpen(RunOpen {
        role: Role::Client,
        execution_id: request.execution_id.clone(),
        payload: Some(RunPayload {
            execution_id: Some(request.execution_id.clone()),
            mode: request.mode,
            inputs: Arc::clone(request.inputs),
            write_prefix: Some(request.write_prefix.to_string()),
            put_urls: request.put_urls.cloned(),
            files: request.files.clone(),
        }),
    });
    send::send_frame(&mut socket, open)
        .await
        .map_err(|error| connection(format!("cannot send RunOpen: {error}")))?;
    for (path, spec) in request.files.iter().filter(|(_, spec)| spec.get_url.is_none()) {
        send_file(&mut socket, store, path, spec).await?;
    }
    Ok(socket)
}

/// Sends one input file from the store: a `File` header, then its bytes as binary frames.
async fn send_file(
    socket: &mut Socket,
    store: &dyn ArtifactStore,
    path: &str,
    spec: &FileSpec,
) -> Result<(), Failure> {
    let missing =
        || Failure::new(ErrorCode::Attachment, format!("input file {path} is not in the store"));
    let world_path: WorldPath = path.parse().map_err(|_| missing())?;
    let mut bytes = store.open(&world_path).await?.ok_or_else(missing)?;
    let header = Frame::File(FileHeader {
        path: path.to_owned(),
        cid: spec.cid,
        size_bytes: spec.size_bytes,
        mime: spec.mime.clone(),
    });
    let broken = |error: tokio_tungstenite::tungstenite::Error| {
        connection(format!("cannot send input file {path}: {error}"))
    };
    socket.send(Message::Text(header.to_json(None).into())).await.map_err(broken)?;
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|source| crate::StoreError::Io {
            operation: "read",
            path: path.to_owned(),
            source,
        })?;
        if !chunk.is_empty() {
            socket.send(Message::Binary(chunk)).await.map_err(broken)?;
        }
    }
    Ok(())
}

/// The receiving side of one session.
struct Receiver<'a> {
    store: &'a dyn ArtifactStore,
    owners: crate::collision::Owners<'a>,
    prefix: &'a WritePrefix,
    observer: Option<&'a dyn FrameObserver>,
    committed: &'a Mutex<Vec<WorldPath>>,
    outputs: Vec<StoredOutput>,
    receiving: Option<Receiving>,
}

impl Receiver<'_> {
    /// Handles one message; returns the processor's envelope once `RunResult` arrives.
    async fn handle(&mut self, message: Message) -> Result<Option<Envelope>, Failure> {
        match message {
            Message::Text(text) => {
                if self.receiving.is_some() {
                    return Err(protocol("a text frame arrived inside an output's bytes"));
                }
                let (frame, _) = Frame::from_json(text.as_str())
                    .map_err(|error| protocol(format!("undecodable frame: {error}")))?;
                if let Some(observer) = self.observer {
                    observer.frame(&frame);
                    // Whoever the frame woke (a subscriber waiting for tokens) runs before this
                    // task goes on to write outputs: a task woken here would otherwise wait for
                    // the file system calls of the next commit.
                    tokio::task::yield_now().await;
                }
                match frame {
                    Frame::Output(header) => {
                        let started = start_output(
                            self.store,
                            self.owners,
                            self.prefix,
                            header,
                            &self.outputs,
                        )
                        .await?;
                        if started.header.size_bytes == 0 {
                            self.finish(started).await?;
                        } else {
                            self.receiving = Some(started);
                        }
                    }
                    Frame::RunResult(envelope) => return Ok(Some(envelope)),
                    _ => {}
                }
            }
            Message::Binary(chunk) => {
                let current = self
                    .receiving
                    .as_mut()
                    .ok_or_else(|| protocol("a binary frame arrived without an Output header"))?;
                if current.hasher.size_bytes() + chunk.len() as u64 > current.header.size_bytes {
                    return Err(integrity(&current.path, "more bytes than announced"));
                }
                current.hasher.update(&chunk);
                current.writer.write(chunk).await?;
                if current.hasher.size_bytes() == current.header.size_bytes
                    && let Some(done) = self.receiving.take()
                {
                    self.finish(done).await?;
                }
            }
            Message::Close(_) => {
                return Err(connection(
                    "the processor closed the connection before sending its result",
                ));
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(None)
    }

    /// Verifies a complete output and commits it, or discards it.
    async fn finish(&mut self, done: Receiving) -> Result<(), Failure> {
        let cid = done.hasher.finalize();
        if cid != done.header.cid {
            done.writer.abort().await;
            return Err(integrity(
                &done.path,
                &format!("bytes hash to {cid}, the processor announced {}", done.header.cid),
            ));
        }
        // Recorded before the commit: a commit whose outcome is unknown (the run timed out or
        // was cancelled while it ran, an error after the object was stored) may have made the
        // object visible, and a failed run removes what it may have written.
        let committed = || self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        committed().push(done.path.clone());
        match done.writer.commit().await {
            Ok(()) => {}
            // Written in the meantime by someone else: theirs stays, and is not this run's to
            // remove; this run fails.
            Err(crate::StoreError::Exists { .. }) => {
                committed().retain(|path| *path != done.path);
                return Err(crate::collision::collision(&done.path, self.owners).await);
            }
            Err(error) => return Err(error.into()),
        }
        self.outputs.push(StoredOutput {
            path: done.path,
            cid,
            size_bytes: done.header.size_bytes,
            mime: done.header.mime,
        });
        Ok(())
    }
}

/// Runs one session to its `RunResult`. Every output committed is recorded in `committed` as
/// soon as it is, so a caller that gives up (a timeout) can still remove them.
pub async fn run_session(
    request: SessionRequest<'_>,
    store: &dyn ArtifactStore,
    observer: Option<&dyn FrameObserver>,
    committed: &Mutex<Vec<WorldPath>>,
) -> Result<SessionResult, Failure> {
    let mut socket = open(&request, store).await?;
    let mut receiver = Receiver {
        store,
        owners: crate::collision::Owners { ledger: request.ledger, asking: request.execution_id },
        prefix: request.write_prefix,
        observer,
        committed,
        outputs: Vec::new(),
        receiving: None,
    };
    let outcome = loop {
        let handled = match socket.next().await {
            Some(Ok(message)) => receiver.handle(message).await,
            Some(Err(error)) => {
                Err(connection(format!("the connection to the processor broke: {error}")))
            }
            None => {
                Err(connection("the processor closed the connection before sending its result"))
            }
        };
        match handled {
            Ok(None) => {}
            Ok(Some(envelope)) => break Ok(envelope),
            Err(failure) => break Err(failure),
        }
    };
    if let Some(unfinished) = receiver.receiving.take() {
        unfinished.writer.abort().await;
    }
    let _ = socket.close(None).await;
    let envelope = outcome?;
    let outputs = match request.put_urls {
        None => receiver.outputs,
        Some(put_urls) => verify_uploads(store, &request, put_urls, &envelope).await?,
    };
    check_envelope(&envelope, &outputs)?;
    Ok(SessionResult { outputs, envelope })
}

/// After direct uploads: every output the processor lists must be one it was given a URL for,
/// none may be skipped, and each object in the store must hash to the CID the processor claims.
async fn verify_uploads(
    store: &dyn ArtifactStore,
    request: &SessionRequest<'_>,
    put_urls: &BTreeMap<String, String>,
    envelope: &Envelope,
) -> Result<Vec<StoredOutput>, Failure> {
    let Envelope::Success(success) = envelope else { return Ok(Vec::new()) };
    if let Some(skipped) =
        success.meta.skipped_outputs.as_ref().filter(|skipped| !skipped.is_empty())
    {
        return Err(Failure::new(
            ErrorCode::OutputPath,
            format!("outputs not declared in the spec were not uploaded: {}", skipped.join(", ")),
        )
        .hint("declare every output under outputs: in the spec, or run with --transfer stream"));
    }
    let mut outputs = Vec::with_capacity(success.outputs.len());
    for listed in &success.outputs {
        let planned = listed
            .path
            .strip_prefix(request.write_prefix.as_str())
            .is_some_and(|rel| put_urls.contains_key(&format!("outputs/{rel}")));
        if !planned {
            return Err(protocol(format!(
                "RunResult lists {}, which had no upload URL",
                listed.path
            )));
        }
        let path: WorldPath = listed.path.parse().map_err(|error: crate::WorldPathError| {
            Failure::new(ErrorCode::OutputPath, error.to_string())
        })?;
        let (cid, size_bytes) = store.hash(&path).await?.ok_or_else(|| {
            Failure::new(
                ErrorCode::Upload,
                format!("output {path} is not in the store after its upload"),
            )
        })?;
        if cid != listed.cid || size_bytes != listed.size_bytes {
            return Err(integrity(
                &path,
                &format!(
                    "the stored object hashes to {cid} ({size_bytes} bytes), the processor announced {} ({} bytes)",
                    listed.cid, listed.size_bytes
                ),
            ));
        }
        outputs.push(StoredOutput { path, cid, size_bytes, mime: listed.mime.clone() });
    }
    Ok(outputs)
}

fn protocol(message: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::Protocol, message)
}

fn integrity(path: &WorldPath, what: &str) -> Failure {
    Failure::new(ErrorCode::OutputIntegrity, format!("output {path}: {what}"))
}

/// Checks an announced output's path (clean, under the prefix, not sent before, not taken)
/// before a byte of it is written, then opens its writer.
async fn start_output(
    store: &dyn ArtifactStore,
    owners: crate::collision::Owners<'_>,
    prefix: &WritePrefix,
    header: OutputHeader,
    outputs: &[StoredOutput],
) -> Result<Receiving, Failure> {
    validate_relpath(&header.path)
        .map_err(|error| Failure::new(ErrorCode::OutputPath, error.to_string()))?;
    let path = WorldPath::join(prefix, &header.path).map_err(|error| {
        Failure::new(ErrorCode::OutputPath, format!("output path {:?}: {error}", header.path))
    })?;
    if outputs.iter().any(|output| output.path == path) {
        return Err(Failure::new(ErrorCode::OutputPath, format!("output {path} was sent twice")));
    }
    crate::collision::ensure_free(store, owners, std::slice::from_ref(&path)).await?;
    let writer = store.begin(&path, &header.mime).await?;
    Ok(Receiving { header, path, writer, hasher: CidHasher::new() })
}

/// Turns the processor's envelope into a failure, or checks its word against what arrived.
fn check_envelope(envelope: &Envelope, outputs: &[StoredOutput]) -> Result<(), Failure> {
    let success = match envelope {
        Envelope::Error(error) => {
            return Err(Failure::new(error.error.code.clone(), error.error.message.clone()));
        }
        Envelope::Success(success) => success,
    };
    if success.outputs.len() != outputs.len() {
        return Err(protocol(format!(
            "RunResult lists {} outputs, {} arrived",
            success.outputs.len(),
            outputs.len()
        )));
    }
    for listed in &success.outputs {
        let arrived = outputs.iter().find(|output| output.path.as_str() == listed.path);
        match arrived {
            Some(output) if output.cid == listed.cid && output.size_bytes == listed.size_bytes => {}
            Some(_) => {
                return Err(Failure::new(
                    ErrorCode::OutputIntegrity,
                    format!("RunResult disagrees with the bytes of {}", listed.path),
                ));
            }
            None => {
                return Err(protocol(format!(
                    "RunResult lists {}, which never arrived",
                    listed.path
                )));
            }
        }
    }
    Ok(())
}
