//! Attachments (`--attach name=path`): local files that become content-addressed inputs.
//!
//! Each file is hashed while read, stored at `/artifacts/inputs/<cid>/<basename>`, and every
//! `{"$attach":"name"}` in the inputs — at any depth, lists included — is rewritten to
//! `{"$artifact":<world path>,"cid":…,"mime":…}`. Every check happens before anything starts: a
//! reference to a name that was not attached, an attachment nothing refers to, a missing or
//! unreadable file, or one that is not a regular file (a FIFO, a device: refused before a byte
//! is read) all fail with `ERR_ATTACHMENT`. A file others cannot read is stored owner-only.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Map, Value};
use theory_protocol::{Cid, CidHasher, ErrorCode, FileSpec};
use tokio::io::AsyncReadExt;

use crate::{ArtifactStore, Failure, WorldPath};

/// The key of a reference to an attachment in the inputs.
pub const ATTACH_KEY: &str = "$attach";
/// The key of a reference to a stored artifact in the inputs.
pub const ARTIFACT_KEY: &str = "$artifact";
/// How much of a file is read at a time.
const CHUNK: usize = 256 * 1024;

/// One `--attach name=path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name `{"$attach":"name"}` refers to.
    pub name: String,
    /// The local file.
    pub file: PathBuf,
}

impl Attachment {
    /// Parses `name=path`. The name is letters, digits, `_`, `-` and `.`; the path is not empty.
    pub fn parse(text: &str) -> Result<Attachment, String> {
        let (name, file) =
            text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=PATH"))?;
        if name.is_empty()
            || !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "attachment name {name:?} must be letters, digits, _, - or . (and not empty)"
            ));
        }
        if file.is_empty() {
            return Err(format!("attachment {name} has an empty path"));
        }
        Ok(Attachment { name: name.to_owned(), file: PathBuf::from(file) })
    }
}

/// An attachment whose file was read and hashed; not stored yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAttachment {
    /// The name it is referred to by.
    pub name: String,
    /// The local file.
    pub file: PathBuf,
    /// Where it is stored: `/artifacts/inputs/<cid>/<basename>`.
    pub world_path: WorldPath,
    /// The CID of its bytes.
    pub cid: Cid,
    /// Its length.
    pub size_bytes: u64,
    /// Its media type, from the file name's extension.
    pub mime: String,
    /// Whether others on this machine could not read the file: its copy in the store is then
    /// owner-only too.
    pub private: bool,
    /// Whether it is in the store already (a `$artifact` reference to an upload), so there is
    /// no file to copy.
    pub in_store: bool,
}

impl ResolvedAttachment {
    /// The `payload.files` entry for it, without a URL (the bytes follow as `File` frames).
    pub fn file_spec(&self) -> FileSpec {
        FileSpec {
            cid: self.cid,
            size_bytes: self.size_bytes,
            mime: self.mime.clone(),
            get_url: None,
        }
    }

    /// The object that replaces `{"$attach":name}` in the inputs.
    fn reference(&self) -> Value {
        let mut object = Map::new();
        object.insert(ARTIFACT_KEY.into(), Value::String(self.world_path.to_string()));
        object.insert("cid".into(), Value::String(self.cid.to_string()));
        object.insert("mime".into(), Value::String(self.mime.clone()));
        Value::Object(object)
    }
}

fn attachment_error(message: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::Attachment, message).hint(hint)
}

/// Reads the name of an `{"$attach":…}` object: `Ok(None)` for any other value.
fn attach_name(value: &Value) -> Result<Option<&str>, Failure> {
    let Value::Object(object) = value else { return Ok(None) };
    let Some(name) = object.get(ATTACH_KEY) else { return Ok(None) };
    match (name, object.len()) {
        (Value::String(name), 1) => Ok(Some(name)),
        _ => Err(attachment_error(
            format!(
                "a {ATTACH_KEY} reference must be exactly {{\"{ATTACH_KEY}\":\"NAME\"}}, found {value}"
            ),
            "refer to an attachment as {\"$attach\":\"NAME\"} and pass --attach NAME=PATH",
        )),
    }
}

