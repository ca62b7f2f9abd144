//! Images: inspect, load a tarball, tag, push, pull.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::query_parameters::{
    CreateImageOptionsBuilder, ImportImageOptionsBuilder, PushImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::{StreamExt, TryStreamExt};

use crate::{Docker, DockerError};

/// What Theory needs to know of a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:…` of its config.
    pub id: String,
    /// `repo@sha256:…` for each registry it was pushed to or pulled from.
    pub repo_digests: Vec<String>,
    /// Its architecture (`amd64`).
    pub architecture: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// Where a long image operation is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes done.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
    /// The engine's words for the step.
    pub status: String,
}

impl Docker {
    /// Inspects an image by name, `repo@sha256:…` or ID; `None` when there is none.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, DockerError> {
        match self.api.inspect_image(reference).await.map_err(DockerError::from_bollard) {
            Ok(image) => Ok(Some(ImageInfo {
                id: image.id.unwrap_or_default(),
                repo_digests: image.repo_digests.unwrap_or_default(),
                architecture: image.architecture.unwrap_or_default(),
                labels: image.config.and_then(|config| config.labels).unwrap_or_default(),
            })),
            Err(DockerError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Loads a `docker save` tarball, streamed from disk; `progress` sees the bytes sent.
    pub async fn load(
        &self,
        tarball: &Path,
        mut progress: impl FnMut(&Progress),
    ) -> Result<(), DockerError> {
        let file = tokio::fs::File::open(tarball).await.map_err(|error| {
            DockerError::Engine(format!("cannot read {}: {error}", tarball.display()))
        })?;
        let total = file.metadata().await.map(|metadata| metadata.len()).ok();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let body =
            tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                chunk
            });
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut answers = self.api.import_image_stream(options, body, None);
        while let Some(answer) = answers.next().await {
            let answer = answer.map_err(DockerError::from_bollard)?;
            progress(&Progress {
                done: sent.load(Ordering::Relaxed),
                total,
                status: answer.stream.or(answer.status).unwrap_or_default().trim().to_owned(),
            });
        }
        progress(&Progress { done: total.unwrap_or(0), total, status: "loaded".into() });
        Ok(())
    }

    /// Tags `source` as `repo:tag`.
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        let options = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        self.api.tag_image(source, Some(options)).await.map_err(DockerError::from_bollard)
    }

    /// Pushes `repo:tag`; `progress` sees each step the engine reports.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
        mut progress: impl FnMut(&Progress),
    ) -> Result<(), DockerError> {
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut answers = self.api.push_image(repo, Some(options), credentials);
        while let Some(answer) = answers.try_next().await.map_err(DockerError::from_bollard)? {
            let detail = answer.progress_detail.unwrap_or_default();
            progress(&Progress {
                done: detail.current.and_then(|done| u64::try_from(done).ok()).unwrap_or(0),
                total: detail.total.and_then(|total| u64::try_from(total).ok()),
                status: answer.status.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Pulls an image (`repo@sha256:…` or `repo:tag`), with the registry's credentials when
    /// it needs some.
    pub async fn pull(
        &self,
        reference: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
    ) -> Result<(), DockerError> {
        let options = CreateImageOptionsBuilder::default().from_image(reference).build();
        let mut answers = self.api.create_image(Some(options), None, credentials);
        while let Some(answer) = answers.next().await {
            answer.map_err(DockerError::from_bollard)?;
        }
        Ok(())
    }
}
