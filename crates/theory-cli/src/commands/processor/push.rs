//! `theory processor push`: pushes each platform built here as
//! `{registry}/{ns}/{name}:{version}-{arch}` (through the Docker Engine, with the registry's
//! credentials), then publishes one OCI image index `{registry}/{ns}/{name}:{version}` listing
//! every platform of `--platforms` (default the seeds' `linux/amd64,linux/arm64`) through the
//! registry's own API — a platform not built here is taken from the registry when another
//! machine pushed it, and named when nothing has. The pins are the registry's digests of each
//! platform's manifest (`--pin` writes them into the spec).

use std::process::ExitCode;
use theory_core::Failure;

use crate::print::docker_failure;

use serde::Serialize;
use theory_core::ProcessorRef;
use theory_docker::{Docker, RegistryApi, RegistryApiError, registry_of};
use theory_image::BuildPlatform;
use theory_local::local_image_tag;
use theory_protocol::ErrorCode;

use crate::args::PushArgs;
use crate::commands::{Context, processor_entry};
use crate::print::{Report, out, print_json};
use crate::progress::Bar;
use crate::usage::usage;

/// The seeds' platforms (seed 001, seed 003 §6).
const SEED_PLATFORMS: &str = "linux/amd64,linux/arm64";

#[derive(Serialize)]
struct PushReport {
    #[serde(rename = "ref")]
    reference: String,
    platform: String,
    repository: String,
    tag: String,
    digest: String,
    oci: String,
    /// `pushed` from this machine, or `registry` (pushed from another machine before).
    source: &'static str,
}

#[derive(Serialize)]
struct IndexReport {
    /// `repo:version`.
    tag: String,
    /// `repo@sha256:…` of the index.
    oci: String,
    platforms: Vec<String>,
}

/// A repository split into its registry host and its path there.
pub(super) struct Target {
    /// `host/path/ns/name`.
    repository: String,
    pub(super) host: String,
    pub(super) path: String,
}

impl Target {
    fn new(registry: &str, reference: &ProcessorRef) -> Target {
        Target::of(format!("{registry}/{}/{}", reference.namespace(), reference.name()))
    }

    /// `host/path` split at its registry host.
    pub(super) fn of(repository: String) -> Target {
        let host = registry_of(&repository);
        let path = match repository.split_once('/') {
            Some((first, rest)) if first == host => rest.to_owned(),
            _ => repository.clone(),
        };
        let host = if host == "docker.io" { "registry-1.docker.io".to_owned() } else { host };
        Target { repository, host, path }
    }
}

