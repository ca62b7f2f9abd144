//! The life of a run, through a real protocol session with a processor served in-process.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use theory_core::{AdapterOptions, Mode};
use theory_protocol::{Envelope, OutputsIndex};

use crate::support::{harness, request};

fn code(envelope: &Envelope) -> Option<String> {
    envelope.error_code().map(ToString::to_string)
}

#[tokio::test]
async fn a_mock_run_stores_outputs_index_and_receipts() {
    let harness = harness(&[]);
    let outcome =
        harness.run(request("theory/probe@1", Mode::Mock, json!({"text": "hello world"}))).await;
    let Envelope::Success(success) = &outcome.envelope else { panic!("{:?}", outcome.envelope) };
    let id = success.execution_id.to_string();
    let prefix = format!("/artifacts/outputs/theory_probe/{id}/");
    let paths: Vec<&str> = success.outputs.iter().map(|output| output.path.as_str()).collect();
    assert_eq!(paths, [format!("{prefix}echo.txt"), format!("{prefix}meta.json")]);
    assert_eq!(harness.store.get(paths[0]).unwrap(), "hello world");
    assert_eq!(success.index_path, format!("/artifacts/execution/{id}/outputs.json"));

    let index = harness.store.get(&success.index_path).expect("index stored");
    let parsed: OutputsIndex = serde_json::from_slice(&index).unwrap();
    assert_eq!(parsed.outputs, success.outputs);
    assert!(!index.contains(&b' '), "the index is compact JSON");

    let receipt = harness
        .store
        .get(&format!("/artifacts/execution/{id}/determinism.json"))
        .expect("receipt stored");
    assert_eq!(harness.store.get(&format!("{prefix}receipt.json")).as_ref(), Some(&receipt));
    let receipt: Value = serde_json::from_slice(&receipt).unwrap();
    for field in [
        "execution_id",
        "processor_ref",
        "image_digest",
        "env_fingerprint",
        "mode",
        "inputs_hash",
        "hash_schema",
        "memo_key",
        "seed",
        "output_cids",
        "outputs_index",
        "processor_info",
        "usage",
        "cost_usd_micro",
        "timestamp_utc",
        "duration_ms",
        "adapter",
        "runtime",
    ] {
        assert!(receipt.get(field).is_some(), "receipt lacks {field}: {receipt}");
    }
    assert_eq!(receipt["hash_schema"], "jcs-blake3-v1");
    assert_eq!(receipt["output_cids"][0], success.outputs[0].cid.to_string());
    let meta = &success.meta;
    assert_eq!(
        meta.env_fingerprint.as_deref(),
        Some(
            "adapter=local,runtime=process,image_digest=test:probe-1,cpu=1,memory_gb=1,timeout_s=120,gpu=none,present_env_keys=[]"
        )
    );
    assert_eq!(
        (meta.cached, meta.runtime.as_deref(), meta.mode),
        (Some(false), Some("process"), Some(Mode::Mock))
    );
    assert!(!harness.store.paths().iter().any(|path| path.contains(".partial")));
}

#[tokio::test]
async fn identical_runs_are_served_from_the_memo_cache_while_blobs_verify() {
    let harness = harness(&[]);
    let first =
        harness.run(request("theory/probe@1", Mode::Mock, json!({"text": "memo"}))).await.envelope;
    // The short form and the long form are the same work.
    let second = harness
        .run(request(
            "theory/probe@1",
            Mode::Mock,
            json!({"schema": "v1", "params": {"text": "memo"}}),
        ))
        .await
        .envelope;
    assert_eq!(harness.starts(), 1, "the second run started a processor");
    let (Envelope::Success(first), Envelope::Success(second)) = (&first, &second) else { panic!() };
    assert_eq!(second.meta.cached, Some(true));
    assert_eq!(first.outputs, second.outputs);

    let mut forced = request("theory/probe@1", Mode::Mock, json!({"text": "memo"}));
    forced.use_cache = false;
    let Envelope::Success(forced) = harness.run(forced).await.envelope else {
        panic!("the forced run failed")
    };
    assert_eq!(harness.starts(), 2, "--no-cache must run");
    assert_ne!(forced.execution_id, first.execution_id);

    // A changed blob makes the entry (now the forced run's) stale: the next run runs.
    harness.store.replace(&forced.outputs[0].path, b"tampered");
    let third =
        harness.run(request("theory/probe@1", Mode::Mock, json!({"text": "memo"}))).await.envelope;
    assert_eq!(harness.starts(), 3);
    assert_eq!(third.meta().cached, Some(false));
}

