//! `theory processor push`: tags the local build `{registry}/{ns}/{name}:{version}-{platform}`,
//! pushes it and reports the pin (`repo@sha256:…`) to give `theory processor pin`.

use std::process::ExitCode;
use theory_core::Failure;

use crate::print::docker_failure;

use serde::Serialize;
use theory_core::ProcessorRef;
use theory_docker::Docker;
use theory_image::BuildPlatform;
use theory_local::local_image_tag;
use theory_protocol::ErrorCode;

use crate::args::PushArgs;
use crate::commands::{Context, processor_entry};
use crate::print::{Report, out, print_json};
use crate::progress::Bar;
use crate::usage::usage;

#[derive(Serialize)]
struct PushReport {
    #[serde(rename = "ref")]
    reference: String,
    platform: String,
    repository: String,
    tag: String,
    digest: String,
    oci: String,
}

pub(super) async fn run(args: &PushArgs, context: &Context) -> Result<ExitCode, Failure> {
    let registry = match &context.registry {
        Ok(registry) => registry,
        Err(errors) => return Ok(crate::commands::registry_failure(errors, args.json)),
    };
    let entry = processor_entry(registry, &args.reference)?;
    let target = args
        .registry
        .as_deref()
        .map(|text| text.trim_end_matches('/'))
        .filter(|text| !text.is_empty())
        .ok_or_else(|| {
            usage(
                "push needs a registry: --registry or THEORY_IMAGE_REGISTRY",
                "e.g. --registry ghcr.io/org/repo, or --registry 127.0.0.1:5000/theory for a local one",
            )
        })?;
    let platforms = super::platforms(args.platforms.as_deref())?;
    let reference = &entry.spec.reference;
    let pushed = async {
        let docker = Docker::connect().await.map_err(docker_failure)?;
        let mut reports = Vec::new();
        for platform in platforms {
            let report = push_one(&docker, reference, platform, target).await?;
            if args.pin {
                pin_pushed(entry, &report, context)?;
            }
            reports.push(report);
        }
        Ok::<_, Failure>(reports)
    };
    match pushed.await {
        Ok(reports) => {
            if args.json {
                print_json(&serde_json::json!({"ok": true, "pushes": reports}));
            } else {
                for report in &reports {
                    out(&report.oci);
                    if args.pin {
                        eprintln!(
                            "pinned {} {} in {}",
                            report.reference, report.platform, entry.origin
                        );
                        continue;
                    }
                    eprintln!(
                        "hint: pin it with `theory processor pin --ref {} --platform {} --oci {}`",
                        report.reference,
                        report.platform.trim_start_matches("linux/"),
                        report.oci
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(error.report(args.json)),
    }
}

/// `--pin`: records a pushed digest in the spec file.
fn pin_pushed(
    entry: &theory_core::registry::ProcessorEntry,
    report: &PushReport,
    context: &Context,
) -> Result<(), Failure> {
    let platform: theory_core::registry::Platform =
        report.platform.trim_start_matches("linux/").parse().map_err(|error: String| {
            Failure::with_hint(ErrorCode::Registry, error, "report this as a bug")
        })?;
    let pin: theory_core::ImagePin = report.oci.parse().map_err(|error| {
        Failure::with_hint(
            ErrorCode::Docker,
            format!("the registry's digest {} is not a pin: {error}", report.oci),
            "pin it by hand with `theory processor pin`",
        )
    })?;
    super::pin::write_pin(entry, platform, &pin, context)
}

async fn push_one(
    docker: &Docker,
    reference: &ProcessorRef,
    platform: BuildPlatform,
    target: &str,
) -> Result<PushReport, Failure> {
    let local = local_image_tag(reference);
    let image = docker
        .image(&local)
        .await
        .map_err(docker_failure)?
        .filter(|image| image.architecture == platform.name)
        .ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::ImageNotFound,
                format!("there is no local linux/{} image of {reference}", platform.name),
                format!(
                    "build it first: theory processor build --ref {reference} --platforms linux/{}",
                    platform.name
                ),
            )
        })?;
    let repository = format!("{target}/{}/{}", reference.namespace(), reference.name());
    let tag = format!("{}-{}", reference.version(), platform.name);
    docker.tag(&image.id, &repository, &tag).await.map_err(docker_failure)?;
    let bar = Bar::bytes(&format!("pushing {repository}:{tag}"));
    docker
        .push(&repository, &tag, |progress| bar.update(progress.done, progress.total))
        .await
        .map_err(|error| {
            Failure::with_hint(
                ErrorCode::Docker,
                format!("push of {repository}:{tag} failed: {error}"),
                "check the registry address and that you are logged in (docker login)",
            )
        })?;
    let prefix = format!("{repository}@");
    let digest = docker
        .image(&format!("{repository}:{tag}"))
        .await
        .map_err(docker_failure)?
        .and_then(|image| {
            image
                .repo_digests
                .iter()
                .find_map(|pinned| pinned.strip_prefix(&prefix).map(str::to_owned))
        })
        .ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::Docker,
                "the registry reported no digest for the push",
                "push again; see the registry's log",
            )
        })?;
    let oci = format!("{repository}@{digest}");
    bar.finish(&format!("pushed {oci}"));
    Ok(PushReport {
        reference: reference.to_string(),
        platform: format!("linux/{}", platform.name),
        repository,
        tag,
        digest,
        oci,
    })
}
