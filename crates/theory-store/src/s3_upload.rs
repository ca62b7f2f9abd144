//! Large objects on S3, written once: a multipart upload to the object's own key, completed
//! with `If-None-Match: *` (`s3_complete.rs`), so it creates the object only if nothing is
//! there, atomically, on AWS and on s3s-fs alike; otherwise it is aborted.
//!
//! Every upload is written down in a journal (`.theory/s3_uploads.json`) from its start to its
//! end, so one that a lost server or a killed process interrupted is aborted by the next command
//! that opens the store ([`UploadJournal::recover`]), instead of leaving its parts in the bucket.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartId, PutMultipartOptions, PutPayload};
use serde::{Deserialize, Serialize};
use theory_core::json_map::LockedJsonMap;
use theory_core::{StoreError, WorldPath};
use tokio::task::JoinSet;

use crate::s3_complete::{Completion, complete_if_absent};
use crate::s3_config::S3Config;

/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 2;

/// One upload in the journal, keyed by its upload id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    /// The object key it writes.
    key: String,
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

    fn set(&self, upload_id: &str, pending: Option<Pending>) {
        let Some(map) = &self.map else { return };
        let changed = map.update(|entries: &mut std::collections::BTreeMap<String, Pending>| {
            match pending {
                Some(pending) => entries.insert(upload_id.to_owned(), pending),
                None => entries.remove(upload_id),
            };
            Ok(((), true))
        });
        if let Err(error) = changed {
            tracing::warn!(%error, file = %map.path().display(), "cannot update the upload journal");
        }
    }

    /// Aborts every upload a process that is gone left behind; returns how many. Failures are
    /// left in the journal for the next try.
    pub(crate) async fn recover(&self, store: &AmazonS3) -> Result<usize, StoreError> {
        let Some(map) = &self.map else { return Ok(0) };
        let entries: std::collections::BTreeMap<String, Pending> =
            map.read().map_err(|source| StoreError::Io {
                operation: "read",
                path: map.path().display().to_string(),
                source,
            })?;
        let mut cleaned = 0;
        for (upload_id, pending) in entries {
            if pending.owner.may_be_alive() {
                continue;
            }
            let key = ObjectPath::from(pending.key.as_str());
            match store.abort_multipart(&key, &upload_id).await {
                // Gone already (completed, or aborted by the server): nothing is left of it.
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => {
                    return Err(StoreError::Backend(format!(
                        "cannot abort an interrupted upload to {}: {error}",
                        pending.key
                    )));
                }
            }
            self.set(&upload_id, None);
            cleaned += 1;
        }
        Ok(cleaned)
    }
}

/// What a multipart upload completes with.
#[derive(Clone)]
pub(crate) struct Completer {
    /// The settings, for the signed completion request.
    pub(crate) config: S3Config,
    /// The HTTP client that sends it.
    pub(crate) client: reqwest::Client,
}

/// A multipart upload to an object's key, parts going out while the caller hashes.
pub(crate) struct Upload {
    store: Arc<AmazonS3>,
    journal: UploadJournal,
    completer: Completer,
    key: ObjectPath,
    id: MultipartId,
    parts: Vec<Option<PartId>>,
    in_flight: JoinSet<(usize, object_store::Result<PartId>)>,
}

impl Upload {
    /// Starts the upload (with the object's media type) and writes it down in the journal.
    pub(crate) async fn start(
        store: Arc<AmazonS3>,
        journal: UploadJournal,
        completer: Completer,
        path: &WorldPath,
        options: PutMultipartOptions,
    ) -> Result<Upload, StoreError> {
        let key: ObjectPath = path.key().split('/').collect();
        let id = store
            .create_multipart_opts(&key, options)
            .await
            .map_err(|error| StoreError::Backend(format!("{path}: {error}")))?;
        journal.set(&id, Some(Pending { key: key.to_string(), owner: Owner::this_process() }));
        Ok(Upload {
            store,
            journal,
            completer,
            key,
            id,
            parts: Vec::new(),
            in_flight: JoinSet::new(),
        })
    }

    /// Sends one part; waits first while two are in flight.
    pub(crate) async fn put(&mut self, part: Bytes) -> object_store::Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.settle_one().await?;
        }
        let index = self.parts.len();
        self.parts.push(None);
        let (store, key, id) = (Arc::clone(&self.store), self.key.clone(), self.id.clone());
        self.in_flight.spawn(async move {
            let sent = store.put_part(&key, &id, index, PutPayload::from(part)).await;
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

    /// Completes the upload unless an object is at its key ([`StoreError::Exists`], the upload
    /// aborted); any failure aborts it too.
    pub(crate) async fn finish(mut self, path: &WorldPath) -> Result<(), StoreError> {
        let backend =
            |error: &dyn std::fmt::Display| StoreError::Backend(format!("{path}: {error}"));
        while !self.in_flight.is_empty() {
            if let Err(error) = self.settle_one().await {
                self.abort().await;
                return Err(backend(&error));
            }
        }
        let parts: Vec<PartId> = std::mem::take(&mut self.parts).into_iter().flatten().collect();
        let Completer { config, client } = self.completer.clone();
        // The store's own credentials (temporary ones are renewed by their provider).
        let credential = match self.store.credentials().get_credential().await {
            Ok(credential) => credential,
            Err(error) => {
                self.abort().await;
                return Err(backend(&error));
            }
        };
        match complete_if_absent(&client, &config, &credential, &self.key, &self.id, &parts).await {
            Ok(Completion::Created) => {
                self.journal.set(&self.id, None);
                self.id.clear();
                Ok(())
            }
            Ok(Completion::Exists) => {
                self.abort().await;
                Err(StoreError::Exists { path: path.to_string() })
            }
            // The outcome is unknown (the object may exist now): the upload is aborted if it is
            // still open, and the caller removes a failed run's objects.
            Err(error) => {
                self.abort().await;
                Err(backend(&error))
            }
        }
    }

    /// Aborts the upload and forgets it.
    pub(crate) async fn abort(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if self.id.is_empty() {
            return;
        }
        match self.store.abort_multipart(&self.key, &self.id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => self.journal.set(&self.id, None),
            // Left in the journal: the next command that opens the store tries again.
            Err(error) => {
                tracing::warn!(key = %self.key, %error, "cannot abort an upload; the next command will try again");
            }
        }
        self.id.clear();
    }
}

impl Drop for Upload {
    /// Dropped unfinished (a timeout, a cancelled run): the abort runs as a task of its own if
    /// a runtime is there to run it; if the process ends first, the journal keeps the upload
    /// for the next command.
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        self.in_flight.abort_all();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, journal, key, id) = (
            Arc::clone(&self.store),
            self.journal.clone(),
            self.key.clone(),
            std::mem::take(&mut self.id),
        );
        runtime.spawn(async move {
            if store.abort_multipart(&key, &id).await.is_ok() {
                journal.set(&id, None);
            }
        });
    }
}
