//! The filesystem store: `<root>/<world path without its leading />`, written through a temporary
//! file under `<root>/.partial/` that is moved into place with `renameat2(RENAME_NOREPLACE)` (or,
//! where the file system lacks it, hard-linked), so a reader sees a whole object or none, and an
//! object is never replaced: both fail when the target exists, which makes the commit an atomic
//! create-if-absent (a plain `rename(2)` would replace silently).

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

impl FsStore {
    /// Removes the temporary files of writers whose process is gone (a killed `theory`), named
    /// `<pid>-<nonce>` under `.partial/`; returns how many.
    pub fn sweep_partial(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.root.join(PARTIAL)) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|name| name.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<i32>().ok())
            else {
                continue;
            };
            let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH);
            if gone && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// A writer for a new object; owner-only when `private`. Nothing touches the disk until the
    /// object outgrows [`SMALL`] or is committed.
    #[expect(clippy::unused_async, reason = "the store port's begin is async")]
    async fn begin_with(
        &self,
        path: &WorldPath,
        private: bool,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(FsWriter {
            path: path.clone(),
            target: self.file(path),
            temporary: self.temporary_file(),
            private,
            state: Writing::Small(Vec::new()),
        }))
    }
}

/// Creates `temporary` (and its folder) for writing; owner-only when `private`.
fn create_temporary(temporary: &Path, private: bool) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        options.mode(0o600);
    }
    match options.open(temporary) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if let Some(folder) = temporary.parent() {
                std::fs::create_dir_all(folder)?;
            }
            options.open(temporary)
        }
        opened => opened,
    }
}

/// Whether a look-up failed because nothing is there (a missing file, or a parent that is a
/// file rather than a folder).
fn is_absent(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// The error of placing an object: [`StoreError::Exists`] when something is at its path.
fn placing_error(path: &WorldPath, error: io::Error) -> StoreError {
    if error.kind() == io::ErrorKind::AlreadyExists {
        StoreError::Exists { path: path.to_string() }
    } else {
        io_error("place", path)(error)
    }
}

/// Every file under `<root>/<key>`, as world paths (files whose names are not world paths, and
/// the `.partial` folder, are skipped).
fn list_files(root: &Path, key: &str) -> io::Result<Vec<WorldPath>> {
    // The listing starts at the deepest folder the prefix names; files there are filtered by
    // the rest of the prefix.
    let (folder_key, _) = key.rsplit_once('/').unwrap_or(("", key));
    let mut found = Vec::new();
    let mut pending = vec![root.join(folder_key)];
    while let Some(folder) = pending.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if is_absent(&error) => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let full = entry.path();
            let Ok(relative) = full.strip_prefix(root) else { continue };
            let Some(relative) = relative.to_str() else { continue };
            if file_type.is_dir() {
                if relative != PARTIAL {
                    pending.push(full);
                }
            } else if relative.starts_with(key)
                && let Ok(path) = format!("/{relative}").parse::<WorldPath>()
            {
                found.push(path);
            }
        }
    }
    Ok(found)
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
        self.begin_with(path, false).await
    }

    async fn begin_private(
        &self,
        path: &WorldPath,
        _mime: &str,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.begin_with(path, true).await
    }

    /// One `stat`, made here: it takes microseconds, a hop to a blocking thread takes longer.
    async fn exists(&self, path: &WorldPath) -> Result<bool, StoreError> {
        match std::fs::symlink_metadata(self.file(path)) {
            Ok(_) => Ok(true),
            Err(error) if is_absent(&error) => Ok(false),
            Err(error) => Err(io_error("look up", path)(error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<WorldPath>, StoreError> {
        let root = self.root.clone();
        let key = prefix.trim_start_matches('/').to_owned();
        let shown = prefix.to_owned();
        tokio::task::spawn_blocking(move || list_files(&root, &key))
            .await
            .map_err(|error| StoreError::Backend(format!("list {shown}: {error}")))?
            .map_err(|source| StoreError::Io { operation: "list", path: prefix.to_owned(), source })
    }

    async fn size(&self, path: &WorldPath) -> Result<Option<u64>, StoreError> {
        match tokio::fs::metadata(self.file(path)).await {
            Ok(metadata) if metadata.is_file() => Ok(Some(metadata.len())),
            Ok(_) => Ok(None),
            Err(error) if is_absent(&error) => Ok(None),
            Err(error) => Err(io_error("look up", path)(error)),
        }
    }

    async fn open_range(
        &self,
        path: &WorldPath,
        start: u64,
        end: u64,
    ) -> Result<Option<ByteStream>, StoreError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        match tokio::fs::File::open(self.file(path)).await {
            Ok(mut file) => {
                file.seek(io::SeekFrom::Start(start)).await.map_err(io_error("seek", path))?;
                let limited = file.take(end.saturating_sub(start));
                let stream = tokio_util::io::ReaderStream::with_capacity(limited, READ_CHUNK);
                Ok(Some(stream.boxed()))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("open", path)(error)),
        }
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

    /// Whole objects (index, receipts), through the same writer as streamed ones (up to
    /// `SMALL`, 64 KiB, written and placed here at commit).
    async fn put_bytes(
        &self,
        path: &WorldPath,
        _mime: &str,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        let mut writer = self.begin_with(path, false).await?;
        writer.write(bytes).await?;
        writer.commit().await
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
/// Objects up to this size are kept in memory until committed and then written in place, in a
/// few system calls made here (microseconds; a hop to a blocking thread and back takes longer).
/// A larger one goes to a temporary file written by a blocking task as it streams.
const SMALL: usize = 64 * 1024;

/// A new object being written.
struct FsWriter {
    path: WorldPath,
    target: PathBuf,
    /// Its name under `.partial/` until it is placed.
    temporary: PathBuf,
    private: bool,
    state: Writing,
}

/// Where a new object's bytes are.
enum Writing {
    /// In memory: at most [`SMALL`] bytes, nothing on disk yet.
    Small(Vec<u8>),
    /// In the temporary file, written by a blocking task that takes the chunks (so hashing, by
    /// the caller, and writing run on two cores at once).
    Streaming {
        chunks: tokio::sync::mpsc::Sender<Bytes>,
        writing: tokio::task::JoinHandle<io::Result<()>>,
    },
    /// The temporary file is written (or its writer failed); it is there until placed.
    Written,
    /// Placed or aborted: nothing of it is left under `.partial/`.
    Over,
}

impl FsWriter {
    /// Moves the bytes so far to the temporary file (created here, so a writer dropped at any
    /// point finds it to remove) and streams the rest there.
    fn stream(&mut self, first: Vec<u8>) -> io::Result<()> {
        let mut file = create_temporary(&self.temporary, self.private)?;
        self.state = Writing::Written;
        let (chunks, mut queued) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_CHUNKS);
        let writing = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            file.write_all(&first)?;
            while let Some(chunk) = queued.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.flush()
        });
        self.state = Writing::Streaming { chunks, writing };
        Ok(())
    }

    /// Ends the writer task, if there is one, and returns how it went.
    async fn finish_writing(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.state, Writing::Written) {
            Writing::Streaming { chunks, writing } => {
                drop(chunks);
                writing.await.unwrap_or_else(|error| Err(io::Error::other(error)))
            }
            other => {
                self.state = other;
                Ok(())
            }
        }
    }

    /// Writes the bytes kept in memory to the temporary file, here.
    fn write_small(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write as _;
        let mut file = create_temporary(&self.temporary, self.private)?;
        self.state = Writing::Written;
        file.write_all(bytes)
    }
}

/// Puts the finished temporary file at its target unless something is there, atomically, and
/// leaves no temporary name behind: `renameat2(RENAME_NOREPLACE)` where the file system has it
/// (one call), else a hard link and the temporary removed. A file system with neither cannot
/// keep records write-once, and says so.
fn place(temporary: &Path, target: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        let rename =
            || renameat2(AT_FDCWD, temporary, AT_FDCWD, target, RenameFlags::RENAME_NOREPLACE);
        // The folder usually exists (a run's second output on): made only when it does not.
        let renamed = match rename() {
            Err(nix::errno::Errno::ENOENT) if temporary.exists() => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                rename()
            }
            other => other,
        };
        match renamed {
            Ok(()) => return Ok(()),
            // Not supported here: try a hard link.
            Err(
                nix::errno::Errno::EINVAL
                | nix::errno::Errno::ENOSYS
                | nix::errno::Errno::EOPNOTSUPP,
            ) => {}
            Err(errno) => {
                let _ = std::fs::remove_file(temporary);
                return Err(errno.into());
            }
        }
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let linked = std::fs::hard_link(temporary, target);
    let _ = std::fs::remove_file(temporary);
    linked.map_err(|error| match error.raw_os_error().map(nix::errno::Errno::from_raw) {
        Some(nix::errno::Errno::EPERM | nix::errno::Errno::EOPNOTSUPP) => io::Error::new(
            error.kind(),
            "this file system can neither rename without replacing nor hard-link, so it cannot keep objects write-once; put .theory/ on another one",
        ),
        _ => error,
    })
}

