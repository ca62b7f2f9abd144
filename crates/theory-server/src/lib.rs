//! `theory serve`: the HTTP API applications call, on the same orchestrator as the CLI.
//!
//! A run asked for with `POST /v1/runs` is checked (the processor known, the inputs valid for its
//! schema) and queued in the ledger's database (`theory_ledger` `queue`), so a restart loses
//! nothing and several front ends on one PostgreSQL share one queue. Workers of every front end
//! claim queued runs and run them through the [`theory_core::Orchestrator`] under the execution id
//! the run was given when it was queued; the run's record, receipt and envelope are what `theory
//! run` leaves. `Prefer: wait[=N]` holds the answer until the run ends.
//!
//! - `api`: the request body and the run object.
//! - `uploads`: `/v1/uploads`, the API's `--attach`.
//! - `artifacts`: `/v1/artifacts/{world path}`, streamed with `ETag` and `Range`.
//! - `auth`: the caller's API token, what it may do and which runs it sees.
//! - `routes`: `/healthz`, `/readyz`, `/v1/runs` (submit, list), `/v1/runs/{id}`,
//!   `/v1/runs/{id}/cancel`.
//! - `catalog`: `/v1/processors`, `/v1/plans`, `/v1/runs/{id}/receipt`.
//! - `integrity`: `/v1/runs/{id}/verify`, `/v1/runs/{id}/ledger` and `/v1/ledger/verify`.
//! - `ui`: the dashboard at `/` (`ui/`: a page, a script and a style sheet in the binary).
//! - `events`: the frames of runs running here, in memory and batched into the ledger.
//! - `stream`: `/v1/runs/{id}/events`, as Server-Sent Events or over a WebSocket.
//! - `metrics`: `/metrics`, Prometheus' text format.
//! - `openapi`: `/v1/openapi.json`, the `OpenAPI` 3.1 document.
//! - `webhooks`: a run's webhooks, signed per Standard Webhooks, retried, each attempt recorded.
//! - `worker`: claiming and running queued runs.
//! - `state`: what routes and workers share.
//! - `errors`: a failure's HTTP status (the one place) and the error document.

mod api;
mod artifacts;
mod auth;
mod catalog;
mod errors;
mod events;
mod integrity;
mod metrics;
mod openapi;
mod routes;
mod state;
mod stream;
mod ui;
mod uploads;
mod webhooks;
mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use theory_core::{Failure, Orchestrator};
use theory_ledger::Ledger;
use theory_protocol::ErrorCode;

pub use errors::status_of;

/// How often idle warm instances are looked at (stopped when idle too long or dead).
const REAP_EVERY: Duration = Duration::from_secs(1);

/// How many reaper ticks between looks for claims of front ends that are gone.
const REQUEUE_EVERY_TICKS: u32 = 10;

/// Gives the claims of front ends that are gone back to the queue (at start, then every ten
/// seconds).
async fn requeue_abandoned(state: &state::State) {
    let ours = state.owner.clone();
    match state.ledger.requeue_abandoned(|owner| state::claimer_is_gone(owner, &ours)).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "queued again the runs of a front end that stopped"),
        Err(error) => tracing::warn!(%error, "could not look for abandoned runs"),
    }
}

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where it listens (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Runs at once on this front end.
    pub max_concurrent_runs: usize,
    /// How long a shutdown lets running runs finish before it cancels them.
    pub shutdown_grace: Duration,
    /// Whether every request needs an API token; `false` (`--no-auth`) is for loopback
    /// development only, and the caller checks that.
    pub auth_required: bool,
    /// The largest body `POST /v1/uploads` takes.
    pub max_upload_bytes: u64,
    /// The most runs waiting in the queue; more submissions are refused with `429`.
    pub max_queued_runs: u64,
    /// Whether webhooks may target loopback, private and link-local addresses.
    pub allow_private_webhooks: bool,
}

/// Serves until `shutdown` completes, then stops taking requests, lets the runs under way finish
/// within the grace period (cancelling what is left), leaves queued runs for another front end,
/// and returns. `listening` is told the address once it is bound.
pub async fn serve(
    options: ServeOptions,
    orchestrator: Arc<Orchestrator>,
    ledger: Ledger,
    listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Failure> {
    if options.auth_required && ledger.live_tokens().await.map_err(ledger_failure)? == 0 {
        return Err(Failure::with_hint(
            ErrorCode::Config,
            "theory serve needs API tokens, and the ledger has none",
            "make one with `theory token create --name NAME`, or serve with --no-auth on a loopback address",
        ));
    }
    let listener = tokio::net::TcpListener::bind(options.listen).await.map_err(|error| {
        Failure::with_hint(
            ErrorCode::Config,
            format!("cannot listen on {}: {error}", options.listen),
            "pick another address with --listen, or stop what uses this one",
        )
        .caused_by(error)
    })?;
    let address = listener.local_addr().map_err(|error| {
        Failure::new(ErrorCode::Config, format!("cannot read the listening address: {error}"))
    })?;
    listening(address);
    let webhooks = webhooks::Webhooks::from_env(&orchestrator.env, options.allow_private_webhooks)?;
    let state = Arc::new(state::State::new(orchestrator, ledger, &options, webhooks));
    requeue_abandoned(&state).await;
    let reaper = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let mut ticks = 0_u32;
            loop {
                tokio::time::sleep(REAP_EVERY).await;
                if let Some(pool) = &state.orchestrator.warm {
                    pool.reap().await;
                }
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(REQUEUE_EVERY_TICKS) {
                    requeue_abandoned(&state).await;
                }
            }
        })
    };
    let workers: Vec<_> = (0..options.max_concurrent_runs.max(1))
        .map(|_| tokio::spawn(worker::work(Arc::clone(&state))))
        .collect();
    let stopping = Arc::clone(&state);
    // Small answers and events go out at once, not held back for more (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        let _ = stream.set_nodelay(true);
    });
    let served = axum::serve(listener, routes::router(Arc::clone(&state)))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests; runs under way may finish");
            stopping.stopping.send_replace(true);
        })
        .await;
    state.stopping.send_replace(true);
    let deadline = tokio::time::Instant::now() + options.shutdown_grace;
    while state.busy() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if state.busy() {
        state.cancel_all("the server shut down");
    }
    for worker in workers {
        let _ = worker.await;
    }
    // A run handed over by a request answered while the workers stopped goes back too.
    worker::give_back_handed(&state).await;
    reaper.abort();
    // Every processor this server started ends with it.
    if let Some(pool) = &state.orchestrator.warm {
        pool.drain().await;
    }
    served.map_err(|error| {
        Failure::new(ErrorCode::Runtime, format!("the server stopped: {error}")).caused_by(error)
    })
}

fn ledger_failure(error: theory_ledger::LedgerError) -> Failure {
    Failure::with_hint(ErrorCode::Ledger, error.to_string(), "check DATABASE_URL and the ledger")
        .caused_by(error)
}
