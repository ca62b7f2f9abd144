//! Reproducible image tarballs in the `docker save` format (`docker load` reads it).
//!
//! Same inputs, same bytes, same image ID: entries are sorted, every timestamp is the epoch,
//! owners are root, modes are normalized (`0755` for executables and folders, `0644` otherwise,
//! `1777` for `/tmp`), and the config JSON has a fixed key order and `created` at the epoch. The
//! image ID is the SHA-256 of the config, so it follows from the layer's bytes and the recipe.
//! Files are streamed into the tarball while hashed; nothing is held in memory whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::dockerfile::Recipe;

/// The epoch, as every timestamp in the image.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// A file to place in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFile {
    /// The absolute path in the image, without the leading `/`.
    pub path: String,
    /// Where its bytes are on this machine.
    pub source: PathBuf,
    /// Whether it is executable.
    pub executable: bool,
}

/// The platform an image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImagePlatform {
    /// `amd64` or `arm64`.
    pub architecture: &'static str,
}

/// What [`write_archive`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// `sha256:<hex>` of the config: Docker's image ID.
    pub image_id: String,
    /// `sha256:<hex>` of the uncompressed layer.
    pub layer_diff_id: String,
    /// The tarball's size.
    pub size_bytes: u64,
}

/// Writes the one-layer image of `files` and `recipe` as a `docker save` tarball at `target`,
/// tagged `tags`. The tarball appears only when complete (temp file + rename).
pub fn write_archive(
    target: &Path,
    files: &[LayerFile],
    recipe: &Recipe,
    platform: ImagePlatform,
    tags: &[String],
) -> io::Result<Archive> {
    let folder = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let layer = tempfile::NamedTempFile::new_in(folder)?;
    let layer_hex = write_layer(layer.path(), files)?;
    let layer_size = layer.as_file().metadata()?.len();
    let config = config_json(recipe, platform, &format!("sha256:{layer_hex}"));
    let config_hex = hex(&Sha256::digest(&config));
    let manifest = serde_json::to_vec(&[Manifest {
        config: format!("{config_hex}.json"),
        repo_tags: tags.to_vec(),
        layers: vec![format!("{layer_hex}/layer.tar")],
    }])?;

    let output = tempfile::NamedTempFile::new_in(folder)?;
    let mut builder = tar::Builder::new(BufWriter::new(output.as_file().try_clone()?));
    append_folder(&mut builder, &format!("{layer_hex}/"))?;
    append_bytes(&mut builder, &format!("{config_hex}.json"), &config)?;
    append_reader(
        &mut builder,
        &format!("{layer_hex}/layer.tar"),
        layer_size,
        0o644,
        File::open(layer.path())?,
    )?;
    append_bytes(&mut builder, "manifest.json", &manifest)?;
    builder.into_inner()?.flush()?;
    output.as_file().sync_all()?;
    let size_bytes = output.as_file().metadata()?.len();
    output.persist(target).map_err(|error| error.error)?;
    Ok(Archive {
        image_id: format!("sha256:{config_hex}"),
        layer_diff_id: format!("sha256:{layer_hex}"),
        size_bytes,
    })
}

/// Writes the layer tarball and returns the hex SHA-256 of its bytes (the diff ID).
fn write_layer(target: &Path, files: &[LayerFile]) -> io::Result<String> {
    let mut entries: BTreeMap<String, Option<&LayerFile>> = BTreeMap::new();
    entries.insert("tmp/".into(), None);
    for file in files {
        let path = file.path.trim_start_matches('/');
        let mut folder = String::new();
        for segment in path.split('/').rev().skip(1).collect::<Vec<_>>().into_iter().rev() {
            folder.push_str(segment);
            folder.push('/');
            entries.entry(folder.clone()).or_insert(None);
        }
        if entries.insert(path.to_owned(), Some(file)).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("two COPY instructions write /{path}"),
            ));
        }
    }
    let hashing =
        HashingWriter { inner: BufWriter::new(File::create(target)?), hasher: Sha256::new() };
    let mut builder = tar::Builder::new(hashing);
    for (path, file) in &entries {
        match file {
            None if path == "tmp/" => {
                append_entry(
                    &mut builder,
                    path,
                    0,
                    0o1777,
                    tar::EntryType::Directory,
                    io::empty(),
                )?;
            }
            None => append_folder(&mut builder, path)?,
            Some(file) => {
                let source = File::open(&file.source).map_err(|error| {
                    io::Error::new(error.kind(), format!("{}: {error}", file.source.display()))
                })?;
                let size = source.metadata()?.len();
                let mode = if file.executable { 0o755 } else { 0o644 };
                append_reader(&mut builder, path, size, mode, source)?;
            }
        }
    }
    let mut hashing = builder.into_inner()?;
    hashing.inner.flush()?;
    hashing.inner.get_ref().sync_all()?;
    Ok(hex(&hashing.hasher.finalize()))
}

fn append_folder<W: Write>(builder: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    append_entry(builder, path, 0, 0o755, tar::EntryType::Directory, io::empty())
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> io::Result<()> {
    append_reader(builder, path, bytes.len() as u64, 0o644, bytes)
}

fn append_reader<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    mode: u32,
    reader: impl Read,
) -> io::Result<()> {
    append_entry(builder, path, size, mode, tar::EntryType::Regular, reader)
}

fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    mode: u32,
    kind: tar::EntryType,
    reader: impl Read,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    builder.append_data(&mut header, path, reader)
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Manifest {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    architecture: &'a str,
    config: RunConfig<'a>,
    created: &'a str,
    history: [History<'a>; 1],
    os: &'a str,
    rootfs: RootFs<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a [String]>,
    // Docker's shape: each exposed port maps to an empty object.
    #[expect(clippy::zero_sized_map_values, reason = "the JSON needs {} values")]
    exposed_ports: BTreeMap<&'a str, Empty>,
    labels: &'a BTreeMap<String, String>,
    working_dir: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: &'a str,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: [&'a str; 1],
}

fn config_json(recipe: &Recipe, platform: ImagePlatform, diff_id: &str) -> Vec<u8> {
    let config = ImageConfig {
        architecture: platform.architecture,
        config: RunConfig {
            env: recipe.env.iter().map(|(key, value)| format!("{key}={value}")).collect(),
            entrypoint: recipe.entrypoint.as_deref(),
            cmd: recipe.cmd.as_deref(),
            exposed_ports: recipe.exposed.iter().map(|port| (port.as_str(), Empty {})).collect(),
            labels: &recipe.labels,
            working_dir: recipe.workdir.as_deref().unwrap_or("/"),
            user: recipe.user.as_deref().unwrap_or(""),
        },
        created: EPOCH,
        history: [History { created: EPOCH, created_by: "theory processor build" }],
        os: "linux",
        rootfs: RootFs { kind: "layers", diff_ids: [diff_id] },
    };
    serde_json::to_vec(&config).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(folder: &Path) -> (Vec<LayerFile>, Recipe) {
        let binary = folder.join("app");
        std::fs::write(&binary, b"#!binary").unwrap();
        let data = folder.join("data.txt");
        std::fs::write(&data, b"hello").unwrap();
        let recipe = Recipe::parse(
            "FROM scratch\nCOPY app /app\nCOPY data.txt /srv/data/\nENV PORT=8000\nEXPOSE 8000\nENTRYPOINT [\"/app\"]\n",
        )
        .unwrap();
        let files = vec![
            LayerFile { path: "srv/data/data.txt".into(), source: data, executable: false },
            LayerFile { path: "app".into(), source: binary, executable: true },
        ];
        (files, recipe)
    }

    fn entries(path: &Path) -> Vec<(String, u32, u64)> {
        let mut archive = tar::Archive::new(File::open(path).unwrap());
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn same_inputs_give_the_same_bytes_and_id() {
        let folder = tempfile::tempdir().unwrap();
        let (files, recipe) = fixture(folder.path());
        let platform = ImagePlatform { architecture: "amd64" };
        let tags = vec!["theory-local/t/app:1".to_owned()];
        let first =
            write_archive(&folder.path().join("a.tar"), &files, &recipe, platform, &tags).unwrap();
        // Touch the sources: timestamps must not matter.
        std::fs::write(folder.path().join("data.txt"), b"hello").unwrap();
        let second =
            write_archive(&folder.path().join("b.tar"), &files, &recipe, platform, &tags).unwrap();
        assert_eq!(first, second);
        let a = std::fs::read(folder.path().join("a.tar")).unwrap();
        let b = std::fs::read(folder.path().join("b.tar")).unwrap();
        assert!(a == b, "the two tarballs differ");
        assert!(first.image_id.starts_with("sha256:") && first.image_id.len() == 71);
    }

    #[test]
    fn layer_is_sorted_with_fixed_modes_and_times() {
        let folder = tempfile::tempdir().unwrap();
        let (files, _) = fixture(folder.path());
        let layer = folder.path().join("layer.tar");
        write_layer(&layer, &files).unwrap();
        assert_eq!(
            entries(&layer),
            vec![
                ("app".to_owned(), 0o755, 0),
                ("srv/".to_owned(), 0o755, 0),
                ("srv/data/".to_owned(), 0o755, 0),
                ("srv/data/data.txt".to_owned(), 0o644, 0),
                ("tmp/".to_owned(), 0o1777, 0),
            ]
        );
    }

    #[test]
    fn a_different_file_changes_the_id() {
        let folder = tempfile::tempdir().unwrap();
        let (files, recipe) = fixture(folder.path());
        let platform = ImagePlatform { architecture: "amd64" };
        let first =
            write_archive(&folder.path().join("a.tar"), &files, &recipe, platform, &[]).unwrap();
        std::fs::write(folder.path().join("data.txt"), b"hello!").unwrap();
        let second =
            write_archive(&folder.path().join("a.tar"), &files, &recipe, platform, &[]).unwrap();
        assert_ne!(first.image_id, second.image_id);
    }

    #[test]
    fn two_copies_to_one_path_are_refused() {
        let folder = tempfile::tempdir().unwrap();
        let (mut files, _) = fixture(folder.path());
        files.push(files[0].clone());
        let error = write_layer(&folder.path().join("l.tar"), &files).unwrap_err();
        assert!(error.to_string().contains("two COPY instructions"), "{error}");
    }
}
