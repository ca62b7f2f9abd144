//! `theory serve`: the HTTP API over the same orchestrator `theory run` uses (see the
//! `theory-server` crate). Prints `{"listening":"host:port"}` on stdout once it listens; SIGTERM
//! or Ctrl-C shuts it down gracefully (exit 0).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use theory_core::Failure;
use theory_protocol::ErrorCode;

use super::Context;
use crate::args::ServeArgs;
use crate::usage::usage;

/// Runs `theory serve` until SIGTERM or SIGINT.
pub(crate) async fn run(args: ServeArgs, context: Context) -> Result<ExitCode, Failure> {
    let listen: SocketAddr = args.listen.parse().map_err(|error| {
        usage(format!("--listen {}: {error}", args.listen), "use HOST:PORT, e.g. 127.0.0.1:8686")
    })?;
    // Without tokens, only this machine may call.
    if args.no_auth && !listen.ip().is_loopback() {
        return Err(usage(
            format!("--listen {listen}: --no-auth serves on a loopback address only"),
            "listen on 127.0.0.1 (or ::1), or serve with API tokens (theory token create)",
        ));
    }
    if args.no_auth {
        crate::print::print_warning(
            "serving without authentication (--no-auth): every caller on this machine may run and see every run",
        );
    }
    // A server runs for everyone: it starts only on a registry without problems.
    let registry = context.registry.and_then(|registry| {
        if registry.problems().is_empty() {
            Ok(registry)
        } else {
            Err(registry.problems().to_vec())
        }
    });
    let registry = registry.map_err(|errors| {
        Failure::with_hint(
            ErrorCode::Registry,
            format!(
                "the registry has {} problem(s); the first: {}",
                errors.len(),
                errors.first().map(ToString::to_string).unwrap_or_default()
            ),
            "fix the files; `theory registry validate` checks them",
        )
    })?;
    let store = context.project.store(&context.env).await?;
    let ledger = context.project.ledger(&context.env).await?;
    let adapters = theory_engine::adapters::all(&context.project, &context.env, None)?;
    let mut orchestrator = theory_engine::orchestrator(
        store,
        ledger.clone(),
        registry,
        adapters,
        context.env,
        context.redactor,
    );
    theory_engine::sign_and_trust(&mut orchestrator, &context.project)?;
    let warm_cap = args.warm_max_per_processor.unwrap_or(args.max_concurrent_runs);
    if args.warm_idle_s > 0 && warm_cap > 0 {
        let settings = theory_core::orchestrator::WarmSettings {
            idle_timeout: Duration::from_secs(args.warm_idle_s),
            max_idle_per_processor: warm_cap,
        };
        orchestrator.warm =
            Some(std::sync::Arc::new(theory_core::orchestrator::WarmPool::new(settings)));
    }
    let options = theory_server::ServeOptions {
        listen,
        max_concurrent_runs: args.max_concurrent_runs,
        shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
        auth_required: !args.no_auth,
        max_upload_bytes: args.max_upload_bytes,
        max_queued_runs: args.max_queued_runs,
        allow_private_webhooks: args.allow_private_webhooks,
    };
    let shutdown = shutdown_signal();
    theory_server::serve(
        options,
        std::sync::Arc::new(orchestrator),
        ledger,
        |address| {
            crate::print::print_json_line(&serde_json::json!({"listening": address.to_string()}));
        },
        shutdown,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// A future that completes on the first SIGTERM or SIGINT, the handlers installed now: a signal
/// that arrives once the address is printed is a graceful shutdown, never the default death.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let (Ok(mut terminate), Ok(mut interrupt)) = signals else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
}
