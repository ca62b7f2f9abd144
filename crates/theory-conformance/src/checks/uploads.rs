//! `put_urls` plans: upload order, index last, outputs without a URL skipped and named.

use std::collections::BTreeMap;

use theory_protocol::{Envelope, ErrorCode, OutputsIndex};

use super::support::{QUICK, ensure, fresh_id, verify_ending, verify_error, verify_success};
use crate::Target;
use crate::client::{Transcript, client_open, payload_mut, run_once};
use crate::sink::UploadSink;

const PREFIX: &str = "/artifacts/outputs/uploads/";

/// Learns the quick run's output paths (relative) from an ordinary run.
async fn output_relpaths(target: &Target) -> Result<Vec<String>, String> {
    let id = fresh_id("learn");
    let frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), Some(PREFIX));
    let transcript = run_once(&target.base_url, &frame, QUICK).await?;
    verify_success(&transcript, &id, Some(PREFIX))?;
    Ok(transcript.outputs.iter().map(|output| output.header.path.clone()).collect())
}

/// Runs the quick run with a plan that gives each of `planned` (and the index) a URL on `sink`.
async fn run_planned(
    target: &Target,
    sink: &UploadSink,
    planned: &[String],
    check: &str,
) -> Result<(String, Transcript), String> {
    let mut plan: BTreeMap<String, String> = planned
        .iter()
        .map(|rel| (format!("outputs/{rel}"), sink.url(&format!("objects/{rel}"))))
        .collect();
    plan.insert("outputs.json".into(), sink.url("objects/outputs.json"));
    let id = fresh_id(check);
    let mut frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), Some(PREFIX));
    payload_mut(&mut frame).put_urls = Some(plan);
    let transcript = run_once(&target.base_url, &frame, QUICK).await?;
    Ok((id, transcript))
}

pub(crate) async fn put_urls(target: &Target) -> Result<String, String> {
    let relpaths = output_relpaths(target).await?;
    let sink = UploadSink::start_reachable_at(target.host_address.as_deref())
        .await
        .map_err(|error| error.to_string())?;
    // Every output but the last gets a URL; the last must be skipped and named.
    let (planned, skipped): (&[String], &[String]) = match relpaths.len() {
        0 => return Err("the quick run has no outputs".into()),
        1 => (&relpaths[..], &[]),
        count => relpaths.split_at(count - 1),
    };
    let (id, transcript) = run_planned(target, &sink, planned, "put").await?;
    let Envelope::Success(success) = verify_ending(&transcript, &id)? else {
        return Err(format!("planned run failed: {:?}", transcript.result()));
    };
    ensure(transcript.binary_frames == 0 && transcript.outputs.is_empty(), || {
        "outputs were sent as frames although put_urls was given".into()
    })?;
    let uploads = sink.uploads();
    let order: Vec<&str> = uploads.iter().map(|upload| upload.path.as_str()).collect();
    let mut expected: Vec<String> = planned.iter().map(|rel| format!("objects/{rel}")).collect();
    expected.push("objects/outputs.json".into());
    ensure(order == expected, || format!("upload order {order:?}, expected {expected:?}"))?;
    ensure(success.outputs.len() == planned.len(), || {
        "RunResult must list only uploaded outputs".into()
    })?;
    for (entry, upload) in success.outputs.iter().zip(&uploads) {
        ensure(entry.cid == upload.cid && entry.size_bytes == upload.size_bytes, || {
            format!("uploaded {} does not match its entry", upload.path)
        })?;
        ensure(upload.content_length == Some(upload.size_bytes), || {
            format!("{} sent without Content-Length", upload.path)
        })?;
    }
    let index =
        uploads.last().and_then(|upload| upload.bytes.clone()).ok_or("no index uploaded")?;
    let index: OutputsIndex =
        serde_json::from_slice(&index).map_err(|error| format!("index is not JSON: {error}"))?;
    ensure(index.outputs == success.outputs, || {
        "the uploaded index disagrees with RunResult".into()
    })?;
    let named = success.meta.skipped_outputs.clone().unwrap_or_default();
    ensure(named == skipped, || {
        format!("meta.skipped_outputs is {named:?}, expected {skipped:?}")
    })?;
    Ok(format!("{} uploaded in path order, outputs.json last, skipped {skipped:?}", planned.len()))
}

pub(crate) async fn upload_failure(target: &Target) -> Result<String, String> {
    let relpaths = output_relpaths(target).await?;
    let mut details = Vec::new();
    for status in [500, 403] {
        let sink = UploadSink::failing(status, target.host_address.as_deref())
            .await
            .map_err(|error| error.to_string())?;
        let (id, transcript) = run_planned(target, &sink, &relpaths, "put-fail").await?;
        let message = verify_error(&transcript, &id, &ErrorCode::Upload)?;
        ensure(!message.contains(&sink.base_url), || {
            "the error message leaks the upload URL".into()
        })?;
        let attempts = sink.uploads().len();
        details.push(format!("HTTP {status} → ERR_UPLOAD after {attempts} attempt(s)"));
    }
    Ok(details.join("; "))
}
