//! What a host binary is, for the memo key and the receipt: `b3:` of its bytes. Hashing a 10 MB
//! binary costs a few milliseconds, so the answer is kept in `.theory/cache/` keyed by the
//! file's inode, size, mtime and ctime; the kernel updates ctime on any change, so a stale entry
//! cannot survive a rebuild or an edit.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The file's stamp: inode, size, mtime and ctime in nanoseconds.
fn stamp(metadata: &std::fs::Metadata) -> String {
    format!(
        "{}:{}:{}.{}:{}.{}",
        metadata.ino(),
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec()
    )
}

/// Returns `b3:` + BLAKE3 of a file, streamed, with no cache.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(format!("b3:{}", hasher.finalize().to_hex()))
}

/// Binary identities remembered in one JSON file, and in memory for a process that runs many
/// runs (`theory serve`): then a run costs one `stat`.
#[derive(Debug, Clone)]
pub struct IdentityCache {
    file: Option<PathBuf>,
    /// By binary path: its stamp and identity.
    known: std::sync::Arc<std::sync::Mutex<BTreeMap<PathBuf, (String, String)>>>,
}

impl IdentityCache {
    /// Remembers identities in `file`; `None` hashes every time.
    pub fn new(file: Option<PathBuf>) -> IdentityCache {
        IdentityCache { file, known: std::sync::Arc::default() }
    }

    /// Returns the identity of `binary`, from the cache when its stamp still matches.
    pub async fn identity(&self, binary: &Path) -> std::io::Result<String> {
        let metadata = tokio::fs::metadata(binary).await?;
        let current = stamp(&metadata);
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(binary)
            .cloned();
        if let Some((stamped, identity)) = known
            && stamped == current
        {
            return Ok(identity);
        }
        let owned = binary.to_owned();
        let file = self.file.clone();
        let identity =
            tokio::task::spawn_blocking(move || identity_blocking(file.as_deref(), &owned))
                .await
                .map_err(std::io::Error::other)??;
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(binary.to_owned(), (current, identity.clone()));
        Ok(identity)
    }
}

fn identity_blocking(cache: Option<&Path>, binary: &Path) -> std::io::Result<String> {
    let stamp = stamp(&std::fs::metadata(binary)?);
    let key = binary.display().to_string();
    let mut entries: BTreeMap<String, Value> = cache
        .and_then(|file| std::fs::read(file).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let Some(entry) = entries.get(&key)
        && entry["stamp"] == stamp.as_str()
        && let Some(identity) = entry["identity"].as_str()
    {
        return Ok(identity.to_owned());
    }
    let identity = hash_file(binary)?;
    if let Some(file) = cache {
        entries.insert(key, serde_json::json!({"stamp": stamp, "identity": identity}));
        // A cache that cannot be written only costs the next run a hash.
        let _ = write_atomically(file, &serde_json::to_vec(&entries).unwrap_or_default());
    }
    Ok(identity)
}

fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = file.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(temporary, file)
}

#[cfg(test)]
mod tests {
    use super::{IdentityCache, hash_file};

    #[tokio::test]
    async fn a_rewritten_binary_gets_a_new_identity() {
        let folder = tempfile::tempdir().unwrap();
        let binary = folder.path().join("processor");
        std::fs::write(&binary, b"version one").unwrap();
        let cache = IdentityCache::new(Some(folder.path().join("cache/identities.json")));
        let first = cache.identity(&binary).await.unwrap();
        assert_eq!(first, hash_file(&binary).unwrap());
        assert_eq!(cache.identity(&binary).await.unwrap(), first, "cached");
        std::fs::write(&binary, b"version two").unwrap();
        let second = cache.identity(&binary).await.unwrap();
        assert_ne!(second, first);
        assert_eq!(second, hash_file(&binary).unwrap());
    }
}
