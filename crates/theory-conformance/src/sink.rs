//! A tiny HTTP server standing in for an object store: it records PUTs (hashing the bodies as
//! they stream) and serves GETs of what it holds. Like the S3 store's presigned URLs, it creates
//! objects but never replaces one: a PUT must carry `If-None-Match: *` (else 403, as S3 answers
//! a request without a signed header) and gets 412 when the object exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use bytes::Bytes;
use futures_util::StreamExt;
use theory_protocol::{Cid, CidHasher};

/// One PUT as received.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The request path without the leading `/`.
    pub path: String,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `Content-Length`, if sent.
    pub content_length: Option<u64>,
    /// Bytes received.
    pub size_bytes: u64,
    /// CID of the bytes received.
    pub cid: Cid,
    /// The bytes, when at most 1 MiB.
    pub bytes: Option<Bytes>,
    /// `If-None-Match`, if sent.
    pub if_none_match: Option<String>,
    /// The status the sink answered.
    pub status: u16,
}

#[derive(Default)]
struct SinkState {
    uploads: Vec<Upload>,
    objects: HashMap<String, Bytes>,
    /// Every path created, whatever its size.
    created: std::collections::HashSet<String>,
    fail_with: Option<StatusCode>,
    /// The peer address of every connection a PUT came on.
    peers: std::collections::HashSet<std::net::SocketAddr>,
    /// PUTs being received now, and the most at once so far.
    in_flight: usize,
    max_in_flight: usize,
}

/// The running sink; stopped when dropped.
pub struct UploadSink {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Arc<Mutex<SinkState>>,
    server: tokio::task::JoinHandle<()>,
}

impl UploadSink {
    /// Starts a sink that accepts every PUT.
    pub async fn start() -> std::io::Result<UploadSink> {
        UploadSink::start_with(None, None).await
    }

    /// Starts a sink that accepts every PUT, listening on and reached at `host` (an IPv4 address
    /// of this machine; for a processor in a container, its bridge's gateway), else 127.0.0.1.
    pub async fn start_reachable_at(host: Option<&str>) -> std::io::Result<UploadSink> {
        UploadSink::start_with(None, host).await
    }

    /// Starts a sink that answers every PUT with `status`, reached at `host` as
    /// [`UploadSink::start_reachable_at`] is.
    pub async fn failing(status: u16, host: Option<&str>) -> std::io::Result<UploadSink> {
        UploadSink::start_with(StatusCode::from_u16(status).ok(), host).await
    }

    async fn start_with(
        fail_with: Option<StatusCode>,
        host: Option<&str>,
    ) -> std::io::Result<UploadSink> {
        let state = Arc::new(Mutex::new(SinkState { fail_with, ..SinkState::default() }));
        let router =
            Router::new().route("/{*path}", put(receive).get(serve)).with_state(Arc::clone(&state));
        // On that address only (a host address, such as a bridge's gateway), never on every
        // interface.
        let host = host.unwrap_or("127.0.0.1");
        let listener = tokio::net::TcpListener::bind((host, 0)).await?;
        let port = listener.local_addr()?.port();
        let base_url = format!("http://{host}:{port}");
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        Ok(UploadSink { base_url, state, server })
    }

    /// Returns the URL of `path` on this sink.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url)
    }

    /// Stores an object to serve on GET.
    pub fn preload(&self, path: &str, bytes: Bytes) {
        self.lock().objects.insert(path.to_owned(), bytes);
    }

    /// Returns every PUT so far, in arrival order.
    pub fn uploads(&self) -> Vec<Upload> {
        self.lock().uploads.clone()
    }

    /// How many connections PUTs came on so far (each has its own peer address).
    pub fn connections_seen(&self) -> usize {
        self.lock().peers.len()
    }

    /// The most PUTs that were being received at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for UploadSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Counts a PUT in flight while it lives.
struct InFlight(Arc<Mutex<SinkState>>);

impl InFlight {
    fn start(state: &Arc<Mutex<SinkState>>, peer: std::net::SocketAddr) -> InFlight {
        if let Ok(mut state) = state.lock() {
            state.peers.insert(peer);
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
        }
        InFlight(Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.lock() {
            state.in_flight -= 1;
        }
    }
}

async fn receive(
    State(state): State<Arc<Mutex<SinkState>>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let _in_flight = InFlight::start(&state, peer);
    let fail_with = state.lock().map(|state| state.fail_with).unwrap_or_default();
    let mut hasher = CidHasher::new();
    let mut kept = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        hasher.update(&chunk);
        if hasher.size_bytes() <= 1024 * 1024 {
            kept.extend_from_slice(&chunk);
        }
    }
    let header =
        |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let bytes = (hasher.size_bytes() <= 1024 * 1024).then(|| Bytes::from(kept));
    let mut upload = Upload {
        content_type: header("content-type"),
        content_length: header("content-length").and_then(|value| value.parse().ok()),
        size_bytes: hasher.size_bytes(),
        cid: hasher.finalize(),
        bytes: bytes.clone(),
        path: path.clone(),
        if_none_match: header("if-none-match"),
        status: 200,
    };
    let Ok(mut state) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let status = if let Some(status) = fail_with {
        status
    } else if upload.if_none_match.as_deref() != Some("*") {
        StatusCode::FORBIDDEN
    } else if state.created.contains(&path) {
        StatusCode::PRECONDITION_FAILED
    } else {
        state.created.insert(path.clone());
        if let Some(bytes) = bytes {
            state.objects.insert(path, bytes);
        }
        StatusCode::OK
    };
    upload.status = status.as_u16();
    state.uploads.push(upload);
    status.into_response()
}

async fn serve(State(state): State<Arc<Mutex<SinkState>>>, Path(path): Path<String>) -> Response {
    let object = state.lock().ok().and_then(|state| state.objects.get(&path).cloned());
    match object {
        Some(bytes) => bytes.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
