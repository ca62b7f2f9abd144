//! `theory run` with `STORAGE_BACKEND=minio|s3` against a real S3-compatible server (s3s-fs on
//! 127.0.0.1:9000, started by `scripts/services/s3 start`; scripts/test does).

use crate::support::{HELLO, Project};

fn minio_project(secret: &str) -> Project {
    assert!(
        std::net::TcpStream::connect("127.0.0.1:9000").is_ok(),
        "no S3 server on 127.0.0.1:9000: start it with scripts/services/s3 start (scripts/test does)"
    );
    Project::new()
        .env("STORAGE_BACKEND", "minio")
        .env("MINIO_STORAGE_ENDPOINT", "127.0.0.1:9000")
        .env("MINIO_STORAGE_ACCESS_KEY", "theory-test-access")
        .env("MINIO_STORAGE_SECRET_KEY", secret)
        .env("ARTIFACTS_BUCKET", "theory-test")
}

#[test]
fn a_run_stores_outputs_index_and_receipts_in_the_bucket() {
    let project = minio_project("theory-test-secret");
    let outcome = project.run_hello(&["--json", "--no-cache", "--save-dir", "saved"]);
    assert_eq!(outcome.code, 0, "{}", outcome.transcript());
    let envelope = outcome.json();
    assert!(
        project.state_files().iter().all(|file| !file.starts_with(".theory/artifacts")),
        "outputs went to the local store: {:?}",
        project.state_files()
    );
    // Read back through the store: --save-dir copies every output out of the bucket by world path.
    for output in envelope["outputs"].as_array().unwrap() {
        let relative = output["path"].as_str().unwrap().trim_start_matches('/');
        let saved = std::fs::read(project.path().join("saved").join(relative)).unwrap();
        assert_eq!(saved.len() as u64, output["size_bytes"].as_u64().unwrap());
    }
    // `theory artifacts` reads the same bucket, from the path `theory run` prints.
    let index = envelope["index_path"].as_str().unwrap();
    let printed = project.run(&["artifacts", "cat", index]);
    assert_eq!(printed.code, 0, "{}", printed.transcript());
    let listed: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
    assert_eq!(listed["outputs"], envelope["outputs"]);
    let folder = index.trim_end_matches("outputs.json");
    let objects = project.run(&["artifacts", "ls", folder, "--json"]).json();
    let paths: Vec<&str> = objects["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| object["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&index), "{paths:?}");
}

#[test]
fn storage_settings_are_checked_before_anything_starts() {
    let wrong = minio_project("not-the-secret");
    let outcome = wrong.run_hello(&["--json"]);
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(
        outcome.stderr.contains("MINIO_STORAGE_ACCESS_KEY / MINIO_STORAGE_SECRET_KEY"),
        "{}",
        outcome.transcript()
    );
    assert!(!outcome.stderr.contains("not-the-secret"), "{}", outcome.transcript());
    let missing = Project::new().env("STORAGE_BACKEND", "s3").env("AWS_ACCESS_KEY_ID", "a");
    let outcome = missing.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", HELLO]);
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(
        outcome.stderr.contains("AWS_SECRET_ACCESS_KEY: is not set"),
        "{}",
        outcome.transcript()
    );
    let unknown = Project::new().env("STORAGE_BACKEND", "gcs");
    let outcome = unknown.run(&["run", "--ref", "llm/litellm@1", "--inputs-json", HELLO]);
    assert_eq!(outcome.code, 2, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("STORAGE_BACKEND"), "{}", outcome.transcript());
}
