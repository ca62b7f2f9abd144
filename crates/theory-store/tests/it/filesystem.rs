//! The filesystem store.

use bytes::Bytes;
use theory_core::{ArtifactStore, Cid, StoreError, WorldPath};
use theory_store::FsStore;

fn path(text: &str) -> WorldPath {
    text.parse().unwrap()
}

#[tokio::test]
async fn nothing_is_visible_before_commit_and_nothing_is_left_after_abort() {
    let root = tempfile::tempdir().unwrap();
    let store = FsStore::new(root.path());
    let target = path("/artifacts/outputs/a b/é.txt");
    let mut writer = store.begin(&target, "text/plain").await.unwrap();
    writer.write(Bytes::from_static(b"hello ")).await.unwrap();
    assert!(store.open(&target).await.unwrap().is_none(), "visible before commit");
    writer.write(Bytes::from_static(b"world")).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(store.hash(&target).await.unwrap(), Some((Cid::of(b"hello world"), 11)));
    assert_eq!(
        std::fs::read(root.path().join("artifacts/outputs/a b/é.txt")).unwrap(),
        b"hello world"
    );

    let aborted = path("/artifacts/outputs/aborted.bin");
    let mut writer = store.begin(&aborted, "application/octet-stream").await.unwrap();
    writer.write(Bytes::from_static(b"partial")).await.unwrap();
    writer.abort().await;
    let dropped = path("/artifacts/outputs/dropped.bin");
    let mut writer = store.begin(&dropped, "application/octet-stream").await.unwrap();
    writer.write(Bytes::from_static(b"partial")).await.unwrap();
    drop(writer);
    assert!(store.open(&aborted).await.unwrap().is_none());
    assert!(store.open(&dropped).await.unwrap().is_none());
    assert_eq!(
        std::fs::read_dir(root.path().join(".partial")).unwrap().count(),
        0,
        "temporary files left behind"
    );
}

#[tokio::test]
async fn a_second_write_is_refused_and_delete_is_idempotent() {
    let root = tempfile::tempdir().unwrap();
    let store = FsStore::new(root.path());
    let target = path("/artifacts/x/y.json");
    store.put_bytes(&target, "application/json", Bytes::from_static(b"{\"v\":1}")).await.unwrap();
    let refused =
        store.put_bytes(&target, "application/json", Bytes::from_static(b"{\"v\":2}")).await;
    assert!(matches!(refused, Err(StoreError::Exists { .. })), "{refused:?}");
    assert_eq!(store.hash(&target).await.unwrap().map(|(cid, _)| cid), Some(Cid::of(b"{\"v\":1}")));
    assert_eq!(std::fs::read_dir(root.path().join(".partial")).unwrap().count(), 0);
    store.delete(&target).await.unwrap();
    store.delete(&target).await.unwrap();
    assert!(store.hash(&target).await.unwrap().is_none());
}

#[tokio::test]
async fn a_private_object_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let store = FsStore::new(root.path());
    let secret = path("/artifacts/inputs/b3:00/secret.txt");
    let mut writer = store.begin_private(&secret, "text/plain").await.unwrap();
    writer.write(Bytes::from_static(b"only mine")).await.unwrap();
    writer.commit().await.unwrap();
    let mode = std::fs::metadata(store.file(&secret)).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "group or others may read it: {mode:o}");
    let public = path("/artifacts/outputs/public.txt");
    store.put_bytes(&public, "text/plain", Bytes::from_static(b"x")).await.unwrap();
    let mode = std::fs::metadata(store.file(&public)).unwrap().permissions().mode();
    assert_ne!(mode & 0o044, 0, "an ordinary object follows the umask: {mode:o}");
}

#[tokio::test]
async fn the_filesystem_store_passes_the_store_conformance_story() {
    let root = tempfile::tempdir().unwrap();
    crate::conformance::check_store(&FsStore::new(root.path()), "/artifacts/conformance/").await;
}
