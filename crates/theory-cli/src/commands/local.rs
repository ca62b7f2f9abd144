//! `theory local start|run|stop|status|logs`.

use std::process::ExitCode;
use std::sync::Arc;

use futures_util::StreamExt;
use theory_core::registry::Platform;
use theory_core::{Failure, ProcessorRef};
use theory_local::{LocalAdapter, ServiceInfo, Services};
use theory_protocol::ErrorCode;

use super::{Context, processor_entry};
use crate::args::{LocalCommand, LocalLogsArgs, LocalStartArgs, LocalStopArgs};
use crate::print::{fail, out, print_json};
use crate::usage::usage;

/// Runs a `theory local` command.
pub(crate) async fn run(command: LocalCommand, context: Context) -> Result<ExitCode, Failure> {
    let adapter = LocalAdapter::from_env(&context.env, Some(&context.project.state()));
    let services = Services::new(adapter, &context.project.state());
    match command {
        LocalCommand::Start(args) => start(args, &context, &services).await,
        LocalCommand::Run(mut args) => {
            if args.adapter.as_deref().is_some_and(|adapter| adapter != "local") {
                return Err(usage(
                    "theory local run always runs on the container `theory local start` started",
                    "drop --adapter; use `theory run --adapter …` to choose an adapter",
                ));
            }
            if args.build {
                return Err(usage(
                    "theory local run never builds: it runs on the container `theory local start` started",
                    "build first with `theory processor build`, then `theory local start` and `theory local run`",
                ));
            }
            // Local whatever THEORY_ADAPTER (or theory.toml) names.
            args.adapter = Some("local".to_owned());
            let adapter: Arc<dyn theory_core::Adapter> = Arc::new(services.adapter());
            let adapters =
                std::collections::BTreeMap::from([(theory_core::AdapterKind::Local, adapter)]);
            super::run::run_with(*args, context, adapters).await
        }
        LocalCommand::Stop(args) => stop(args, &services).await,
        LocalCommand::Status(flag) => status(flag.json, &services).await,
        LocalCommand::Logs(args) => logs(args, &context, &services).await,
    }
}

fn adapter_failure(json: bool, error: &Failure) -> ExitCode {
    fail(json, error.code.clone(), &error.message, error.hint.as_deref())
}

fn parse_ref(text: &str) -> Result<ProcessorRef, Failure> {
    text.parse().map_err(|error| {
        usage(
            format!("--ref: {error}"),
            "a ref looks like llm/litellm@1; list them with `theory registry list`",
        )
    })
}

fn describe(info: &ServiceInfo) -> String {
    let port = info.port.map_or_else(|| "-".to_owned(), |port| port.to_string());
    let health = if info.healthy { "healthy" } else { "unhealthy" };
    format!(
        "{}\t{}\t127.0.0.1:{port}\t{}\t{}\t{}\t{health}",
        info.reference, info.kind, info.image, info.container, info.state
    )
}

async fn start(
    args: LocalStartArgs,
    context: &Context,
    services: &Services,
) -> Result<ExitCode, Failure> {
    let registry = match &context.registry {
        Ok(registry) => registry,
        Err(errors) => return Ok(super::registry_failure(errors, args.json)),
    };
    let entry = processor_entry(registry, &args.reference)?;
    let platform = args
        .platform
        .as_deref()
        .map(|text| {
            text.parse::<Platform>()
                .map_err(|error| usage(format!("--platform: {error}"), "use amd64 or arm64"))
        })
        .transpose()?;
    match services.start(&entry.spec, platform, &context.env).await {
        Ok((info, reused)) => {
            let verb = if reused { "already running" } else { "started" };
            eprintln!(
                "{verb}: {} on http://127.0.0.1:{} ({})",
                info.reference,
                info.port.unwrap_or_default(),
                info.container
            );
            if args.json {
                print_json(&serde_json::json!({"ok": true, "reused": reused, "container": info}));
            } else {
                out(describe(&info));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(adapter_failure(args.json, &error)),
    }
}

async fn stop(args: LocalStopArgs, services: &Services) -> Result<ExitCode, Failure> {
    let reference = args.which.reference.as_deref().map(parse_ref).transpose()?;
    match services.stop(reference.as_ref()).await {
        Ok(stopped) => {
            if stopped.is_empty() {
                eprintln!("nothing to stop");
            }
            if args.json {
                print_json(&serde_json::json!({"ok": true, "stopped": stopped}));
            } else {
                for info in &stopped {
                    out(format!("stopped {} ({})", info.reference, info.container));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(adapter_failure(args.json, &error)),
    }
}

async fn status(json: bool, services: &Services) -> Result<ExitCode, Failure> {
    match services.status().await {
        Ok(all) => {
            if json {
                print_json(&serde_json::json!({"ok": true, "containers": all}));
            } else if all.is_empty() {
                eprintln!("no Theory containers");
            } else {
                out("REF\tKIND\tADDRESS\tIMAGE\tCONTAINER\tSTATE\tHEALTH");
                for info in &all {
                    out(describe(info));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(adapter_failure(json, &error)),
    }
}

async fn logs(
    args: LocalLogsArgs,
    context: &Context,
    services: &Services,
) -> Result<ExitCode, Failure> {
    let reference = parse_ref(&args.reference)?;
    let docker = match services.local().docker().await {
        Ok(docker) => docker,
        Err(error) => return Ok(adapter_failure(args.json, &error)),
    };
    let container = match services.find(&docker, &reference).await {
        Ok(Some(container)) => container,
        Ok(None) => {
            return Ok(fail(
                args.json,
                ErrorCode::Adapter,
                &format!("no local container of {reference}"),
                Some(&format!("start it with `theory local start --ref {reference}`")),
            ));
        }
        Err(error) => return Ok(adapter_failure(args.json, &error)),
    };
    let mut stream = docker.logs(&container.id, args.follow, args.tail);
    let mut pending = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                pending.push_str(&String::from_utf8_lossy(&bytes));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    print_log_line(&context.redactor.redact(line.trim_end()), args.json);
                }
            }
            Err(error) => {
                return Ok(fail(
                    args.json,
                    ErrorCode::Docker,
                    &error.to_string(),
                    Some(error.hint()),
                ));
            }
        }
    }
    if !pending.is_empty() {
        print_log_line(&context.redactor.redact(pending.trim_end()), args.json);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_log_line(line: &str, json: bool) {
    if json {
        out(serde_json::json!({"line": line}));
    } else {
        out(line);
    }
}
