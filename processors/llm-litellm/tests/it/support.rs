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

/// The suite's target for `llm/litellm@1` at `base_url`: a mock quick run, and a real run against
/// the fake provider's stalling model as the slow one (in flight until cancelled).
pub(crate) fn litellm_target(base_url: &str, pid: u32) -> theory_conformance::Target {
    use theory_conformance::{RunSpec, Target};
    let quick =
        RunSpec::mock(serde_json::json!({"messages": [{"role": "user", "content": "Hello"}]}));
    let mut target = Target::new(base_url, quick);
    target.pid = Some(pid);
    target.cancel_grace = Duration::from_secs(2);
    target.slow = Some(RunSpec {
        mode: Mode::Real,
        inputs: serde_json::json!({"messages": [{"role": "user", "content": "Hi"}], "model": "openai/stall"}),
    });
    target
}

/// Fails on any conformance failure; the checks an LLM processor cannot be asked for are the
/// only ones not applicable (the probe covers those parts of the SDK).
pub(crate) fn assert_conforms(report: &theory_conformance::Report) {
    eprintln!("{report}");
    assert!(report.failures().is_empty(), "conformance failures:\n{report}");
    let mut not_applicable = report.not_applicable();
    not_applicable.sort_unstable();
    assert_eq!(
        not_applicable,
        [
            "handler_panic",
            "hard_stop_after_grace",
            "large_output_bounded_memory",
            "output_path_rules"
        ],
        "{report}"
    );
}
