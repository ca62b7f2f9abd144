//! A local stand-in for OpenAI and Anthropic that speaks their streaming HTTP APIs (server-sent
//! events), records requests, and misbehaves on request through the model name:
//! `stall` stops after the first piece, `fail` answers 500, `truncate` ends without finishing.

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

/// The key the fake accepts.
pub(crate) const KEY: &str = "test-key-0123456789";

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(String, Value)>>>);

/// A running fake provider; stopped when dropped.
pub(crate) struct FakeProvider {
    pub(crate) base_url: String,
    recorded: Recorded,
    server: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    pub(crate) async fn start() -> FakeProvider {
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
        FakeProvider { base_url, recorded, server }
    }

    /// Returns the requests received: (path, JSON body).
    pub(crate) fn requests(&self) -> Vec<(String, Value)> {
        self.recorded.0.lock().expect("lock").clone()
    }
}

impl Drop for FakeProvider {
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
    recorded.0.lock().expect("lock").push(("/v1/chat/completions".into(), body.clone()));
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
    recorded.0.lock().expect("lock").push(("/v1/messages".into(), body.clone()));
    if headers.get("x-api-key").and_then(|value| value.to_str().ok()) != Some(KEY) {
        return error(StatusCode::UNAUTHORIZED, "invalid x-api-key");
    }
    if headers.get("anthropic-version").is_none() {
        return error(StatusCode::BAD_REQUEST, "anthropic-version header is required");
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
