//! The HTTP server: `/healthz`, `/info`, `/run`, and the functions that start it.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::serve::ListenerExt;
use theory_protocol::{HEALTHZ_BODY, Info, SUBPROTOCOL};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::run::{Retention, Runs};
use crate::{Identity, Processor, ServerConfig, connection};

/// Extra time, beyond the cancel grace period, that shutdown waits for connections to drain.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Everything the handlers share.
pub(crate) struct Shared<P> {
    pub(crate) processor: Arc<P>,
    pub(crate) identity: Identity,
    pub(crate) config: ServerConfig,
    pub(crate) runs: Runs,
    pub(crate) tasks: TaskTracker,
    pub(crate) http: reqwest::Client,
    /// At most a few uploads at once per host (`put_urls`), whatever the number of runs.
    pub(crate) upload_slots: crate::upload::HostSlots,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting in the environment is invalid.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The address could not be bound or the listener failed.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// The HTTP client for uploads and downloads could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Builds the router, for tests and for embedding the processor in another server.
pub fn router<P: Processor>(
    identity: Identity,
    processor: P,
    config: ServerConfig,
) -> Result<Router, ServeError> {
    Ok(build(identity, processor, config)?.0)
}

fn build<P: Processor>(
    identity: Identity,
    processor: P,
    config: ServerConfig,
) -> Result<(Router, Arc<Shared<P>>), ServeError> {
    let retention = Retention {
        finished_for: config.run_retention,
        max_finished: config.max_retained_runs,
        unclaimed_for: config.file_wait,
    };
    let shared = Arc::new(Shared {
        processor: Arc::new(processor),
        runs: Runs::new(retention, &config.scratch_root),
        identity,
        config,
        tasks: TaskTracker::new(),
        http: crate::upload::transfer_client()?,
        upload_slots: crate::upload::HostSlots::default(),
    });
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/info", get(info::<P>))
        .route("/run", any(run::<P>))
        .with_state(Arc::clone(&shared));
    Ok((router, shared))
}

async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], HEALTHZ_BODY).into_response()
}

async fn info<P: Processor>(State(shared): State<Arc<Shared<P>>>) -> Response {
    let info = Info {
        protocol: SUBPROTOCOL.to_owned(),
        reference: shared.identity.reference.clone(),
        image_digest: shared.config.image_digest.clone(),
        processor_info: shared.identity.processor_info.clone(),
    };
    axum::Json(info).into_response()
}

async fn run<P: Processor>(
    State(shared): State<Arc<Shared<P>>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered = upgrade
        .requested_protocols()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    if !offered {
        let message = format!("the WebSocket subprotocol {SUBPROTOCOL} is required on /run");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let tasks = shared.tasks.clone();
    upgrade
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| tasks.track_future(connection::serve(shared, socket)))
}

/// Serves on an already bound listener until `shutdown` completes; then cancels every run
/// (each ends with `ERR_CANCELLED`) and waits for connections to drain.
pub async fn serve_on<P: Processor>(
    listener: TcpListener,
    identity: Identity,
    processor: P,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let drain = config.cancel_grace + SHUTDOWN_DRAIN;
    crate::run::reap_stale_scratch(&config.scratch_root);
    let (router, shared) = build(identity, processor, config)?;
    let stop = CancellationToken::new();
    let listener = listener.tap_io(|stream| {
        // Frames are small and interactive; never wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
    });
    let server =
        axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
    let mut server = std::pin::pin!(server.into_future());
    let janitor = spawn_janitor(Arc::clone(&shared), stop.clone());
    tokio::select! {
        result = &mut server => { stop.cancel(); result?; }
        () = shutdown => {
            tracing::info!("shutting down: cancelling runs in flight");
            shared.runs.cancel_all();
            stop.cancel();
            let _ = tokio::time::timeout(drain, &mut server).await;
        }
    }
    shared.tasks.close();
    let _ = tokio::time::timeout(drain, shared.tasks.wait()).await;
    janitor.abort();
    shared.runs.clear();
    let _ = std::fs::remove_dir_all(shared.runs.scratch_root());
    Ok(())
}

/// Sweeps the run table now and then, so finished runs and their scratch folders go even when
/// no new connection arrives.
fn spawn_janitor<P: Processor>(
    shared: Arc<Shared<P>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = ticks.tick() => shared.runs.sweep(),
                () = stop.cancelled() => return,
            }
        }
    })
}

/// Binds the address from the environment (`HOST`, `PORT`), prints
/// `{"listening":"<addr>"}` on stdout, and serves until SIGTERM or Ctrl-C.
pub async fn serve<P: Processor>(identity: Identity, processor: P) -> Result<(), ServeError> {
    let config = ServerConfig::from_env()?;
    let listener = TcpListener::bind(config.address).await?;
    let address = listener.local_addr()?;
    // The one line on stdout: how a supervisor learns the port when PORT=0.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", serde_json::json!({"listening": address.to_string()}));
    let _ = stdout.flush();
    drop(stdout);
    tracing::info!(%address, processor_ref = %identity.reference, "processor listening");
    serve_on(listener, identity, processor, config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The whole `main` of a processor binary: logging to stderr, a runtime, [`serve`]; prints
/// `error: …` and returns failure when the server cannot start.
pub fn main<P: Processor>(identity: Identity, processor: P) -> ExitCode {
    crate::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(identity, processor)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            if matches!(error, ServeError::Listen(_)) {
                let _ = writeln!(
                    std::io::stderr(),
                    "hint: set PORT to a free port, or PORT=0 to pick one"
                );
            }
            ExitCode::FAILURE
        }
    }
}
