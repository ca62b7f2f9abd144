//! The filesystem store: `<root>/<world path without its leading />`, written through a temporary
//! file that is renamed into place, so a reader sees a whole object or none.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use theory_core::{ArtifactStore, ByteStream, ObjectWriter, StoreError, WorldPath};

/// Folder under the root for objects being written; never a world path (facets are
/// `artifacts` and `streams`).
const PARTIAL: &str = ".partial";
/// Read size when streaming an object out.
const READ_CHUNK: usize = 256 * 1024;

/// Artifacts as files under a root folder (by default `.theory/artifacts/`).
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Keeps objects under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> FsStore {
        FsStore { root: root.into() }
    }

    /// Returns where an object's file is.
    pub fn file(&self, path: &WorldPath) -> PathBuf {
        self.root.join(path.key())
    }

    /// A fresh name under `.partial/` for an object being written.
    fn temporary_file(&self) -> PathBuf {
        let mut nonce = [0u8; 8];
        let _ = getrandom::fill(&mut nonce);
        self.root.join(PARTIAL).join(format!(
            "{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(nonce)
        ))
    }
}

fn io_error(
    operation: &'static str,
    path: &WorldPath,
) -> impl FnOnce(io::Error) -> StoreError + use<> {
    let path = path.to_string();
    move |source| StoreError::Io { operation, path, source }
}

#[async_trait]
impl ArtifactStore for FsStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn begin(
        &self,
        path: &WorldPath,
        _mime: &str,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let target = self.file(path);
        tokio::fs::create_dir_all(self.root.join(PARTIAL))
            .await
            .map_err(io_error("create folder for", path))?;
        let temporary = self.temporary_file();
        let file = tokio::fs::File::create(&temporary).await.map_err(io_error("create", path))?;
        let file = file.into_std().await;
        Ok(Box::new(FsWriter::start(path.clone(), target, temporary, file)))
    }

    async fn open(&self, path: &WorldPath) -> Result<Option<ByteStream>, StoreError> {
        match tokio::fs::File::open(self.file(path)).await {
            Ok(file) => {
                let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK);
                Ok(Some(stream.boxed()))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("open", path)(error)),
        }
    }

    /// Small objects (index, receipts) in one blocking task: one thread hop, not one per step.
    async fn put_bytes(
        &self,
        path: &WorldPath,
        _mime: &str,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        let target = self.file(path);
        let temporary = self.temporary_file();
        let written = tokio::task::spawn_blocking(move || {
            if let Some(folder) = temporary.parent() {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(&temporary, &bytes)?;
            let placed = target
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::rename(&temporary, &target));
            if placed.is_err() {
                let _ = std::fs::remove_file(&temporary);
            }
            placed
        })
        .await
        .map_err(|error| StoreError::Backend(format!("{path}: {error}")))?;
        written.map_err(io_error("write", path))
    }

    async fn delete(&self, path: &WorldPath) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.file(path)).await {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(io_error("remove", path)(error))
            }
            _ => Ok(()),
        }
    }
}

/// Chunks queued for the writer thread: enough to keep it busy while the caller hashes.
const QUEUED_CHUNKS: usize = 8;

/// A file being written under `.partial/`. Chunks go to a blocking task that writes them, so
/// hashing (the caller) and writing run on two cores at once.
struct FsWriter {
    path: WorldPath,
    target: PathBuf,
    temporary: Option<PathBuf>,
    chunks: Option<tokio::sync::mpsc::Sender<Bytes>>,
    writing: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl FsWriter {
    fn start(
        path: WorldPath,
        target: PathBuf,
        temporary: PathBuf,
        file: std::fs::File,
    ) -> FsWriter {
        let (chunks, mut queued) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_CHUNKS);
        let writing = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut file = file;
            while let Some(chunk) = queued.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.flush()
        });
        FsWriter {
            path,
            target,
            temporary: Some(temporary),
            chunks: Some(chunks),
            writing: Some(writing),
        }
    }

    /// Ends the writer task and returns how it went.
    async fn finish_writing(&mut self) -> io::Result<()> {
        self.chunks.take();
        match self.writing.take() {
            Some(writing) => writing.await.unwrap_or_else(|error| Err(io::Error::other(error))),
            None => Ok(()),
        }
    }
}

async fn place(temporary: &Path, target: &Path) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::rename(temporary, target).await
}

#[async_trait]
impl ObjectWriter for FsWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let path = self.path.clone();
        let Some(chunks) = &self.chunks else {
            return Err(StoreError::Backend(format!("{path}: written after commit")));
        };
        if chunks.send(chunk).await.is_err() {
            // The writer task stopped early: its error says why.
            let failure = self.finish_writing().await.err();
            return Err(io_error("write", &path)(
                failure.unwrap_or_else(|| io::Error::other("the writer stopped")),
            ));
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.finish_writing().await.map_err(io_error("write", &path))?;
        let temporary = self
            .temporary
            .take()
            .ok_or_else(|| StoreError::Backend(format!("{path}: committed twice")))?;
        let placed = place(&temporary, &self.target).await;
        if placed.is_err() {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
        placed.map_err(io_error("rename into place", &path))
    }

    async fn abort(mut self: Box<Self>) {
        let _ = self.finish_writing().await;
        if let Some(temporary) = self.temporary.take() {
            let _ = tokio::fs::remove_file(temporary).await;
        }
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        // Dropped without commit (a timeout, a failure): nothing may be left behind.
        if let Some(temporary) = self.temporary.take() {
            let _ = std::fs::remove_file(temporary);
        }
    }
}
