//! Outputs after the runner returned: path rules, hashing, and sending them as frames.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
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

/// Where a chunk stream stands.
enum ChunkState {
    Bytes(Bytes),
    Path(Arc<PathBuf>),
    File(tokio::fs::File),
    Done,
}

/// Streams a body in chunks of at most [`CHUNK_BYTES`]; files are read as the chunks are
/// pulled, so a large output never sits in memory whole.
pub(crate) fn chunks(body: &Body) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let state = match body {
        Body::Bytes(bytes) => ChunkState::Bytes(bytes.clone()),
        Body::File(path) => ChunkState::Path(Arc::clone(path)),
    };
    futures_util::stream::unfold(state, |state| async move {
        match state {
            ChunkState::Bytes(mut rest) if !rest.is_empty() => {
                let chunk = rest.split_to(CHUNK_BYTES.min(rest.len()));
                Some((Ok(chunk), ChunkState::Bytes(rest)))
            }
            ChunkState::Path(path) => match tokio::fs::File::open(path.as_ref()).await {
                Ok(file) => read_chunk(file).await,
                Err(error) => Some((Err(error), ChunkState::Done)),
            },
            ChunkState::File(file) => read_chunk(file).await,
            ChunkState::Bytes(_) | ChunkState::Done => None,
        }
    })
}

async fn read_chunk(mut file: tokio::fs::File) -> Option<(std::io::Result<Bytes>, ChunkState)> {
    use tokio::io::AsyncReadExt;
    let mut chunk = bytes::BytesMut::with_capacity(CHUNK_BYTES);
    while chunk.len() < CHUNK_BYTES {
        match file.read_buf(&mut chunk).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => return Some((Err(error), ChunkState::Done)),
        }
    }
    if chunk.is_empty() {
        None
    } else {
        Some((Ok(chunk.freeze()), ChunkState::File(file)))
    }
}
