//! The ports: what the orchestrator needs from a place to run processors ([`Adapter`]) and a
//! place to keep artifacts ([`ArtifactStore`]). Backends live in other crates.

use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use theory_protocol::{Cid, CidHasher, Mode};

use crate::registry::ProcessorSpec;
use crate::{AdapterKind, AdapterOptions, Failure, Runtime, WorldPath};

/// A stream of bytes read from a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A failure of the artifact store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A local file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The object.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The backend refused or failed.
    #[error("{0}")]
    Backend(String),
    /// The object exists already. Objects are written once: a commit never replaces one.
    #[error("{path} already exists, and an object is never replaced")]
    Exists {
        /// The object.
        path: String,
    },
}

/// Keeps artifacts by world path; the object key is the path without its leading `/`.
///
/// Objects are **write-once**: [`ObjectWriter::commit`] and [`ArtifactStore::put_bytes`] create
/// the object only if nothing is at its path, atomically (a hard link on a file system, a
/// conditional `PUT` on S3), and fail with [`StoreError::Exists`] otherwise. So no run can
/// change an object another wrote; only [`ArtifactStore::delete`] removes one (a failed run's
/// own outputs).
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Names the backend (`local`, `s3`, `minio`).
    fn kind(&self) -> &'static str;

    /// Starts writing an object; nothing is visible at `path` until [`ObjectWriter::commit`],
    /// which fails with [`StoreError::Exists`] when an object is there by then.
    async fn begin(
        &self,
        path: &WorldPath,
        mime: &str,
    ) -> Result<Box<dyn ObjectWriter>, StoreError>;

    /// Like [`ArtifactStore::begin`], for an object only its owner may read (an attachment
    /// copied from a file others could not read). Backends whose objects are never readable by
    /// other users of the machine need not override it.
    async fn begin_private(
        &self,
        path: &WorldPath,
        mime: &str,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.begin(path, mime).await
    }

    /// Whether an object is at `path`.
    async fn exists(&self, path: &WorldPath) -> Result<bool, StoreError>;

    /// Every object whose path starts with `prefix` (a world path prefix ending with `/`), in
    /// no particular order.
    async fn list(&self, prefix: &str) -> Result<Vec<WorldPath>, StoreError>;

    /// Reads an object, or `None` when there is none.
    async fn open(&self, path: &WorldPath) -> Result<Option<ByteStream>, StoreError>;

    /// The size of an object, or `None` when there is none.
    async fn size(&self, path: &WorldPath) -> Result<Option<u64>, StoreError>;

    /// Reads the bytes `start..end` of an object (`end` at most its size), or `None` when there
    /// is none. Backends read only those bytes; this default skips the ones before `start`.
    async fn open_range(
        &self,
        path: &WorldPath,
        start: u64,
        end: u64,
    ) -> Result<Option<ByteStream>, StoreError> {
        use futures_util::StreamExt;
        let Some(stream) = self.open(path).await? else { return Ok(None) };
        let mut offset = 0_u64;
        let ranged = stream.filter_map(move |chunk| {
            let piece = chunk.map(|chunk| {
                let length = chunk.len() as u64;
                let (from, to) = (start.max(offset), end.min(offset + length));
                let piece = (from < to).then(|| {
                    let (from, to) = ((from - offset) as usize, (to - offset) as usize);
                    chunk.slice(from..to)
                });
                offset += length;
                piece
            });
            std::future::ready(piece.transpose())
        });
        Ok(Some(ranged.boxed()))
    }

    /// Removes an object; removing a missing one is not an error.
    async fn delete(&self, path: &WorldPath) -> Result<(), StoreError>;

    /// A URL a processor can `PUT` the object to directly, valid for `valid_for`; `None` when the
    /// backend has no such URLs (the filesystem store).
    async fn presign_put(
        &self,
        _path: &WorldPath,
        _valid_for: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// A URL a processor can `GET` the object from, valid for `valid_for`; `None` when the
    /// backend has no such URLs.
    async fn presign_get(
        &self,
        _path: &WorldPath,
        _valid_for: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// Writes a small object in one go; fails with [`StoreError::Exists`] when one is there.
    async fn put_bytes(
        &self,
        path: &WorldPath,
        mime: &str,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        let mut writer = self.begin(path, mime).await?;
        writer.write(bytes).await?;
        writer.commit().await
    }

    /// Hashes an object as it streams; `None` when it is missing.
    async fn hash(&self, path: &WorldPath) -> Result<Option<(Cid, u64)>, StoreError> {
        use futures_util::StreamExt;
        let Some(mut stream) = self.open(path).await? else { return Ok(None) };
        let mut hasher = CidHasher::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StoreError::Io {
                operation: "read",
                path: path.to_string(),
                source,
            })?;
            hasher.update(&chunk);
        }
        Ok(Some((hasher.finalize(), hasher.size_bytes())))
    }
}