#[tokio::test]
async fn a_timeout_stops_the_instance_and_leaves_nothing() {
    let harness = harness(&[]);
    let mut slow =
        request("theory/probe@1", Mode::Mock, json!({"sleep_ms": 30_000, "ignore_cancel": true}));
    slow.options = AdapterOptions { timeout_s: Some(1), ..AdapterOptions::default() };
    let started = Instant::now();
    let outcome = harness.run(slow).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(code(&outcome.envelope).as_deref(), Some("ERR_TIMEOUT"));
    assert!(outcome.hint.unwrap().contains("timeout_s"));
    assert_eq!(
        harness.counters.stops.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the instance was not stopped"
    );
    assert!(harness.store.paths().is_empty(), "a timed-out run left {:?}", harness.store.paths());
}

#[tokio::test]
async fn a_failed_run_leaves_no_index_receipt_or_output() {
    let harness = harness(&[]);
    for (inputs, expected) in [
        (json!({"fail": {"code": "ERR_PROVIDER", "message": "upstream said no"}}), "ERR_PROVIDER"),
        (json!({"relpath": "../escape.txt"}), "ERR_OUTPUT_PATH"),
        (json!({"panic": true}), "ERR_RUNTIME"),
    ] {
        let outcome = harness.run(request("theory/probe@1", Mode::Mock, inputs)).await;
        assert_eq!(code(&outcome.envelope).as_deref(), Some(expected));
        let Envelope::Error(error) = &outcome.envelope else { panic!() };
        assert!(error.meta.env_fingerprint.is_some(), "error envelopes carry the fingerprint");
    }
    assert!(harness.store.paths().is_empty(), "failed runs left {:?}", harness.store.paths());
}

#[tokio::test]
async fn refusals_happen_before_anything_starts() {
    let harness = harness(&[("CI", "true")]);
    let real = harness.run(request("theory/probe@1", Mode::Real, json!({}))).await;
    assert_eq!(code(&real.envelope).as_deref(), Some("ERR_CI_SAFETY"));
    assert!(real.hint.unwrap().contains("THEORY_ALLOW_REAL_IN_CI"));

    let schema = harness.run(request("llm/litellm@1", Mode::Mock, json!({"messages": []}))).await;
    assert_eq!(code(&schema.envelope).as_deref(), Some("ERR_INPUT_SCHEMA"));
    assert!(schema.envelope.to_owned_message().contains("/messages"), "{:?}", schema.envelope);

    let unknown = harness.run(request("llm/litelm@1", Mode::Mock, json!({}))).await;
    assert_eq!(code(&unknown.envelope).as_deref(), Some("ERR_REGISTRY"));
    assert_eq!(unknown.hint.as_deref(), Some("did you mean llm/litellm@1?"));

    let allowed = harness_with_secret();
    let missing = allowed.run(request("theory/secretive@1", Mode::Real, json!({}))).await;
    assert_eq!(code(&missing.envelope).as_deref(), Some("ERR_MISSING_SECRET"));
    assert!(missing.envelope.to_owned_message().contains("SECRETIVE_KEY"));
    assert_eq!(harness.starts() + allowed.starts(), 0, "something started");
    assert_eq!(
        harness.counters.plans.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the CI guard must come before planning"
    );
}

fn harness_with_secret() -> crate::support::Harness {
    harness(&[("CI", "true"), ("THEORY_ALLOW_REAL_IN_CI", "1")])
}

#[tokio::test]
async fn secrets_never_reach_envelopes() {
    let harness = harness(&[("SECRETIVE_KEY", "sk-canary-4242-abcd")]);
    let inputs =
        json!({"fail": {"code": "ERR_PROVIDER", "message": "key sk-canary-4242-abcd refused"}});
    let outcome = harness.run(request("theory/probe@1", Mode::Mock, inputs)).await;
    let text = serde_json::to_string(&outcome.envelope).unwrap();
    assert!(!text.contains("sk-canary-4242-abcd") && text.contains("[REDACTED]"), "{text}");
}

trait Message {
    fn to_owned_message(&self) -> String;
}

impl Message for Envelope {
    fn to_owned_message(&self) -> String {
        match self {
            Envelope::Error(error) => error.error.message.clone(),
            Envelope::Success(_) => String::new(),
        }
    }
}
