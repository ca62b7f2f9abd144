//! The build context of a Dockerfile the Docker Engine builds (anything beyond the `FROM
//! scratch` subset): the context folder and any extra files as one tarball, written the same way
//! every time — entries in name order, owner 0:0, every timestamp set to `SOURCE_DATE_EPOCH` —
//! so a `COPY` layer depends only on the bytes copied. Hidden entries (`.git`, `.env`, `.theory`…),
//! caches, `target/` and virtual environments are left out ([`left_out`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Whether an entry of a build context is left out of what is sent or copied: hidden entries
/// (`.git`, `.env`, `.theory`, …: secrets and state stay home), caches, `target/` and virtual
/// environments.
pub fn left_out(name: &str) -> bool {
    name.starts_with('.') || ["target", "__pycache__", "venv", "node_modules"].contains(&name)
}

/// A file added to the context that is not in its folder.
#[derive(Debug, Clone)]
pub enum ExtraFile {
    /// Bytes held in memory (small files: the SDK, a requirements list).
    Bytes {
        /// Its path in the context.
        path: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A file on disk, streamed (wheels).
    Disk {
        /// Its path in the context.
        path: String,
        /// Where it is.
        source: PathBuf,
    },
}

/// Writes the context tarball to `output`; returns its size in bytes.
pub fn write_context(
    folder: &Path,
    extras: &[ExtraFile],
    epoch: u64,
    output: &Path,
) -> io::Result<u64> {
    let partial = output.with_extension("tar.part");
    let written = write_partial(folder, extras, epoch, &partial);
    match written {
        Ok(()) => {
            std::fs::rename(&partial, output)?;
            Ok(std::fs::metadata(output)?.len())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

fn write_partial(
    folder: &Path,
    extras: &[ExtraFile],
    epoch: u64,
    partial: &Path,
) -> io::Result<()> {
    let mut files = Vec::new();
    collect(folder, folder, &mut files)?;
    files.sort();
    let mut builder = tar::Builder::new(BufWriter::new(File::create(partial)?));
    for relative in &files {
        let source = folder.join(relative);
        let mode = std::fs::metadata(&source)?.permissions().mode();
        append(
            &mut builder,
            relative,
            &mut File::open(&source)?,
            std::fs::metadata(&source)?.len(),
            mode,
            epoch,
        )?;
    }
    for extra in extras {
        match extra {
            ExtraFile::Bytes { path, bytes } => {
                append(
                    &mut builder,
                    path,
                    &mut bytes.as_slice(),
                    bytes.len() as u64,
                    0o644,
                    epoch,
                )?;
            }
            ExtraFile::Disk { path, source } => {
                let size = std::fs::metadata(source)?.len();
                append(&mut builder, path, &mut File::open(source)?, size, 0o644, epoch)?;
            }
        }
    }
    let mut writer = builder.into_inner()?;
    writer.flush()?;
    writer.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()
}

fn append(
    builder: &mut tar::Builder<BufWriter<File>>,
    path: &str,
    data: &mut dyn io::Read,
    size: u64,
    mode: u32,
    epoch: u64,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(if mode & 0o111 == 0 { 0o644 } else { 0o755 });
    header.set_mtime(epoch);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, data)
}

/// Every regular file under `folder`, as paths relative to `root` with `/` separators.
fn collect(root: &Path, folder: &Path, files: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name();
        if left_out(&name.to_string_lossy()) {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect(root, &path, files)?;
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).map_err(io::Error::other)?;
            files.push(relative.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// The images a Dockerfile builds `FROM` or copies `--from`, in order: not `scratch`, not an
/// earlier stage's name or number.
pub fn base_images(dockerfile: &str) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut bases = Vec::new();
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((keyword, rest)) = words.split_first() else { continue };
        if keyword.eq_ignore_ascii_case("COPY") {
            let from = rest.iter().find_map(|word| word.strip_prefix("--from="));
            if let Some(image) = from {
                let stage = stages.iter().any(|stage| stage.eq_ignore_ascii_case(image))
                    || image.parse::<usize>().is_ok();
                if !stage && !bases.iter().any(|base| base == image) {
                    bases.push(image.to_owned());
                }
            }
            continue;
        }
        if !keyword.eq_ignore_ascii_case("FROM") {
            continue;
        }
        let image = rest.iter().find(|word| !word.starts_with("--"));
        if let Some(image) = image {
            let known = stages.iter().any(|stage| stage.eq_ignore_ascii_case(image));
            if !known && !image.eq_ignore_ascii_case("scratch") {
                bases.push((*image).to_owned());
            }
        }
        if let Some(position) = rest.iter().position(|word| word.eq_ignore_ascii_case("AS"))
            && let Some(stage) = rest.get(position + 1)
        {
            stages.push((*stage).to_owned());
        }
    }
    bases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_skip_scratch_and_earlier_stages() {
        let dockerfile = "FROM --platform=linux/amd64 theory-base/python:3.11 AS build\nRUN x\nFROM build\nCOPY --from=build /a /b\nCOPY --from=0 /a /b\nCOPY --from=tools:1 /t /t\nFROM scratch\nfrom debian@sha256:abc\n";
        assert_eq!(
            base_images(dockerfile),
            ["theory-base/python:3.11", "tools:1", "debian@sha256:abc"]
        );
    }

    #[test]
    fn the_same_context_gives_the_same_bytes_and_leaves_caches_out() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("provider.py"), "print(1)\n").unwrap();
        std::fs::create_dir_all(folder.path().join("__pycache__")).unwrap();
        std::fs::write(folder.path().join("__pycache__/provider.pyc"), "x").unwrap();
        let extras = [ExtraFile::Bytes {
            path: ".theory-sdk/requirements.txt".into(),
            bytes: b"blake3\n".to_vec(),
        }];
        let out = tempfile::tempdir().unwrap();
        let first = out.path().join("a.tar");
        let second = out.path().join("b.tar");
        write_context(folder.path(), &extras, 1, &first).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(folder.path().join("provider.py"), "print(1)\n").unwrap();
        write_context(folder.path(), &extras, 1, &second).unwrap();
        assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
        let mut archive = tar::Archive::new(File::open(&first).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["provider.py", ".theory-sdk/requirements.txt"]);
    }
}
