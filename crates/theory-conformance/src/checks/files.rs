//! Input files: sent as `File` frames or fetched from `get_url`, verified by CID.

use bytes::Bytes;
use theory_protocol::{Cid, ErrorCode, FileSpec};

use super::support::{QUICK, fresh_id, verify_error, verify_success};
use crate::Target;
use crate::client::{client_open, open, payload_mut};
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

pub(crate) async fn input_file_frames(target: &Target) -> Result<String, String> {
    let bytes = b"hello, input file";
    let id = fresh_id("files");
    let mut frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
    payload_mut(&mut frame)
        .files
        .insert(PATH.into(), spec(bytes, None));
    let mut client = open(&target.base_url).await?;
    client.send(&frame).await?;
    client.send_file(PATH, &spec(bytes, None), bytes).await?;
    verify_success(&client.collect(QUICK).await, &id, None)?;

    // The same declaration, with other bytes behind it.
    let id = fresh_id("files-bad");
    let mut frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
    payload_mut(&mut frame)
        .files
        .insert(PATH.into(), spec(bytes, None));
    let mut client = open(&target.base_url).await?;
    client.send(&frame).await?;
    client
        .send_file(PATH, &spec(bytes, None), b"HELLO, input file")
        .await?;
    let message = verify_error(
        &client.collect(QUICK).await,
        &id,
        &ErrorCode::InputIntegrity,
    )?;
    Ok(format!(
        "verified file accepted; tampered bytes → ERR_INPUT_INTEGRITY ({message})"
    ))
}

pub(crate) async fn input_file_urls(target: &Target) -> Result<String, String> {
    let sink = UploadSink::start()
        .await
        .map_err(|error| error.to_string())?;
    let bytes = Bytes::from_static(b"fetched input file");
    sink.preload("inputs/hello.txt", bytes.clone());
    let id = fresh_id("get-url");
    let mut frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
    payload_mut(&mut frame).files.insert(
        PATH.into(),
        spec(&bytes, Some(sink.url("inputs/hello.txt"))),
    );
    let mut client = open(&target.base_url).await?;
    client.send(&frame).await?;
    verify_success(&client.collect(QUICK).await, &id, None)?;

    let id = fresh_id("get-url-bad");
    let mut frame = client_open(&id, target.quick.mode, target.quick.inputs.clone(), None);
    payload_mut(&mut frame).files.insert(
        PATH.into(),
        spec(b"other bytes", Some(sink.url("inputs/hello.txt"))),
    );
    let mut client = open(&target.base_url).await?;
    client.send(&frame).await?;
    verify_error(
        &client.collect(QUICK).await,
        &id,
        &ErrorCode::InputIntegrity,
    )?;
    Ok("get_url fetched and verified; CID mismatch → ERR_INPUT_INTEGRITY".into())
}
