//! A local server that speaks Replicate's predictions API, for tests of processors that use the
//! official `replicate` client (pointed at it with `REPLICATE_BASE_URL`):
//!
//! - `POST /v1/models/{owner}/{name}/predictions` and `POST /v1/predictions` (`{"version"…}`)
//!   create a prediction; with `Prefer: wait` it is answered finished, without it `processing`
//!   and finished at the first `GET` (`theory/slow`: `starting`, `processing`, then finished);
//! - `GET /v1/predictions/{id}`, `POST /v1/predictions/{id}/cancel`;
//! - `GET /v1/models/{owner}/{name}/versions/{id}` (what `client.run` asks for `owner/name:id`);
//! - `GET /files/{id}/{name}`: the output files, streamed in chunks;
//! - `Authorization: Bearer {token}` on every API call, else 401 with a problem-details body.
//!
//! Models: `theory/images` makes `input.num_outputs` (default 1) files of `input.size_bytes`
//! (default 70,000) bytes derived from `input.prompt`; `theory/fails` ends `failed`;
//! `theory/slow` ignores `Prefer: wait`, so the client must poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One prediction as the stand-in keeps it.
#[derive(Debug, Clone)]
struct Prediction {
    model: String,
    version: String,
    input: Value,
    /// `GET`s left before it is finished.
    polls_left: u32,
    cancelled: bool,
}

#[derive(Default)]
struct StandInState {
    token: String,
    base_url: String,
    predictions: HashMap<String, Prediction>,
    /// `(method, path, Prefer header)` of every API request.
    requests: Vec<(String, String, Option<String>)>,
}

type Shared = Arc<Mutex<StandInState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, StandInState> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The running stand-in; stopped when dropped.
pub struct ReplicateStandIn {
    /// `http://127.0.0.1:<port>`: the value for `REPLICATE_BASE_URL`.
    pub base_url: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl ReplicateStandIn {
    /// Starts a stand-in that accepts `token`.
    pub async fn start(token: &str) -> std::io::Result<ReplicateStandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state: Shared = Arc::new(Mutex::new(StandInState {
            token: token.to_owned(),
            base_url: base_url.clone(),
            ..StandInState::default()
        }));
        let router = Router::new()
            .route("/v1/models/{owner}/{name}/predictions", post(create_for_model))
            .route("/v1/models/{owner}/{name}/versions/{version}", get(version))
            .route("/v1/predictions", post(create_for_version))
            .route("/v1/predictions/{id}", get(read))
            .route("/v1/predictions/{id}/cancel", post(cancel))
            .route("/files/{id}/{name}", get(file))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(ReplicateStandIn { base_url, state, server })
    }

    /// Makes the URLs the stand-in hands out (prediction and file URLs) start with `base_url`:
    /// for a TLS front relaying to it, since the client turns only `https:` outputs into files.
    pub fn serve_as(&self, base_url: &str) {
        base_url.trim_end_matches('/').clone_into(&mut lock(&self.state).base_url);
    }

    /// `(method, path, Prefer)` of every API request so far.
    pub fn requests(&self) -> Vec<(String, String, Option<String>)> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for ReplicateStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body =
        json!({"type": "about:blank", "title": title, "detail": detail, "status": status.as_u16()});
    (status, [("content-type", "application/problem+json")], body.to_string()).into_response()
}

/// Records the request and checks its token.
fn admit(
    state: &Shared,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<(), Box<Response>> {
    let mut state = lock(state);
    let prefer = headers.get("prefer").and_then(|value| value.to_str().ok()).map(str::to_owned);
    state.requests.push((method.to_owned(), path.to_owned(), prefer));
    let expected = format!("Bearer {}", state.token);
    let given = headers.get("authorization").and_then(|value| value.to_str().ok());
    if given == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "You did not pass a valid authentication token",
        )))
    }
}

async fn create_for_model(
    State(state): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/v1/models/{owner}/{name}/predictions");
    if let Err(refused) = admit(&state, &headers, "POST", &path) {
        return *refused;
    }
    create(&state, &headers, format!("{owner}/{name}"), "0".repeat(64), &body)
}

async fn create_for_version(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit(&state, &headers, "POST", "/v1/predictions") {
        return *refused;
    }
    let Some(version) = body.get("version").and_then(Value::as_str) else {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "Invalid input", "version is required");
    };
    // A version id here is `owner/name:id` or a bare id of `theory/images`.
    let (model, version) = match version.split_once(':') {
        Some((model, id)) => (model.to_owned(), id.to_owned()),
        None => ("theory/images".to_owned(), version.to_owned()),
    };
    create(&state, &headers, model, version, &body)
}