/// Collects the names referred to by `{"$attach":…}` anywhere in `inputs`.
pub fn referenced_names(inputs: &Value) -> Result<BTreeSet<String>, Failure> {
    let mut names = BTreeSet::new();
    let mut pending = vec![inputs];
    while let Some(value) = pending.pop() {
        if let Some(name) = attach_name(value)? {
            names.insert(name.to_owned());
            continue;
        }
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(object) => pending.extend(object.values()),
            _ => {}
        }
    }
    Ok(names)
}

/// Replaces every `{"$attach":name}` in `inputs` with the attachment's artifact reference.
pub fn rewrite(inputs: Value, resolved: &[ResolvedAttachment]) -> Result<Value, Failure> {
    if let Some(name) = attach_name(&inputs)? {
        let found = resolved.iter().find(|attachment| attachment.name == name);
        return found.map(ResolvedAttachment::reference).ok_or_else(|| unknown(name));
    }
    Ok(match inputs {
        Value::Array(items) => Value::Array(
            items.into_iter().map(|item| rewrite(item, resolved)).collect::<Result<_, _>>()?,
        ),
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(key, value)| Ok((key, rewrite(value, resolved)?)))
                .collect::<Result<_, Failure>>()?,
        ),
        other => other,
    })
}

fn unknown(name: &str) -> Failure {
    attachment_error(
        format!("the inputs refer to attachment {name:?}, which was not attached"),
        format!("pass --attach {name}=PATH"),
    )
}

/// Checks the attachments against the inputs' references, then reads and hashes each file.
/// Nothing is stored; a failure names the attachment and its file.
pub async fn resolve(
    attachments: &[Attachment],
    inputs: &Value,
) -> Result<Vec<ResolvedAttachment>, Failure> {
    let referenced = referenced_names(inputs)?;
    let mut given = BTreeSet::new();
    for attachment in attachments {
        if !given.insert(attachment.name.as_str()) {
            return Err(attachment_error(
                format!("attachment {:?} is given twice", attachment.name),
                "give each --attach its own name",
            ));
        }
    }
    if let Some(name) = referenced.iter().find(|name| !given.contains(name.as_str())) {
        return Err(unknown(name));
    }
    if let Some(name) = given.iter().find(|name| !referenced.contains(**name)) {
        return Err(attachment_error(
            format!("attachment {name:?} is never referred to in the inputs"),
            format!("put {{\"{ATTACH_KEY}\":\"{name}\"}} where the processor expects the file"),
        ));
    }
    let mut resolved = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        resolved.push(resolve_one(attachment).await?);
    }
    Ok(resolved)
}

async fn resolve_one(attachment: &Attachment) -> Result<ResolvedAttachment, Failure> {
    let file = attachment.file.clone();
    let unreadable = |reason: String| {
        attachment_error(
            format!("attachment {}: cannot read {}: {reason}", attachment.name, file.display()),
            "attach a readable regular file",
        )
    };
    let basename = file
        .file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .ok_or_else(|| unreadable("it has no file name of UTF-8 characters".into()))?;
    let hashed = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || hash_file(&file))
            .await
            .map_err(|error| unreadable(error.to_string()))?
    };
    let (cid, size_bytes, private) = hashed.map_err(|error| unreadable(error.to_string()))?;
    let world_path: WorldPath =
        format!("/artifacts/inputs/{cid}/{basename}").parse().map_err(|error| {
            attachment_error(
                format!("attachment {}: {error}", attachment.name),
                "rename the file to a plain name such as photo.jpg",
            )
        })?;
    Ok(ResolvedAttachment {
        name: attachment.name.clone(),
        file,
        world_path,
        cid,
        size_bytes,
        mime: mime_of(&basename),
        private,
        in_store: false,
    })
}

