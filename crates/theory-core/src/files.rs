//! Files users name (`--inputs-file`, `--attach`, the YAML of `registry/`), opened so that a
//! hostile or careless one cannot hang a command or fill its memory: a FIFO, a device or a
//! folder is refused before a byte is read (opened with `O_NONBLOCK`, so even opening a FIFO
//! cannot wait for a writer), and whole-file reads stop at a size limit.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// The default limit on a run's inputs, in bytes (64 MiB); `THEORY_MAX_INPUTS_BYTES` changes it.
pub const DEFAULT_MAX_INPUTS_BYTES: u64 = 64 * 1024 * 1024;
/// The limit on one registry file, in bytes (4 MiB: a spec is a page of YAML).
pub const MAX_SPEC_BYTES: u64 = 4 * 1024 * 1024;

/// Opens `path` for reading if it is a regular file (a symbolic link is followed); refuses
/// anything else with [`io::ErrorKind::InvalidInput`], without blocking.
pub fn open_regular(path: &Path) -> io::Result<File> {
    open_regular_sized(path).map(|(file, _)| file)
}

/// [`open_regular`], with the file's size when it was opened.
fn open_regular_sized(path: &Path) -> io::Result<(File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits() | nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)?;
    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a folder"
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&kind) {
            "a FIFO (named pipe)"
        } else if std::os::unix::fs::FileTypeExt::is_socket(&kind) {
            "a socket"
        } else {
            "a device"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    Ok((file, metadata.len()))
}

/// Whether others on this machine may read the file (its mode has the world-read bit).
pub fn world_readable(file: &File) -> io::Result<bool> {
    Ok(file.metadata()?.mode() & 0o004 != 0)
}

/// Reads a whole regular file of at most `max_bytes`; a larger one is refused with
/// [`io::ErrorKind::FileTooLarge`] after reading no more than `max_bytes + 1` bytes.
pub fn read_regular_capped(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    // The size it has now sizes the buffer: one read for the bytes, one to see the end.
    let (file, size) = open_regular_sized(path)?;
    if size > max_bytes {
        return Err(too_large(max_bytes));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(bytes)
}

fn too_large(max_bytes: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("it is larger than the limit of {max_bytes} bytes"),
    )
}

/// Reads `reader` to its end, refusing more than `max_bytes` ([`io::ErrorKind::FileTooLarge`]).
pub fn read_capped(reader: impl Read, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::{open_regular, read_capped, read_regular_capped};

    #[test]
    fn refuses_what_is_not_a_regular_file_without_blocking() {
        let folder = tempfile::tempdir().unwrap();
        let fifo = folder.path().join("pipe.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Opening a FIFO for reading without O_NONBLOCK would wait for a writer forever.
        let refused = open_regular(&fifo).unwrap_err();
        assert!(refused.to_string().contains("FIFO"), "{refused}");
        assert!(open_regular(folder.path()).unwrap_err().to_string().contains("folder"));
        assert!(open_regular("/dev/urandom".as_ref()).unwrap_err().to_string().contains("device"));
    }

    #[test]
    fn reads_stop_at_the_limit() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("inputs.json");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_regular_capped(&file, 10).unwrap(), b"0123456789");
        let refused = read_regular_capped(&file, 9).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::FileTooLarge);
        // An endless reader is cut off after the limit, not read to its (never) end.
        let endless = std::io::repeat(b'x');
        assert!(read_capped(endless, 1024).is_err());
    }
}
