//! Real mode against the fake provider: tokens as they arrive, usage, missing secrets, provider
//! failures with safe messages.

use std::time::Duration;

use serde_json::{Value, json};
use theory_conformance::client::{attach_open, client_open, open};
use theory_processor::protocol::{Control, Frame, Mode, Role};

use crate::support::{error_of, output_text, run, spawn};
use theory_conformance::llm::{KEY, LlmStandIn as FakeProvider};

async fn processor_for(
    fake: &FakeProvider,
    key: &str,
) -> theory_conformance::process::SpawnedProcessor {
    let openai_base = format!("{}/v1", fake.base_url);
    spawn(&[
        ("OPENAI_API_KEY", key),
        ("ANTHROPIC_API_KEY", key),
        ("OPENAI_API_BASE", &openai_base),
        ("ANTHROPIC_API_BASE", &fake.base_url),
    ])
    .await
}

#[tokio::test]
async fn openai_stream_gives_tokens_text_and_usage() {
    let fake = FakeProvider::start().await;
    let processor = processor_for(&fake, KEY).await;
    let inputs = json!({"messages": [{"role": "user", "content": "Hi"}], "model": "openai/gpt-4o-mini", "temperature": 0.5});
    let transcript = run(&processor.base_url, "E-openai", Mode::Real, inputs).await;
    assert_eq!(transcript.text(), "Hello from fake", "{:?}", transcript.result());
    assert_eq!(output_text(&transcript, "text/response.txt"), "Hello from fake");
    let meta: Value = serde_json::from_str(&output_text(&transcript, "meta.json")).unwrap();
    assert_eq!(meta["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(
        (meta["provider"].as_str(), meta["tokens_in"].as_u64(), meta["tokens_out"].as_u64()),
        (Some("openai"), Some(7), Some(3))
    );
    assert_eq!(meta["finish_reason"], "stop");
    // The model asked for, provider included: the row of the spec's price table.
    let usage = transcript.result().unwrap().meta().usage.clone().unwrap();
    assert_eq!(
        (usage["model"].as_str(), usage["tokens_in"].as_u64()),
        (Some("openai/gpt-4o-mini"), Some(7))
    );
    let (path, body) = fake.requests().pop().expect("a request");
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Hi"}]));
}

#[tokio::test]
async fn anthropic_stream_gives_tokens_text_and_usage() {
    let fake = FakeProvider::start().await;
    let processor = processor_for(&fake, KEY).await;
    let inputs = json!({"messages": [{"role": "system", "content": "Be French"}, {"role": "user", "content": "Hi"}],
                        "model": "anthropic/claude-3-5-haiku-latest"});
    let transcript = run(&processor.base_url, "E-anthropic", Mode::Real, inputs).await;
    assert_eq!(transcript.text(), "Bonjour Theory", "{:?}", transcript.result());
    let meta: Value = serde_json::from_str(&output_text(&transcript, "meta.json")).unwrap();
    assert_eq!((meta["tokens_in"].as_u64(), meta["tokens_out"].as_u64()), (Some(9), Some(2)));
    assert_eq!(meta["model"], "claude-3-5-haiku-20241022");
    let (path, body) = fake.requests().pop().expect("a request");
    assert_eq!(path, "/v1/messages");
    assert_eq!(body["system"], "Be French");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Hi"}]));
    assert_eq!(body["max_tokens"], 1024);
}

#[tokio::test]
async fn tokens_arrive_before_the_provider_finishes() {
    let fake = FakeProvider::start().await;
    let processor = processor_for(&fake, KEY).await;
    let mut client = open(&processor.base_url).await.unwrap();
    let inputs = json!({"messages": [{"role": "user", "content": "Hi"}], "model": "openai/stall"});
    client.send(&client_open("E-stall", Mode::Real, inputs, None)).await.unwrap();
    // The fake sends "Hel" and then nothing: the token can only come from streaming.
    loop {
        match client.next_frame(Duration::from_secs(10)).await {
            Some(Frame::Token(token)) => {
                assert_eq!(token.text, "Hel");
                break;
            }
            Some(_) => {}
            None => panic!("no token while the provider stalls"),
        }
    }
    let mut controller = open(&processor.base_url).await.unwrap();
    controller.send(&attach_open("E-stall", Role::Controller)).await.unwrap();
    controller.send(&Frame::Control(Control { op: "cancel".into() })).await.unwrap();
    let transcript = client.collect(Duration::from_secs(10)).await;
    assert_eq!(error_of(&transcript).0, "ERR_CANCELLED");
}

#[tokio::test]
async fn missing_keys_are_named() {
    let fake = FakeProvider::start().await;
    let processor = processor_for(&fake, "").await;
    let cases = [
        ("openai/gpt-4o-mini", "OPENAI_API_KEY"),
        ("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
    ];
    for (index, (model, variable)) in cases.into_iter().enumerate() {
        let inputs = json!({"messages": [{"role": "user", "content": "Hi"}], "model": model});
        let transcript =
            run(&processor.base_url, &format!("E-nokey-{index}"), Mode::Real, inputs).await;
        let (code, message) = error_of(&transcript);
        assert_eq!(code, "ERR_MISSING_SECRET");
        assert!(message.contains(variable), "{message}");
    }
    assert!(fake.requests().is_empty(), "no request may leave without a key");
}

#[tokio::test]
async fn provider_failures_are_safe_provider_errors() {
    let fake = FakeProvider::start().await;
    let canary = "sk-canary-5f8e2d1c9b7a";
    let wrong = processor_for(&fake, canary).await;
    let inputs =
        json!({"messages": [{"role": "user", "content": "Hi"}], "model": "openai/gpt-4o-mini"});
    let transcript = run(&wrong.base_url, "E-wrong-key", Mode::Real, inputs).await;
    let (code, message) = error_of(&transcript);
    assert_eq!(code, "ERR_PROVIDER");
    assert!(message.contains("401") && message.contains("[REDACTED]"), "{message}");
    assert!(!message.contains(canary), "the key leaked: {message}");

    let processor = processor_for(&fake, KEY).await;
    for (model, expected) in [
        ("openai/fail", "upstream exploded (after 4 attempts)"),
        ("openai/truncate", "ended before"),
        ("nope/model", "unknown provider"),
    ] {
        let inputs = json!({"messages": [{"role": "user", "content": "Hi"}], "model": model});
        let transcript =
            run(&processor.base_url, &format!("E-{}", model.replace('/', "-")), Mode::Real, inputs)
                .await;
        let (code, message) = error_of(&transcript);
        let expected_code =
            if model.starts_with("nope") { "ERR_INPUT_SCHEMA" } else { "ERR_PROVIDER" };
        assert_eq!(code, expected_code, "{model}: {message}");
        assert!(message.contains(expected), "{model}: {message}");
    }

    // Nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_base = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = spawn(&[("OPENAI_API_KEY", KEY), ("OPENAI_API_BASE", &dead_base)]).await;
    let inputs = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let (code, message) =
        error_of(&run(&unreachable.base_url, "E-unreachable", Mode::Real, inputs).await);
    assert_eq!(code, "ERR_PROVIDER");
    assert!(message.contains("cannot reach openai"), "{message}");
}

#[tokio::test]
async fn a_busy_provider_is_retried_before_the_first_token_honouring_retry_after() {
    let fake = FakeProvider::start().await;
    let processor = processor_for(&fake, KEY).await;
    let ask =
        |model: &str| json!({"messages": [{"role": "user", "content": "Hi"}], "model": model});
    let started = std::time::Instant::now();
    let busy = run(&processor.base_url, "E-busy", Mode::Real, ask("openai/busy")).await;
    assert_eq!(busy.text(), "Hello from fake", "{:?}", busy.result());
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was not honoured");
    let logged: Vec<String> = busy
        .frames
        .iter()
        .filter_map(|frame| match frame {
            Frame::Log(log) => Some(log.msg.clone()),
            _ => None,
        })
        .collect();
    assert!(
        logged
            .iter()
            .any(|line| line.contains("HTTP 429")
                && line.contains("retrying in 1.0 s (attempt 2 of 4)")),
        "{logged:?}"
    );

    let flaky =
        run(&processor.base_url, "E-flaky", Mode::Real, ask("anthropic/claude-flaky")).await;
    assert_eq!(flaky.text(), "Bonjour Theory", "{:?}", flaky.result());
    let tries =
        |model: &str| fake.requests().iter().filter(|(_, body)| body["model"] == model).count();
    assert_eq!((tries("busy"), tries("claude-flaky")), (2, 3));

    let overloaded =
        run(&processor.base_url, "E-overloaded", Mode::Real, ask("anthropic/claude-overloaded"))
            .await;
    let (code, message) = error_of(&overloaded);
    assert_eq!(code, "ERR_PROVIDER");
    assert!(message.contains("HTTP 529: overloaded (after 4 attempts)"), "{message}");
    assert_eq!(tries("claude-overloaded"), 4);
}
