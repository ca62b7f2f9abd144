//! Outputs after the runner returned: path rules, hashing, and sending them as frames.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use theory_protocol::{Cid, CidHasher, ErrorCode, OutputEntry, OutputHeader, validate_relpath};

use crate::run::{Body, Run};
use crate::{OutputBody, OutputItem, ProcessorError};

/// Size of the chunks outputs are read, hashed and sent in.
pub(crate) const CHUNK_BYTES: usize = 256 * 1024;

/// An output whose path is clean and whose CID and size are known.
pub(crate) struct PreparedOutput {
    pub(crate) relpath: String,
    pub(crate) mime: String,
    pub(crate) cid: Cid,
    pub(crate) size_bytes: u64,
    pub(crate) body: Body,
}

impl PreparedOutput {
    /// Returns its envelope entry under `write_prefix`.
    pub(crate) fn entry(&self, write_prefix: &str) -> OutputEntry {
        OutputEntry {
            path: format!("{write_prefix}{}", self.relpath),
            cid: self.cid,
            size_bytes: self.size_bytes,
            mime: self.mime.clone(),
        }
    }
}

/// Checks every path, refuses duplicates, hashes every body; returns them sorted by path.
pub(crate) async fn prepare(items: Vec<OutputItem>) -> Result<Vec<PreparedOutput>, ProcessorError> {
    let mut seen = BTreeSet::new();
    for item in &items {
        validate_relpath(&item.relpath)
            .map_err(|error| ProcessorError::new(ErrorCode::OutputPath, error.to_string()))?;
        if !seen.insert(item.relpath.as_str()) {
            let message = format!("output path {:?} is produced twice", item.relpath);
            return Err(ProcessorError::new(ErrorCode::OutputPath, message));
        }
    }
    let mut prepared = Vec::with_capacity(items.len());
    for item in items {
        let (cid, size_bytes, body) = match item.body {
            OutputBody::Bytes(bytes) => (Cid::of(&bytes), bytes.len() as u64, Body::Bytes(bytes)),
            OutputBody::File(path) => {
                let (cid, size_bytes) = hash_file(path.clone()).await.map_err(|error| {
                    ProcessorError::runtime(format!(
                        "cannot read output file for {:?}: {error}",
                        item.relpath
                    ))
                })?;
                (cid, size_bytes, Body::File(Arc::new(path)))
            }
            OutputBody::HashedFile { path, cid, size_bytes } => {
                // Hashed as it was written; a file changed since is caught by its size here and
                // by the orchestrator's hash of every byte it receives.
                let found = tokio::fs::metadata(&path).await.map(|metadata| metadata.len());
                if found.as_ref().ok() != Some(&size_bytes) {
                    return Err(ProcessorError::runtime(format!(
                        "output file for {:?} changed after it was written ({size_bytes} bytes hashed, {} now)",
                        item.relpath,
                        found
                            .map_or_else(|error| error.to_string(), |size| format!("{size} bytes"))
                    )));
                }
                (cid, size_bytes, Body::File(Arc::new(path)))
            }
        };
        prepared.push(PreparedOutput {
            relpath: item.relpath,
            mime: item.mime,
            cid,
            size_bytes,
            body,
        });
    }
    prepared.sort_by(|left, right| left.relpath.cmp(&right.relpath));
    Ok(prepared)
}

async fn hash_file(path: PathBuf) -> std::io::Result<(Cid, u64)> {
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = CidHasher::new();
        let mut buffer = vec![0; CHUNK_BYTES * 4];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                return Ok((hasher.finalize(), hasher.size_bytes()));
            }
            hasher.update(&buffer[..read]);
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Appends each output to the run's log as an `Output` header plus its bytes.
pub(crate) fn emit(run: &Run, prepared: &[PreparedOutput]) {
    for output in prepared {
        let header = OutputHeader {
            path: output.relpath.clone(),
            mime: output.mime.clone(),
            size_bytes: output.size_bytes,
            cid: output.cid,
        };
        run.push_output(header, output.body.clone());
    }
}

/// Streams a body in chunks of at most [`CHUNK_BYTES`]. A file is read by a blocking reader
/// straight into each chunk's buffer, at most a few chunks ahead of the consumer, so a large
/// output never sits in memory whole and no extra copy is made.
pub(crate) fn chunks(body: &Body) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    /// Chunks read ahead of the consumer.
    const READ_AHEAD: usize = 4;
    match body {
        Body::Bytes(bytes) => {
            // Slicing `Bytes` copies nothing.
            let bytes = bytes.clone();
            let starts = (0..bytes.len()).step_by(CHUNK_BYTES);
            let slices = starts
                .map(move |start| Ok(bytes.slice(start..(start + CHUNK_BYTES).min(bytes.len()))));
            futures_util::stream::iter(slices).left_stream().left_stream()
        }
        Body::File(path) => {
            let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
            let path = Arc::clone(path);
            tokio::task::spawn_blocking(move || read_file_chunks(&path, &sender));
            futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|chunk| (chunk, receiver))
            })
            .right_stream()
            .left_stream()
        }
        Body::Released => futures_util::stream::iter([Err(std::io::Error::other(
            "the bytes of this output are no longer kept: its run was delivered",
        ))])
        .right_stream(),
    }
}

fn read_file_chunks(
    path: &std::path::Path,
    sender: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) => {
            let _ = sender.blocking_send(Err(error));
            return;
        }
    };
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        match (&mut file).take(CHUNK_BYTES as u64).read_to_end(&mut chunk) {
            Ok(0) => return,
            // A closed channel means the connection went away: stop reading.
            Ok(_) if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() => return,
            Ok(_) => {}
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        }
    }
}