#[async_trait]
impl ObjectWriter for FsWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        match &mut self.state {
            Writing::Small(bytes) if bytes.len() + chunk.len() <= SMALL => {
                bytes.extend_from_slice(&chunk);
                return Ok(());
            }
            Writing::Small(bytes) => {
                let first = std::mem::take(bytes);
                self.stream(first).map_err(io_error("create", &self.path))?;
            }
            Writing::Streaming { .. } => {}
            Writing::Written | Writing::Over => {
                return Err(StoreError::Backend(format!("{}: written after commit", self.path)));
            }
        }
        let Writing::Streaming { chunks, .. } = &self.state else {
            return Err(StoreError::Backend(format!("{}: its writer is gone", self.path)));
        };
        if chunks.send(chunk).await.is_err() {
            // The writer task stopped early: its error says why.
            let failure = self.finish_writing().await.err();
            return Err(io_error("write", &self.path)(
                failure.unwrap_or_else(|| io::Error::other("the writer stopped")),
            ));
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let (temporary, target) = (self.temporary.clone(), self.target.clone());
        let placed = match std::mem::replace(&mut self.state, Writing::Over) {
            Writing::Small(bytes) => {
                self.write_small(&bytes).map_err(io_error("write", &path))?;
                place(&temporary, &target)
            }
            streaming @ Writing::Streaming { .. } => {
                self.state = streaming;
                self.finish_writing().await.map_err(io_error("write", &path))?;
                tokio::task::spawn_blocking(move || place(&temporary, &target))
                    .await
                    .unwrap_or_else(|error| Err(io::Error::other(error)))
            }
            Writing::Written | Writing::Over => {
                return Err(StoreError::Backend(format!("{path}: committed twice")));
            }
        };
        // Placed or not, the temporary name is gone (`place` removes it when it fails).
        self.state = Writing::Over;
        placed.map_err(|error| placing_error(&path, error))
    }

    async fn abort(mut self: Box<Self>) {
        let _ = self.finish_writing().await;
        if matches!(self.state, Writing::Written) {
            let _ = tokio::fs::remove_file(&self.temporary).await;
        }
        self.state = Writing::Over;
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        // Dropped without commit (a timeout, a failure): nothing may be left behind.
        if matches!(self.state, Writing::Streaming { .. } | Writing::Written) {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}
