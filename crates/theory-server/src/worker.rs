//! The workers of one front end: each claims the oldest queued run (of any front end's
//! submission), runs it through the orchestrator under the execution id it was queued with, and
//! marks it done; a cancel asked of another front end reaches it through the queue row.

use std::sync::Arc;
use std::time::Duration;

use theory_core::cancel::{Cancel, cancellation};
use theory_ledger::QueuedRun;

use theory_core::session::FrameObserver;

use crate::api::{CheckedRun, RunBody};
use crate::state::{Closed, State};
use crate::webhooks::{Both, WebhookEvent};

/// How long an idle worker sleeps before it looks at the queue again (runs queued by another
/// front end wake no one here).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often a running run's queue row is read for a cancel asked elsewhere.
const CANCEL_POLL: Duration = Duration::from_millis(250);

/// Runs queued runs until the server stops.
pub(crate) async fn work(state: Arc<State>) {
    let mut stopping = state.stopping.subscribe();
    // The queue was found empty while this many runs had been queued here: until another is
    // (or the idle poll comes round, for runs queued elsewhere), looking again is a wasted write.
    let mut empty_at = None;
    loop {
        if *stopping.borrow() {
            give_back_handed(&state).await;
            return;
        }
        if let Some(handed) = state.take_handed() {
            run_one(&state, handed.queued, Some(handed.request)).await;
            continue;
        }
        let queued_here = state.queued_here();
        let claimed = if empty_at == Some(queued_here) {
            Ok(None)
        } else {
            state.ledger.claim_next(&state.owner, &state.limits).await
        };
        match claimed {
            Ok(Some(queued)) => run_one(&state, queued, None).await,
            Ok(None) => {
                empty_at = Some(queued_here);
                tokio::select! {
                    () = state.work.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => empty_at = None,
                    _ = stopping.changed() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the queue; trying again");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Runs one claimed run; `request` is its body and checked request when the route that queued it
/// handed them over (else they are read from the queue row).
async fn run_one(state: &Arc<State>, queued: QueuedRun, request: Option<(RunBody, CheckedRun)>) {
    let id = queued.id.clone();
    let claimed = std::time::Instant::now();
    let waited = queued.claimed_at_ms.unwrap_or(queued.created_at_ms) - queued.created_at_ms;
    let (canceller, cancel) = cancellation();
    state.running(&id, canceller);
    let watcher = tokio::spawn(watch_cancel(Arc::clone(state), id.clone(), cancel.clone()));
    let log = state.logs.open(&id);
    let request = request.map_or_else(|| read(state, &queued), Ok);
    let feed = request
        .as_ref()
        .ok()
        .and_then(|(body, _)| body.subscription().ok().flatten())
        .map(|subscription| crate::webhooks::start(state, &id, subscription));
    if let Some(feed) = &feed {
        feed.tell(WebhookEvent::Start);
    }
    let prepared = request.and_then(|(_, checked)| {
        let execution_id = queued.id.parse().map_err(|error| format!("{error}"))?;
        Ok((execution_id, checked.into_request(cancel)))
    });
    let outcome = match prepared {
        Ok((execution_id, mut request)) => {
            request.observer = Some(match &feed {
                Some(feed) => Arc::new(Both(log, Arc::clone(feed) as Arc<dyn FrameObserver>)),
                None => log,
            });
            Some(state.orchestrator.run_as(execution_id, request).await)
        }
        Err(error) => {
            tracing::warn!(%id, %error, "a queued run could not be read; it is dropped");
            None
        }
    };
    watcher.abort();
    // The record is closed: requests waiting on the run answer now (from the record the closing
    // write returned), while its frames go to the ledger and its queue row is marked done.
    let closed = state.ledger.take_closed(&id).map(|record| Arc::new(Closed { queued, record }));
    state.settled(&id, closed);
    if let Some(outcome) = &outcome {
        let succeeded = matches!(outcome.envelope, theory_protocol::Envelope::Success(_));
        tracing::debug!(%id, succeeded, "run ended");
    }
    state
        .metrics
        .finished(Duration::from_millis(u64::try_from(waited).unwrap_or(0)), claimed.elapsed());
    // Every frame is in the ledger when the row says `done` (subscribers elsewhere rely on it).
    state.logs.finish(&id).await;
    state.ended(&id);
    if let Some(feed) = &feed {
        feed.tell(WebhookEvent::Completed);
    }
}

/// Gives the runs handed to this front end and not started back to the queue (it is stopping).
pub(crate) async fn give_back_handed(state: &State) {
    while let Some(handed) = state.take_handed() {
        let id = &handed.queued.id;
        if let Err(error) = state.ledger.release_claim(id).await {
            tracing::warn!(%id, %error, "cannot give a run back to the queue");
        }
    }
}

/// A claimed run's request, read from its queue row and checked.
fn read(state: &State, queued: &QueuedRun) -> Result<(RunBody, CheckedRun), String> {
    let body = RunBody::parse(queued.request.as_bytes()).map_err(|failure| failure.message)?;
    let checked = body.check(&state.orchestrator.registry).map_err(|failure| failure.message)?;
    Ok((body, checked))
}

/// Cancels the run when its queue row says a cancel was asked (of any front end).
async fn watch_cancel(state: Arc<State>, id: String, cancel: Cancel) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        if cancel.reason().is_some() {
            return;
        }
        if let Ok(Some(queued)) = state.ledger.queued(&id).await
            && queued.cancel_requested
        {
            state.cancel_here(&id, "cancelled through the API");
            return;
        }
    }
}
