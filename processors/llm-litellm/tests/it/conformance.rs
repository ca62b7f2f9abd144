//! The conformance suite against `llm/litellm@1` as a host process.

use theory_conformance::run_suite;

use crate::support::{assert_conforms, litellm_target, spawn};
use theory_conformance::llm::{KEY, LlmStandIn as FakeProvider};

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
    let report = run_suite(&litellm_target(&processor.base_url, processor.pid)).await;
    assert_conforms(&report);
}
