//! `--attach name=path`: files stored at `/artifacts/inputs/<cid>/<basename>`, `{"$attach":…}`
//! rewritten, bytes handed to the processor as `File` frames (filesystem store) or presigned
//! URLs (S3 store, with outputs uploaded directly and verified), and every bad attachment
//! refused before anything starts.

use std::io::Cursor;

use image::{DynamicImage, GenericImageView, ImageFormat, RgbImage};
use serde_json::Value;
use theory_core::{ArtifactStore, EnvSnapshot, WorldPath};
use theory_protocol::Cid;
use theory_store::{S3Config, S3Store};

use crate::support::{Outcome, Project};

const THUMBNAIL: &str = "image/thumbnail@1";
const INPUTS: &str = r#"{"image":{"$attach":"photo"},"max_size":32}"#;

/// A 64×48 PNG gradient.
pub(crate) fn png() -> Vec<u8> {
    let image = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

/// Writes the picture into the project as `photo.png`.
pub(crate) fn with_photo(project: &Project) -> Vec<u8> {
    let bytes = png();
    std::fs::write(project.path().join("photo.png"), &bytes).unwrap();
    bytes
}

/// Runs the thumbnail in real mode on `photo.png` with `extra` flags.
pub(crate) fn thumbnail(project: &Project, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "run",
        "--ref",
        THUMBNAIL,
        "--mode",
        "real",
        "--attach",
        "photo=photo.png",
        "--inputs-json",
        INPUTS,
        "--json",
        "--no-cache",
    ];
    args.extend_from_slice(extra);
    project.run(&args)
}

/// Checks the saved thumbnail and dimensions of a successful run.
pub(crate) fn check_thumbnail(project: &Project, envelope: &Value) {
    let outputs = envelope["outputs"].as_array().unwrap();
    let paths: Vec<&str> = outputs.iter().map(|output| output["path"].as_str().unwrap()).collect();
    assert!(
        paths[0].ends_with("/dimensions.json") && paths[1].ends_with("/thumbnail.png"),
        "{paths:?}"
    );
    let saved = |path: &str| {
        std::fs::read(project.path().join("saved").join(path.trim_start_matches('/'))).unwrap()
    };
    let thumbnail =
        image::load_from_memory_with_format(&saved(paths[1]), ImageFormat::Png).unwrap();
    assert_eq!(thumbnail.dimensions(), (32, 24));
    let dimensions: Value = serde_json::from_slice(&saved(paths[0])).unwrap();
    assert_eq!(dimensions["source"]["width"], 64);
    assert_eq!(dimensions["thumbnail"]["height"], 24);
    for output in outputs {
        let bytes = saved(output["path"].as_str().unwrap());
        assert_eq!(Cid::of(&bytes).to_string(), output["cid"].as_str().unwrap());
    }
}

/// The receipt beside the outputs, `{write_prefix}receipt.json`, as a world path.
fn receipt_path(envelope: &Value) -> WorldPath {
    let first = envelope["outputs"][0]["path"].as_str().unwrap();
    let prefix = &first[..=first.rfind('/').unwrap()];
    format!("{prefix}receipt.json").parse().unwrap()
}

fn local_object(project: &Project, path: &str) -> Vec<u8> {
    std::fs::read(project.path().join(".theory/artifacts").join(path.trim_start_matches('/')))
        .unwrap_or_else(|error| panic!("{path} is not in the local store: {error}"))
}

