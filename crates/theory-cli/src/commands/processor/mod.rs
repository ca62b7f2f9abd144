//! `theory processor build|push|pin`.

mod build;
mod engine;
mod pin;
mod pin_edit;
mod push;
mod python;

use std::process::ExitCode;
use theory_core::Failure;

use theory_core::registry::Platform;
use theory_image::BuildPlatform;

use super::Context;
use crate::args::ProcessorCommand;
use crate::usage::usage;

/// Runs a `theory processor` command.
pub(crate) async fn run(command: ProcessorCommand, context: Context) -> Result<ExitCode, Failure> {
    match command {
        ProcessorCommand::Build(args) => build::run(&args, &context).await,
        ProcessorCommand::Push(args) => push::run(&args, &context).await,
        ProcessorCommand::Pin(args) => pin::run(&args, &context).await,
    }
}

/// Builds `reference`'s image for this machine (`theory run --build`), progress on stderr.
pub(crate) async fn build_for_this_machine(
    reference: &theory_core::ProcessorRef,
    context: &Context,
) -> Result<(), Failure> {
    let registry = context.registry.as_ref().map_err(|errors| {
        usage(
            format!(
                "the registry has problems: {}",
                errors.first().map(ToString::to_string).unwrap_or_default()
            ),
            "fix them (`theory registry validate` lists them) before --build",
        )
    })?;
    let entry = super::processor_entry(registry, reference.as_str())?;
    let args = crate::args::BuildArgs {
        reference: reference.to_string(),
        platforms: None,
        runtime: Some("docker".to_owned()),
        json: false,
    };
    for report in build::build_for_docker(&args, entry, context).await? {
        eprintln!("built {} {} for this run", report.tag, report.image_id);
    }
    Ok(())
}

/// Parses `--platforms`; the default is this machine's platform.
fn platforms(list: Option<&str>) -> Result<Vec<BuildPlatform>, Failure> {
    let Some(list) = list else {
        let host = Platform::host().unwrap_or(Platform::Amd64);
        return BuildPlatform::parse(host.as_str()).map(|platform| vec![platform]).ok_or_else(
            || usage("this machine's platform is not one Theory builds", "pass --platforms"),
        );
    };
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            BuildPlatform::parse(item).ok_or_else(|| {
                usage(
                    format!("--platforms: unknown platform {item:?}"),
                    "use linux/amd64 and/or linux/arm64, comma-separated",
                )
            })
        })
        .collect()
}
