//! An upload cut short: the S3 server is lost in the middle of a multipart upload and the
//! process writing it dies. The journal keeps the upload, and the next process that opens the
//! store aborts it, so no part is left in the bucket. Runs a private s3s-fs (the binary
//! `scripts/services/s3` builds) on a port of its own, so it can be killed and started again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use theory_core::{ArtifactStore, EnvSnapshot, WorldPath};
use theory_store::{S3Config, S3Store};

/// The s3s-fs binary: `THEORY_S3S_FS`, else where `scripts/services/s3` installs it.
fn s3s_fs() -> PathBuf {
    if let Some(binary) = std::env::var_os("THEORY_S3S_FS") {
        return binary.into();
    }
    let services = std::env::var_os("THEORY_SERVICES_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/theory-services")
        },
        PathBuf::from,
    );
    let binary = services.join("tools/bin/s3s-fs");
    assert!(
        binary.is_file(),
        "no s3s-fs at {}: run scripts/services/s3 start once (scripts/test does)",
        binary.display()
    );
    binary
}

struct Server {
    child: Child,
}

impl Server {
    async fn start(root: &Path, port: u16) -> Server {
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "interrupted-access", "--secret-key", "interrupted-secret"])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "s3s-fs did not listen on {port}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Server { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files s3s-fs keeps for multipart uploads under way.
fn upload_files(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.contains("upload_id"))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn s3_store(port: u16, journal: &Path) -> S3Store {
    let endpoint = format!("127.0.0.1:{port}");
    let env = EnvSnapshot::from_pairs([
        ("MINIO_STORAGE_ENDPOINT", endpoint.as_str()),
        ("MINIO_STORAGE_ACCESS_KEY", "interrupted-access"),
        ("MINIO_STORAGE_SECRET_KEY", "interrupted-secret"),
        ("ARTIFACTS_BUCKET", "interrupted"),
    ]);
    S3Store::new(S3Config::from_env("minio", &env).unwrap())
        .unwrap()
        .with_upload_journal(journal.to_path_buf())
}

/// Marks every upload of the journal as started by a process that is gone (a `theory` that was
/// killed), as the next command would find it.
fn as_if_its_process_died(journal: &Path) {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let mut entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(journal).unwrap()).unwrap();
    for entry in entries.values_mut() {
        entry["pid"] = pid.into();
    }
    std::fs::write(journal, serde_json::to_vec(&entries).unwrap()).unwrap();
}

#[tokio::test]
async fn an_upload_a_lost_server_and_a_dead_process_cut_short_is_aborted_by_the_next_one() {
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path().join("root");
    std::fs::create_dir_all(root.join("interrupted")).unwrap();
    let journal = folder.path().join("s3_uploads.json");
    let port = free_port();
    let server = Server::start(&root, port).await;

    let target: WorldPath = "/artifacts/outputs/big/blob.bin".parse().unwrap();
    let store = s3_store(port, &journal);
    let mut writer = store.begin(&target, "application/octet-stream").await.unwrap();
    for _ in 0..3 {
        writer.write(Bytes::from(vec![1u8; 8 * 1024 * 1024])).await.unwrap();
    }
    // Let the parts in flight land, so the server holds them.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while upload_files(&root).len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!upload_files(&root).is_empty(), "no part reached the server");
    server.kill();
    // The process dies here: no abort, no drop. Only the journal knows.
    std::mem::forget(writer);
    assert!(std::fs::read_to_string(&journal).unwrap().contains("artifacts/outputs/big/blob.bin"));

    let server = Server::start(&root, port).await;
    assert!(!upload_files(&root).is_empty(), "the parts survive a restart of the server");
    as_if_its_process_died(&journal);
    let next = s3_store(port, &journal);
    assert_eq!(next.recover_uploads().await.unwrap(), 1);
    assert_eq!(upload_files(&root), Vec::<String>::new(), "parts left in the bucket");
    assert!(!next.exists(&target).await.unwrap(), "a half-written object became visible");
    assert_eq!(next.recover_uploads().await.unwrap(), 0, "recovered twice");
    drop(server);
}