#[test]
fn an_attached_image_is_stored_by_cid_and_thumbnailed_through_file_frames() {
    let project = Project::new();
    let bytes = with_photo(&project);
    let outcome = thumbnail(&project, &["--save-dir", "saved"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    check_thumbnail(&project, &envelope);
    let stored = format!("/artifacts/inputs/{}/photo.png", Cid::of(&bytes));
    assert_eq!(local_object(&project, &stored), bytes);
    let receipt: Value =
        serde_json::from_slice(&local_object(&project, receipt_path(&envelope).as_str())).unwrap();
    assert_eq!(receipt["transfer"], "stream");
    // The local store has no presigned URLs, so direct transfer is refused before anything starts.
    let direct = thumbnail(&project, &["--transfer", "direct"]);
    assert_eq!(direct.code, 1, "{}", direct.transcript());
    assert!(
        direct.stderr.contains("ERR_STORE") && direct.stderr.contains("no presigned URLs"),
        "{}",
        direct.transcript()
    );
}

#[test]
fn the_seed_example_rewrites_attach_references_inside_messages() {
    let project = Project::new();
    std::fs::write(project.path().join("photo.jpg"), b"not really a jpeg").unwrap();
    let outcome = project.run(&[
        "run",
        "--ref",
        "llm/litellm@1",
        "--adapter",
        "mock",
        "--attach",
        "image=photo.jpg",
        "--inputs-json",
        r#"{"messages":[{"content":["Look at",{"$attach":"image"}]}]}"#,
        "--json",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    let response = envelope["outputs"][1]["path"].as_str().unwrap();
    assert!(response.ends_with("/text/response.txt"), "{response}");
    let reply = String::from_utf8(local_object(&project, response)).unwrap();
    let path = format!("/artifacts/inputs/{}/photo.jpg", Cid::of(b"not really a jpeg"));
    assert_eq!(reply, format!("MOCK: Look at [attachment {path}]"));
    assert_eq!(local_object(&project, &path), b"not really a jpeg");
}

/// Runs the thumbnail with `--attach` and inputs of a test's choosing; nothing may start.
fn refused(project: &Project, attach: &[&str], inputs: &str) -> Outcome {
    let mut args = vec!["run", "--ref", THUMBNAIL, "--inputs-json", inputs];
    for flag in attach {
        args.extend(["--attach", flag]);
    }
    let outcome = project.run(&args);
    assert!(
        project.state_files().iter().all(|file| !file.contains("/outputs/")),
        "a refused run wrote outputs: {:?}",
        project.state_files()
    );
    outcome
}

#[test]
fn bad_attachments_are_refused_before_anything_starts() {
    let project = Project::new();
    with_photo(&project);
    std::fs::create_dir(project.path().join("folder")).unwrap();
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["photo=photo.png"],
            r#"{"image":{"$attach":"other"}}"#,
            r#"refer to attachment "other", which was not attached"#,
        ),
        (&["photo=missing.png"], INPUTS, "cannot read missing.png"),
        (&["photo=folder"], INPUTS, "not a regular file"),
        (
            &["photo=photo.png", "extra=photo.png"],
            INPUTS,
            r#"attachment "extra" is never referred to"#,
        ),
        (&["photo=photo.png"], r#"{"image":{"$attach":"photo","cid":"b3:x"}}"#, "must be exactly"),
    ];
    for (attach, inputs, message) in cases {
        let outcome = refused(&project, attach, inputs);
        assert_eq!(outcome.code, 1, "{}", outcome.transcript());
        assert!(outcome.stderr.contains("ERR_ATTACHMENT"), "{}", outcome.transcript());
        assert!(
            outcome.stderr.contains(message),
            "expected {message:?}:\n{}",
            outcome.transcript()
        );
        assert!(outcome.stderr.contains("hint:"), "{}", outcome.transcript());
    }
    for flag in ["photo", "=photo.png", "bad name=photo.png", "photo="] {
        let outcome = refused(&project, &[flag], INPUTS);
        assert_eq!(outcome.code, 2, "{}", outcome.transcript());
        assert!(outcome.stderr.contains("--attach"), "{}", outcome.transcript());
    }
}

pub(crate) fn minio(project: Project) -> Project {
    assert!(
        std::net::TcpStream::connect("127.0.0.1:9000").is_ok(),
        "no S3 server on 127.0.0.1:9000: start it with scripts/services/s3 start (scripts/test does)"
    );
    project
        .env("STORAGE_BACKEND", "minio")
        .env("MINIO_STORAGE_ENDPOINT", "127.0.0.1:9000")
        .env("MINIO_STORAGE_ACCESS_KEY", "theory-test-access")
        .env("MINIO_STORAGE_SECRET_KEY", "theory-test-secret")
        .env("ARTIFACTS_BUCKET", "theory-test")
}

/// Reads an object from the test bucket.
fn bucket_object(path: &WorldPath) -> Vec<u8> {
    let env = EnvSnapshot::from_pairs([
        ("MINIO_STORAGE_ENDPOINT", "127.0.0.1:9000"),
        ("MINIO_STORAGE_ACCESS_KEY", "theory-test-access"),
        ("MINIO_STORAGE_SECRET_KEY", "theory-test-secret"),
        ("ARTIFACTS_BUCKET", "theory-test"),
    ]);
    let store = S3Store::new(S3Config::from_env("minio", &env).unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use futures_util::StreamExt;
        let mut stream = store
            .open(path)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{path} is not in the bucket"));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        bytes
    })
}

pub(crate) fn receipt_in_bucket(envelope: &Value) -> Value {
    serde_json::from_slice(&bucket_object(&receipt_path(envelope))).unwrap()
}

#[test]
fn with_an_s3_store_files_and_outputs_go_directly_and_are_verified() {
    let project = minio(Project::new());
    let bytes = with_photo(&project);
    let outcome = thumbnail(&project, &["--save-dir", "saved"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    check_thumbnail(&project, &envelope);
    assert_eq!(receipt_in_bucket(&envelope)["transfer"], "direct");
    let stored: WorldPath =
        format!("/artifacts/inputs/{}/photo.png", Cid::of(&bytes)).parse().unwrap();
    assert_eq!(bucket_object(&stored), bytes);
    // Streaming can still be chosen per run; the receipt says which path was used.
    let streamed = thumbnail(&project, &["--transfer", "stream", "--save-dir", "saved"]);
    assert_eq!(streamed.code, 0, "{}", streamed.transcript());
    let streamed = streamed.json();
    check_thumbnail(&project, &streamed);
    assert_eq!(receipt_in_bucket(&streamed)["transfer"], "stream");
    let cids = |envelope: &Value| {
        envelope["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|output| output["cid"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(cids(&envelope), cids(&streamed), "the two transfers gave different bytes");
}

#[test]
fn direct_transfer_is_refused_clearly_when_it_cannot_work() {
    // A processor that declares no outputs cannot be given upload URLs.
    let project = minio(Project::new());
    project.probe_variant("theory/probe@2", "probe2.yaml", |spec| {
        spec[..spec.find("outputs:").unwrap()].to_owned()
    });
    let outcome = project.run(&[
        "run",
        "--ref",
        "theory/probe@2",
        "--transfer",
        "direct",
        "--inputs-json",
        "{}",
    ]);
    assert_eq!(outcome.code, 1, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("declares no outputs"), "{}", outcome.transcript());
    // auto quietly streams instead.
    let outcome = project.run(&["run", "--ref", "theory/probe@2", "--inputs-json", "{}", "--json"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    assert_eq!(receipt_in_bucket(&outcome.json())["transfer"], "stream");
    let outcome =
        project.run(&["run", "--ref", THUMBNAIL, "--transfer", "sideways", "--inputs-json", "{}"]);
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("--transfer"), "{}", outcome.transcript());
}
