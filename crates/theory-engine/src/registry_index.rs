//! The index of a project's registry files (`.theory/cache/registry-index.json`): for each
//! file, what `stat` said of it and the id it declares. A file that `stat`s the same is not
//! read to learn its id again; the registry reads it when a command uses it (and checks that it
//! still defines that id). A command on a large registry thus reads the files it uses only.
//!
//! A file is indexed only once it has been still for a second: a change within the granularity
//! of the file system's clock would otherwise leave its entry looking current. The index is a
//! cache: unreadable, damaged or unwritable, it is rebuilt or done without.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use theory_core::registry::{Document, DocumentKind, FileSource, Source, declared_id, read_spec};

/// Bump when what an entry means changes: an index of another version is ignored.
const VERSION: u32 = 1;
/// How long a file must have been left alone to be indexed.
const SETTLED: Duration = Duration::from_secs(1);

/// What `stat` says of a file that would change with its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(stat: &nix::sys::stat::FileStat) -> Stamp {
        let ns = |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Stamp {
            len: u64::try_from(stat.st_size).unwrap_or(0),
            mtime_ns: ns(stat.st_mtime, stat.st_mtime_nsec),
            ctime_ns: ns(stat.st_ctime, stat.st_ctime_nsec),
            ino: stat.st_ino,
            dev: stat.st_dev,
        }
    }

    /// Whether the file was last changed at least [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| i128::try_from(elapsed.as_nanos()).unwrap_or(i128::MAX));
        let settled_ns = i128::try_from(SETTLED.as_nanos()).unwrap_or(i128::MAX);
        self.mtime_ns.max(self.ctime_ns) + settled_ns <= now_ns
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    origin: String,
    folder: String,
    stamp: Stamp,
    id: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    files: Vec<Entry>,
}

/// Builds the documents of the project's registry files: those the index knows unchanged as
/// files to read when used, the rest read now (and indexed, when settled). `origin_of` names a
/// file as problems show it. The index is rewritten when it changed.
pub(crate) fn documents(
    listed: Vec<(PathBuf, DocumentKind)>,
    index_file: &Path,
    origin_of: impl Fn(&Path) -> String,
) -> std::io::Result<Vec<Document>> {
    let mut known: HashMap<String, Entry> =
        read_index(index_file).into_iter().map(|entry| (entry.origin.clone(), entry)).collect();
    let now = SystemTime::now();
    let mut documents = Vec::with_capacity(listed.len());
    let mut entries = Vec::with_capacity(listed.len());
    // Whether the index would hold anything else than it does: an entry gone stale, or one
    // added (a file read again that is still settling, and was not indexed, changes nothing).
    let mut changed = false;
    let mut folder = Folder::default();
    for (path, kind) in listed {
        let origin = origin_of(&path);
        let stamp = folder.stamp(&path);
        // Taken out of the index (each origin is listed once), not copied.
        let remembered = known.remove(&origin);
        match remembered {
            None => {}
            Some(entry) if Some(entry.stamp) == stamp && entry.folder == kind.folder() => {
                documents.push(Document::File(FileSource {
                    path,
                    origin,
                    kind,
                    id: entry.id.clone(),
                }));
                entries.push(entry);
                continue;
            }
            Some(_stale) => changed = true,
        }
        let text = read_spec(&path)?;
        let source = Source { origin: origin.clone(), kind, text, builtin: false };
        if let (Some(stamp), Some(id)) =
            (stamp.filter(|stamp| stamp.settled(now)), declared_id(&source))
        {
            entries.push(Entry { origin, folder: kind.folder().to_owned(), stamp, id });
            changed = true;
        }
        documents.push(Document::Text(source));
    }
    // Rewritten only when what it would hold differs (a file still settling is read each
    // time until it is indexed, without rewriting the index each time); what is left in
    // `known` are files gone.
    if changed || !known.is_empty() {
        write_index(index_file, entries);
    }
    Ok(documents)
}

/// The folder of the files being stamped, held open: each file is `stat`ed by its name in it
/// (`fstatat`, following links as `stat` does), not by walking its whole path again.
#[derive(Default)]
struct Folder {
    path: PathBuf,
    opened: Option<std::fs::File>,
}

