//! `theory run` (alias `run-processor`).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use theory_core::Failure;

use serde_json::Value;
use theory_core::attachments::Attachment;
use theory_core::orchestrator::{TransferRequest, resolve_write_prefix};
use theory_core::registry::Platform;
use theory_core::session::FrameObserver;
use theory_core::{
    AdapterKind, AdapterOptions, ArtifactStore, Mode, ProcessorRef, Redactor, RunRequest,
};
use theory_protocol::{Envelope, Frame};

use super::Context;
use crate::args::{InputsArgs, RunArgs};
use crate::print::{print_error, print_json, print_warning};
use crate::usage::usage;
use theory_core::env::names;

/// Runs `theory run` and returns the exit status: 0 success, 1 error envelope.
pub(crate) async fn run(args: RunArgs, context: Context) -> Result<ExitCode, Failure> {
    // `--server`, else THEORY_SERVER (the environment, or theory.toml).
    let server = args.server.clone().or_else(|| context.env.get(names::SERVER).map(str::to_owned));
    if let Some(server) = server {
        if args.build {
            return Err(usage(
                "--build builds on this machine; a server runs the images it has",
                "drop --build (or --server / THEORY_SERVER to run here)",
            ));
        }
        return super::remote::run(&server, args, context).await;
    }
    let adapters =
        theory_engine::adapters::all(&context.project, &context.env, args.env.as_deref())?;
    run_with(args, context, adapters).await
}

/// Runs with `adapters` (`theory local run` passes only the local one that attaches to started
/// containers).
pub(crate) async fn run_with(
    args: RunArgs,
    context: Context,
    adapters: theory_engine::adapters::Adapters,
) -> Result<ExitCode, Failure> {
    let reference: ProcessorRef = args.reference.parse().map_err(|error| {
        usage(
            format!("--ref: {error}"),
            "a ref looks like llm/litellm@1; list them with `theory registry list`",
        )
    })?;
    let inputs = read_inputs(&args.inputs, max_inputs_bytes(&context.env)?)?;
    let declared = context
        .registry
        .as_ref()
        .map(|registry| declared_outputs(registry, &reference))
        .unwrap_or_default();
    let (mode, adapter) = resolve_mode_and_adapter(
        args.mode.as_deref(),
        &adapter_name(&args, &context.env),
        &inputs,
    )?;
    if args.env.is_some() && adapter != AdapterKind::Modal {
        return Err(usage(
            "--env selects a Modal environment; it goes with --adapter modal",
            "drop --env, or run with --adapter modal",
        ));
    }
    let mut options = check_flags(&args)?;
    if args.build {
        build_first(&reference, adapter, &mut options, &context).await?;
    }
    let plan = plan_key(&args)?;
    let attachments = args
        .attach
        .iter()
        .map(|text| Attachment::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| usage(format!("--attach: {error}"), "use --attach photo=./photo.jpg"))?;
    let transfer: TransferRequest = args.transfer.parse().map_err(|error| {
        usage(format!("--transfer: {error}"), "use --transfer auto, direct or stream")
    })?;

    let registry = match context.registry {
        Ok(registry) => Arc::new(registry),
        Err(errors) => return Ok(super::registry_failure(&errors, args.json)),
    };
    // The spec's inputs schema compiles on another thread while the store and the ledger open
    // (the first compile of a process costs about 2 ms).
    let compiling = {
        let (registry, reference) = (Arc::clone(&registry), reference.clone());
        tokio::task::spawn_blocking(move || {
            registry.processor(&reference);
        })
    };
    let store = context.project.store(&context.env).await?;
    let ledger = context.project.ledger(&context.env).await?;
    let _ = compiling.await;
    let mut orchestrator = theory_engine::orchestrator(
        Arc::clone(&store),
        ledger,
        registry,
        adapters,
        context.env,
        context.redactor.clone(),
    );
    theory_engine::sign_and_trust(&mut orchestrator, &context.project)?;
    let observer: Option<Arc<dyn FrameObserver>> = args.stream.then(|| {
        Arc::new(StreamPrinter { redactor: context.redactor.clone() }) as Arc<dyn FrameObserver>
    });
    let (canceller, cancel) = theory_core::cancel::cancellation();
    let interrupts = crate::signals::Interrupts::cancel_with(canceller).map_err(|error| {
        usage(format!("cannot listen for SIGINT and SIGTERM: {error}"), "report this as a bug")
    })?;
    let request = RunRequest {
        reference,
        adapter,
        mode,
        write_prefix: args.write_prefix.clone(),
        inputs,
        options,
        attachments,
        transfer,
        plan,
        use_cache: !args.cache.no_cache,
        reuse_real: args.cache.reuse_real,
        observer,
        cancel,
    };
    let outcome = orchestrator.run(request).await;
    // Interrupted: the run was cancelled and recorded; exit as a signalled command does.
    let interrupted = interrupts.exit_code();
    interrupts.run_over();
    let code = report(&outcome, &args, &*store, interrupted, &declared).await;
    drop(interrupts);
    Ok(code)
}

