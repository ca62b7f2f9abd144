//! The routes of `/v1` and the health checks.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use theory_ledger::Enqueued;
use theory_protocol::ErrorCode;

use crate::api::{RunBody, is_final, run_object};
use crate::errors::ApiError;
use crate::state::State;

/// The most a request body may hold (the inputs' cap of the CLI).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// The longest `Prefer: wait=N` honoured, in seconds (and the wait of a bare `Prefer: wait`).
const MAX_WAIT_S: u64 = 60;

/// The router of one front end.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"ok": true})) }))
        .route("/readyz", get(ready))
        .route("/v1/runs", post(create_run))
        .route("/v1/runs/{id}", get(get_run))
        .route("/v1/runs/{id}/cancel", post(cancel_run))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `/readyz`: the ledger answers (the queue is there).
async fn ready(Shared(state): Shared<Arc<State>>) -> Result<Response, ApiError> {
    let depth = state.ledger.queue_depth().await?;
    Ok(axum::Json(json!({"ok": true, "queue_depth": depth})).into_response())
}

/// How long `Prefer: wait[=N]` asks to wait, if it asks.
fn wait_of(headers: &HeaderMap) -> Option<Duration> {
    let prefer = headers.get("prefer")?.to_str().ok()?;
    prefer.split(',').map(str::trim).find_map(|preference| {
        let rest = preference.strip_prefix("wait")?;
        let seconds = match rest.strip_prefix('=') {
            Some(value) => value.trim().parse::<u64>().ok()?,
            None if rest.is_empty() => MAX_WAIT_S,
            None => return None,
        };
        Some(Duration::from_secs(seconds.min(MAX_WAIT_S)))
    })
}

/// `POST /v1/runs`: checks the body, queues the run (idempotent with `Idempotency-Key`), and
/// answers `201` with the run object — at once, or when the run ends with `Prefer: wait`.
async fn create_run(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::with_status(rejection.status(), ErrorCode::Usage, rejection.body_text())
    })?;
    let run = RunBody::parse(&body)?;
    run.check(&state.orchestrator.registry)?;
    let key = headers.get("idempotency-key").and_then(|value| value.to_str().ok());
    if key.is_some_and(|key| key.is_empty() || key.len() > 255) {
        return Err(ApiError::with_status(
            StatusCode::BAD_REQUEST,
            ErrorCode::Usage,
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    let id = theory_core::new_execution_id().to_string();
    let request = String::from_utf8_lossy(&body);
    let (id, new) = match state.ledger.enqueue(&id, &request, None, key).await? {
        Enqueued::New(queued) => (queued.id, true),
        Enqueued::Existing(queued) => {
            if queued.request != request {
                return Err(ApiError::with_status(
                    StatusCode::CONFLICT,
                    ErrorCode::Usage,
                    format!("Idempotency-Key was used for another request (run {})", queued.id),
                ));
            }
            (queued.id, false)
        }
    };
    if new {
        state.work.notify_one();
    }
    let object = match wait_of(&headers) {
        Some(wait) => wait_for(&state, &id, wait).await?,
        None => current(&state, &id).await?,
    };
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(object)).into_response())
}

/// The run object of `id` as the ledger has it now.
async fn current(state: &State, id: &str) -> Result<Value, ApiError> {
    let queued = state.ledger.queued(id).await?;
    let record = match state.ledger.execution(id).await {
        Ok(record) => Some(record),
        Err(theory_ledger::LedgerError::UnknownExecution(_)) => None,
        Err(error) => return Err(error.into()),
    };
    if queued.is_none() && record.is_none() {
        return Err(theory_core::Failure::with_hint(
            ErrorCode::NotFound,
            format!("there is no run {id}"),
            "list runs with GET /v1/runs",
        )
        .into());
    }
    Ok(run_object(id, queued.as_ref(), record.as_ref()))
}

/// Waits until the run ends, or `wait` passes; returns its object then.
async fn wait_for(state: &State, id: &str, wait: Duration) -> Result<Value, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut finished = state.watch_finish(id);
    loop {
        let object = current(state, id).await?;
        let done = object["status"].as_str().is_some_and(is_final);
        if done || tokio::time::Instant::now() >= deadline {
            return Ok(object);
        }
        // Ends here: told at once; ends on another front end: seen on the next look.
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_millis(250)),
            finished.changed(),
        )
        .await;
    }
}

/// `GET /v1/runs/{id}`.
async fn get_run(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let object = match wait_of(&headers) {
        Some(wait) => wait_for(&state, &id, wait).await?,
        None => current(&state, &id).await?,
    };
    Ok(axum::Json(object).into_response())
}

/// `POST /v1/runs/{id}/cancel`: a queued run never starts; a running one is stopped
/// (`ERR_CANCELLED`), wherever it runs.
async fn cancel_run(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let object = current(&state, &id).await?;
    if !object["status"].as_str().is_some_and(is_final) {
        state.ledger.request_cancel(&id).await?;
        state.cancel_here(&id, "cancelled through the API");
    }
    Ok(axum::Json(current(&state, &id).await?).into_response())
}
