//! What a client looks up besides runs: the processors of the registry, the plans and their
//! money, and a run's receipt.

use std::sync::Arc;

use axum::extract::State as Shared;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use theory_core::{Failure, PlanKey, ProcessorRef, WorldPath};
use theory_protocol::{Envelope, ErrorCode};

use crate::auth::Caller;
use crate::errors::{ApiError, ApiPath};
use crate::state::State;

fn not_found(message: String, hint: &str) -> ApiError {
    Failure::with_hint(ErrorCode::NotFound, message, hint).into()
}

/// `GET /v1/processors`: every processor, in short.
pub(crate) async fn processors(Shared(state): Shared<Arc<State>>, _caller: Caller) -> Response {
    let listed: Vec<_> = state
        .orchestrator
        .registry
        .processors()
        .map(theory_core::registry::ProcessorEntry::summary)
        .collect();
    axum::Json(json!({"processors": listed})).into_response()
}

/// `GET /v1/processors/{ref}`: one processor, its inputs schema included.
pub(crate) async fn processor(
    Shared(state): Shared<Arc<State>>,
    _caller: Caller,
    ApiPath(reference): ApiPath<String>,
) -> Result<Response, ApiError> {
    let parsed: ProcessorRef = reference.parse().map_err(|error| {
        ApiError::with_status(StatusCode::BAD_REQUEST, ErrorCode::Usage, format!("ref: {error}"))
    })?;
    let entry = state.orchestrator.registry.processor(&parsed).ok_or_else(|| {
        not_found(format!("unknown processor ref {parsed}"), "see GET /v1/processors")
    })?;
    Ok(axum::Json(entry.document()).into_response())
}

/// `GET /v1/plans`.
pub(crate) async fn plans(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let mut plans = state.ledger.plans().await?;
    plans.retain(|plan| caller.sees_plan(&plan.key));
    Ok(axum::Json(json!({"plans": plans})).into_response())
}

/// `GET /v1/plans/{key}`.
pub(crate) async fn plan(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<Response, ApiError> {
    if !caller.sees_plan(&key) {
        return Err(not_found(format!("there is no plan {key:?}"), "see GET /v1/plans"));
    }
    match state.ledger.plan(&key).await {
        Ok(plan) => Ok(axum::Json(plan).into_response()),
        Err(theory_ledger::LedgerError::UnknownPlan(_)) => {
            Err(not_found(format!("there is no plan {key:?}"), "see GET /v1/plans"))
        }
        Err(error) => Err(error.into()),
    }
}

/// The body of `POST /v1/plans`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPlan {
    key: String,
    budget_usd_micro: i64,
}

/// `POST /v1/plans` `{key, budget_usd_micro}` → `201` and the plan; `409` when the key exists.
pub(crate) async fn create_plan(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    caller.needs(theory_ledger::Scope::PlansAdmin)?;
    let body = crate::routes::read_body(&headers, body).await?;
    let bad =
        |message: String| ApiError::with_status(StatusCode::BAD_REQUEST, ErrorCode::Usage, message);
    let new: NewPlan = serde_json::from_slice(&body)
        .map_err(|error| bad(format!("the body is not a plan: {error}")))?;
    let key: PlanKey = new.key.parse().map_err(|error| bad(format!("key: {error}")))?;
    if new.budget_usd_micro < 0 {
        return Err(bad("budget_usd_micro must not be negative".into()));
    }
    match state.ledger.create_plan(key.as_str(), new.budget_usd_micro).await {
        Ok(plan) => Ok((StatusCode::CREATED, axum::Json(plan)).into_response()),
        Err(theory_ledger::LedgerError::PlanExists(_)) => Err(ApiError::with_status(
            StatusCode::CONFLICT,
            ErrorCode::Budget,
            format!("a plan with key {key} exists already"),
        )),
        Err(error) => Err(error.into()),
    }
}

/// The most bytes of a receipt or attestation served (records are small).
const MAX_RECEIPT_BYTES: usize = 1024 * 1024;

/// `GET /v1/runs/{id}/receipt`: the run's `determinism.json` (for a memo-cache hit, the
/// receipt of the run it reused), as stored.
pub(crate) async fn receipt(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    run_record(
        &state,
        &caller,
        &id,
        "determinism.json",
        "receipt",
        "`theory verify` checks the run",
    )
    .await
}

/// `GET /v1/runs/{id}/attestation`: the run's signed `attestation.json` (a DSSE envelope of an
/// in-toto statement of its outputs and receipt), as stored; `404` for an unsigned run.
pub(crate) async fn attestation(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    run_record(
        &state,
        &caller,
        &id,
        "attestation.json",
        "attestation",
        "the run was not signed: `theory keys generate` makes the server's key (runs after it are signed)",
    )
    .await
}

/// One of a successful run's records, read from the folder of its index (another run's, for a
/// memo-cache hit), as stored.
async fn run_record(
    state: &State,
    caller: &Caller,
    id: &str,
    file: &str,
    what: &str,
    missing_hint: &str,
) -> Result<Response, ApiError> {
    caller.needs(theory_ledger::Scope::RunsRead)?;
    crate::routes::current(state, caller, id).await?;
    let record = match state.ledger.execution(id).await {
        Ok(record) => record,
        Err(theory_ledger::LedgerError::UnknownExecution(_)) => {
            return Err(not_found(
                format!("run {id} has no {what} (it has not run)"),
                "see GET /v1/runs/{id}",
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let envelope =
        record.envelope.and_then(|envelope| serde_json::from_value::<Envelope>(envelope).ok());
    let Some(Envelope::Success(success)) = envelope else {
        return Err(not_found(
            format!("run {id} has no {what}: it did not succeed"),
            "its envelope says why",
        ));
    };
    let folder = success.index_path.rsplit_once('/').map_or("", |(folder, _)| folder);
    let path: WorldPath = format!("{folder}/{file}")
        .parse()
        .map_err(|error| Failure::new(ErrorCode::Store, format!("{error}")))?;
    let Some(mut stream) = state.orchestrator.store.open(&path).await.map_err(Failure::from)?
    else {
        return Err(not_found(format!("{path} is not in the store"), missing_hint));
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|error| Failure::new(ErrorCode::Store, format!("{path}: {error}")))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(Failure::new(
                ErrorCode::Store,
                format!("{path} is larger than any record"),
            )
            .into());
        }
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `GET /v1/runs/{id}/webhooks`: every attempt to deliver the run's webhooks.
pub(crate) async fn deliveries(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.needs(theory_ledger::Scope::RunsRead)?;
    crate::routes::current(&state, &caller, &id).await?;
    let deliveries = state.ledger.deliveries(&id).await?;
    Ok(axum::Json(json!({"deliveries": deliveries})).into_response())
}
