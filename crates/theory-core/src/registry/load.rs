//! Reading registry files: from a folder on disk or from text built into the binary, with
//! errors that name the file and the key.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::files::MAX_SPEC_BYTES;

/// What kind of document a file holds, by the folder it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// `processors/`.
    Processor,
    /// `schemas/`.
    Schema,
    /// `policies/`.
    Policy,
    /// `prompts/`.
    Prompt,
}

/// One registry file's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// A path on disk, or `builtin:processors/x.yaml` for embedded files.
    pub origin: String,
    /// The kind of document.
    pub kind: DocumentKind,
    /// The YAML text.
    pub text: String,
    /// Whether it is built into the binary (a project file with the same id replaces it).
    pub builtin: bool,
}

/// A registry file on disk whose id is known without reading it (from an index of the
/// registry), read when a command uses it.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// The file.
    pub path: PathBuf,
    /// How problems name it (`registry/processors/x.yaml`).
    pub origin: String,
    /// The kind of document.
    pub kind: DocumentKind,
    /// The id it declared when it was indexed.
    pub id: String,
}

/// One registry document to load: its text, or a file whose id is known.
#[derive(Debug, Clone)]
pub enum Document {
    /// Text in memory (built in, or read).
    Text(Source),
    /// A file read when it is used.
    File(FileSource),
}

impl DocumentKind {
    /// The folder of `registry/` that holds this kind.
    pub fn folder(self) -> &'static str {
        match self {
            DocumentKind::Processor => "processors",
            DocumentKind::Schema => "schemas",
            DocumentKind::Policy => "policies",
            DocumentKind::Prompt => "prompts",
        }
    }
}

/// A problem in one registry file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {}{message}", key.as_ref().map(|key| format!("key {key}: ")).unwrap_or_default())]
pub struct RegistryError {
    /// The file.
    pub origin: String,
    /// The key path, such as `image.platforms.amd64`, when one is to blame.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl RegistryError {
    pub(crate) fn new(
        origin: &str,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> RegistryError {
        RegistryError {
            origin: origin.to_owned(),
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Parses one document, naming the key on failure.
pub(crate) fn parse<T: DeserializeOwned>(source: &Source) -> Result<T, RegistryError> {
    let value: Value = serde_saphyr::from_str(&source.text).map_err(|error| {
        RegistryError::new(&source.origin, None, format!("not valid YAML: {error}"))
    })?;
    if !value.is_object() {
        return Err(RegistryError::new(&source.origin, None, "expected a mapping of keys"));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let key = (path != ".").then_some(path);
        RegistryError::new(&source.origin, key.as_deref(), error.into_inner().to_string())
    })
}

/// Reads every `*.yaml`/`*.yml` under `root/processors`, `root/schemas`, `root/policies` and
/// `root/prompts`,
/// in a stable order.
pub fn sources_from_dir(root: &Path) -> std::io::Result<Vec<Source>> {
    list_dir(root)?
        .into_iter()
        .map(|(file, kind)| {
            let text = read_spec(&file)?;
            Ok(Source { origin: file.display().to_string(), kind, text, builtin: false })
        })
        .collect()
}

/// Every `*.yaml`/`*.yml` file under `root`'s four folders with its kind, in the order
/// [`sources_from_dir`] reads them, without reading any.
pub fn list_dir(root: &Path) -> std::io::Result<Vec<(PathBuf, DocumentKind)>> {
    let mut listed = Vec::new();
    for (folder, kind) in [
        ("processors", DocumentKind::Processor),
        ("schemas", DocumentKind::Schema),
        ("policies", DocumentKind::Policy),
        ("prompts", DocumentKind::Prompt),
    ] {
        let mut files = Vec::new();
        collect_yaml(&root.join(folder), &mut files)?;
        files.sort();
        listed.extend(files.into_iter().map(|file| (file, kind)));
    }
    Ok(listed)
}

/// Reads one registry file: a regular file of at most [`MAX_SPEC_BYTES`] of UTF-8 (a FIFO or
/// a device named `x.yaml` is refused at once, never waited on); the error names the file.
pub fn read_spec(file: &Path) -> std::io::Result<String> {
    let named = |error: std::io::Error| {
        std::io::Error::new(error.kind(), format!("{}: {error}", file.display()))
    };
    let bytes = crate::files::read_regular_capped(file, MAX_SPEC_BYTES).map_err(named)?;
    String::from_utf8(bytes).map_err(|_| {
        named(std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text"))
    })
}

fn collect_yaml(folder: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        // The kind from the folder listing (no `stat` per file); a link is followed.
        let kind = entry.file_type()?;
        let folder = kind.is_dir() || (kind.is_symlink() && path.is_dir());
        if folder {
            collect_yaml(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml")
        {
            files.push(path);
        }
    }
    Ok(())
}
