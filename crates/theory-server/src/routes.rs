//! The routes of `/v1` and the health checks.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use theory_ledger::{Enqueued, Scope};
use theory_protocol::ErrorCode;

use crate::api::{RunBody, is_final, run_object};
use crate::auth::Caller;
use crate::errors::{ApiError, ApiPath, ApiQuery};
use crate::state::State;

/// The most a request body may hold (the inputs' cap of the CLI).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// The largest WebSocket message a subscriber may send (it has nothing to say).
pub(crate) const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The longest `Prefer: wait=N` honoured, in seconds (and the wait of a bare `Prefer: wait`).
const MAX_WAIT_S: u64 = 60;

/// The router of one front end.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(crate::ui::index))
        .route("/ui/app.js", get(crate::ui::script))
        .route("/ui/app.css", get(crate::ui::style))
        .route("/healthz", get(|| async { axum::Json(json!({"ok": true})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/v1/openapi.json", get(crate::openapi::openapi))
        .route("/v1/runs", post(create_run).get(list_runs))
        .route("/v1/runs/{id}", get(get_run).put(put_run))
        .route("/v1/runs/{id}/cancel", post(cancel_run))
        .route("/v1/runs/{id}/events", get(crate::stream::events))
        .route("/v1/runs/{id}/webhooks", get(crate::catalog::deliveries))
        .route("/v1/runs/{id}/receipt", get(crate::catalog::receipt))
        .route("/v1/runs/{id}/attestation", get(crate::catalog::attestation))
        .route("/v1/runs/{id}/verify", get(crate::integrity::run))
        .route("/v1/runs/{id}/ledger", get(crate::integrity::run_entries))
        .route("/v1/ledger/verify", get(crate::integrity::ledger))
        .route(
            "/v1/uploads",
            post(crate::uploads::upload).layer(axum::extract::DefaultBodyLimit::max(
                usize::try_from(state.max_upload_bytes).unwrap_or(usize::MAX),
            )),
        )
        .route("/v1/artifacts/{*path}", get(crate::artifacts::artifact))
        .route("/v1/processors", get(crate::catalog::processors))
        .route("/v1/processors/{*reference}", get(crate::catalog::processor))
        .route("/v1/plans", get(crate::catalog::plans).post(crate::catalog::create_plan))
        .route("/v1/plans/{key}", get(crate::catalog::plan))
        .fallback(crate::errors::no_route)
        .method_not_allowed_fallback(crate::errors::no_method)
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
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    submit(&state, &caller, &headers, body, None).await
}

/// `PUT /v1/runs/{id}` (Cog's convention): the run of the body under the id the client chose,
/// made once — the same request again answers that run (`200`), another one `409`.
async fn put_run(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let parsed: theory_protocol::ExecutionId = id.parse().map_err(|error| {
        let mut refused = ApiError::with_status(
            StatusCode::BAD_REQUEST,
            ErrorCode::Usage,
            format!("run id {id:?}: {error}"),
        );
        refused.failure.hint =
            Some("make ids as theory does: a ULID, e.g. 01J9ZQ3K8XG2N4V6B8D0F2H4J6".to_owned());
        refused
    })?;
    if state.ledger.queued(&id).await?.is_none() && state.ledger.execution(&id).await.is_ok() {
        return Err(ApiError::with_status(
            StatusCode::CONFLICT,
            ErrorCode::Usage,
            format!("run id {id} is taken"),
        ));
    }
    submit(&state, &caller, &headers, body, Some(parsed.to_string())).await
}

/// Checks a run request and queues it, under `given_id` or a new id.
async fn submit(
    state: &Arc<State>,
    caller: &Caller,
    headers: &HeaderMap,
    body: axum::body::Body,
    given_id: Option<String>,
) -> Result<Response, ApiError> {
    let (state, caller, headers) = (Arc::clone(state), caller.clone(), headers.clone());
    caller.needs(Scope::RunsWrite)?;
    let body = read_body(&headers, body).await?;
    let mut run = RunBody::parse(&body)?;
    let plan = caller.plan_for(run.plan.as_deref())?;
    // The request kept in the queue names the plan the run is charged to.
    let request = if plan == run.plan {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        let mut document: Value = serde_json::from_slice(&body).unwrap_or_default();
        document["plan"] = plan.clone().map_or(Value::Null, Value::String);
        run.plan = plan;
        document.to_string()
    };
    let checked = run.check(&state.orchestrator.registry)?;
    let key = headers.get("idempotency-key").and_then(|value| value.to_str().ok());
    if key.is_some_and(|key| key.is_empty() || key.len() > 255) {
        return Err(ApiError::with_status(
            StatusCode::BAD_REQUEST,
            ErrorCode::Usage,
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    // A retried request answers the run it made, whatever the queue or the plan say now.
    if let Some(key) = key
        && let Some(existing) = state.ledger.queued_by_key(key, caller.submitter()).await?
    {
        return idempotent(&state, &caller, &headers, &existing, &request).await;
    }
    if let Some(subscription) = run.subscription()? {
        state.webhooks.check(&subscription)?;
    }
    admissible(&state, &checked).await?;
    // Uploads the inputs refer to are in the store, or the run is refused before it is queued.
    let store = &*state.orchestrator.store;
    theory_core::attachments::stored_references(checked.inputs(), &[], store).await?;
    let id = given_id.unwrap_or_else(|| theory_core::new_execution_id().to_string());
    let hand_over = state.can_hand_over(checked.reference().as_str());
    let new_run = theory_ledger::NewRun {
        id: &id,
        request: &request,
        processor_ref: checked.reference().as_str(),
        plan_key: checked.plan().map(theory_core::PlanKey::as_str),
        submitter: caller.submitter(),
        idempotency_key: key,
        max_queued: state.max_queued_runs,
        claimed_by: hand_over.then_some(state.owner.as_str()),
    };
    let queued = match state.ledger.enqueue(new_run).await? {
        Enqueued::New(queued) => queued,
        Enqueued::Existing(queued) => {
            if !caller.sees(&queued) {
                return Err(ApiError::with_status(
                    StatusCode::CONFLICT,
                    ErrorCode::Usage,
                    format!("run id {} is taken", queued.id),
                ));
            }
            return idempotent(&state, &caller, &headers, &queued, &request).await;
        }
    };
    let id = queued.id.clone();
    // Watched before a worker can take it, so its end cannot come unseen.
    let waiting = wait_of(&headers).map(|wait| (wait, state.watch_finish(&id)));
    let handed = hand_over.then_some((run, checked));
    let object = if let Some((wait, finished)) = waiting {
        start(&state, queued, handed);
        wait_with(&state, &caller, &id, wait, finished, false).await?
    } else {
        // Answered as queued (or starting, when handed over), as the row says.
        let object = crate::api::run_object(&id, Some(&queued), None);
        start(&state, queued, handed);
        object
    };
    Ok((StatusCode::CREATED, axum::Json(object)).into_response())
}

/// Sets a run just queued going: handed to a free worker here, with its checked request, when
/// it was claimed for this front end as it was queued, else left for the first worker of any
/// front end (one here is woken).
fn start(
    state: &State,
    queued: theory_ledger::QueuedRun,
    handed: Option<(RunBody, crate::api::CheckedRun)>,
) {
    match handed {
        Some(request) => state.hand_over(crate::state::Handed { queued, request }),
        None => state.queued_for_any(),
    }
}

/// The answer to a request whose `Idempotency-Key` made a run already: that run (`200`), or
/// `409` when the key was used for another request.
async fn idempotent(
    state: &State,
    caller: &Caller,
    headers: &HeaderMap,
    existing: &theory_ledger::QueuedRun,
    request: &str,
) -> Result<Response, ApiError> {
    if existing.request != request {
        return Err(ApiError::with_status(
            StatusCode::CONFLICT,
            ErrorCode::Usage,
            format!("Idempotency-Key was used for another request (run {})", existing.id),
        ));
    }
    let object = match wait_of(headers) {
        Some(wait) => wait_for(state, caller, &existing.id, wait).await?,
        None => current(state, caller, &existing.id).await?,
    };
    Ok((StatusCode::OK, axum::Json(object)).into_response())
}

/// Refuses a run before it is queued when it could not be admitted: a real run in CI, the
/// queue is full, its plan does not exist, or (real mode) the plan has nothing left. The budget is checked again,
/// and reserved, when the run is admitted.
async fn admissible(state: &State, checked: &crate::api::CheckedRun) -> Result<(), ApiError> {
    // The CI guard, as on the command line: a real run in CI spends money by accident.
    let env = &state.orchestrator.env;
    if checked.mode() == theory_protocol::Mode::Real
        && env.in_ci()
        && env.get(theory_core::env::names::ALLOW_REAL_IN_CI) != Some("1")
    {
        return Err(theory_core::Failure::with_hint(
            ErrorCode::CiSafety,
            "real mode is refused in CI (the server runs with CI set)",
            "submit with mode mock, or start the server with THEORY_ALLOW_REAL_IN_CI=1",
        )
        .into());
    }
    if let Some(plan) = checked.plan() {
        match state.ledger.plan(plan.as_str()).await {
            Ok(found)
                if checked.mode() == theory_protocol::Mode::Real
                    && found.available_usd_micro <= 0 =>
            {
                return Err(theory_core::Failure::with_hint(
                    ErrorCode::Budget,
                    format!(
                        "plan {plan} has nothing left ({} µUSD spent of {})",
                        found.spent_usd_micro, found.budget_usd_micro
                    ),
                    "raise the plan's budget, or run in mock mode",
                )
                .into());
            }
            Ok(_) => {}
            Err(theory_ledger::LedgerError::UnknownPlan(_)) => {
                return Err(theory_core::Failure::with_hint(
                    ErrorCode::NotFound,
                    format!("there is no plan {plan}"),
                    "see the plans with GET /v1/plans",
                )
                .into());
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Reads a request's body, at most [`MAX_BODY_BYTES`]: a declared length over it is refused
/// before a byte is read (`413`).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Bytes, ApiError> {
    crate::errors::check_length(headers, MAX_BODY_BYTES)?;
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|error| {
        let mut refused = ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Limit,
            format!("the body is over this server's limit of {MAX_BODY_BYTES} bytes, or broke off: {error}"),
        );
        refused.failure.hint = Some("send less: large files go to POST /v1/uploads".to_owned());
        refused
    })
}

/// The run object of `id` as the ledger has it now; `404` when there is none the caller may
/// see (a run of `theory run`, never queued, is seen only without tokens or by a plan admin).
pub(crate) async fn current(state: &State, caller: &Caller, id: &str) -> Result<Value, ApiError> {
    // Both looked up at once: two connections, one round trip's wait.
    let (queued, record) = tokio::join!(state.ledger.queued(id), state.ledger.execution(id));
    let queued = queued?;
    let record = match record {
        Ok(record) => Some(record),
        Err(theory_ledger::LedgerError::UnknownExecution(_)) => None,
        Err(error) => return Err(error.into()),
    };
    let visible = match &queued {
        Some(queued) => caller.sees(queued),
        None => caller.listing_scope().is_none(),
    };
    if !visible || (queued.is_none() && record.is_none()) {
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
async fn wait_for(
    state: &State,
    caller: &Caller,
    id: &str,
    wait: Duration,
) -> Result<Value, ApiError> {
    wait_with(state, caller, id, wait, state.watch_finish(id), true).await
}

/// Waits on a watched run until it ends or `wait` passes; `look_first` looks at it before the
/// first wait (a run just queued is not looked at: it is queued).
async fn wait_with(
    state: &State,
    caller: &Caller,
    id: &str,
    wait: Duration,
    mut finished: tokio::sync::watch::Receiver<crate::state::RunEnd>,
    look_first: bool,
) -> Result<Value, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut stopping = state.stopping.subscribe();
    let mut look = look_first;
    loop {
        // Ended here: answered from the row and record the run closed with, no read needed.
        let ended = match &*finished.borrow() {
            crate::state::RunEnd::Ended(Some(closed)) if caller.sees(&closed.queued) => {
                Some(run_object(id, Some(&closed.queued), Some(&closed.record)))
            }
            _ => None,
        };
        if let Some(object) = ended {
            drop(finished);
            state.unwatch(id);
            return Ok(object);
        }
        if look {
            let object = current(state, caller, id).await;
            let done = object
                .as_ref()
                .map_or(true, |object| object["status"].as_str().is_some_and(is_final));
            if done || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
                drop(finished);
                state.unwatch(id);
                return object;
            }
        }
        look = true;
        // Ends here: told at once; ends on another front end: seen on the next look.
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_millis(250)),
            async {
                tokio::select! {
                    _ = finished.changed() => {}
                    _ = stopping.changed() => {}
                }
            },
        )
        .await;
    }
}

/// `GET /v1/runs/{id}`.
async fn get_run(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.needs(Scope::RunsRead)?;
    let object = match wait_of(&headers) {
        Some(wait) => wait_for(&state, &caller, &id, wait).await?,
        None => current(&state, &caller, &id).await?,
    };
    Ok(axum::Json(object).into_response())
}

/// `POST /v1/runs/{id}/cancel`: a queued run never starts; a running one is stopped
/// (`ERR_CANCELLED`), wherever it runs.
async fn cancel_run(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.needs(Scope::RunsWrite)?;
    let object = current(&state, &caller, &id).await?;
    if !object["status"].as_str().is_some_and(is_final) {
        let never_started = state.ledger.request_cancel(&id).await?;
        state.cancel_here(&id, "cancelled through the API");
        if never_started {
            // No worker will tell its webhook: tell it here.
            let queued = state.ledger.queued(&id).await?;
            let subscription = queued
                .and_then(|queued| RunBody::parse(queued.request.as_bytes()).ok())
                .and_then(|body| body.subscription().ok().flatten());
            if let Some(subscription) = subscription {
                let feed = crate::webhooks::start(&state, &id, subscription);
                feed.tell(crate::webhooks::WebhookEvent::Completed);
            }
        }
    }
    Ok(axum::Json(current(&state, &caller, &id).await?).into_response())
}

/// `GET /v1/runs?status=&ref=&plan=&limit=&cursor=`: runs, newest first; `next_cursor` continues
/// the listing.
async fn list_runs(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.needs(Scope::RunsRead)?;
    let bad =
        |message: String| ApiError::with_status(StatusCode::BAD_REQUEST, ErrorCode::Usage, message);
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|limit| (1..=100).contains(limit))
            .ok_or_else(|| bad(format!("limit {text:?} is not a number from 1 to 100")))?,
    };
    let cursor = match query.get("cursor") {
        None => None,
        Some(text) => Some(
            text.split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| bad(format!("cursor {text:?} is not one this server gave")))?,
        ),
    };
    if let Some(status) = query.get("status")
        && !matches!(
            status.as_str(),
            "queued" | "starting" | "running" | "succeeded" | "failed" | "cancelled"
        )
    {
        return Err(bad(format!(
            "status {status:?} is not one of queued, starting, running, succeeded, failed, cancelled"
        )));
    }
    let filter = theory_ledger::RunFilter {
        status: query.get("status").cloned(),
        processor_ref: query.get("ref").cloned(),
        plan_key: query.get("plan").cloned(),
        visible_to: caller.listing_scope(),
        cursor,
    };
    let page = state.ledger.queued_runs(&filter, limit).await?;
    let mut runs = Vec::with_capacity(page.len());
    for queued in &page {
        let record = match state.ledger.execution(&queued.id).await {
            Ok(record) => Some(record),
            Err(theory_ledger::LedgerError::UnknownExecution(_)) => None,
            Err(error) => return Err(error.into()),
        };
        runs.push(run_object(&queued.id, Some(queued), record.as_ref()));
    }
    let next_cursor = (i64::try_from(page.len()).unwrap_or(i64::MAX) == limit)
        .then(|| page.last().map(|last| format!("{}:{}", last.created_at_ms, last.id)))
        .flatten();
    Ok(axum::Json(json!({"runs": runs, "next_cursor": next_cursor})).into_response())
}
