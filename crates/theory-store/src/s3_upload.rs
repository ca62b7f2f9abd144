//! Large objects on S3, written once: a multipart upload to a staging key (never a world path),
//! then a copy to the object's key that succeeds only if nothing is there (`If-None-Match: *`
//! on the copy's `CompleteMultipartUpload`), then the staging object goes.
//!
//! `object_store` cannot complete a multipart upload conditionally, hence the staging key: the
//! upload itself is unconditional, the copy is the atomic create-if-absent. Every upload is
//! written down in a journal (`.theory/s3_uploads.json`) from its start to its end, so one that
//! a lost server or a killed process interrupted is aborted by the next command that opens the
//! store ([`UploadJournal::recover`]), instead of leaving its parts in the bucket.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartId, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use theory_core::json_map::LockedJsonMap;
use theory_core::{StoreError, WorldPath};
use tokio::task::JoinSet;

/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 2;
/// The folder of staging keys in the bucket: not a facet, so never a world path.
const STAGING: &str = ".theory-partial";

/// One upload in the journal, keyed by its staging key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    /// The multipart upload, until it completes; afterwards only the staging object is left.
    upload_id: Option<String>,
    /// The process that started it, so a live one is never aborted under it.
    #[serde(flatten)]
    owner: Owner,
}

/// A process, named so that it cannot be mistaken for another: its host, its pid, and (on
/// Linux) its start time, which tells a reused pid apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Owner {
    pid: u32,
    #[serde(default)]
    host: String,
    #[serde(default)]
    started: Option<u64>,
}

impl Owner {
    fn this_process() -> Owner {
        let pid = std::process::id();
        Owner { pid, host: host_name(), started: start_time(pid) }
    }

    /// Whether the process may still be writing: it is this one, or it lives on another host
    /// (not ours to judge), or a process with its pid and start time exists here.
    fn may_be_alive(&self) -> bool {
        if self.pid == std::process::id() || self.host != host_name() {
            return true;
        }
        let Ok(pid) = i32::try_from(self.pid) else { return false };
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Err(nix::errno::Errno::ESRCH) => false,
            // Exists (ours, or another user's: EPERM). A different start time means the pid
            // was reused by another process after ours ended.
            _ => self.started.is_none_or(|started| start_time(self.pid) == Some(started)),
        }
    }
}

fn host_name() -> String {
    nix::unistd::gethostname().ok().and_then(|name| name.into_string().ok()).unwrap_or_default()
}

/// A process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), on Linux.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its last `)`.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The journal of uploads under way, shared by every writer of one store.
#[derive(Debug, Clone)]
pub(crate) struct UploadJournal {
    map: Option<LockedJsonMap>,
}

impl UploadJournal {
    /// A journal kept in `file`, or none (uploads then are not recovered after a crash).
    pub(crate) fn new(file: Option<PathBuf>) -> UploadJournal {
        UploadJournal { map: file.map(|file| LockedJsonMap::new(file, "S3 uploads under way")) }
    }

    fn set(&self, staging: &str, pending: Option<Pending>) {
        let Some(map) = &self.map else { return };
        let changed = map.update(|entries: &mut std::collections::BTreeMap<String, Pending>| {
            match pending {
                Some(pending) => entries.insert(staging.to_owned(), pending),
                None => entries.remove(staging),
            };
            Ok(((), true))
        });
        if let Err(error) = changed {
            tracing::warn!(%error, file = %map.path().display(), "cannot update the upload journal");
        }
    }

    /// Aborts every upload a process that is gone left behind, and removes its staging object;
    /// returns how many were cleaned up. Failures are left in the journal for the next try.
    pub(crate) async fn recover(&self, store: &AmazonS3) -> Result<usize, StoreError> {
        let Some(map) = &self.map else { return Ok(0) };
        let entries: std::collections::BTreeMap<String, Pending> =
            map.read().map_err(|source| StoreError::Io {
                operation: "read",
                path: map.path().display().to_string(),
                source,
            })?;
        let mut cleaned = 0;
        for (staging, pending) in entries {
            if pending.owner.may_be_alive() {
                continue;
            }
            let key = ObjectPath::from(staging.as_str());
            if let Some(id) = &pending.upload_id {
                match store.abort_multipart(&key, id).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => {
                        return Err(StoreError::Backend(format!(
                            "cannot abort an interrupted upload to {staging}: {error}"
                        )));
                    }
                }
            }
            match store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => {
                    return Err(StoreError::Backend(format!(
                        "cannot remove the staging object {staging}: {error}"
                    )));
                }
            }
            self.set(&staging, None);
            cleaned += 1;
        }
        Ok(cleaned)
    }
}

