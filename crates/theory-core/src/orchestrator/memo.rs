//! The memo cache: a finished run's envelope by memo key, reused only while its output blobs
//! still exist and still hash to their CIDs. The envelopes come from the ledger (its newest
//! successful execution with the key), or, without a ledger, from one file per key.

use std::path::PathBuf;
use std::sync::Arc;

use theory_protocol::Envelope;

use crate::ledger::RunLedger;
use crate::{ArtifactStore, WorldPath};

/// Where finished envelopes are found.
#[derive(Clone)]
enum Source {
    /// One file per memo key in a folder.
    Files(PathBuf),
    /// The ledger's executions.
    Ledger(Arc<dyn RunLedger>),
}

/// Finished runs by memo key.
#[derive(Clone)]
pub struct MemoCache {
    source: Source,
}

impl MemoCache {
    /// Keeps the cache in `folder` (created on first write), for runs without a ledger.
    pub fn new(folder: impl Into<PathBuf>) -> MemoCache {
        MemoCache { source: Source::Files(folder.into()) }
    }

    /// Reads finished runs from the ledger, which records them as they close.
    pub fn from_ledger(ledger: Arc<dyn RunLedger>) -> MemoCache {
        MemoCache { source: Source::Ledger(ledger) }
    }

    async fn recorded(&self, memo_key: &str) -> Option<Envelope> {
        match &self.source {
            Source::Files(folder) => {
                let text = tokio::fs::read_to_string(file(folder, memo_key)).await.ok()?;
                serde_json::from_str::<Envelope>(&text).ok()
            }
            Source::Ledger(ledger) => ledger.memo(memo_key).await,
        }
    }

    /// Returns the envelope recorded for `memo_key`, marked `cached`, if every output (and the
    /// index) is still in the store with the recorded CID.
    pub async fn lookup(&self, memo_key: &str, store: &dyn ArtifactStore) -> Option<Envelope> {
        let Some(Envelope::Success(mut success)) = self.recorded(memo_key).await else {
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

    /// Records a successful run's envelope (the ledger records it when the run closes); a
    /// failure to record only costs a future cache miss.
    pub async fn record(&self, memo_key: &str, envelope: &Envelope) {
        let Source::Files(folder) = &self.source else { return };
        let folder = folder.clone();
        let file = file(&folder, memo_key);
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

fn file(folder: &std::path::Path, memo_key: &str) -> PathBuf {
    folder.join(format!("{}.json", memo_key.trim_start_matches("b3:")))
}
