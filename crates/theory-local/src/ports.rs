//! `.theory/local_ports.json`: the host port of each processor's `theory local start` container,
//! kept across restarts. Reads and writes hold a lock on a sibling file, so two commands that
//! race get distinct ports and both entries survive; writes are atomic (temp file + rename).

use std::io;
use std::net::TcpListener;
use std::path::Path;

use theory_core::json_map::LockedJsonMap;

/// The port book of a project.
#[derive(Debug, Clone)]
pub struct PortBook {
    map: LockedJsonMap,
}

impl PortBook {
    /// The book at `state/local_ports.json` (`state` is the project's `.theory/`).
    pub fn new(state: &Path) -> PortBook {
        PortBook { map: LockedJsonMap::new(state.join("local_ports.json"), "refs to ports") }
    }

    /// Where the book is.
    pub fn path(&self) -> &Path {
        self.map.path()
    }

    /// Returns the port recorded for `reference`, if any.
    pub fn get(&self, reference: &str) -> io::Result<Option<u16>> {
        Ok(self.map.read::<u16>()?.get(reference).copied())
    }

    /// Returns the port of `reference`, allocating and recording a free one the first time.
    pub fn port_for(&self, reference: &str) -> io::Result<u16> {
        self.map.update(|book| {
            if let Some(port) = book.get(reference) {
                return Ok((*port, false));
            }
            let port = loop {
                let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                if !book.values().any(|taken| *taken == port) {
                    break port;
                }
            };
            book.insert(reference.to_owned(), port);
            Ok((port, true))
        })
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
        let book = PortBook::new(folder.path()).map.read::<u16>().unwrap();
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
