//! The memo cache: a finished run's envelope by memo key, reused only while its output blobs
//! still exist and still hash to their CIDs. The envelopes come from the ledger (its newest
//! successful execution with the key), or, without a ledger, from one file per key. Once any
//! public key is trusted, a hit is served only when the run's attestation verifies with one of
//! them, names exactly its outputs and was made for this memo key: a store anyone could write
//! cannot hand a forged result to the next run.

use std::path::PathBuf;
use std::sync::Arc;

use theory_protocol::Envelope;

use crate::attestation::PublicKey;
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
    /// The keys a hit's attestation must verify with; none: hits are checked by hash only.
    trusted: Arc<[PublicKey]>,
}

impl MemoCache {
    /// Keeps the cache in `folder` (created on first write), for runs without a ledger.
    pub fn new(folder: impl Into<PathBuf>) -> MemoCache {
        MemoCache { source: Source::Files(folder.into()), trusted: Arc::new([]) }
    }

    /// Reads finished runs from the ledger, which records them as they close.
    pub fn from_ledger(ledger: Arc<dyn RunLedger>) -> MemoCache {
        MemoCache { source: Source::Ledger(ledger), trusted: Arc::new([]) }
    }

    /// Serves a hit only when its attestation verifies with one of `keys` (none: by hash only,
    /// as without signatures).
    #[must_use]
    pub fn trusting(mut self, keys: Vec<PublicKey>) -> MemoCache {
        self.trusted = keys.into();
        self
    }

    /// The keys a hit's attestation must verify with.
    pub fn trusted(&self) -> &[PublicKey] {
        &self.trusted
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
    /// index) is still in the store with the recorded CID and, when keys are trusted, its
    /// attestation verifies and signs exactly those outputs for this memo key.
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
        if !self.trusted.is_empty() {
            let owner = crate::verify::record_owner(&index)?;
            let problem = match crate::verify::signed_statement(store, owner, &self.trusted).await {
                Ok(Some((statement, _))) => statement
                    .subjects_differ(&success.outputs)
                    .or_else(|| {
                        (statement.predicate["memo_key"] != memo_key)
                            .then(|| "it was signed for another memo key".to_owned())
                    })
                    .or_else(|| {
                        (statement.predicate["outputs_index"] != index.as_str())
                            .then(|| "it was signed for another index".to_owned())
                    }),
                Ok(None) => Some(format!("run {owner} is unsigned")),
                Err(error) => Some(error),
            };
            if let Some(problem) = problem {
                tracing::warn!(%problem, "memo entry not trusted: running again");
                return None;
            }
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
