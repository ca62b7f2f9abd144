//! Attachments reach the model (seed 002's `--attach image=photo.jpg` into `messages`): images
//! as image content in both dialects, text files as text, anything else refused by name.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use theory_conformance::client::{Transcript, client_open, open, payload_mut};
use theory_processor::protocol::{Cid, FileSpec, Mode};

use crate::support::{error_of, spawn};
use theory_conformance::llm::{KEY, LlmStandIn as FakeProvider};

/// Not a real PNG: the processor passes bytes on, it does not decode them.
const PICTURE: &[u8] = b"\x89PNG\r\n\x1a\n picture bytes";

/// Runs `model` in real mode on a message of "Describe" and the attachment `path` (`mime`).
async fn describe(
    fake: &FakeProvider,
    model: &str,
    path: &str,
    mime: &str,
    bytes: &[u8],
) -> Transcript {
    let openai_base = format!("{}/v1", fake.base_url);
    let processor = spawn(&[
        ("OPENAI_API_KEY", KEY),
        ("ANTHROPIC_API_KEY", KEY),
        ("OPENAI_API_BASE", &openai_base),
        ("ANTHROPIC_API_BASE", &fake.base_url),
    ])
    .await;
    let spec = FileSpec {
        cid: Cid::of(bytes),
        size_bytes: bytes.len() as u64,
        mime: mime.into(),
        get_url: None,
    };
    let part = json!({"$artifact": path, "cid": spec.cid.to_string(), "mime": mime});
    let inputs =
        json!({"messages": [{"role": "user", "content": ["Describe", part]}], "model": model});
    let mut frame = client_open("E-attached", Mode::Real, inputs, None);
    payload_mut(&mut frame).files.insert(path.to_owned(), spec.clone());
    let mut client = open(&processor.base_url).await.unwrap();
    client.send(&frame).await.unwrap();
    client.send_file(path, &spec, bytes).await.unwrap();
    client.collect(Duration::from_secs(30)).await
}

fn last_content(fake: &FakeProvider) -> Value {
    let (_, body) = fake.requests().pop().expect("a request");
    body["messages"][0]["content"].clone()
}

#[tokio::test]
async fn an_attached_image_is_image_content_for_openai_and_anthropic() {
    let fake = FakeProvider::start().await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(PICTURE);
    let path = "/artifacts/inputs/b3-x/photo.png";

    let openai = describe(&fake, "openai/gpt-4o-mini", path, "image/png", PICTURE).await;
    assert_eq!(openai.text(), "Hello from fake", "{:?}", openai.result());
    assert_eq!(
        last_content(&fake),
        json!([
            {"type": "text", "text": "Describe"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{encoded}")}}
        ])
    );

    let anthropic =
        describe(&fake, "anthropic/claude-3-5-haiku-latest", path, "image/png", PICTURE).await;
    assert_eq!(anthropic.text(), "Bonjour Theory", "{:?}", anthropic.result());
    assert_eq!(
        last_content(&fake),
        json!([
            {"type": "text", "text": "Describe"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": encoded}}
        ])
    );
}

#[tokio::test]
async fn an_attached_text_file_is_text_and_other_files_are_refused_by_name() {
    let fake = FakeProvider::start().await;
    let notes = describe(
        &fake,
        "openai/gpt-4o-mini",
        "/artifacts/inputs/b3-n/notes.txt",
        "text/plain",
        b"the notes",
    )
    .await;
    assert_eq!(notes.text(), "Hello from fake", "{:?}", notes.result());
    assert_eq!(
        last_content(&fake),
        json!([{"type": "text", "text": "Describe"}, {"type": "text", "text": "the notes"}])
    );
    let sent = fake.requests().len();

    let pdf = describe(
        &fake,
        "openai/gpt-4o-mini",
        "/artifacts/inputs/b3-p/paper.pdf",
        "application/pdf",
        b"%PDF",
    )
    .await;
    let (code, message) = error_of(&pdf);
    assert_eq!(code, "ERR_INPUT_SCHEMA");
    assert!(message.contains("paper.pdf is application/pdf"), "{message}");

    let tiff = describe(
        &fake,
        "anthropic/claude-3-5-haiku-latest",
        "/artifacts/inputs/b3-t/scan.tiff",
        "image/tiff",
        b"II*",
    )
    .await;
    let (code, message) = error_of(&tiff);
    assert_eq!(code, "ERR_INPUT_SCHEMA");
    assert!(message.contains("scan.tiff is image/tiff; providers take image/png"), "{message}");
    assert_eq!(fake.requests().len(), sent, "a refused attachment reached the provider");
}
