//! `.theory/local_ports.json`: the host port of each processor's `theory local start` container,
//! kept across restarts. Reads and writes hold a lock on a sibling file, so two commands that
//! race get distinct ports and both entries survive; writes are atomic (temp file + rename).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The port book of a project.
#[derive(Debug, Clone)]
pub struct PortBook {
    path: PathBuf,
}

impl PortBook {
    /// The book at `state/local_ports.json` (`state` is the project's `.theory/`).
    pub fn new(state: &Path) -> PortBook {
        PortBook { path: state.join("local_ports.json") }
    }

    /// Where the book is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the port recorded for `reference`, if any.
    pub fn get(&self, reference: &str) -> io::Result<Option<u16>> {
        let _lock = self.lock()?;
        Ok(self.read()?.get(reference).copied())
    }

    /// Returns the port of `reference`, allocating and recording a free one the first time.
    pub fn port_for(&self, reference: &str) -> io::Result<u16> {
        let _lock = self.lock()?;
        let mut book = self.read()?;
        if let Some(port) = book.get(reference) {
            return Ok(*port);
        }
        let port = loop {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            if !book.values().any(|taken| *taken == port) {
                break port;
            }
        };
        book.insert(reference.to_owned(), port);
        self.write(&book)?;
        Ok(port)
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

    fn read(&self) -> io::Result<BTreeMap<String, u16>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a map of refs to ports: {error}", self.path.display()),
                )
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(error) => Err(error),
        }
    }

    fn write(&self, book: &BTreeMap<String, u16>) -> io::Result<()> {
        let folder = self.path.parent().unwrap_or(Path::new("."));
        let mut text = serde_json::to_string_pretty(book).map_err(io::Error::other)?;
        text.push('\n');
        let temporary = folder.join(format!(".local_ports.{}.tmp", crate::random::random_hex(8)));
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_persist_and_differ() {
        let folder = tempfile::tempdir().unwrap();
        let book = PortBook::new(folder.path());
        let first = book.port_for("a/b@1").unwrap();
        assert_eq!(book.port_for("a/b@1").unwrap(), first);
        let other = book.port_for("a/c@1").unwrap();
        assert_ne!(first, other);
        let reopened = PortBook::new(folder.path());
        assert_eq!(reopened.get("a/b@1").unwrap(), Some(first));
    }

    #[test]
    fn racing_commands_keep_every_entry() {
        let folder = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..16)
            .map(|index| {
                let book = PortBook::new(folder.path());
                std::thread::spawn(move || book.port_for(&format!("ns/p{index}@1")).unwrap())
            })
            .collect();
        let ports: Vec<u16> = threads.into_iter().map(|thread| thread.join().unwrap()).collect();
        let book = PortBook::new(folder.path()).read().unwrap();
        assert_eq!(book.len(), 16, "an entry was lost: {book:?}");
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 16, "two refs got one port: {ports:?}");
        for (index, port) in ports.iter().enumerate() {
            assert_eq!(book[&format!("ns/p{index}@1")], *port);
        }
    }

    #[test]
    fn a_broken_book_is_an_error_not_a_reset() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("local_ports.json"), "not json").unwrap();
        let error = PortBook::new(folder.path()).port_for("a/b@1").unwrap_err();
        assert!(error.to_string().contains("local_ports.json"), "{error}");
    }
}