/// The inputs stored earlier that `inputs` refer to as `{"$artifact":path,"cid":…,"mime":…}`
/// (an upload through the API, or an attachment of an earlier run), besides those `attached`
/// made. Each must name its own CID's folder, `/artifacts/inputs/<cid>/<name>`, and be in the
/// store; the bytes were hashed when they were stored, and the processor checks them again.
pub async fn stored_references(
    inputs: &Value,
    attached: &[ResolvedAttachment],
    store: &dyn ArtifactStore,
) -> Result<Vec<ResolvedAttachment>, Failure> {
    let mut found: Vec<ResolvedAttachment> = Vec::new();
    let mut pending = vec![inputs];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(object) if object.contains_key(ARTIFACT_KEY) => {
                let reference = stored_reference(value)?;
                let known =
                    attached.iter().chain(&found).any(|other| other.world_path == reference.0);
                if !known {
                    found.push(in_store(reference, store).await?);
                }
            }
            Value::Object(object) => pending.extend(object.values()),
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    Ok(found)
}

/// The path, CID and media type of a `$artifact` reference, checked.
fn stored_reference(value: &Value) -> Result<(WorldPath, Cid, Option<String>), Failure> {
    let bad = |why: &str| {
        attachment_error(
            format!("the {ARTIFACT_KEY} reference {value} {why}"),
            "use the object POST /v1/uploads answered, or --attach NAME=PATH",
        )
    };
    let Value::Object(object) = value else { return Err(bad("is not an object")) };
    if object
        .keys()
        .any(|key| !matches!(key.as_str(), ARTIFACT_KEY | "cid" | "mime" | "size_bytes"))
    {
        return Err(bad("has keys other than $artifact, cid, mime and size_bytes"));
    }
    let path: WorldPath = object
        .get(ARTIFACT_KEY)
        .and_then(Value::as_str)
        .and_then(|path| path.parse().ok())
        .ok_or_else(|| bad("does not name a world path"))?;
    let cid: Cid = object
        .get("cid")
        .and_then(Value::as_str)
        .and_then(|cid| cid.parse().ok())
        .ok_or_else(|| bad("has no valid cid"))?;
    let rest = path
        .as_str()
        .strip_prefix(&format!("/artifacts/inputs/{cid}/"))
        .ok_or_else(|| bad("is not in /artifacts/inputs/<its cid>/"))?;
    if rest.is_empty() || rest.contains('/') {
        return Err(bad("is not a file directly in its CID's folder"));
    }
    let mime = match object.get("mime") {
        None => None,
        Some(Value::String(mime)) => Some(mime.clone()),
        Some(_) => return Err(bad("has a mime that is not a string")),
    };
    Ok((path, cid, mime))
}

async fn in_store(
    (world_path, cid, mime): (WorldPath, Cid, Option<String>),
    store: &dyn ArtifactStore,
) -> Result<ResolvedAttachment, Failure> {
    let size_bytes = store.size(&world_path).await?.ok_or_else(|| {
        attachment_error(
            format!("the inputs refer to {world_path}, which is not in the store"),
            "upload the file first (POST /v1/uploads), or attach it with --attach NAME=PATH",
        )
    })?;
    let name = world_path.as_str().rsplit('/').next().unwrap_or_default().to_owned();
    Ok(ResolvedAttachment {
        mime: mime.unwrap_or_else(|| mime_of(&name)),
        name,
        file: PathBuf::new(),
        world_path,
        cid,
        size_bytes,
        private: false,
        in_store: true,
    })
}

/// The media type of a file name, from its extension; `application/octet-stream` when unknown.
pub fn mime_of(file_name: &str) -> String {
    mime_guess::from_path(file_name).first_or_octet_stream().essence_str().to_owned()
}

/// Hashes a regular file (anything else is refused before a byte is read); says too whether
/// others could read it.
fn hash_file(path: &Path) -> std::io::Result<(Cid, u64, bool)> {
    let mut file = crate::files::open_regular(path)?;
    let private = !crate::files::world_readable(&file)?;
    let mut hasher = CidHasher::new();
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok((hasher.finalize(), hasher.size_bytes(), private))
}

/// Stores each attachment at its world path, streaming and hashing again: a file that changed
/// since it was resolved is refused and nothing of it stays. The path names the CID, so an
/// attachment already there (stored by an earlier run) holds these very bytes and is kept as
/// it is; `theory verify` re-hashes it.
pub async fn store_all(
    store: &dyn ArtifactStore,
    resolved: &[ResolvedAttachment],
) -> Result<(), Failure> {
    for attachment in resolved {
        store_one(store, attachment).await?;
    }
    Ok(())
}

