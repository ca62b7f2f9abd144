//! `GET /v1/runs/{id}/verify` and `GET /v1/ledger/verify`: `theory verify`'s answer for one run
//! (every output re-hashed against its CID, the index and the receipts against the record) and
//! `theory ledger verify`'s for the event chain — what the dashboard shows beside a receipt and
//! above the plans.

use std::sync::Arc;

use axum::extract::State as Shared;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use theory_core::verify::{Claims, check_run};
use theory_ledger::Scope;
use theory_protocol::ExecutionId;

use crate::auth::Caller;
use crate::errors::{ApiError, ApiPath};
use crate::state::State;

/// `GET /v1/runs/{id}/verify`: re-hashes the run's outputs in the store and checks its index and
/// receipts; `ok` and the problems found, one sentence each.
pub(crate) async fn run(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.needs(Scope::RunsRead)?;
    // Asked first: a run the caller may not see is a 404, whatever the ledger holds.
    crate::routes::current(&state, &caller, &id).await?;
    let claims = match state.ledger.execution(&id).await {
        Ok(record) => state.ledger.claims(&record).await?,
        Err(theory_ledger::LedgerError::UnknownExecution(_)) => Claims::default(),
        Err(error) => return Err(error.into()),
    };
    if claims.outputs.is_none() {
        return Ok(axum::Json(json!({
            "ok": false, "execution_id": id, "outputs_checked": 0, "bytes_checked": 0,
            "problems": ["the run has not succeeded: it has no outputs to verify"],
        }))
        .into_response());
    }
    let execution_id: ExecutionId = id.parse().map_err(|error| {
        theory_core::Failure::new(theory_protocol::ErrorCode::Usage, format!("run id: {error}"))
    })?;
    let trust = theory_core::attestation::Trust {
        keys: state.orchestrator.memo.trusted().to_vec(),
        require_signed: false,
    };
    let check = check_run(&*state.orchestrator.store, &execution_id, &claims, &trust).await;
    Ok(axum::Json(json!({
        "ok": check.ok(),
        "execution_id": check.execution_id,
        "outputs_checked": check.outputs_checked,
        "bytes_checked": check.bytes_checked,
        "attestation": check.attestation,
        "key_id": check.key_id,
        "problems": check.drifts,
    }))
    .into_response())
}

/// `GET /v1/ledger/verify`: walks the event chain and checks the database file; names the first
/// entry that does not hold. Only positions and reasons: no entry's content. The operator's
/// (`plans:admin`): it reads every tenant's entries and the whole database file, so a tenant's
/// token may neither learn how busy the others are nor make the server do it at will.
pub(crate) async fn ledger(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.needs(Scope::PlansAdmin)?;
    let chain = state.ledger.verify().await?;
    let file = state.ledger.file_problems().await?;
    let first_broken = chain.first_bad_seq.map(|seq| {
        json!({"seq": seq, "problem": chain.reason.clone().unwrap_or_else(|| "it does not hold".into())})
    });
    Ok(axum::Json(json!({
        "ok": first_broken.is_none() && file.is_none(),
        "entries": chain.entries,
        "first_broken": first_broken,
        "file_problem": file,
    }))
    .into_response())
}

/// `GET /v1/runs/{id}/ledger`: the run's entries in the ledger, in order — started, each failed
/// attempt with its code and message (why it was tried again), the plan's reservation and
/// settlement, finished — each with its position and hash, as `theory ledger verify` checks
/// them.
pub(crate) async fn run_entries(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.needs(Scope::RunsRead)?;
    crate::routes::current(&state, &caller, &id).await?;
    let entries: Vec<_> = state
        .ledger
        .events(Some(&id))
        .await?
        .into_iter()
        .map(|event| {
            json!({"seq": event.seq, "kind": event.kind, "at_ms": event.at_ms,
                   "body": event.body, "hash": event.this_hash})
        })
        .collect();
    Ok(axum::Json(json!({"entries": entries})).into_response())
}
