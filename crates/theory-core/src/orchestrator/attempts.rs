//! Running the processor: attempts as the retry policy allows, each one an instance started,
//! a session and the instance stopped, cancellable from outside and bounded by the timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use theory_protocol::ErrorCode;

use super::run::{DEFAULT_POLICY, Orchestrator, Progress};
use super::warm::WarmKey;
use crate::cancel::Cancel;
use crate::session::{FrameObserver, SessionRequest, SessionResult, run_session};
use crate::{Adapter, Failure, Launch, Plan, WorldPath};

impl Orchestrator {
    /// Runs the processor, again after a transient failure (the instance did not start, the
    /// connection was lost) as the `default@1` policy's `retry` allows, with its backoff; every
    /// failed attempt is recorded in the ledger, and what it stored is removed first.
    pub(super) async fn attempts(
        &self,
        attempt: &Attempt<'_>,
        progress: &mut Progress,
    ) -> Result<SessionResult, Failure> {
        let retry = self.registry.policy(DEFAULT_POLICY).map(|policy| policy.retry.clone());
        let max_attempts = retry.as_ref().map_or(1, |retry| retry.max_attempts.max(1));
        let mut number = 1;
        loop {
            progress.attempts = number;
            let result = self.attempt_once(attempt).await;
            let failure = match result {
                Err(failure) if is_transient(&failure.code) && number < max_attempts => failure,
                other => return other,
            };
            let backoff = retry
                .as_ref()
                .and_then(|retry| {
                    let index = usize::try_from(number - 1).unwrap_or(usize::MAX);
                    retry.backoff_ms.get(index).or(retry.backoff_ms.last()).copied()
                })
                .unwrap_or(0);
            tracing::warn!(attempt = number, code = %failure.code, message = %failure.message, backoff_ms = backoff, "transient failure; trying again");
            if let Some(ledger) = &self.ledger {
                ledger.attempt_failed(attempt.session.execution_id, number, &failure).await;
            }
            let stored = std::mem::replace(
                &mut *attempt.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
                attempt.planned.to_vec(),
            );
            self.discard(&stored).await;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                reason = attempt.cancel.cancelled() => return Err(cancelled(&reason)),
            }
            number += 1;
        }
    }

    /// One attempt: start an instance, run the session, stop the instance.
    pub(super) async fn attempt_once(
        &self,
        attempt: &Attempt<'_>,
    ) -> Result<SessionResult, Failure> {
        let Attempt { adapter, spec, plan, launch, session, observer, cancel, committed, .. } =
            attempt;
        let warm = self.warm.as_ref().map(|pool| {
            (pool, WarmKey::of(spec.reference.as_str(), adapter.kind().as_str(), plan, launch))
        });
        let reused = match &warm {
            Some((pool, key)) => pool.take(key).await,
            None => None,
        };
        let instance = if let Some(instance) = reused {
            tracing::debug!(endpoint = instance.endpoint(), "reusing a warm instance");
            instance
        } else {
            tracing::info!(runtime = %plan.runtime, target = %plan.target, "starting the processor");
            // Cancelled while starting: the half-started instance is dropped, which stops it.
            tokio::select! {
                started = adapter.start(spec, plan, launch) => started?,
                reason = cancel.cancelled() => return Err(cancelled(&reason)),
            }
        };
        tracing::debug!(endpoint = instance.endpoint(), "processor healthy");
        let headers = instance.headers();
        let endpoint = instance.endpoint();
        let tls = match self.tls_for(endpoint) {
            Ok(tls) => tls,
            Err(failure) => {
                instance.stop().await;
                return Err(failure);
            }
        };
        let session = SessionRequest { endpoint, headers: &headers, tls: tls.as_ref(), ..*session };
        let result = tokio::select! {
            result = run_session(session, &*self.store, *observer, committed) => result,
            reason = cancel.cancelled() => Err(cancelled(&reason)),
        };
        tracing::debug!("session ended");
        match warm {
            Some((pool, key)) if ended_cleanly(&result) => pool.put(key, instance).await,
            _ => {
                instance.stop().await;
                tracing::debug!("processor stopped");
            }
        }
        result
    }
}

/// Whether a session ended with the processor's own answer (a success, or an error it
/// reported), so its instance is fit for another run; after a lost connection, a broken
/// protocol or a cancel it is not.
fn ended_cleanly(result: &Result<SessionResult, Failure>) -> bool {
    match result {
        Ok(_) => true,
        Err(failure) => matches!(
            failure.code,
            ErrorCode::Runtime
                | ErrorCode::Provider
                | ErrorCode::MissingSecret
                | ErrorCode::InputSchema
        ),
    }
}

/// The failure of a run stopped from outside.
pub(super) fn cancelled(reason: &str) -> Failure {
    Failure::new(
        ErrorCode::Cancelled,
        format!("the run was cancelled ({reason}); the processor was stopped"),
    )
}

pub(super) fn timed_out(timeout_s: u64) -> Failure {
    Failure::new(
        ErrorCode::Timeout,
        format!("the run took longer than its timeout of {timeout_s} s; the processor was stopped"),
    )
    .hint("raise the timeout with --adapter-opts-json '{\"timeout_s\": N}'")
}

/// Whether a failure may go away by trying again: the instance did not start or the connection
/// to it was lost. Never a schema, provider, integrity or budget error.
pub(super) fn is_transient(code: &ErrorCode) -> bool {
    matches!(code, ErrorCode::Adapter | ErrorCode::Connection)
}

/// What one attempt of a run needs.
pub(super) struct Attempt<'a> {
    pub(super) adapter: &'a Arc<dyn Adapter>,
    pub(super) spec: &'a crate::registry::ProcessorSpec,
    pub(super) plan: &'a Plan,
    pub(super) launch: &'a Launch,
    /// The session, its endpoint filled in per attempt.
    pub(super) session: SessionRequest<'a>,
    pub(super) observer: Option<&'a dyn FrameObserver>,
    pub(super) cancel: &'a Cancel,
    pub(super) committed: &'a Mutex<Vec<WorldPath>>,
    /// Objects a direct upload may create: removed with the rest after a failed attempt.
    pub(super) planned: &'a [WorldPath],
}
