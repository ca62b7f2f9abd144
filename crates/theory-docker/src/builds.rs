//! Builds through the Docker Engine's build API (`POST /build`, the classic builder API 1.41
//! offers), from a context tarball streamed from disk, the engine's output passed on line by
//! line.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use crate::{Docker, DockerError};

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct EngineBuild {
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// `repo:tag` for the result.
    pub tag: String,
    /// `--build-arg`s (`SOURCE_DATE_EPOCH`, say).
    pub build_args: HashMap<String, String>,
    /// Labels set on the image.
    pub labels: HashMap<String, String>,
    /// The network `RUN` steps get (`none` keeps a build from reaching anything).
    pub network: Option<String>,
}

impl Docker {
    /// Builds `tarball` (a build context); `progress` sees each line the engine prints. Returns
    /// the image ID. Base images are never pulled: one that is not here fails the build.
    pub async fn build_image(
        &self,
        tarball: &Path,
        build: &EngineBuild,
        mut progress: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        let file = tokio::fs::File::open(tarball).await.map_err(|error| {
            DockerError::Engine(format!("cannot read {}: {error}", tarball.display()))
        })?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&build.dockerfile)
            .t(&build.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&build.build_args)
            .labels(&build.labels);
        if let Some(network) = &build.network {
            options = options.networkmode(network);
        }
        let mut answers =
            self.api.build_image(options.build(), None, Some(bollard::body_try_stream(body)));
        let mut image = None;
        while let Some(answer) = answers.next().await {
            let answer = answer.map_err(DockerError::from_bollard)?;
            if let Some(detail) = answer.error_detail.and_then(|detail| detail.message) {
                return Err(DockerError::Engine(detail));
            }
            if let Some(id) = answer.aux.and_then(|aux| aux.id) {
                image = Some(id);
            }
            if let Some(text) = answer.stream.or(answer.status) {
                for line in text.lines().map(str::trim_end).filter(|line| !line.is_empty()) {
                    progress(line);
                }
            }
        }
        match image {
            Some(id) => Ok(id),
            None => self
                .image(&build.tag)
                .await?
                .map(|info| info.id)
                .ok_or_else(|| DockerError::Engine("the build ended without an image".into())),
        }
    }
}