/// The output paths a processor's spec declares, in the spec's order (`--save-first` takes the
/// first of them that a run wrote); none when the registry does not know the processor.
pub(crate) fn declared_outputs(
    registry: &theory_core::registry::Registry,
    reference: &ProcessorRef,
) -> Vec<String> {
    // The spec alone: its inputs schema compiles on another thread, later (see `run_with`).
    registry
        .processor_spec(reference)
        .map(|entry| entry.spec.outputs.files.iter().map(|output| output.path.clone()).collect())
        .unwrap_or_default()
}

/// Prints the outcome (the envelope with `--json`, else the index path; the error on stderr),
/// saves the outputs `--save-dir`/`--save-first` ask for (`declared`: the spec's output paths),
/// and returns the exit status: 0, 1, or 128 + the signal that cancelled the run.
pub(crate) async fn report(
    outcome: &theory_core::RunOutcome,
    args: &RunArgs,
    store: &dyn ArtifactStore,
    interrupted: Option<u8>,
    declared: &[String],
) -> ExitCode {
    if args.stream {
        eprintln!();
    }
    if args.json {
        print_json(&outcome.envelope);
    }
    match &outcome.envelope {
        Envelope::Success(success) => {
            if !args.json {
                crate::print::out(&success.index_path);
            }
            if let Err(error) = super::save::save(
                store,
                &outcome.envelope,
                args.save_dir.as_deref(),
                args.save_first.as_deref(),
                declared,
            )
            .await
            {
                print_error(
                    &format!("the run succeeded, but saving its outputs failed: {error}"),
                    Some("check that the folder is writable"),
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Envelope::Error(error) => {
            print_error(
                &format!("{}: {}", error.error.code, error.error.message),
                outcome.hint.as_deref(),
            );
            interrupted.map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}

/// Checks the flags that need no run: write prefix, adapter options, platform, and the flags
/// this build does not support yet.
pub(crate) fn check_flags(args: &RunArgs) -> Result<AdapterOptions, Failure> {
    if let Some(template) = &args.write_prefix {
        let example =
            "E0".parse().map_err(|_| usage("internal: bad example id", "report this as a bug"))?;
        resolve_write_prefix(template, &example).map_err(|failure| {
            usage(
                if failure.message.starts_with("--write-prefix") {
                    failure.message
                } else {
                    format!("--write-prefix: {}", failure.message)
                },
                "use a prefix like /artifacts/outputs/my-run/{execution_id}/",
            )
        })?;
    }
    let mut options = match &args.adapter_opts_json {
        Some(text) => AdapterOptions::from_json(text).map_err(|error| {
            usage(
                format!("--adapter-opts-json: {error}"),
                r#"known keys: {"timeout_s": 120, "runtime": "process", "platform": "amd64"}"#,
            )
        })?,
        None => AdapterOptions::default(),
    };
    if let Some(platform) = &args.platform {
        options.platform = Some(
            platform
                .parse::<Platform>()
                .map_err(|error| usage(format!("--platform: {error}"), "use amd64 or arm64"))?,
        );
    }
    super::save::check_targets(args.save_dir.as_deref(), args.save_first.as_deref())?;
    Ok(options)
}

/// `--build`: builds the image for this machine and has the run use it, not the pin.
async fn build_first(
    reference: &ProcessorRef,
    adapter: AdapterKind,
    options: &mut AdapterOptions,
    context: &Context,
) -> Result<(), Failure> {
    if adapter != AdapterKind::Local {
        return Err(usage(
            "--build runs a local build; it goes with --adapter local",
            "drop --build, or run with --adapter local",
        ));
    }
    if options.runtime == Some(theory_core::Runtime::Process) {
        return Err(usage(
            "--build makes an image, which runs in the docker runtime, not the process runtime",
            "drop --build, or the process runtime",
        ));
    }
    options.runtime = Some(theory_core::Runtime::Docker);
    options.local_build = true;
    super::processor::build_for_this_machine(reference, context).await
}

/// Parses `--plan`.
pub(crate) fn plan_key(args: &RunArgs) -> Result<Option<theory_core::PlanKey>, Failure> {
    args.plan
        .as_deref()
        .map(|plan| {
            plan.parse().map_err(|_| {
                usage(
                    format!("--plan {plan:?}: a plan key is letters, digits, -, _ or ."),
                    "list the plans with `theory plan list`",
                )
            })
        })
        .transpose()
}

/// The limit on a run's inputs: `THEORY_MAX_INPUTS_BYTES`, default 64 MiB.
pub(crate) fn max_inputs_bytes(env: &theory_core::EnvSnapshot) -> Result<u64, Failure> {
    let name = theory_core::env::names::MAX_INPUTS_BYTES;
    match env.get(name) {
        None => Ok(theory_core::files::DEFAULT_MAX_INPUTS_BYTES),
        Some(text) => text.parse::<u64>().ok().filter(|limit| *limit > 0).ok_or_else(|| {
            usage(
                format!("{name}={text:?} is not a positive number of bytes"),
                format!("set {name} to a byte count such as 67108864 (64 MiB), or unset it"),
            )
        }),
    }
}

/// Reads the inputs from whichever of `--inputs-json`, `--inputs-file`, `--inputs -` was given:
/// at most `max_bytes` (more is refused without reading it all), from a regular file or
/// standard input (a FIFO or a device passed as `--inputs-file` is refused at once).
pub(crate) fn read_inputs(inputs: &InputsArgs, max_bytes: u64) -> Result<Value, Failure> {
    let too_large = |source: &str| {
        usage(
            format!("{source}: the inputs are larger than the limit of {max_bytes} bytes"),
            format!(
                "pass large data as an attachment (--attach NAME=PATH), or raise {}",
                theory_core::env::names::MAX_INPUTS_BYTES
            ),
        )
    };
    let (source, bytes) = if let Some(text) = &inputs.inputs_json {
        if text.len() as u64 > max_bytes {
            return Err(too_large("--inputs-json"));
        }
        ("--inputs-json".to_owned(), text.clone().into_bytes())
    } else if let Some(path) = &inputs.inputs_file {
        let source = format!("--inputs-file {}", path.display());
        let bytes = theory_core::files::read_regular_capped(path, max_bytes).map_err(|error| {
            if error.kind() == std::io::ErrorKind::FileTooLarge {
                too_large(&source)
            } else {
                usage(
                    format!("{source}: {error}"),
                    "pass a readable JSON file, or pipe the JSON into --inputs -",
                )
            }
        })?;
        (source, bytes)
    } else if let Some(dash) = &inputs.inputs_stdin {
        if dash != "-" {
            return Err(usage(
                format!("--inputs takes only -, found {dash:?}"),
                "use --inputs - to read standard input, or --inputs-file PATH",
            ));
        }
        let source = "standard input (--inputs -)".to_owned();
        let bytes = theory_core::files::read_capped(std::io::stdin().lock(), max_bytes).map_err(
            |error| {
                if error.kind() == std::io::ErrorKind::FileTooLarge {
                    too_large(&source)
                } else {
                    usage(
                        format!("cannot read standard input: {error}"),
                        "pipe JSON into --inputs -",
                    )
                }
            },
        )?;
        (source, bytes)
    } else {
        return Ok(Value::Object(serde_json::Map::new()));
    };
    serde_json::from_slice(&bytes).map_err(|error| {
        // serde_json ends its message with the position; say it once, up front.
        let reason = error.to_string();
        let reason = reason.rsplit_once(" at line ").map_or(reason.as_str(), |(reason, _)| reason).to_owned();
        usage(
            format!("invalid JSON in {source} at line {} column {}: {reason}", error.line(), error.column()),
            "inputs must be one JSON object, e.g. '{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'",
        )
    })
}

/// The adapter a run asks for: `--adapter`, else `THEORY_ADAPTER` (the environment, or
/// theory.toml), else `local`.
pub(crate) fn adapter_name(args: &RunArgs, env: &theory_core::EnvSnapshot) -> String {
    args.adapter
        .clone()
        .or_else(|| env.get(names::ADAPTER).map(str::to_owned))
        .unwrap_or_else(|| "local".to_owned())
}

/// Settles mode and adapter from the flags, the old aliases and an inputs `mode`, warning about
/// each deprecated form. No `--mode` means mock: spending money must be explicit.
pub(crate) fn resolve_mode_and_adapter(
    mode: Option<&str>,
    adapter: &str,
    inputs: &Value,
) -> Result<(Mode, AdapterKind), Failure> {
    let parse = |value: &str, source: &str| -> Result<Mode, Failure> {
        let (mode, alias) = Mode::parse_with_alias(value).map_err(|error| {
            usage(format!("{source}: {error}"), "use --mode mock or --mode real")
        })?;
        if let Some(alias) = alias {
            print_warning(&format!(
                "mode {alias:?} is deprecated; it means {mode} (use --mode {mode})"
            ));
        }
        Ok(mode)
    };
    let from_inputs = inputs.get("mode").and_then(Value::as_str);
    let mut resolved = match (mode, from_inputs) {
        (Some(flag), Some(_)) => {
            print_warning("inputs.mode is ignored: --mode decides");
            parse(flag, "--mode")?
        }
        (Some(flag), None) => parse(flag, "--mode")?,
        (None, Some(hint)) => parse(hint, "inputs.mode")?,
        (None, None) => Mode::Mock,
    };
    let adapter = match adapter {
        "local" => AdapterKind::Local,
        "modal" => AdapterKind::Modal,
        "mock" => {
            if mode.is_some() && resolved == Mode::Real {
                return Err(usage(
                    "--adapter mock cannot run in real mode",
                    "use --adapter local --mode real",
                ));
            }
            print_warning("--adapter mock is deprecated; it means --adapter local --mode mock");
            resolved = Mode::Mock;
            AdapterKind::Local
        }
        other => {
            return Err(usage(
                format!("--adapter: unknown adapter {other:?}"),
                "use --adapter local or --adapter modal",
            ));
        }
    };
    Ok((resolved, adapter))
}

/// `--stream`: tokens as they come, events and logs on lines of their own, secrets redacted.
pub(crate) struct StreamPrinter {
    /// Hides secret values.
    pub(crate) redactor: Redactor,
}

impl FrameObserver for StreamPrinter {
    fn frame(&self, frame: &Frame) {
        let text = match frame {
            Frame::Token(token) => token.text.clone(),
            Frame::Event(event) => format!("\n[event] {}\n", event.phase),
            Frame::Log(log) => format!("\n[{}] {}\n", log.level, log.msg),
            _ => return,
        };
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(self.redactor.redact(&text).as_bytes());
        let _ = stderr.flush();
    }
}
