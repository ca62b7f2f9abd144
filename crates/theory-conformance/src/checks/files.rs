//! Input files: sent as `File` frames or fetched from `get_url`, verified by CID.

use bytes::Bytes;
use theory_protocol::{Cid, ErrorCode, FileSpec};

use super::support::{QUICK, fresh_id, verify_error, verify_success};
use crate::Target;
use crate::client::{Transcript, client_open, open, payload_mut};
use crate::sink::UploadSink;

const PATH: &str = "/artifacts/inputs/conformance/hello.txt";

fn spec(bytes: &[u8], get_url: Option<String>) -> FileSpec {
    FileSpec {
        cid: Cid::of(bytes),
        size_bytes: bytes.len() as u64,
        mime: "text/plain".into(),
        get_url,
    }
}

/// Runs the quick run with one declared input file; `sent` are the bytes sent as `File` frames
/// (none when the spec has a `get_url`).
async fn run_with_file(
    target: &Target,
    check: &str,
    spec: FileSpec,
    sent: Option<&[u8]>,
) -> Result<(String, Transcript), String> {
    let id = fresh_id(check);
    let mut frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
    payload_mut(&mut frame).files.insert(PATH.into(), spec.clone());
    let mut client = open(&target.base_url).await?;
    client.send(&frame).await?;
    if let Some(bytes) = sent {
        client.send_file(PATH, &spec, bytes).await?;
    }
    Ok((id, client.collect(QUICK).await))
}

pub(crate) async fn input_file_frames(target: &Target) -> Result<String, String> {
    let bytes = b"hello, input file";
    let (id, transcript) = run_with_file(target, "files", spec(bytes, None), Some(bytes)).await?;
    verify_success(&transcript, &id, None)?;
    // The same declaration, with other bytes behind it.
    let (id, transcript) =
        run_with_file(target, "files-bad", spec(bytes, None), Some(b"HELLO, input file")).await?;
    let message = verify_error(&transcript, &id, &ErrorCode::InputIntegrity)?;
    Ok(format!("verified file accepted; tampered bytes → ERR_INPUT_INTEGRITY ({message})"))
}

pub(crate) async fn input_file_urls(target: &Target) -> Result<String, String> {
    let sink = UploadSink::start_reachable_at(target.host_address.as_deref())
        .await
        .map_err(|error| error.to_string())?;
    let bytes = Bytes::from_static(b"fetched input file");
    sink.preload("inputs/hello.txt", bytes.clone());
    let url = Some(sink.url("inputs/hello.txt"));
    let (id, transcript) =
        run_with_file(target, "get-url", spec(&bytes, url.clone()), None).await?;
    verify_success(&transcript, &id, None)?;
    let (id, transcript) =
        run_with_file(target, "get-url-bad", spec(b"other bytes", url), None).await?;
    verify_error(&transcript, &id, &ErrorCode::InputIntegrity)?;
    Ok("get_url fetched and verified; CID mismatch → ERR_INPUT_INTEGRITY".into())
}
