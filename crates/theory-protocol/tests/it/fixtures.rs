//! Hand-written frames of the original system (nested `content.payload` form) decode as expected.

use serde_json::json;
use theory_protocol::{Envelope, ErrorCode, Frame, Mode, Phase, Role, RunOpen};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn decode(name: &str) -> (Frame, Option<u64>) {
    let text = fixture(name);
    let decoded = Frame::from_json(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
    // Whatever we decode, we encode to something that decodes to the same frame.
    let again = Frame::from_json(&decoded.0.to_json(decoded.1)).unwrap();
    assert_eq!(again, decoded, "{name} does not round-trip");
    decoded
}

#[test]
fn client_run_open_with_payload() {
    let (Frame::RunOpen(open), t) = decode("original_run_open_client.json") else {
        panic!("not a RunOpen")
    };
    assert_eq!(t, Some(1_728_000_000_123));
    assert_eq!(open.role, Role::Client);
    let payload = open.payload.expect("payload");
    assert_eq!(payload.mode, Mode::Mock);
    assert_eq!(payload.inputs["params"]["messages"][0]["content"], json!("Hello"));
    assert_eq!(
        payload.write_prefix.as_deref(),
        Some("/artifacts/outputs/llm_litellm/{execution_id}/")
    );
    assert_eq!(payload.put_urls.expect("put_urls").len(), 2);
    assert!(payload.files.is_empty());
    // The same text passes the first-frame rules.
    assert!(RunOpen::parse_first_frame(&fixture("original_run_open_client.json")).is_ok());
}

#[test]
fn controller_run_open_in_upper_case() {
    let (Frame::RunOpen(open), _) = decode("original_run_open_controller.json") else { panic!() };
    assert_eq!(open.role, Role::Controller);
    assert_eq!(open.execution_id.as_str(), "E123");
    assert!(open.payload.is_none());
}

#[test]
fn control_ack_event_token_log() {
    let (Frame::Control(control), _) = decode("original_control_preempt.json") else { panic!() };
    assert!(control.is_cancel());
    let (Frame::Ack(ack), _) = decode("original_ack.json") else { panic!() };
    assert_eq!(ack.execution_id.as_str(), "E123");
    let (Frame::Event(event), t) = decode("original_event_started.json") else { panic!() };
    assert_eq!((event.phase, t), (Phase::Started, Some(1_728_000_000_200)));
    let (Frame::Event(noop), _) = decode("original_event_noop.json") else { panic!() };
    assert_eq!(noop.phase, Phase::ControlNoop);
    assert_eq!(noop.detail["op"], json!("pause"));
    let (Frame::Token(token), _) = decode("original_token.json") else { panic!() };
    assert_eq!(token.text, " world");
    let (Frame::Log(log), _) = decode("original_log.json") else { panic!() };
    assert_eq!(log.level, "info");
}

#[test]
fn run_results_keep_unknown_meta() {
    let (Frame::RunResult(Envelope::Success(success)), _) =
        decode("original_run_result_success.json")
    else {
        panic!()
    };
    assert_eq!(success.outputs.len(), 1);
    assert_eq!(success.meta.duration_ms, Some(1234));
    assert_eq!(success.meta.extra["model"], json!("mock-llm"));
    assert_eq!(success.meta.extra["tokens_out"], json!(5));

    let (Frame::RunResult(error), _) = decode("original_run_result_error.json") else { panic!() };
    assert_eq!(error.error_code(), Some(&ErrorCode::MissingSecret));
}
