//! A local stand-in for OpenAI and Anthropic that speaks their streaming HTTP APIs (server-sent
//! events), records requests, and misbehaves on request through the model name: `stall` stops
//! after the first piece, `fail` answers 500, `truncate` ends without finishing, `busy` answers
//! 429 with `Retry-After: 1` to the first request, `flaky` answers 503 to the first two
//! requests, `overloaded` always answers 529 (Anthropic's "overloaded").

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The key the stand-in accepts.
pub const KEY: &str = "test-key-0123456789";

/// The requests received, in order: (path, JSON body).
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(String, Value)>>>);

impl Recorded {
    /// Records a request; returns how many requests for `model` came before it.
    fn push(&self, path: &str, body: &Value) -> usize {
        let mut requests = self.0.lock().expect("lock");
        let earlier =
            requests.iter().filter(|(_, earlier)| earlier["model"] == body["model"]).count();
        requests.push((path.to_owned(), body.clone()));
        earlier
    }
}

/// The misbehaviour a model name asks for on one request, if any.
fn refusal(model: &str, earlier: usize) -> Option<Response> {
    match (model.trim_start_matches("claude-"), earlier) {
        ("busy", 0) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate limited, slow down");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            Some(response)
        }
        ("flaky", 0 | 1) => Some(error(StatusCode::SERVICE_UNAVAILABLE, "try again")),
        ("overloaded", _) => {
            Some(error(StatusCode::from_u16(529).expect("a valid status"), "overloaded"))
        }
        _ => None,
    }
}

/// A running stand-in for OpenAI's and Anthropic's streaming APIs; stopped when dropped.
pub struct LlmStandIn {
    /// Its base URL: OpenAI's API is under `/v1`, Anthropic's at `/v1/messages`.
    pub base_url: String,
    recorded: Recorded,
    server: tokio::task::JoinHandle<()>,
}

impl LlmStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start() -> LlmStandIn {
        let recorded = Recorded::default();
        let router = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        LlmStandIn { base_url, recorded, server }
    }

    /// Returns the requests received: (path, JSON body).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.recorded.0.lock().expect("lock").clone()
    }
}

impl Drop for LlmStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn events(chunks: Vec<String>, stall: bool) -> Response {
    let stream = futures_util::stream::iter(
        chunks.into_iter().map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk))),
    );
    let body = if stall {
        Body::from_stream(stream.chain(futures_util::stream::pending()))
    } else {
        Body::from_stream(stream)
    };
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"message": message, "type": "test_error"}})))
        .into_response()
}

async fn openai(
    State(recorded): State<Recorded>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let earlier = recorded.push("/v1/chat/completions", &body);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {KEY}") {
        // Like the real API, the message quotes the key it was given.
        let given = auth.trim_start_matches("Bearer ");
        return error(StatusCode::UNAUTHORIZED, &format!("Incorrect API key provided: {given}"));
    }
    let data = |value: Value| format!("data: {value}\n\n");
    let piece = |text: &str| {
        data(
            json!({"model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}),
        )
    };
    if let Some(refused) = refusal(body["model"].as_str().unwrap_or_default(), earlier) {
        return refused;
    }
    match body["model"].as_str().unwrap_or_default() {
        "fail" => error(StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded"),
        "stall" => events(vec![piece("Hel")], true),
        "truncate" => events(vec![piece("Hel")], false),
        _ => events(
            vec![
                ": keep-alive\n\n".into(),
                piece("Hello"),
                piece(" from"),
                piece(" fake"),
                data(
                    json!({"model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                ),
                data(
                    json!({"model": "gpt-4o-mini-2024-07-18", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}),
                ),
                "data: [DONE]\n\n".into(),
            ],
            false,
        ),
    }
}

async fn anthropic(
    State(recorded): State<Recorded>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let earlier = recorded.push("/v1/messages", &body);
    if headers.get("x-api-key").and_then(|value| value.to_str().ok()) != Some(KEY) {
        return error(StatusCode::UNAUTHORIZED, "invalid x-api-key");
    }
    if headers.get("anthropic-version").is_none() {
        return error(StatusCode::BAD_REQUEST, "anthropic-version header is required");
    }
    if let Some(refused) = refusal(body["model"].as_str().unwrap_or_default(), earlier) {
        return refused;
    }
    let event = |name: &str, value: Value| format!("event: {name}\ndata: {value}\n\n");
    let delta = |text: &str| {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        )
    };
    events(
        vec![
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-3-5-haiku-20241022", "usage": {"input_tokens": 9, "output_tokens": 1}}}),
            ),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            event("ping", json!({"type": "ping"})),
            delta("Bonjour"),
            delta(" Theory"),
            event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ],
        false,
    )
}
