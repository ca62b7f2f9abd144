//! The conformance suite against `llm/litellm@1` as a host process.

use std::time::Duration;

use serde_json::json;
use theory_conformance::{RunSpec, Target, run_suite};
use theory_processor::protocol::Mode;

use crate::fake_provider::{FakeProvider, KEY};
use crate::support::spawn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litellm_passes_the_conformance_suite() {
    let fake = FakeProvider::start().await;
    let base = format!("{}/v1", fake.base_url);
    let processor = spawn(&[
        ("OPENAI_API_KEY", KEY),
        ("OPENAI_API_BASE", &base),
        ("THEORY_CANCEL_GRACE_MS", "2000"),
    ])
    .await;
    let quick = RunSpec::mock(json!({"messages": [{"role": "user", "content": "Hello"}]}));
    let mut target = Target::new(&processor.base_url, quick);
    target.pid = Some(processor.pid);
    target.cancel_grace = Duration::from_secs(2);
    // A real run against a provider that stalls mid-stream is in flight until cancelled.
    target.slow = Some(RunSpec {
        mode: Mode::Real,
        inputs: json!({"messages": [{"role": "user", "content": "Hi"}], "model": "openai/stall"}),
    });

    let report = run_suite(&target).await;
    eprintln!("{report}");
    assert!(report.failures().is_empty(), "conformance failures:\n{report}");
    // What an LLM processor cannot be asked for; the probe covers these parts of the SDK.
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
