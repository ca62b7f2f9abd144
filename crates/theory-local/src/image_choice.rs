//! Which image a processor runs from: its pin for the platform, else the newest local build.

use theory_core::registry::{Platform, ProcessorSpec};
use theory_core::{Failure, ProcessorRef};
use theory_docker::{Docker, DockerError};
use theory_protocol::ErrorCode;

/// The repository local builds are tagged in: `theory-local/{namespace}/{name}`.
pub fn local_repository(reference: &ProcessorRef) -> String {
    format!("theory-local/{}/{}", reference.namespace(), reference.name())
}

/// The tag of the newest local build of a processor: `theory-local/{ns}/{name}:{version}`.
pub fn local_image_tag(reference: &ProcessorRef) -> String {
    format!("{}:{}", local_repository(reference), reference.version())
}

/// The image a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChoice {
    /// What Docker is asked to run: `repo@sha256:…` or the local build's tag.
    pub reference: String,
    /// What the processor must report in `/info`: the pin's digest, or the local image ID.
    pub identity: String,
    /// Whether it is a registry pin.
    pub pinned: bool,
    /// The platform whose pin was chosen.
    pub platform: Platform,
}

/// Whether a registry refused a pull for want of (good) credentials.
fn unauthorized(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["unauthorized", "no basic auth credentials", "authentication required", "denied"]
        .iter()
        .any(|mark| message.contains(mark))
}

/// Turns a Docker failure into the run's error.
pub(crate) fn docker_error(error: &DockerError) -> Failure {
    Failure::with_hint(ErrorCode::Docker, error.to_string(), error.hint())
}

/// Picks the image for `platform` (the host's unless overridden): the pin when there is one —
/// pulled when it is not here yet — else (or when `local_build` asks) the newest local build.
pub async fn choose_image(
    docker: &Docker,
    spec: &ProcessorSpec,
    platform: Platform,
    credentials: &theory_docker::CredentialSources,
    local_build: bool,
) -> Result<ImageChoice, Failure> {
    let reference = &spec.reference;
    if let Some(pin) = spec.image.pin_for(platform).filter(|_| !local_build) {
        let pinned = pin.to_string();
        if docker.image(&pinned).await.map_err(|error| docker_error(&error))?.is_none() {
            tracing::info!(image = %pinned, "pulling the pinned image");
            let login = credentials.for_image(&pinned);
            let logged_in = login.is_some();
            docker.pull(&pinned, login).await.map_err(|error| {
                let registry = theory_docker::registry_of(&pinned);
                let hint = if unauthorized(&error.to_string()) {
                    // The seeds' troubleshooting text for "Unauthorized image pulls".
                    format!(
                        "Unauthorized image pulls: fix REGISTRY_AUTH in the target environment — locally, REGISTRY_USERNAME and REGISTRY_PASSWORD with REGISTRY_SERVER={registry} (or `docker login {registry}`){}",
                        if logged_in { "; the credentials given were refused" } else { "; none were found for this registry" }
                    )
                } else {
                    format!("pull it with `docker pull {pinned}`, or build and load it locally with `theory processor build --ref {reference}` and push it")
                };
                Failure::with_hint(
                    ErrorCode::ImageNotFound,
                    format!("the pinned image {pinned} of {reference} is not here and could not be pulled: {error}"),
                    hint,
                )
            })?;
        }
        return Ok(ImageChoice {
            reference: pinned,
            identity: pin.digest().to_string(),
            pinned: true,
            platform,
        });
    }
    let tag = local_image_tag(reference);
    let image =
        docker.image(&tag).await.map_err(|error| docker_error(&error))?.ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::ImageNotFound,
                format!("{reference} has no pin for {platform} and no local image {tag}"),
                format!("build it with `theory processor build --ref {reference}`"),
            )
        })?;
    Ok(ImageChoice { reference: tag, identity: image.id, pinned: false, platform })
}
