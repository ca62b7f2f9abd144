//! One snapshot per frame kind, and a round trip for each.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use theory_protocol::{
    Ack, Cid, Control, Envelope, ErrorCode, Event, FileHeader, FileSpec, Frame, Log, Meta, Mode,
    OutputEntry, OutputHeader, OutputsIndex, Phase, Role, RunOpen, RunPayload, SuccessEnvelope,
    Token,
};

const T: Option<u64> = Some(1_700_000_000_000);

fn id(value: &str) -> theory_protocol::ExecutionId {
    value.parse().unwrap()
}

fn round_trip(frame: &Frame) -> Value {
    let wire = frame.to_json(T);
    let (decoded, t) = Frame::from_json(&wire).unwrap();
    assert_eq!(&decoded, frame, "round trip changed the frame: {wire}");
    assert_eq!(t, T);
    serde_json::from_str(&wire).unwrap()
}

fn run_open() -> Frame {
    let cid = Cid::of(b"photo bytes");
    Frame::RunOpen(RunOpen {
        role: Role::Client,
        execution_id: id("E1"),
        payload: Some(RunPayload {
            execution_id: Some(id("E1")),
            mode: Mode::Mock,
            inputs: json!({"schema": "v1", "params": {"messages": [{"role": "user", "content": "Hello"}]}})
                .into(),
            write_prefix: Some("/artifacts/outputs/llm_litellm/{execution_id}/".into()),
            put_urls: Some(BTreeMap::from([
                ("outputs/text/response.txt".into(), "https://s3.example/put/response".into()),
                ("outputs.json".into(), "https://s3.example/put/index".into()),
            ])),
            files: BTreeMap::from([(
                "/artifacts/inputs/b3:x/photo.jpg".into(),
                FileSpec { cid, size_bytes: 11, mime: "image/jpeg".into(), get_url: None },
            )]),
        }),
    })
}

fn success() -> Envelope {
    Envelope::Success(SuccessEnvelope {
        execution_id: id("E1"),
        outputs: vec![OutputEntry {
            path: "/artifacts/outputs/llm_litellm/E1/text/response.txt".into(),
            cid: Cid::of(b"MOCK: Hello"),
            size_bytes: 11,
            mime: "text/plain".into(),
        }],
        index_path: "/artifacts/outputs/llm_litellm/E1/outputs.json".into(),
        meta: Meta {
            processor_ref: Some("llm/litellm@1".into()),
            processor_info: Some("llm/litellm@1 (theory-processor 0.1.0)".into()),
            usage: Some(json!({"tokens_in": 1, "tokens_out": 2}).as_object().unwrap().clone()),
            ..Meta::default()
        },
    })
}

#[test]
fn run_open_snapshot() {
    insta::assert_json_snapshot!(round_trip(&run_open()));
}

#[test]
fn ack_snapshot() {
    insta::assert_json_snapshot!(round_trip(&Frame::Ack(Ack { execution_id: id("E1") })));
}

#[test]
fn event_snapshots() {
    insta::assert_json_snapshot!(
        "event_started",
        round_trip(&Frame::Event(Event::phase(Phase::Started)))
    );
    let noop = Event {
        phase: Phase::ControlNoop,
        detail: BTreeMap::from([("op".into(), json!("pause"))]),
    };
    insta::assert_json_snapshot!("event_control_noop", round_trip(&Frame::Event(noop)));
}

#[test]
fn token_snapshot() {
    insta::assert_json_snapshot!(round_trip(&Frame::Token(Token { text: " world".into() })));
}

#[test]
fn log_snapshot() {
    let log = Log { level: "info".into(), msg: "calling provider".into() };
    insta::assert_json_snapshot!(round_trip(&Frame::Log(log)));
}

#[test]
fn output_snapshot() {
    let header = OutputHeader {
        path: "text/response.txt".into(),
        mime: "text/plain".into(),
        size_bytes: 11,
        cid: Cid::of(b"MOCK: Hello"),
    };
    insta::assert_json_snapshot!(round_trip(&Frame::Output(header)));
}

#[test]
fn file_snapshot() {
    let header = FileHeader {
        path: "/artifacts/inputs/b3:x/photo.jpg".into(),
        cid: Cid::of(b"photo bytes"),
        size_bytes: 11,
        mime: "image/jpeg".into(),
    };
    insta::assert_json_snapshot!(round_trip(&Frame::File(header)));
}

#[test]
fn control_snapshot() {
    insta::assert_json_snapshot!(round_trip(&Frame::Control(Control { op: "preempt".into() })));
}

#[test]
fn run_result_snapshots() {
    insta::assert_json_snapshot!("run_result_success", round_trip(&Frame::RunResult(success())));
    let error = Envelope::error(id("E1"), ErrorCode::MissingSecret, "OPENAI_API_KEY is not set");
    insta::assert_json_snapshot!("run_result_error", round_trip(&Frame::RunResult(error)));
}

#[test]
fn outputs_index_is_sorted_and_compact() {
    let entry = |path: &str| OutputEntry {
        path: path.into(),
        cid: Cid::of(path.as_bytes()),
        size_bytes: 1,
        mime: "text/plain".into(),
    };
    let index = OutputsIndex::new(vec![entry("/artifacts/b"), entry("/artifacts/a")]);
    let json = index.to_canonical_json();
    insta::assert_snapshot!(json);
    assert!(!json.contains(' '));
}

#[test]
fn error_catalogue_snapshot() {
    let catalogue: Vec<(String, &str)> =
        ErrorCode::ALL.iter().map(|code| (code.to_string(), code.description())).collect();
    insta::assert_json_snapshot!(catalogue);
}

#[test]
fn unknown_kinds_and_bad_content_are_errors() {
    assert!(Frame::from_json(r#"{"kind":"Nope","content":{}}"#).is_err());
    assert!(Frame::from_json(r#"{"kind":"Token","content":{"txt":"x"}}"#).is_err());
    assert!(Frame::from_json(r#"{"content":{}}"#).is_err());
    assert!(Frame::from_json("[]").is_err());
}
