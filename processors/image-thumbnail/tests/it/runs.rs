use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use image::{DynamicImage, GenericImageView, ImageFormat, RgbImage};
use serde_json::{Value, json};
use theory_conformance::client::{Transcript, client_open, open, payload_mut};
use theory_conformance::process::SpawnedProcessor;
use theory_processor::protocol::{Cid, Envelope, ErrorCode, FileSpec, Mode};

const IMAGE: &str = "/artifacts/inputs/b3-test/photo";
/// Numbers runs: each needs an execution id of its own.
static RUNS: AtomicU32 = AtomicU32::new(0);

async fn processor() -> SpawnedProcessor {
    SpawnedProcessor::start(Path::new(env!("CARGO_BIN_EXE_image-thumbnail")), &[])
        .await
        .expect("the processor starts")
}

/// A gradient, so the resized pixels are not all alike.
fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image).write_to(&mut Cursor::new(&mut bytes), format).unwrap();
    bytes
}

/// Runs once with `bytes` sent as the input file `IMAGE`.
async fn run(base_url: &str, mode: Mode, bytes: &[u8], params: Value) -> Transcript {
    let spec = FileSpec {
        cid: Cid::of(bytes),
        size_bytes: bytes.len() as u64,
        mime: "image/png".into(),
        get_url: None,
    };
    let mut inputs =
        json!({"image": {"$artifact": IMAGE, "cid": spec.cid.to_string(), "mime": "image/png"}});
    if let (Value::Object(inputs), Value::Object(params)) = (&mut inputs, params) {
        inputs.extend(params);
    }
    let id = format!("thumb-{}", RUNS.fetch_add(1, Ordering::SeqCst));
    let mut frame = client_open(&id, mode, inputs, None);
    payload_mut(&mut frame).files.insert(IMAGE.into(), spec.clone());
    let mut client = open(base_url).await.expect("connects");
    client.send(&frame).await.expect("sends RunOpen");
    client.send_file(IMAGE, &spec, bytes).await.expect("sends the file");
    client.collect(Duration::from_secs(30)).await
}

fn output<'a>(transcript: &'a Transcript, relpath: &str) -> &'a [u8] {
    let found = transcript.outputs.iter().find(|output| output.header.path == relpath);
    let output = found.unwrap_or_else(|| panic!("no {relpath} in {:?}", transcript.kinds()));
    assert!(output.is_intact(), "{relpath} arrived damaged");
    output.bytes.as_deref().expect("small outputs are kept")
}

fn error_code(transcript: &Transcript) -> ErrorCode {
    match transcript.result() {
        Some(Envelope::Error(error)) => error.error.code.clone(),
        other => panic!("expected an error envelope, got {other:?}"),
    }
}

#[tokio::test]
async fn a_real_run_resizes_png_and_jpeg_keeping_the_aspect_ratio() {
    let processor = processor().await;
    for (format, name) in [(ImageFormat::Png, "png"), (ImageFormat::Jpeg, "jpeg")] {
        let source = picture(300, 200, format);
        let transcript =
            run(&processor.base_url, Mode::Real, &source, json!({"max_size": 96})).await;
        assert!(
            matches!(transcript.result(), Some(Envelope::Success(_))),
            "{:?}",
            transcript.result()
        );
        let thumbnail = image::load_from_memory_with_format(
            output(&transcript, "thumbnail.png"),
            ImageFormat::Png,
        )
        .expect("the thumbnail is a PNG");
        assert_eq!(thumbnail.dimensions(), (96, 64));
        let dimensions: Value =
            serde_json::from_slice(output(&transcript, "dimensions.json")).unwrap();
        assert_eq!(
            dimensions,
            json!({"source": {"width": 300, "height": 200, "format": name},
                   "thumbnail": {"width": 96, "height": 64}, "max_size": 96})
        );
    }
}

#[tokio::test]
async fn a_real_run_is_deterministic_and_never_enlarges() {
    let processor = processor().await;
    let source = picture(40, 30, ImageFormat::Png);
    let first = run(&processor.base_url, Mode::Real, &source, json!({})).await;
    let second = run(&processor.base_url, Mode::Real, &source, json!({})).await;
    assert_eq!(output(&first, "thumbnail.png"), output(&second, "thumbnail.png"));
    let thumbnail = image::load_from_memory(output(&first, "thumbnail.png")).unwrap();
    assert_eq!(thumbnail.dimensions(), (40, 30));
}

#[tokio::test]
async fn a_mock_run_returns_the_fixed_pixel_without_decoding() {
    let processor = processor().await;
    let not_an_image = b"these bytes are never decoded in mock mode";
    let transcript = run(&processor.base_url, Mode::Mock, not_an_image, json!({})).await;
    assert_eq!(output(&transcript, "thumbnail.png"), image_thumbnail::MOCK_PNG);
    let dimensions: Value = serde_json::from_slice(output(&transcript, "dimensions.json")).unwrap();
    assert_eq!(dimensions["mock"], true);
    assert_eq!(dimensions["source"]["cid"], Cid::of(not_an_image).to_string());
    assert_eq!(dimensions["source"]["size_bytes"], not_an_image.len());
}

#[tokio::test]
async fn bytes_that_are_no_image_and_a_missing_file_are_input_errors() {
    let processor = processor().await;
    let transcript =
        run(&processor.base_url, Mode::Real, b"plain text, not a picture", json!({})).await;
    assert_eq!(error_code(&transcript), ErrorCode::InputSchema);

    let inputs = json!({"image": {"$artifact": "/artifacts/inputs/elsewhere.png", "cid": Cid::of(b"").to_string(), "mime": "image/png"}});
    let frame = client_open("thumb-missing", Mode::Real, inputs, None);
    let mut client = open(&processor.base_url).await.unwrap();
    client.send(&frame).await.unwrap();
    let transcript = client.collect(Duration::from_secs(30)).await;
    assert_eq!(error_code(&transcript), ErrorCode::InputSchema);
}