/// An object being written. Dropping it without committing leaves nothing behind.
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends a chunk.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;
    /// Makes the object visible, atomically, unless an object is already at its path
    /// ([`StoreError::Exists`]; what was written is discarded).
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
    /// Discards what was written.
    async fn abort(self: Box<Self>);
}

/// How an adapter would run a processor, decided before anything starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How it runs.
    pub runtime: Runtime,
    /// What runs, for the memo key and receipt: a pinned digest, a local image id, or `b3:` of
    /// the host binary.
    pub image_identity: String,
    /// Whether `image_identity` is a registry pin.
    pub pinned: bool,
    /// What the runtime starts: a binary path, an image reference, a URL.
    pub target: String,
    /// The platform whose pin or build was chosen, for container runtimes.
    pub platform: Option<crate::registry::Platform>,
    /// Whether the instance already holds its secrets (a container started earlier by
    /// `theory local start`), so the local environment need not have them.
    pub secrets_held: bool,
    /// Whether the instance can reach services on this machine's loopback (`127.0.0.1`): a host
    /// process can, a container on Docker's bridge network cannot. Presigned URLs of a store on
    /// loopback are handed to the processor only when it can.
    pub reaches_host_loopback: bool,
}

impl Plan {
    /// Says what runs: `pin`, `local-build` (an unpinned image) or `host-binary`.
    pub fn image_source(&self) -> &'static str {
        match (self.pinned, self.runtime) {
            (true, _) => "pin",
            (false, Runtime::Process) => "host-binary",
            (false, _) => "local-build",
        }
    }
}

/// What an instance is started with.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The run's mode.
    pub mode: Mode,
    /// Secret values to give the processor (empty in `mock` mode).
    pub secrets: Vec<(String, String)>,
    /// Names that must not reach the processor from the ambient environment.
    pub withheld: Vec<String>,
    /// The spec's `config_env` settings that are set, by name: given to the processor in every
    /// mode.
    pub config: Vec<(String, String)>,
}

/// A started processor, reachable at [`Instance::endpoint`]; stopped on drop.
#[async_trait]
pub trait Instance: Send {
    /// The processor's base URL, `http://host:port` (or `https://…` for a remote deployment).
    fn endpoint(&self) -> &str;
    /// Headers every request to the endpoint carries (a Modal proxy auth token, say); none by
    /// default.
    fn headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Stops the processor and waits for it to go.
    async fn stop(self: Box<Self>);
}

/// A place processors run: plans without side effects, then starts instances.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Which adapter this is.
    fn kind(&self) -> AdapterKind;

    /// Decides how `spec` would run in `mode`, without starting anything.
    async fn plan(
        &self,
        spec: &ProcessorSpec,
        options: &AdapterOptions,
        mode: Mode,
    ) -> Result<Plan, Failure>;

    /// Starts an instance for a plan and waits until it is healthy.
    async fn start(
        &self,
        spec: &ProcessorSpec,
        plan: &Plan,
        launch: &Launch,
    ) -> Result<Box<dyn Instance>, Failure>;
}
