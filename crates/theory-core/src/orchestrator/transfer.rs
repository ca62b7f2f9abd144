//! How bytes move between the store and the processor, chosen per run: `stream` (input files as
//! `File` frames, outputs as `Output` frames through the orchestrator) or `direct` (presigned GET
//! URLs for input files and presigned PUT URLs for outputs, so bytes go straight to the store;
//! the orchestrator then hashes each uploaded object before the index is written).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use theory_protocol::{ErrorCode, FileSpec};

use crate::attachments::ResolvedAttachment;
use crate::registry::ProcessorSpec;
use crate::{ArtifactStore, Failure, Plan, WorldPath, WritePrefix};

/// What the user asked for (`--transfer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransferRequest {
    /// `direct` when the store presigns URLs the processor can reach and the spec declares its
    /// outputs; `stream` otherwise.
    #[default]
    Auto,
    /// Presigned URLs, or an error before anything starts when they cannot work.
    Direct,
    /// Everything through the orchestrator's connection.
    Stream,
}

impl FromStr for TransferRequest {
    type Err = String;

    fn from_str(text: &str) -> Result<TransferRequest, String> {
        match text {
            "auto" => Ok(TransferRequest::Auto),
            "direct" => Ok(TransferRequest::Direct),
            "stream" => Ok(TransferRequest::Stream),
            other => Err(format!("unknown transfer {other:?}: expected auto, direct or stream")),
        }
    }
}

/// The way a run moved its bytes, as its receipt says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Presigned URLs.
    Direct,
    /// Frames on the session's connection.
    Stream,
}

impl Transfer {
    /// `direct` or `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transfer::Direct => "direct",
            Transfer::Stream => "stream",
        }
    }
}

impl fmt::Display for Transfer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

fn loopback(url: &str) -> bool {
    let host = url.parse::<http::Uri>().ok().and_then(|uri| uri.host().map(str::to_owned));
    host.is_some_and(|host| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|address| address.is_loopback())
    })
}

/// Decides the transfer of a run before anything starts. `auto` quietly falls back to `stream`;
/// `direct` that cannot work is a failure that says why.
pub(super) async fn choose(
    requested: TransferRequest,
    store: &dyn ArtifactStore,
    spec: &ProcessorSpec,
    plan: &Plan,
) -> Result<Transfer, Failure> {
    if requested == TransferRequest::Stream {
        return Ok(Transfer::Stream);
    }
    let refuse = |why: String, hint: &str| -> Result<Transfer, Failure> {
        if requested == TransferRequest::Direct {
            return Err(Failure::new(
                ErrorCode::Store,
                format!("--transfer direct is not possible: {why}"),
            )
            .hint(hint.to_owned()));
        }
        tracing::debug!(%why, "streaming through the orchestrator");
        Ok(Transfer::Stream)
    };
    let sample: WorldPath =
        "/artifacts/inputs/presign-check".parse().map_err(|error: crate::WorldPathError| {
            Failure::new(ErrorCode::Store, error.to_string())
        })?;
    let Some(url) = store.presign_put(&sample, Duration::from_mins(1)).await? else {
        return refuse(
            format!("the {} store has no presigned URLs", store.kind()),
            "set STORAGE_BACKEND=minio or s3, or run with --transfer stream",
        );
    };
    if loopback(&url) && !plan.reaches_host_loopback {
        return refuse(
            format!(
                "the store is on this machine's loopback, which the {} runtime cannot reach",
                plan.runtime
            ),
            "run with --transfer stream, or use the process runtime",
        );
    }
    if spec.outputs.files.is_empty() {
        return refuse(
            format!("{} declares no outputs to give upload URLs for", spec.reference),
            "declare the outputs under outputs: in the spec, or run with --transfer stream",
        );
    }
    Ok(Transfer::Direct)
}

/// The URLs of one run: input files (with `get_url` when direct) and the upload plan.
pub(super) struct Urls {
    /// `payload.files`.
    pub(super) files: BTreeMap<String, FileSpec>,
    /// `payload.put_urls`, when direct.
    pub(super) uploads: Option<BTreeMap<String, String>>,
    /// The objects the upload plan may create, removed if the run fails.
    pub(super) planned: Vec<WorldPath>,
}

/// Presigns what a direct run needs, valid for `valid_for`; a stream run gets bare file specs.
pub(super) async fn presign(
    transfer: Transfer,
    store: &dyn ArtifactStore,
    attachments: &[ResolvedAttachment],
    spec: &ProcessorSpec,
    write_prefix: &WritePrefix,
    valid_for: Duration,
) -> Result<Urls, Failure> {
    let mut files = crate::attachments::file_specs(attachments);
    if transfer == Transfer::Stream {
        return Ok(Urls { files, uploads: None, planned: Vec::new() });
    }
    let unsigned = |what: &WorldPath| {
        Failure::new(ErrorCode::Store, format!("the store gave no presigned URL for {what}"))
    };
    for attachment in attachments {
        let url = store.presign_get(&attachment.world_path, valid_for).await?;
        let url = url.ok_or_else(|| unsigned(&attachment.world_path))?;
        if let Some(spec) = files.get_mut(attachment.world_path.as_str()) {
            spec.get_url = Some(url);
        }
    }
    let mut put_urls = BTreeMap::new();
    let mut planned = Vec::new();
    for output in &spec.outputs.files {
        let path = WorldPath::join(write_prefix, &output.path)
            .map_err(|error| Failure::new(ErrorCode::OutputPath, error.to_string()))?;
        let url = store.presign_put(&path, valid_for).await?.ok_or_else(|| unsigned(&path))?;
        put_urls.insert(format!("outputs/{}", output.path), url);
        planned.push(path);
    }
    Ok(Urls { files, uploads: Some(put_urls), planned })
}

#[cfg(test)]
mod tests {
    use super::loopback;

    #[test]
    fn loopback_hosts_are_recognized() {
        for url in ["http://127.0.0.1:9000/b/k", "http://localhost/b", "http://[::1]:9000/b"] {
            assert!(loopback(url), "{url}");
        }
        for url in ["https://s3.eu-west-1.amazonaws.com/b/k", "http://10.0.0.5:9000/b"] {
            assert!(!loopback(url), "{url}");
        }
    }
}
