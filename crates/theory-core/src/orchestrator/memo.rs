//! The memo cache: a finished run's envelope by memo key, reused only while its output blobs
//! still exist and still hash to their CIDs.

use std::path::PathBuf;

use theory_protocol::Envelope;

use crate::{ArtifactStore, WorldPath};

/// Envelopes of successful runs, one file per memo key, under `.theory/memo/`.
#[derive(Debug, Clone)]
pub struct MemoCache {
    folder: PathBuf,
}

impl MemoCache {
    /// Keeps the cache in `folder` (created on first write).
    pub fn new(folder: impl Into<PathBuf>) -> MemoCache {
        MemoCache { folder: folder.into() }
    }

    fn file(&self, memo_key: &str) -> PathBuf {
        self.folder.join(format!("{}.json", memo_key.trim_start_matches("b3:")))
    }

    /// Returns the envelope recorded for `memo_key`, marked `cached`, if every output (and the
    /// index) is still in the store with the recorded CID.
    pub async fn lookup(&self, memo_key: &str, store: &dyn ArtifactStore) -> Option<Envelope> {
        let text = tokio::fs::read_to_string(self.file(memo_key)).await.ok()?;
        let Ok(Envelope::Success(mut success)) = serde_json::from_str::<Envelope>(&text) else {
            return None;
        };
        for output in &success.outputs {
            let path: WorldPath = output.path.parse().ok()?;
            match store.hash(&path).await {
                Ok(Some((cid, size))) if cid == output.cid && size == output.size_bytes => {}
                _ => {
                    tracing::info!(path = %output.path, "memo entry is stale: an output blob is missing or changed");
                    return None;
                }
            }
        }
        let index: WorldPath = success.index_path.parse().ok()?;
        if !matches!(store.hash(&index).await, Ok(Some(_))) {
            return None;
        }
        success.meta.cached = Some(true);
        Some(Envelope::Success(success))
    }

    /// Records a successful run's envelope; a failure to record only costs a future cache miss.
    pub async fn record(&self, memo_key: &str, envelope: &Envelope) {
        let folder = self.folder.clone();
        let file = self.file(memo_key);
        let bytes = serde_json::to_vec(envelope).unwrap_or_default();
        // One blocking task for the three steps: this is on every run's path.
        let result = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder)?;
            let temporary = file.with_extension(format!("tmp-{}", std::process::id()));
            std::fs::write(&temporary, bytes)?;
            std::fs::rename(&temporary, &file)
        })
        .await
        .unwrap_or_else(|error| Err(std::io::Error::other(error)));
        if let Err(error) = result {
            tracing::warn!(%error, "could not record the run in the memo cache");
        }
    }
}