pub(super) async fn run(args: &PushArgs, context: &Context) -> Result<ExitCode, Failure> {
    let registry = match &context.registry {
        Ok(registry) => registry,
        Err(errors) => return Ok(crate::commands::registry_failure(errors, args.json)),
    };
    let entry = processor_entry(registry, &args.reference)?;
    let registry_path = args
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
    let platforms = super::platforms(Some(args.platforms.as_deref().unwrap_or(SEED_PLATFORMS)))?;
    let reference = &entry.spec.reference;
    let target = Target::new(registry_path, reference);
    let pushed = async {
        let (reports, index) = push_all(context, reference, &platforms, &target).await?;
        if args.pin {
            for report in &reports {
                pin_pushed(entry, report, context)?;
            }
        }
        Ok::<_, Failure>((reports, index))
    };
    match pushed.await {
        Ok((reports, index)) => {
            if args.json {
                print_json(&serde_json::json!({"ok": true, "pushes": reports, "index": index}));
            } else {
                for report in &reports {
                    out(&report.oci);
                    if args.pin {
                        eprintln!(
                            "pinned {} {} in {}",
                            report.reference, report.platform, entry.origin
                        );
                    } else {
                        eprintln!(
                            "hint: pin it with `theory processor pin --ref {} --platform {} --oci {}`",
                            report.reference,
                            report.platform.trim_start_matches("linux/"),
                            report.oci
                        );
                    }
                }
                eprintln!("published the image index {} ({})", index.tag, index.oci);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(error.report(args.json)),
    }
}

/// The registry's credentials for `target`.
pub(super) fn login_for(
    context: &Context,
    target: &Target,
) -> Option<theory_docker::DockerCredentials> {
    theory_local::registry_credentials(&context.env).for_image(&target.repository)
}

/// Pushes the platforms built here, finds the others in the registry, and publishes the index.
async fn push_all(
    context: &Context,
    reference: &ProcessorRef,
    platforms: &[BuildPlatform],
    target: &Target,
) -> Result<(Vec<PushReport>, IndexReport), Failure> {
    let login = login_for(context, target);
    let api = registry_api(context, target, login.as_ref())?;
    let docker = Docker::connect().await.map_err(docker_failure)?;
    let local = docker.image(&local_image_tag(reference)).await.map_err(docker_failure)?;
    let mut reports = Vec::new();
    let mut listed = Vec::new();
    for &platform in platforms {
        let tag = format!("{}-{}", reference.version(), platform.name);
        let built_here = local.as_ref().filter(|image| image.architecture == platform.name);
        let report = match built_here {
            Some(image) => {
                push_one(&docker, reference, platform, target, &image.id, &tag, login.clone())
                    .await?
            }
            None => from_registry(&api, reference, platform, target, &tag).await?,
        };
        let descriptor = api
            .manifest(&target.path, &report.digest)
            .await
            .map_err(|error| registry_failure(&error, target))?
            .map(|(descriptor, _)| descriptor)
            .ok_or_else(|| {
                Failure::with_hint(
                    ErrorCode::Docker,
                    format!("the registry lost {} right after the push", report.oci),
                    "push again; see the registry's log",
                )
            })?;
        listed.push((descriptor, platform.name.to_owned()));
        reports.push(report);
    }
    let index = api
        .put_index(&target.path, reference.version(), &listed)
        .await
        .map_err(|error| registry_failure(&error, target))?;
    let index = IndexReport {
        tag: format!("{}:{}", target.repository, reference.version()),
        oci: format!("{}@{}", target.repository, index.digest),
        platforms: listed.iter().map(|(_, arch)| format!("linux/{arch}")).collect(),
    };
    Ok((reports, index))
}

/// A client of `target`'s registry, trusting `SSL_CERT_FILE` too.
pub(super) fn registry_api(
    context: &Context,
    target: &Target,
    login: Option<&theory_docker::DockerCredentials>,
) -> Result<RegistryApi, Failure> {
    let tls = theory_core::tls::client_config(&context.env).map_err(|error| {
        Failure::with_hint(
            ErrorCode::Config,
            format!("cannot set up TLS: {error}"),
            "check SSL_CERT_FILE, or unset it",
        )
    })?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_mins(1))
        .build()
        .map_err(|error| {
            Failure::with_hint(
                ErrorCode::Config,
                format!("cannot build an HTTP client: {error}"),
                "report this as a bug",
            )
        })?;
    let login = login.and_then(|login| Some((login.username.clone()?, login.password.clone()?)));
    Ok(RegistryApi::new(http, &target.host, login))
}

/// A registry API failure, with the seeds' troubleshooting text when it is about credentials.
pub(super) fn registry_failure(error: &RegistryApiError, target: &Target) -> Failure {
    let hint = if error.unauthorized {
        format!(
            "Unauthorized: set REGISTRY_USERNAME and REGISTRY_PASSWORD with REGISTRY_SERVER={} (or `docker login {}`)",
            target.host, target.host
        )
    } else {
        "check the registry address; see the registry's log".to_owned()
    };
    Failure::with_hint(ErrorCode::Docker, error.to_string(), hint)
}

/// A platform not built here, as another machine pushed it.
async fn from_registry(
    api: &RegistryApi,
    reference: &ProcessorRef,
    platform: BuildPlatform,
    target: &Target,
    tag: &str,
) -> Result<PushReport, Failure> {
    let found =
        api.manifest(&target.path, tag).await.map_err(|error| registry_failure(&error, target))?;
    let Some((descriptor, manifest)) = found else {
        return Err(Failure::with_hint(
            ErrorCode::ImageNotFound,
            format!(
                "linux/{} of {reference} is neither built on this machine nor in {}:{tag}",
                platform.name, target.repository
            ),
            format!(
                "build and push it on a linux/{arch} machine (`theory processor build --ref {reference} --platforms linux/{arch}` and `theory processor push --ref {reference} --platforms linux/{arch}`), or leave it out of --platforms",
                arch = platform.name
            ),
        ));
    };
    let (_, architecture) = api
        .platform_of(&target.path, &manifest)
        .await
        .map_err(|error| registry_failure(&error, target))?;
    if architecture != platform.name {
        return Err(Failure::with_hint(
            ErrorCode::RegistryMismatch,
            format!(
                "{}:{tag} is linux/{architecture}, not linux/{}",
                target.repository, platform.name
            ),
            format!("push linux/{} again from a machine of that platform", platform.name),
        ));
    }
    Ok(PushReport {
        reference: reference.to_string(),
        platform: format!("linux/{}", platform.name),
        repository: target.repository.clone(),
        tag: tag.to_owned(),
        oci: format!("{}@{}", target.repository, descriptor.digest),
        digest: descriptor.digest,
        source: "registry",
    })
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
    target: &Target,
    image_id: &str,
    tag: &str,
    login: Option<theory_docker::DockerCredentials>,
) -> Result<PushReport, Failure> {
    let repository = &target.repository;
    docker.tag(image_id, repository, tag).await.map_err(docker_failure)?;
    let bar = Bar::bytes(&format!("pushing {repository}:{tag}"));
    docker
        .push(repository, tag, login, |progress| bar.update(progress.done, progress.total))
        .await
        .map_err(|error| {
            Failure::with_hint(
                ErrorCode::Docker,
                format!("push of {repository}:{tag} failed: {error}"),
                "check the registry address and the credentials (REGISTRY_USERNAME/REGISTRY_PASSWORD, or docker login)",
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
        repository: repository.clone(),
        tag: tag.to_owned(),
        digest,
        oci,
        source: "pushed",
    })
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn a_target_is_split_into_host_and_path() {
        let reference = "ns/name@2".parse().unwrap();
        let local = Target::new("127.0.0.1:5000/theory", &reference);
        assert_eq!(
            (local.host.as_str(), local.path.as_str()),
            ("127.0.0.1:5000", "theory/ns/name")
        );
        let ghcr = Target::new("ghcr.io/acme", &reference);
        assert_eq!((ghcr.host.as_str(), ghcr.path.as_str()), ("ghcr.io", "acme/ns/name"));
        let hub = Target::new("acme", &reference);
        assert_eq!(
            (hub.host.as_str(), hub.path.as_str()),
            ("registry-1.docker.io", "acme/ns/name")
        );
    }
}
