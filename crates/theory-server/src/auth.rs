//! Who calls: the API token of a request (`Authorization: Bearer …`), checked against the
//! ledger's tokens, and what it may see and do. A token sees the runs it submitted and the runs
//! charged to its plan; every other run is answered `404`, as if it did not exist. Under
//! `--no-auth` (loopback only) every caller may do everything.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use theory_core::Failure;
use theory_ledger::{QueuedRun, Scope, Token};
use theory_protocol::ErrorCode;

use crate::errors::ApiError;
use crate::state::State;

/// The caller of a request: a token, or anyone (`--no-auth`).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    token: Option<Token>,
}

impl Caller {
    /// The server itself (webhook payloads): sees every run.
    pub(crate) fn system() -> Caller {
        Caller { token: None }
    }

    /// Fails with `403` unless the caller may do what `scope` allows.
    pub(crate) fn needs(&self, scope: Scope) -> Result<(), ApiError> {
        match &self.token {
            Some(token) if !token.may(scope) => Err(Failure::with_hint(
                ErrorCode::Forbidden,
                format!("the token {:?} lacks the scope {scope}", token.name),
                format!("make a token with it: theory token create --name N --scope {scope}"),
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// The submitter recorded with the runs this caller makes (its token id).
    pub(crate) fn submitter(&self) -> Option<&str> {
        self.token.as_ref().map(|token| token.id.as_str())
    }

    /// The plan this caller's runs are charged to, given the plan its request names: a token's
    /// own plan (naming another is `403`, unless it administers plans).
    pub(crate) fn plan_for(&self, asked: Option<&str>) -> Result<Option<String>, ApiError> {
        let Some(token) = &self.token else { return Ok(asked.map(str::to_owned)) };
        match (asked, token.plan_key.as_deref()) {
            (None, own) => Ok(own.map(str::to_owned)),
            (Some(asked), Some(own)) if asked == own => Ok(Some(own.to_owned())),
            (Some(asked), _) if token.may(Scope::PlansAdmin) => Ok(Some(asked.to_owned())),
            (Some(asked), _) => Err(Failure::with_hint(
                ErrorCode::Forbidden,
                format!("the token {:?} may not charge the plan {asked:?}", token.name),
                "leave out plan: runs are charged to the token's own plan",
            )
            .into()),
        }
    }

    /// Whether the caller may see a queued run.
    pub(crate) fn sees(&self, run: &QueuedRun) -> bool {
        match &self.token {
            None => true,
            Some(token) => {
                run.submitter.as_deref() == Some(token.id.as_str())
                    || token.may(Scope::PlansAdmin)
                    || (token.plan_key.is_some() && run.plan_key == token.plan_key)
            }
        }
    }

    /// Whether the caller may see the plan `key`.
    pub(crate) fn sees_plan(&self, key: &str) -> bool {
        match &self.token {
            None => true,
            Some(token) => token.may(Scope::PlansAdmin) || token.plan_key.as_deref() == Some(key),
        }
    }

    /// What a listing of runs is limited to: `None` sees all; otherwise the submitter and plan.
    pub(crate) fn listing_scope(&self) -> Option<(String, Option<String>)> {
        self.token
            .as_ref()
            .filter(|token| !token.may(Scope::PlansAdmin))
            .map(|token| (token.id.clone(), token.plan_key.clone()))
    }
}

fn unauthorized(message: &str) -> ApiError {
    Failure::with_hint(
        ErrorCode::Unauthorized,
        message,
        "send Authorization: Bearer TOKEN (make one with `theory token create --name NAME`)",
    )
    .into()
}

impl FromRequestParts<Arc<State>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> Result<Caller, ApiError> {
        if !state.auth_required {
            return Ok(Caller { token: None });
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("this server needs an API token"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty() && secret.len() <= 128)
            .ok_or_else(|| unauthorized("Authorization is not `Bearer TOKEN`"))?;
        match state.ledger.token_by_secret(secret).await? {
            Some(token) => Ok(Caller { token: Some(token) }),
            None => Err(unauthorized("the API token is unknown or revoked")),
        }
    }
}