impl Folder {
    /// The stamp of `file`, or none when it cannot be `stat`ed.
    fn stamp(&mut self, file: &Path) -> Option<Stamp> {
        let (parent, name) = (file.parent()?, file.file_name()?);
        if self.path != parent || self.opened.is_none() {
            self.path = parent.to_path_buf();
            self.opened = std::fs::File::open(parent).ok();
        }
        let stat =
            nix::sys::stat::fstatat(self.opened.as_ref()?, name, nix::fcntl::AtFlags::empty());
        stat.ok().map(|stat| Stamp::of(&stat))
    }
}

fn read_index(index_file: &Path) -> Vec<Entry> {
    let Ok(bytes) = std::fs::read(index_file) else { return Vec::new() };
    match serde_json::from_slice::<IndexFile>(&bytes) {
        Ok(index) if index.version == VERSION => index.files,
        _ => Vec::new(),
    }
}

/// Writes the index whole under a temporary name and moves it into place; only where the
/// project's `.theory/` already is (a command that reads the registry creates nothing).
fn write_index(index_file: &Path, files: Vec<Entry>) {
    let Some(cache) = index_file.parent() else { return };
    if cache.parent().is_none_or(|state| !state.is_dir()) || std::fs::create_dir_all(cache).is_err()
    {
        return;
    }
    let Ok(bytes) = serde_json::to_vec(&IndexFile { version: VERSION, files }) else { return };
    let temporary = cache.join(format!(".registry-index.{}.json", std::process::id()));
    if std::fs::write(&temporary, bytes).is_ok() && std::fs::rename(&temporary, index_file).is_err()
    {
        let _ = std::fs::remove_file(&temporary);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use theory_core::registry::{Document, Registry, list_dir};

    use super::documents;

    fn write_settled(file: &Path, text: &str, age: Duration) {
        std::fs::write(file, text).unwrap();
        let opened = std::fs::File::options().write(true).open(file).unwrap();
        opened.set_modified(SystemTime::now() - age).unwrap();
    }

    fn kinds(documents: &[Document]) -> Vec<&'static str> {
        documents
            .iter()
            .map(|document| match document {
                Document::Text(_) => "read",
                Document::File(_) => "indexed",
            })
            .collect()
    }

    #[test]
    fn settled_files_are_read_once_and_changed_ones_again() {
        let project = tempfile::tempdir().unwrap();
        let folder = project.path().join("registry/processors");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::create_dir_all(project.path().join(".theory")).unwrap();
        let index = project.path().join(".theory/cache/registry-index.json");
        // The change time is now whatever the modification time says: settle by waiting.
        write_settled(&folder.join("a.yaml"), "ref: t/a@1\n", Duration::from_mins(1));
        write_settled(&folder.join("b.yaml"), "ref: t/b@1\n", Duration::from_mins(1));
        std::thread::sleep(Duration::from_millis(1_100));
        let load = || {
            let listed = list_dir(&project.path().join("registry")).unwrap();
            documents(listed, &index, |path| path.display().to_string()).unwrap()
        };
        assert_eq!(kinds(&load()), ["read", "read"], "nothing indexed yet");
        assert_eq!(kinds(&load()), ["indexed", "indexed"], "both settled and indexed");

        // Edited in place, same size: its stamp changes and it is read again, the other not;
        // until it settles it is read every time, and then indexed again.
        write_settled(&folder.join("a.yaml"), "ref: t/c@1\n", Duration::ZERO);
        assert_eq!(kinds(&load()), ["read", "indexed"]);
        let registry = Registry::load_documents(load());
        assert!(registry.processor(&"t/c@1".parse().unwrap()).is_some(), "the new content");
        assert!(registry.processor(&"t/a@1".parse().unwrap()).is_none());
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(kinds(&load()), ["read", "indexed"]);
        assert_eq!(kinds(&load()), ["indexed", "indexed"]);

        // An indexed file is read when used, and must still define the id it was indexed by.
        let registry = Registry::load_documents(load());
        assert_eq!(registry.files_parsed(), 0);
        assert!(
            registry.processor(&"t/b@1".parse().unwrap()).is_some(),
            "{:?}",
            registry.broken("t/b@1")
        );
        assert_eq!(registry.files_parsed(), 1);

        // A damaged index is rebuilt, never trusted.
        std::fs::write(&index, "{not json").unwrap();
        assert_eq!(kinds(&load()), ["read", "read"]);
        assert_eq!(kinds(&load()), ["indexed", "indexed"]);
    }
}
