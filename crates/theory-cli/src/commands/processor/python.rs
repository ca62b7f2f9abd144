//! `theory processor build` of a Python processor (`image.build.python`): the environment the
//! `process` runtime runs it from, prepared under `.theory/python/`, and its image.

use std::process::ExitCode;

use serde_json::json;
use theory_core::Failure;
use theory_core::env::names;
use theory_core::registry::ProcessorEntry;
use theory_local::{
    PythonEnv, PythonEnvRequest, PythonSource, prepare_python_env, python_env_folder,
};
use theory_protocol::ErrorCode;

use crate::args::BuildArgs;
use crate::commands::Context;
use crate::print::{Report, out, print_json};

/// Builds what `--runtime` asks for: the environment (`process`), the image (`docker`), or both.
pub(super) async fn run(
    args: &BuildArgs,
    entry: &ProcessorEntry,
    provider: &str,
    context: &Context,
) -> Result<ExitCode, Failure> {
    let runtime = args.runtime.as_deref();
    let mut report = json!({"ok": true, "ref": entry.spec.reference.to_string()});
    if runtime != Some("docker") {
        match prepare(entry, provider, context).await {
            Ok(env) => {
                if !args.json {
                    out(format!("process {} {}", env.identity, env.launcher.display()));
                }
                report["environment"] = json!(env);
            }
            Err(error) => return Ok(error.report(args.json)),
        }
    }
    if runtime != Some("process") {
        match super::build::build_for_docker(args, entry, context).await {
            Ok(builds) => {
                if !args.json {
                    for build in &builds {
                        out(format!("{} {} {}", build.platform, build.image_id, build.tag));
                    }
                }
                report["builds"] = json!(builds);
            }
            Err(error) => return Ok(error.report(args.json)),
        }
    }
    if args.json {
        print_json(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prepares the environment, pip's lines on stderr as they come.
async fn prepare(
    entry: &ProcessorEntry,
    provider: &str,
    context: &Context,
) -> Result<PythonEnv, Failure> {
    let reference = &entry.spec.reference;
    let build = entry
        .spec
        .image
        .build_spec()
        .unwrap_or_else(|| unreachable!("a Python spec has image.build"));
    let source = PythonSource::find(&context.project.root, &build.context).ok_or_else(|| {
        Failure::with_hint(
            ErrorCode::Registry,
            format!(
                "the build context {} of {reference} is not in {}",
                build.context,
                context.project.root.display()
            ),
            "run from the project that holds the processor's sources (or pass --project)",
        )
    })?;
    let request = PythonEnvRequest {
        reference: reference.clone(),
        source,
        provider: provider.to_owned(),
        python: context.env.get(names::PYTHON).unwrap_or("python3").to_owned(),
        folder: python_env_folder(&context.project.state(), reference),
    };
    eprintln!("preparing {reference} for the process runtime in {}", request.folder.display());
    let prepared = tokio::task::spawn_blocking(move || {
        prepare_python_env(&request, &mut |line| eprintln!("  {line}"))
    })
    .await
    .map_err(|error| {
        Failure::with_hint(ErrorCode::Adapter, error.to_string(), "report this as a bug")
    })?;
    let env = prepared
        .map_err(|error| Failure::with_hint(ErrorCode::Adapter, error.message, error.hint))?;
    eprintln!("prepared {reference}: {} (Python {})", env.identity, env.python_version);
    Ok(env)
}
