//! The S3 store against a real S3-compatible server: s3s-fs on 127.0.0.1:9000, started by
//! `scripts/services/s3 start` (scripts/test does), which enforces `SigV4`.

use std::time::Duration;

use bytes::Bytes;
use theory_core::{ArtifactStore, EnvSnapshot, WorldPath};
use theory_store::{S3Config, S3Store};

use crate::conformance::check_store;

const ENDPOINT: &str = "127.0.0.1:9000";

fn minio_env(secret: &str) -> EnvSnapshot {
    EnvSnapshot::from_pairs([
        ("MINIO_STORAGE_ENDPOINT", ENDPOINT),
        ("MINIO_STORAGE_ACCESS_KEY", "theory-test-access"),
        ("MINIO_STORAGE_SECRET_KEY", secret),
        ("ARTIFACTS_BUCKET", "theory-test"),
    ])
}

fn store(secret: &str) -> S3Store {
    let config = S3Config::from_env("minio", &minio_env(secret)).expect("config");
    S3Store::new(config).expect("client")
}

async fn server_is_up() {
    assert!(
        tokio::net::TcpStream::connect(ENDPOINT).await.is_ok(),
        "no S3 server on {ENDPOINT}: start it with scripts/services/s3 start (scripts/test does)"
    );
}

fn prefix() -> String {
    format!("/artifacts/conformance/{}-{}/", std::process::id(), theory_core::new_execution_id())
}

#[tokio::test]
async fn the_s3_store_passes_the_store_conformance_story() {
    server_is_up().await;
    let store = store("theory-test-secret");
    store.check().await.expect("the server accepts the keys");
    check_store(&store, &prefix()).await;
}

#[tokio::test]
async fn the_s3_kind_with_an_endpoint_url_works_too() {
    server_is_up().await;
    let env = EnvSnapshot::from_pairs([
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ("AWS_ACCESS_KEY_ID", "theory-test-access"),
        ("AWS_SECRET_ACCESS_KEY", "theory-test-secret"),
        ("ARTIFACTS_BUCKET", "theory-test"),
        ("ARTIFACTS_REGION", "us-east-1"),
    ]);
    let store = S3Store::new(S3Config::from_env("s3", &env).unwrap()).unwrap();
    assert_eq!(store.kind(), "s3");
    let target: WorldPath = format!("{}x.txt", prefix()).parse().unwrap();
    store.put_bytes(&target, "text/plain", Bytes::from_static(b"x")).await.unwrap();
    assert!(store.hash(&target).await.unwrap().is_some());
}

#[tokio::test]
async fn wrong_keys_are_named_without_their_values() {
    server_is_up().await;
    let error = store("not-the-secret").check().await.unwrap_err().to_string();
    assert!(error.contains("MINIO_STORAGE_ACCESS_KEY / MINIO_STORAGE_SECRET_KEY"), "{error}");
    assert!(!error.contains("not-the-secret"), "{error}");
}

#[tokio::test]
async fn presigned_urls_put_and_get_with_plain_http() {
    server_is_up().await;
    let store = store("theory-test-secret");
    let target: WorldPath = format!("{}presigned/é x.bin", prefix()).parse().unwrap();
    let put = store.presign_put(&target, Duration::from_mins(1)).await.unwrap().unwrap();
    let client = reqwest::Client::new();
    // The URL signs If-None-Match: *, so an upload without it is refused …
    let unconditional = client.put(&put).body("direct bytes").send().await.unwrap();
    assert_eq!(unconditional.status(), 403, "an upload without If-None-Match was accepted");
    let response =
        client.put(&put).header("If-None-Match", "*").body("direct bytes").send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    // … and the same URL cannot replace the object afterwards: write-once holds for direct
    // uploads too, even for a processor that kept its URL.
    let again = client.put(&put).header("If-None-Match", "*").body("evil bytes!!").send().await;
    assert_eq!(again.unwrap().status(), 412);
    // The object is where the store itself reads it: the same key, unicode and space included.
    assert_eq!(store.hash(&target).await.unwrap().map(|(_, size)| size), Some(12));
    let get = store.presign_get(&target, Duration::from_mins(1)).await.unwrap().unwrap();
    let body = client.get(&get).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"direct bytes");
    let tampered = put.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let refused =
        client.put(&tampered).header("If-None-Match", "*").body("evil").send().await.unwrap();
    assert!(
        refused.status().is_client_error(),
        "a tampered URL was accepted: {}",
        refused.status()
    );
}

#[tokio::test]
async fn a_large_object_keeps_its_media_type() {
    server_is_up().await;
    let store = store("theory-test-secret");
    let target: WorldPath = format!("{}large/picture.png", prefix()).parse().unwrap();
    // Over one 8 MiB part: a multipart upload, completed only if nothing is at the key.
    let mut writer = store.begin(&target, "image/png").await.unwrap();
    for _ in 0..3 {
        writer.write(Bytes::from(vec![9u8; 4 * 1024 * 1024])).await.unwrap();
    }
    writer.commit().await.unwrap();
    let get = store.presign_get(&target, Duration::from_mins(1)).await.unwrap().unwrap();
    let response = reqwest::Client::new().get(&get).send().await.unwrap();
    assert_eq!(
        response.headers().get("content-type").and_then(|value| value.to_str().ok()),
        Some("image/png")
    );
    assert_eq!(response.bytes().await.unwrap().len(), 12 * 1024 * 1024);
}
