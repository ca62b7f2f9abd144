//! Carrying out a `put_urls` plan: PUT each planned output, then the index, last.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, IF_NONE_MATCH};
use theory_protocol::{ErrorCode, OutputEntry, OutputsIndex};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::ProcessorError;
use crate::outputs::{self, PreparedOutput};
use crate::run::Body;

/// The key of the index in a `put_urls` plan.
pub(crate) const INDEX_KEY: &str = "outputs.json";

/// What a plan did: the uploaded outputs' entries, and the relative paths it had no URL for.
pub(crate) struct Uploaded {
    pub(crate) entries: Vec<OutputEntry>,
    pub(crate) skipped: Vec<String>,
}

/// Uploads to one host at once, at most; more wait their turn. The host (an object store)
/// sees a bounded number of connections from this processor however many runs upload.
const UPLOADS_PER_HOST: usize = 8;
/// Idle connections are closed this soon, and at most this many kept per host.
const IDLE_CONNECTION: Duration = Duration::from_secs(2);

/// The client for uploads and input downloads: idle connections closed within seconds, a few
/// kept per host.
pub(crate) fn transfer_client() -> Result<reqwest::Client, reqwest::Error> {
    crate::http::client_builder()
        .pool_idle_timeout(IDLE_CONNECTION)
        .pool_max_idle_per_host(UPLOADS_PER_HOST)
        .build()
}

/// A bound on the uploads in flight to each host.
#[derive(Default)]
pub(crate) struct HostSlots {
    hosts: std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
}

impl HostSlots {
    /// Waits for a free upload slot to the host of `url`.
    async fn take(&self, url: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let host = reqwest::Url::parse(url).ok().map(|url| {
            format!(
                "{}://{}:{}",
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.port_or_known_default().unwrap_or(0)
            )
        })?;
        let slots = {
            let mut hosts = self.hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Hosts nobody uploads to any more are forgotten.
            hosts.retain(|_, slots| {
                Arc::strong_count(slots) > 1 || slots.available_permits() < UPLOADS_PER_HOST
            });
            Arc::clone(
                hosts.entry(host).or_insert_with(|| Arc::new(Semaphore::new(UPLOADS_PER_HOST))),
            )
        };
        slots.acquire_owned().await.ok()
    }
}

/// Uploads every output that has a URL under `outputs/<rel>`, in path order, then the index.
pub(crate) async fn carry_out(
    client: &reqwest::Client,
    slots: &HostSlots,
    put_urls: &BTreeMap<String, String>,
    prepared: &[PreparedOutput],
    write_prefix: &str,
    attempts: u32,
    cancel: &CancellationToken,
) -> Result<Uploaded, ProcessorError> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for output in prepared {
        if cancel.is_cancelled() {
            return Err(ProcessorError::cancelled());
        }
        let Some(url) = put_urls.get(&format!("outputs/{}", output.relpath)) else {
            skipped.push(output.relpath.clone());
            continue;
        };
        let _slot = slots.take(url).await;
        put(client, url, &output.body, output.size_bytes, &output.mime, attempts)
            .await
            .map_err(|reason| upload_error(&output.relpath, &reason))?;
        entries.push(output.entry(write_prefix));
    }
    if let Some(url) = put_urls.get(INDEX_KEY) {
        let index = OutputsIndex::new(entries.clone()).to_canonical_json();
        let size_bytes = index.len() as u64;
        let _slot = slots.take(url).await;
        put(client, url, &Body::Bytes(index.into()), size_bytes, "application/json", attempts)
            .await
            .map_err(|reason| upload_error(INDEX_KEY, &reason))?;
    }
    Ok(Uploaded { entries, skipped })
}

fn upload_error(what: &str, reason: &str) -> ProcessorError {
    ProcessorError::new(ErrorCode::Upload, format!("upload of {what} failed: {reason}"))
}

/// PUTs one body with `If-None-Match: *` (a presigned URL signs it: the store creates the object
/// but never replaces one), retrying transient failures; a 4xx other than 408/429 is final at
/// once. A 412 on a retry means an earlier attempt did store the object (its answer was lost):
/// that is success, and the orchestrator hashes what is stored anyway.
async fn put(
    client: &reqwest::Client,
    url: &str,
    body: &Body,
    size_bytes: u64,
    mime: &str,
    attempts: u32,
) -> Result<(), String> {
    let mut last_failure = String::new();
    for attempt in 1..=attempts.max(1) {
        let request = client
            .put(url)
            .header(CONTENT_TYPE, mime)
            .header(CONTENT_LENGTH, size_bytes)
            .header(IF_NONE_MATCH, "*")
            .body(request_body(body));
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status().as_u16() == 412 && attempt > 1 => return Ok(()),
            Ok(response) => {
                let status = response.status();
                last_failure = format!("HTTP {status}");
                let transient =
                    status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
                if !transient {
                    return Err(last_failure);
                }
            }
            // Never print the URL: a presigned URL carries a credential in its query.
            Err(error) => last_failure = error.without_url().to_string(),
        }
        if attempt < attempts {
            tokio::time::sleep(Duration::from_millis(100 * 4u64.pow(attempt - 1))).await;
        }
    }
    Err(format!("{last_failure} (after {attempts} attempts)"))
}

fn request_body(body: &Body) -> reqwest::Body {
    match body {
        Body::Bytes(bytes) => reqwest::Body::from(bytes.clone()),
        Body::File(_) | Body::Released => reqwest::Body::wrap_stream(outputs::chunks(body)),
    }
}