fn create(
    state: &Shared,
    headers: &HeaderMap,
    model: String,
    version: String,
    body: &Value,
) -> Response {
    if !["theory/images", "theory/fails", "theory/slow"].contains(&model.as_str()) {
        return problem(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("model {model} does not exist"),
        );
    }
    let waits = headers
        .get("prefer")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("wait"));
    // A slow model is polled twice whatever the client asked; another one answers a waiting
    // request finished, and is finished at the first poll otherwise.
    let polls_left = if model == "theory/slow" { 2 } else { u32::from(!waits) };
    let id = format!("p{:016x}", rand_u64());
    let prediction = Prediction {
        model,
        version,
        input: body.get("input").cloned().unwrap_or_else(|| json!({})),
        polls_left,
        cancelled: false,
    };
    let mut state = lock(state);
    let document = describe(&state.base_url, &id, &prediction, polls_left == 0);
    state.predictions.insert(id, prediction);
    (StatusCode::CREATED, Json(document)).into_response()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// The prediction's JSON, finished or not.
fn describe(base: &str, id: &str, prediction: &Prediction, finished: bool) -> Value {
    let (status, output, error) = if prediction.cancelled {
        ("canceled", Value::Null, Value::Null)
    } else if !finished {
        let status = if prediction.polls_left > 1 { "starting" } else { "processing" };
        (status, Value::Null, Value::Null)
    } else if prediction.model == "theory/fails" {
        (
            "failed",
            Value::Null,
            json!("the model ran out of memory (as the stand-in was told to say)"),
        )
    } else {
        let count = prediction.input.get("num_outputs").and_then(Value::as_u64).unwrap_or(1);
        let urls: Vec<String> =
            (0..count).map(|index| format!("{base}/files/{id}/out-{index}.webp")).collect();
        ("succeeded", json!(urls), Value::Null)
    };
    json!({
        "id": id,
        "model": prediction.model,
        "version": prediction.version,
        "input": prediction.input,
        "logs": "",
        "output": output,
        "error": error,
        "status": status,
        "created_at": "2026-12-01T00:00:00.000000Z",
        "started_at": if finished { json!("2026-12-01T00:00:00.100000Z") } else { Value::Null },
        "completed_at": if finished { json!("2026-12-01T00:00:01.000000Z") } else { Value::Null },
        "metrics": if finished { json!({"predict_time": 0.9}) } else { json!({}) },
        "urls": {
            "get": format!("{base}/v1/predictions/{id}"),
            "cancel": format!("{base}/v1/predictions/{id}/cancel"),
        },
    })
}

async fn read(State(state): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers, "GET", &format!("/v1/predictions/{id}")) {
        return *refused;
    }
    let mut state = lock(&state);
    let base = state.base_url.clone();
    let Some(prediction) = state.predictions.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "Not found", "no such prediction");
    };
    prediction.polls_left = prediction.polls_left.saturating_sub(1);
    let finished = prediction.polls_left == 0;
    Json(describe(&base, &id, prediction, finished)).into_response()
}

async fn cancel(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = admit(&state, &headers, "POST", &format!("/v1/predictions/{id}/cancel")) {
        return *refused;
    }
    let mut state = lock(&state);
    let base = state.base_url.clone();
    let Some(prediction) = state.predictions.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "Not found", "no such prediction");
    };
    // As Replicate does: a finished prediction stays as it ended.
    let finished = prediction.polls_left == 0;
    prediction.cancelled |= !finished;
    Json(describe(&base, &id, prediction, true)).into_response()
}

async fn version(
    State(state): State<Shared>,
    Path((owner, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/models/{owner}/{name}/versions/{version}");
    if let Err(refused) = admit(&state, &headers, "GET", &path) {
        return *refused;
    }
    Json(json!({
        "id": version,
        "created_at": "2026-12-01T00:00:00.000000Z",
        "cog_version": "0.9.0",
        "openapi_schema": {"components": {"schemas": {"Output": {"type": "array", "items": {"type": "string", "format": "uri"}}}}},
    }))
    .into_response()
}

/// The bytes of output `index` of a prediction: a WebP-like header, then the prompt repeated.
pub fn replicate_file_bytes(prompt: &str, index: u64, size: usize) -> Vec<u8> {
    let mut bytes = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
    let filler = format!("{prompt}#{index};");
    while bytes.len() < size {
        bytes.extend_from_slice(filler.as_bytes());
    }
    bytes.truncate(size);
    bytes
}

async fn file(State(state): State<Shared>, Path((id, name)): Path<(String, String)>) -> Response {
    let input = lock(&state).predictions.get(&id).map(|prediction| prediction.input.clone());
    let index = name
        .strip_prefix("out-")
        .and_then(|rest| rest.strip_suffix(".webp"))
        .and_then(|index| index.parse::<u64>().ok());
    let (Some(input), Some(index)) = (input, index) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let prompt = input.get("prompt").and_then(Value::as_str).unwrap_or_default().to_owned();
    let size = input
        .get("size_bytes")
        .and_then(Value::as_u64)
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(70_000);
    let bytes = replicate_file_bytes(&prompt, index, size);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        bytes.chunks(16 * 1024).map(|chunk| Ok(bytes::Bytes::copy_from_slice(chunk))).collect();
    Response::builder()
        .header("content-type", "image/webp")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
