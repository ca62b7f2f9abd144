//! Mock mode: deterministic text from the last message, streamed; no network, no secret.

use serde_json::{Value, json};
use theory_processor::protocol::{Envelope, Mode};

use crate::support::{output_text, run, spawn};

#[tokio::test]
async fn mock_run_streams_and_writes_both_outputs() {
    // No key anywhere: mock mode must not need one.
    let processor = spawn(&[("OPENAI_API_KEY", ""), ("ANTHROPIC_API_KEY", "")]).await;
    let inputs = json!({"messages": [{"role": "user", "content": "Hello"}]});
    let transcript = run(&processor.base_url, "E-mock-1", Mode::Mock, inputs).await;
    assert_eq!(transcript.text(), "MOCK: Hello");
    assert_eq!(output_text(&transcript, "text/response.txt"), "MOCK: Hello");
    let meta: Value = serde_json::from_str(&output_text(&transcript, "meta.json")).unwrap();
    assert_eq!(meta["model"], "mock-llm");
    assert_eq!(meta["tokens_in"], 1);
    assert_eq!(meta["tokens_out"], 2);
    let Some(Envelope::Success(success)) = transcript.result() else {
        panic!("{:?}", transcript.result())
    };
    let paths: Vec<&str> = success.outputs.iter().map(|entry| entry.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/artifacts/outputs/llm_litellm/E-mock-1/meta.json",
            "/artifacts/outputs/llm_litellm/E-mock-1/text/response.txt"
        ]
    );
    assert_eq!(success.outputs[1].mime, "text/plain");
    assert_eq!(success.outputs[0].mime, "application/json");
}

#[tokio::test]
async fn short_long_and_top_level_model_forms_agree() {
    let processor = spawn(&[]).await;
    let messages = json!([{"role": "user", "content": "Same"}]);
    let forms = [
        json!({"messages": messages, "model": "openai/gpt-4o-mini"}),
        json!({"schema": "v1", "params": {"messages": messages, "model": "openai/gpt-4o-mini"}}),
        json!({"schema": "v1", "model": "openai/gpt-4o-mini", "params": {"messages": messages}}),
    ];
    let mut cids = Vec::new();
    for (index, inputs) in forms.into_iter().enumerate() {
        let transcript =
            run(&processor.base_url, &format!("E-form-{index}"), Mode::Mock, inputs).await;
        let meta: Value = serde_json::from_str(&output_text(&transcript, "meta.json")).unwrap();
        assert_eq!(meta["requested_model"], "openai/gpt-4o-mini");
        cids.push(transcript.outputs.iter().map(|output| output.received_cid).collect::<Vec<_>>());
    }
    assert_eq!(cids[0], cids[1]);
    assert_eq!(cids[1], cids[2]);
}

#[tokio::test]
async fn bad_inputs_are_input_schema_errors() {
    let processor = spawn(&[]).await;
    for (index, inputs) in
        [json!({"messages": []}), json!({"prompt": "no messages"}), json!({"messages": "x"})]
            .into_iter()
            .enumerate()
    {
        let transcript =
            run(&processor.base_url, &format!("E-bad-{index}"), Mode::Mock, inputs).await;
        let (code, _) = crate::support::error_of(&transcript);
        assert_eq!(code, "ERR_INPUT_SCHEMA");
    }
}
