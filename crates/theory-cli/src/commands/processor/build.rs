//! `theory processor build`: a static binary, a reproducible FROM-scratch image tarball in
//! `.theory/images/`, loaded into Docker and tagged `theory-local/{ns}/{name}:{version}`.

use crate::print::docker_failure;
use std::path::PathBuf;
use std::process::ExitCode;
use theory_core::Failure;

use serde::Serialize;
use theory_core::registry::{Platform, ProcessorEntry};
use theory_docker::Docker;
use theory_image::{BuildRequest, build_image};
use theory_local::local_image_tag;
use theory_protocol::ErrorCode;

use crate::args::BuildArgs;
use crate::commands::{Context, processor_entry};
use crate::print::{Report, out, print_json};
use crate::progress::Bar;

/// One image built.
#[derive(Serialize)]
pub(super) struct BuildReport {
    #[serde(rename = "ref")]
    pub(super) reference: String,
    pub(super) platform: String,
    pub(super) image_id: String,
    pub(super) tag: String,
    /// The `docker save` tarball of a `FROM scratch` build; none for the engine's builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tarball: Option<PathBuf>,
    pub(super) size_bytes: u64,
}

pub(super) async fn run(args: &BuildArgs, context: &Context) -> Result<ExitCode, Failure> {
    let registry = match &context.registry {
        Ok(registry) => registry,
        Err(errors) => return Ok(crate::commands::registry_failure(errors, args.json)),
    };
    let entry = processor_entry(registry, &args.reference)?;
    if let Some(provider) = entry.spec.image.build_spec().and_then(|build| build.python) {
        return super::python::run(args, entry, &provider, context).await;
    }
    if args.runtime.as_deref() == Some("process") {
        let binary = entry.spec.image.build_spec().map(|build| build.binary_name().to_owned());
        return Ok(Failure::with_hint(
            ErrorCode::Registry,
            format!("{} is a compiled processor: the process runtime runs its binary, there is no environment to prepare", entry.spec.reference),
            format!("build the binary with `cargo build --release -p {}`", binary.unwrap_or_default()),
        )
        .report(args.json));
    }
    match build_for_docker(args, entry, context).await {
        Ok(reports) => {
            if args.json {
                print_json(&serde_json::json!({"ok": true, "builds": reports}));
            } else {
                for report in &reports {
                    out(format!("{} {} {}", report.platform, report.image_id, report.tag));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(error.report(args.json)),
    }
}

/// Builds the processor's image for each platform `--platforms` names.
pub(super) async fn build_for_docker(
    args: &BuildArgs,
    entry: &ProcessorEntry,
    context: &Context,
) -> Result<Vec<BuildReport>, Failure> {
    let platforms = super::platforms(args.platforms.as_deref())?;
    let platforms = platforms.as_slice();
    let reference = &entry.spec.reference;
    let build = entry.spec.image.build_spec().ok_or_else(|| {
        Failure::with_hint(
            ErrorCode::Registry,
            format!("{reference} has no image.build in {}", entry.origin),
            "add image.build: {context: …, dockerfile: Dockerfile, binary: …}",
        )
    })?;
    if needs_engine(&build, &context.project.root) {
        let host = Platform::host().unwrap_or(Platform::Amd64);
        if let Some(other) = platforms.iter().find(|platform| platform.name != host.as_str()) {
            return Err(Failure::with_hint(
                ErrorCode::Adapter,
                format!(
                    "linux/{} cannot be built here: the Docker Engine builds {reference}'s Dockerfile for this machine's platform, linux/{host}",
                    other.name
                ),
                "build that platform on a machine of its own, then push and pin it from there",
            ));
        }
        return Ok(vec![super::engine::build_with_engine(entry, &build, context).await?]);
    }
    for platform in platforms {
        platform.buildable_here().map_err(|reason| {
            Failure::with_hint(
                ErrorCode::Adapter,
                reason,
                "build that platform on a machine of its own, then push and pin it from there",
            )
        })?;
    }
    let root = &context.project.root;
    if !root.join(&build.context).is_dir() {
        return Err(Failure::with_hint(
            ErrorCode::Registry,
            format!(
                "the build context {} of {reference} is not in {}",
                build.context,
                root.display()
            ),
            "run from the project that holds the processor's sources (or pass --project)",
        ));
    }
    let docker = Docker::connect().await.map_err(docker_failure)?;
    let mut reports = Vec::new();
    for &platform in platforms {
        let slug =
            format!("{}-{}-{}", reference.namespace(), reference.name(), reference.version());
        let request = BuildRequest {
            project_root: root.clone(),
            context: build.context.clone(),
            dockerfile: build.dockerfile.clone(),
            binary: build.binary_name().to_owned(),
            platform,
            tags: vec![local_image_tag(reference)],
            labels: vec![("com.theory.ref".into(), reference.to_string())],
            output: context
                .project
                .state()
                .join(format!("images/{slug}-linux-{}.tar", platform.name)),
        };
        reports.push(build_one(&docker, request, entry).await?);
    }
    Ok(reports)
}

/// Whether the Docker Engine builds this image: a Python processor, or a Dockerfile beyond the
/// `FROM scratch` subset Theory builds itself (reproducibly, from a static binary).
fn needs_engine(build: &theory_core::registry::BuildSpec, root: &std::path::Path) -> bool {
    if build.python.is_some() {
        return true;
    }
    let dockerfile = root.join(&build.context).join(&build.dockerfile);
    std::fs::read_to_string(dockerfile)
        .is_ok_and(|text| theory_image::Recipe::parse(&text).is_err())
}

async fn build_one(
    docker: &Docker,
    request: BuildRequest,
    entry: &ProcessorEntry,
) -> Result<BuildReport, Failure> {
    let reference = &entry.spec.reference;
    let platform = request.platform.name;
    let tag = local_image_tag(reference);
    let tarball = request.output.clone();
    eprintln!("building {reference} for linux/{platform} (cargo build --release, static)");
    let built = tokio::task::spawn_blocking(move || build_image(&request))
        .await
        .map_err(|error| {
            Failure::with_hint(ErrorCode::Adapter, error.to_string(), "report this as a bug")
        })?
        .map_err(|error| {
            Failure::with_hint(ErrorCode::Adapter, error.to_string(), "see the output above")
        })?;
    let bar = Bar::bytes(&format!("loading {tag} into Docker"));
    docker.load(&tarball, |progress| bar.update(progress.done, progress.total)).await.map_err(
        |error| {
            let mut error = docker_failure(error);
            error.message =
                format!("{} (the tarball is kept at {})", error.message, tarball.display());
            error
        },
    )?;
    let loaded =
        docker.image(&tag).await.map_err(docker_failure)?.map(|image| image.id).unwrap_or_default();
    if loaded != built.archive.image_id {
        return Err(Failure::with_hint(
            ErrorCode::Docker,
            format!(
                "Docker reports image {loaded} for {tag}, not the {} just built",
                built.archive.image_id
            ),
            "see the Docker Engine's log",
        ));
    }
    bar.finish(&format!("built {reference} for linux/{platform}: {loaded} ({tag})"));
    Ok(BuildReport {
        reference: reference.to_string(),
        platform: format!("linux/{platform}"),
        image_id: built.archive.image_id,
        tag,
        tarball: Some(tarball),
        size_bytes: built.archive.size_bytes,
    })
}
