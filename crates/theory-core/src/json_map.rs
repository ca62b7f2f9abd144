//! A JSON map of names to records kept in one file of `.theory/` (the port book, the Modal
//! deployments): every read and change holds a lock on a sibling `.lock` file, so commands that
//! race see each other's entries, and a change replaces the file atomically (temp file + rename).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One locked JSON map file.
#[derive(Debug, Clone)]
pub struct LockedJsonMap {
    path: PathBuf,
    what: &'static str,
}

impl LockedJsonMap {
    /// The map at `path`, holding `what` (for the error when the file is not such a map).
    pub fn new(path: PathBuf, what: &'static str) -> LockedJsonMap {
        LockedJsonMap { path, what }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole map (empty when the file does not exist yet).
    pub fn read<V: DeserializeOwned>(&self) -> io::Result<BTreeMap<String, V>> {
        let _lock = self.lock()?;
        self.read_unlocked()
    }

    /// Changes the map under the lock: `change` returns its answer and whether it changed the
    /// map, which is then written back.
    pub fn update<V, T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, V>) -> io::Result<(T, bool)>,
    ) -> io::Result<T>
    where
        V: Serialize + DeserializeOwned,
    {
        let _lock = self.lock()?;
        let mut map = self.read_unlocked()?;
        let (answer, changed) = change(&mut map)?;
        if changed {
            self.write(&map)?;
        }
        Ok(answer)
    }

    fn lock(&self) -> io::Result<File> {
        if let Some(folder) = self.path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("json.lock"))?;
        lock.lock()?;
        Ok(lock)
    }

    fn read_unlocked<V: DeserializeOwned>(&self) -> io::Result<BTreeMap<String, V>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a map of {}: {error}", self.path.display(), self.what),
                )
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(error) => Err(error),
        }
    }

    fn write<V: Serialize>(&self, map: &BTreeMap<String, V>) -> io::Result<()> {
        let folder = self.path.parent().unwrap_or(Path::new("."));
        let mut text = serde_json::to_string_pretty(map).map_err(io::Error::other)?;
        text.push('\n');
        let name = self.path.file_name().and_then(|name| name.to_str()).unwrap_or("map");
        let temporary = folder.join(format!(".{name}.{}.tmp", crate::ids::new_execution_id()));
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    }
}