async fn store_one(
    store: &dyn ArtifactStore,
    attachment: &ResolvedAttachment,
) -> Result<(), Failure> {
    let changed = || {
        attachment_error(
            format!(
                "attachment {}: {} changed while it was read",
                attachment.name,
                attachment.file.display()
            ),
            "attach a file nothing else is writing",
        )
    };
    if attachment.in_store || store.exists(&attachment.world_path).await? {
        return Ok(());
    }
    let file = crate::files::open_regular(&attachment.file).map_err(|_| changed())?;
    let mut file = tokio::fs::File::from_std(file);
    let mut writer = if attachment.private {
        store.begin_private(&attachment.world_path, &attachment.mime).await?
    } else {
        store.begin(&attachment.world_path, &attachment.mime).await?
    };
    let mut hasher = CidHasher::new();
    loop {
        let mut buffer = vec![0; CHUNK];
        let Ok(read) = file.read(&mut buffer).await else {
            writer.abort().await;
            return Err(changed());
        };
        if read == 0 {
            break;
        }
        buffer.truncate(read);
        hasher.update(&buffer);
        if let Err(error) = writer.write(Bytes::from(buffer)).await {
            writer.abort().await;
            return Err(error.into());
        }
    }
    if hasher.finalize() != attachment.cid || hasher.size_bytes() != attachment.size_bytes {
        writer.abort().await;
        return Err(changed());
    }
    match writer.commit().await {
        // Another run stored the same bytes at the same path in the meantime.
        Ok(()) | Err(crate::StoreError::Exists { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The `payload.files` of a run, by world path.
pub fn file_specs(resolved: &[ResolvedAttachment]) -> BTreeMap<String, FileSpec> {
    resolved
        .iter()
        .map(|attachment| (attachment.world_path.to_string(), attachment.file_spec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Attachment, ResolvedAttachment, referenced_names, rewrite};

    fn resolved(name: &str) -> ResolvedAttachment {
        let cid = theory_protocol::Cid::of(name.as_bytes());
        ResolvedAttachment {
            name: name.into(),
            file: format!("{name}.png").into(),
            world_path: format!("/artifacts/inputs/{cid}/{name}.png").parse().unwrap(),
            cid,
            size_bytes: 1,
            mime: "image/png".into(),
            private: false,
            in_store: false,
        }
    }

    #[test]
    fn references_are_rewritten_at_any_depth_and_inside_lists() {
        let inputs = json!({"a": {"$attach": "one"}, "deep": [[{"x": {"$attach": "two"}}], {"$attach": "one"}], "n": 3});
        let names: Vec<String> = referenced_names(&inputs).unwrap().into_iter().collect();
        assert_eq!(names, ["one", "two"]);
        let (one, two) = (resolved("one"), resolved("two"));
        let rewritten = rewrite(inputs, &[one.clone(), two.clone()]).unwrap();
        let reference = |attachment: &ResolvedAttachment| json!({"$artifact": attachment.world_path.to_string(), "cid": attachment.cid.to_string(), "mime": "image/png"});
        assert_eq!(
            rewritten,
            json!({"a": reference(&one), "deep": [[{"x": reference(&two)}], reference(&one)], "n": 3})
        );
    }

    #[test]
    fn malformed_references_and_unknown_names_are_refused() {
        assert!(referenced_names(&json!({"$attach": 3})).is_err());
        assert!(referenced_names(&json!([{"$attach": "a", "extra": 1}])).is_err());
        assert!(rewrite(json!({"$attach": "ghost"}), &[resolved("one")]).is_err());
    }

    #[test]
    fn attach_flags_parse_name_and_path() {
        let parsed = Attachment::parse("photo=./pics/a=b.jpg").unwrap();
        assert_eq!(
            (parsed.name.as_str(), parsed.file.to_str().unwrap()),
            ("photo", "./pics/a=b.jpg")
        );
        for bad in ["photo", "=x", "bad name=x", "photo="] {
            assert!(Attachment::parse(bad).is_err(), "{bad}");
        }
    }
}