/// A multipart upload to a staging key, parts going out while the caller hashes.
pub(crate) struct StagedUpload {
    store: Arc<AmazonS3>,
    journal: UploadJournal,
    staging: ObjectPath,
    id: MultipartId,
    parts: Vec<Option<PartId>>,
    in_flight: JoinSet<(usize, object_store::Result<PartId>)>,
    /// Set once the upload completed: what is left to clean is the staging object.
    completed: bool,
}

fn staging_key() -> String {
    let mut nonce = [0u8; 16];
    let _ = getrandom::fill(&mut nonce);
    let nonce = u128::from_le_bytes(nonce);
    format!("{STAGING}/{}-{nonce:032x}", std::process::id())
}

impl StagedUpload {
    /// Starts the upload and writes it down in the journal.
    pub(crate) async fn start(
        store: Arc<AmazonS3>,
        journal: UploadJournal,
        path: &WorldPath,
    ) -> Result<StagedUpload, StoreError> {
        let staging_text = staging_key();
        let staging = ObjectPath::from(staging_text.as_str());
        let id = store
            .create_multipart(&staging)
            .await
            .map_err(|error| StoreError::Backend(format!("{path}: {error}")))?;
        journal.set(
            &staging_text,
            Some(Pending { upload_id: Some(id.clone()), owner: Owner::this_process() }),
        );
        Ok(StagedUpload {
            store,
            journal,
            staging,
            id,
            parts: Vec::new(),
            in_flight: JoinSet::new(),
            completed: false,
        })
    }

    /// Sends one part; waits first while two are in flight.
    pub(crate) async fn put(&mut self, part: Bytes) -> object_store::Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.settle_one().await?;
        }
        let index = self.parts.len();
        self.parts.push(None);
        let (store, staging, id) = (Arc::clone(&self.store), self.staging.clone(), self.id.clone());
        self.in_flight.spawn(async move {
            let sent = store.put_part(&staging, &id, index, PutPayload::from(part)).await;
            (index, sent)
        });
        Ok(())
    }

    async fn settle_one(&mut self) -> object_store::Result<()> {
        if let Some(joined) = self.in_flight.join_next().await {
            let (index, sent) = joined.map_err(|error| object_store::Error::Generic {
                store: "S3",
                source: Box::new(error),
            })?;
            self.parts[index] = Some(sent?);
        }
        Ok(())
    }

    /// Completes the upload and copies it to `key` unless something is there; the staging
    /// object is removed whatever happens.
    pub(crate) async fn finish(
        mut self,
        path: &WorldPath,
        key: &ObjectPath,
    ) -> Result<(), StoreError> {
        let backend = |error: &object_store::Error| StoreError::Backend(format!("{path}: {error}"));
        while !self.in_flight.is_empty() {
            self.settle_one().await.map_err(|error| backend(&error))?;
        }
        let parts: Vec<PartId> = std::mem::take(&mut self.parts).into_iter().flatten().collect();
        self.store
            .complete_multipart(&self.staging, &self.id, parts)
            .await
            .map_err(|error| backend(&error))?;
        self.completed = true;
        self.journal.set(
            self.staging.as_ref(),
            Some(Pending { upload_id: None, owner: Owner::this_process() }),
        );
        let copied = self.store.copy_if_not_exists(&self.staging, key).await;
        self.clean().await;
        match copied {
            Ok(()) => Ok(()),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Err(StoreError::Exists { path: path.to_string() }),
            Err(error) => Err(backend(&error)),
        }
    }

    /// Aborts the upload (or removes the completed staging object) and forgets it.
    pub(crate) async fn abort(mut self) {
        self.clean().await;
    }

    async fn clean(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        let cleaned = if self.completed {
            self.store.delete(&self.staging).await
        } else {
            self.store.abort_multipart(&self.staging, &self.id).await
        };
        match cleaned {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                self.journal.set(self.staging.as_ref(), None);
            }
            // Left in the journal: the next command that opens the store tries again.
            Err(error) => {
                tracing::warn!(staging = %self.staging, %error, "cannot clean up an upload; the next command will try again");
            }
        }
        self.completed = true;
        self.id.clear();
    }
}

impl Drop for StagedUpload {
    /// Dropped unfinished (a timeout, a cancelled run): the abort runs as a task of its own if
    /// a runtime is there to run it; if the process ends first, the journal keeps the upload
    /// for the next command.
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        self.in_flight.abort_all();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, journal, staging, id) = (
            Arc::clone(&self.store),
            self.journal.clone(),
            self.staging.clone(),
            std::mem::take(&mut self.id),
        );
        let completed = self.completed;
        runtime.spawn(async move {
            let cleaned = if completed {
                store.delete(&staging).await
            } else {
                store.abort_multipart(&staging, &id).await
            };
            if cleaned.is_ok() {
                journal.set(staging.as_ref(), None);
            }
        });
    }
}
