//! Input files: received as `File` frames after `RunOpen`, or fetched from their `get_url`;
//! either way written to the run's scratch folder while hashed, then verified.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Stream, StreamExt};
use theory_protocol::{CidHasher, ErrorCode, FileSpec, Frame};
use tokio::io::AsyncWriteExt;

use crate::run::Run;
use crate::{InputFile, ProcessorError};

fn integrity(message: impl Into<String>) -> ProcessorError {
    ProcessorError::new(ErrorCode::InputIntegrity, message)
}

/// A file being written while its bytes arrive.
struct Incoming {
    world_path: String,
    spec: FileSpec,
    path: PathBuf,
    file: tokio::fs::File,
    hasher: CidHasher,
}

impl Incoming {
    async fn open(
        run: &Run,
        world_path: String,
        spec: FileSpec,
    ) -> Result<Incoming, ProcessorError> {
        let path = local_path(run, &world_path)?;
        let file = tokio::fs::File::create(&path).await?;
        Ok(Incoming { world_path, spec, path, file, hasher: CidHasher::new() })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), ProcessorError> {
        if self.hasher.size_bytes() + chunk.len() as u64 > self.spec.size_bytes {
            return Err(integrity(format!(
                "input file {} is longer than its declared {} bytes",
                self.world_path, self.spec.size_bytes
            )));
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.hasher.size_bytes() == self.spec.size_bytes
    }

    async fn finish(mut self) -> Result<InputFile, ProcessorError> {
        self.file.flush().await?;
        if !self.is_complete() {
            return Err(integrity(format!(
                "input file {} has {} bytes, declared {}",
                self.world_path,
                self.hasher.size_bytes(),
                self.spec.size_bytes
            )));
        }
        let cid = self.hasher.finalize();
        if cid != self.spec.cid {
            return Err(integrity(format!(
                "input file {} has CID {cid}, declared {}",
                self.world_path, self.spec.cid
            )));
        }
        Ok(InputFile {
            world_path: self.world_path,
            path: self.path,
            cid,
            size_bytes: self.spec.size_bytes,
            mime: self.spec.mime,
        })
    }
}

/// Picks a file name in the run's scratch folder that keeps the world path's base name readable.
fn local_path(run: &Run, world_path: &str) -> Result<PathBuf, ProcessorError> {
    let inputs = run.scratch_dir()?.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    let base: String = world_path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    let count = std::fs::read_dir(&inputs)?.count();
    Ok(inputs.join(format!("{count:04}-{}", base.trim_start_matches('.'))))
}

/// Receives the `File` frames of every spec in `pending` from the client's stream.
pub(crate) async fn receive<S>(
    stream: &mut S,
    run: &Run,
    mut pending: BTreeMap<String, FileSpec>,
    wait: Duration,
) -> Result<BTreeMap<String, InputFile>, ProcessorError>
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut received = BTreeMap::new();
    let mut current: Option<Incoming> = None;
    while !pending.is_empty() || current.is_some() {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, stream.next()) => next,
            () = run.cancel_token().cancelled() => return Err(ProcessorError::cancelled()),
        };
        let missing = || {
            pending
                .keys()
                .chain(current.iter().map(|file| &file.world_path))
                .cloned()
                .collect::<Vec<_>>()
        };
        let message = match next {
            Err(_) => {
                return Err(integrity(format!(
                    "input files never arrived: {}",
                    missing().join(", ")
                )));
            }
            Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => {
                return Err(integrity(format!(
                    "connection closed before input files arrived: {}",
                    missing().join(", ")
                )));
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => {
                let Ok((Frame::File(header), _)) = Frame::from_json(text.as_str()) else {
                    continue;
                };
                if current.is_some() {
                    return Err(integrity(format!(
                        "File frame for {} before the previous file ended",
                        header.path
                    )));
                }
                let Some(spec) = pending.remove(&header.path) else {
                    return Err(integrity(format!(
                        "File frame for undeclared or repeated path {}",
                        header.path
                    )));
                };
                if spec.cid != header.cid || spec.size_bytes != header.size_bytes {
                    return Err(integrity(format!(
                        "File frame for {} disagrees with payload.files",
                        header.path
                    )));
                }
                let incoming = Incoming::open(run, header.path, spec).await?;
                if incoming.is_complete() {
                    let file = incoming.finish().await?;
                    received.insert(file.world_path.clone(), file);
                } else {
                    current = Some(incoming);
                }
            }
            Message::Binary(chunk) => {
                let Some(incoming) = current.as_mut() else {
                    return Err(integrity("binary frame without a File frame before it"));
                };
                incoming.write(&chunk).await?;
                if incoming.is_complete()
                    && let Some(incoming) = current.take()
                {
                    let file = incoming.finish().await?;
                    received.insert(file.world_path.clone(), file);
                }
            }
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
        }
    }
    Ok(received)
}

/// Fetches one file from its `get_url`, hashing as it streams to disk.
pub(crate) async fn download(
    client: &reqwest::Client,
    run: &Run,
    world_path: &str,
    spec: FileSpec,
    url: &str,
) -> Result<InputFile, ProcessorError> {
    let response =
        client.get(url).send().await.and_then(reqwest::Response::error_for_status).map_err(
            |error| {
                integrity(format!("cannot fetch input file {world_path}: {}", error.without_url()))
            },
        )?;
    let mut incoming = Incoming::open(run, world_path.to_owned(), spec).await?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| {
            integrity(format!(
                "download of input file {world_path} broke off: {}",
                error.without_url()
            ))
        })?;
        incoming.write(&chunk).await?;
    }
    incoming.finish().await
}
