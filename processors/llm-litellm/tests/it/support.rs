//! Starting the processor binary and running it once.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use theory_conformance::client::{Transcript, client_open, run_once};
use theory_conformance::process::SpawnedProcessor;
use theory_processor::protocol::{Envelope, Mode};

pub(crate) async fn spawn(envs: &[(&str, &str)]) -> SpawnedProcessor {
    SpawnedProcessor::start(Path::new(env!("CARGO_BIN_EXE_llm-litellm")), envs)
        .await
        .expect("llm-litellm starts")
}

pub(crate) async fn run(base_url: &str, id: &str, mode: Mode, inputs: Value) -> Transcript {
    let frame =
        client_open(id, mode, inputs, Some("/artifacts/outputs/llm_litellm/{execution_id}/"));
    run_once(base_url, &frame, Duration::from_secs(30)).await.expect("run")
}

/// Returns the bytes of the output at `rel`, as text.
pub(crate) fn output_text(transcript: &Transcript, rel: &str) -> String {
    let output =
        transcript.outputs.iter().find(|output| output.header.path == rel).expect("output present");
    assert!(output.is_intact());
    String::from_utf8(output.bytes.clone().expect("small output").to_vec()).expect("utf-8")
}

pub(crate) fn error_of(transcript: &Transcript) -> (String, String) {
    match transcript.result() {
        Some(Envelope::Error(error)) => (error.error.code.to_string(), error.error.message.clone()),
        other => panic!("expected an error envelope, got {other:?}"),
    }
}
