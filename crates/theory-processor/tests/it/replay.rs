//! What a finished run keeps for replay: once its client has every output, frames and CIDs —
//! small outputs' bytes too — but not the bytes of large outputs, nor its scratch folder; a
//! replay that needs those is closed with 1011 and a reason, never sent short bytes.

use std::io::Write as _;
use std::time::Duration;

use serde_json::json;
use theory_conformance::client::{attach_open, client_open, run_once};
use theory_processor::protocol::{Envelope, Mode, Role, close_code};
use theory_processor::{
    Context, Identity, Inputs, OutputFile, OutputItem, ProcessorError, ProcessorResult,
    ServerConfig, serve_on,
};
use tokio::net::TcpListener;

const BIG: usize = 3 * 1024 * 1024;

/// A small output in memory and a large one written through an `OutputFile` in scratch.
fn writer() -> impl theory_processor::Processor {
    move |_inputs: Inputs, context: Context| async move {
        let path = context.scratch_dir()?.join("big.bin");
        let big = tokio::task::spawn_blocking(move || {
            let mut file = OutputFile::create(path)?;
            for block in 0..BIG / 1024 {
                file.write_all(&[u8::try_from(block % 251).unwrap_or(0); 1024])?;
            }
            file.finish("big.bin", "application/octet-stream")
        })
        .await
        .map_err(|error| ProcessorError::runtime(error.to_string()))??;
        Ok(ProcessorResult {
            outputs: vec![OutputItem::text("small.txt", "kept"), big],
            processor_info: "test/writer@1".into(),
            ..ProcessorResult::default()
        })
    }
}

#[tokio::test]
async fn a_delivered_run_keeps_its_frames_not_its_large_bytes() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|error| error.to_string())?;
    let base_url = format!("http://{}", listener.local_addr().map_err(|error| error.to_string())?);
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let config =
        ServerConfig { scratch_root: scratch.path().to_path_buf(), ..ServerConfig::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(serve_on(listener, Identity::new("test/writer@1"), writer(), config, async {
            let _ = stopped.await;
        }));

    let frame = client_open("E1", Mode::Mock, json!({}), None);
    let first = run_once(&base_url, &frame, Duration::from_secs(20)).await?;
    assert!(matches!(first.result(), Some(Envelope::Success(_))), "{:?}", first.result());
    assert_eq!(first.outputs.len(), 2);
    assert!(
        first.outputs.iter().all(theory_conformance::client::ReceivedOutput::is_intact),
        "hashed while written"
    );
    assert_eq!(first.outputs[0].header.size_bytes, BIG as u64);
    // The client answered the close: the scratch folder goes (the release follows its reply).
    let mut emptied = false;
    for _ in 0..100 {
        if files_under(scratch.path()) == 0 {
            emptied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(emptied, "the delivered run's scratch files are still there");

    // A late observer gets every frame up to the large output's header, then a clear close.
    let late =
        run_once(&base_url, &attach_open("E1", Role::Observer), Duration::from_secs(10)).await?;
    let (code, reason) = late.close.clone().expect("closed by the server");
    assert_eq!(code, close_code::INTERNAL_ERROR, "{reason}");
    assert!(reason.contains("no longer kept"), "{reason}");
    // big.bin comes first (outputs go in path order): its header, then the close.
    assert!(late.outputs.is_empty(), "no body followed the header: {:?}", late.outputs);
    assert!(late.result().is_none());

    let _ = stop.send(());
    server.await.map_err(|error| error.to_string())?.map_err(|error| error.to_string())?;
    Ok(())
}

fn files_under(folder: &std::path::Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| if entry.path().is_dir() { files_under(&entry.path()) } else { 1 })
            .sum()
    })
}
