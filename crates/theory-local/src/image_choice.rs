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

/// Turns a Docker failure into the run's error.
pub(crate) fn docker_error(error: &DockerError) -> Failure {
    Failure::with_hint(ErrorCode::Docker, error.to_string(), error.hint())
}

/// Picks the image for `platform` (the host's unless overridden): the pin when there is one —
/// pulled when it is not here yet — else the newest local build.
pub async fn choose_image(
    docker: &Docker,
    spec: &ProcessorSpec,
    platform: Platform,
) -> Result<ImageChoice, Failure> {
    let reference = &spec.reference;
    if let Some(pin) = spec.image.pin_for(platform) {
        let pinned = pin.to_string();
        if docker.image(&pinned).await.map_err(|error| docker_error(&error))?.is_none() {
            tracing::info!(image = %pinned, "pulling the pinned image");
            docker.pull(&pinned).await.map_err(|error| {
                Failure::with_hint(
                    ErrorCode::ImageNotFound,
                    format!("the pinned image {pinned} of {reference} is not here and could not be pulled: {error}"),
                    format!("pull it with `docker pull {pinned}`, or build and load it locally with `theory processor build --ref {reference}` and push it"),
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
