//! The artifact-store conformance story, one function run on every backend: round trips with the
//! CID checked, nothing visible before commit, aborted and dropped writes leave nothing visible,
//! objects are write-once (a second commit fails, small or large, and the first stays), listing
//! by prefix, missing objects, unicode and spaces in keys, and an object
//! large enough to go multipart.

use bytes::Bytes;
use futures_util::StreamExt;
use theory_core::{ArtifactStore, Cid, StoreError, WorldPath};
use theory_protocol::CidHasher;

fn path(text: &str) -> WorldPath {
    text.parse().unwrap()
}

async fn read_all(store: &dyn ArtifactStore, target: &WorldPath) -> Option<Vec<u8>> {
    let mut stream = store.open(target).await.unwrap()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    Some(bytes)
}

async fn put(store: &dyn ArtifactStore, target: &WorldPath, chunks: &[&[u8]]) {
    let mut writer = store.begin(target, "application/octet-stream").await.unwrap();
    for chunk in chunks {
        writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    writer.commit().await.unwrap();
}

/// Runs the whole story under `prefix` (a fresh folder per run).
pub(crate) async fn check_store(store: &dyn ArtifactStore, prefix: &str) {
    let at = |rel: &str| path(&format!("{prefix}{rel}"));

    // Round trip, and nothing visible before commit.
    let target = at("a b/é ü 😀.txt");
    let mut writer = store.begin(&target, "text/plain").await.unwrap();
    writer.write(Bytes::from_static(b"hello ")).await.unwrap();
    assert!(store.open(&target).await.unwrap().is_none(), "visible before commit");
    writer.write(Bytes::from_static(b"world")).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(read_all(store, &target).await.as_deref(), Some(&b"hello world"[..]));
    assert_eq!(store.hash(&target).await.unwrap(), Some((Cid::of(b"hello world"), 11)));

    // Write-once: a second commit at the same path fails and the first object stays whole,
    // whether the second is small (one PUT) or large (multipart), or one call.
    assert!(store.exists(&target).await.unwrap());
    let mut writer = store.begin(&target, "text/plain").await.unwrap();
    writer.write(Bytes::from_static(b"hi")).await.unwrap();
    let refused = writer.commit().await.unwrap_err();
    assert!(matches!(refused, StoreError::Exists { .. }), "{refused}");
    let refused = store.put_bytes(&target, "text/plain", Bytes::from_static(b"hi")).await;
    assert!(matches!(refused, Err(StoreError::Exists { .. })), "{refused:?}");
    let mut writer = store.begin(&target, "application/octet-stream").await.unwrap();
    for _ in 0..10 {
        writer.write(Bytes::from(vec![7u8; 1_000_003])).await.unwrap();
    }
    let refused = writer.commit().await.unwrap_err();
    assert!(matches!(refused, StoreError::Exists { .. }), "{refused}");
    assert_eq!(read_all(store, &target).await.as_deref(), Some(&b"hello world"[..]));
    // Once deleted (a failed run's own output), the path can be written again.
    store.delete(&target).await.unwrap();
    assert!(!store.exists(&target).await.unwrap());
    put(store, &target, &[b"hi"]).await;
    assert_eq!(read_all(store, &target).await.as_deref(), Some(&b"hi"[..]));

    // Listing by prefix: what is there, nothing of a sibling whose name merely starts alike.
    put(store, &at("list/a.txt"), &[b"a"]).await;
    put(store, &at("list/sub/b.txt"), &[b"b"]).await;
    put(store, &at("listing/c.txt"), &[b"c"]).await;
    let mut listed: Vec<String> = store
        .list(&format!("{prefix}list/"))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    listed.sort();
    assert_eq!(listed, [format!("{prefix}list/a.txt"), format!("{prefix}list/sub/b.txt")]);
    assert!(store.list(&format!("{prefix}nothing/")).await.unwrap().is_empty());

    // Interrupted writes leave nothing visible, and do not disturb an existing object.
    let aborted = at("aborted.bin");
    let mut writer = store.begin(&aborted, "application/octet-stream").await.unwrap();
    writer.write(Bytes::from_static(b"partial")).await.unwrap();
    writer.abort().await;
    assert!(store.open(&aborted).await.unwrap().is_none(), "an aborted write is visible");
    let dropped = at("dropped.bin");
    let mut writer = store.begin(&dropped, "application/octet-stream").await.unwrap();
    writer.write(Bytes::from_static(b"partial")).await.unwrap();
    drop(writer);
    assert!(store.open(&dropped).await.unwrap().is_none(), "a dropped write is visible");
    let mut writer = store.begin(&target, "application/octet-stream").await.unwrap();
    writer.write(Bytes::from_static(b"never committed")).await.unwrap();
    writer.abort().await;
    assert_eq!(read_all(store, &target).await.as_deref(), Some(&b"hi"[..]));

    // Missing objects.
    let missing = at("missing/nothing.txt");
    assert!(store.open(&missing).await.unwrap().is_none());
    assert_eq!(store.hash(&missing).await.unwrap(), None);
    store.delete(&missing).await.unwrap();
    store.delete(&target).await.unwrap();
    assert!(store.open(&target).await.unwrap().is_none(), "deleted but still there");

    // A large object in odd-sized chunks (multipart on S3), verified by CID.
    let large = at("large/é blob+1.bin");
    let chunk: Vec<u8> = (0..1_000_003u32).map(|index| (index % 251) as u8).collect();
    let mut expected = CidHasher::new();
    let mut writer = store.begin(&large, "application/octet-stream").await.unwrap();
    for _ in 0..20 {
        expected.update(&chunk);
        writer.write(Bytes::copy_from_slice(&chunk)).await.unwrap();
    }
    writer.commit().await.unwrap();
    assert_eq!(store.hash(&large).await.unwrap(), Some((expected.finalize(), 20 * 1_000_003)));

    // Sizes and byte ranges, read without the bytes before them (`Range` requests of the API).
    assert_eq!(store.size(&large).await.unwrap(), Some(20 * 1_000_003));
    assert_eq!(store.size(&missing).await.unwrap(), None);
    for (start, end) in [(0, 10), (999_990, 1_000_020), (20 * 1_000_003 - 5, 20 * 1_000_003)] {
        let mut stream = store.open_range(&large, start, end).await.unwrap().unwrap();
        let mut got = Vec::new();
        while let Some(piece) = stream.next().await {
            got.extend_from_slice(&piece.unwrap());
        }
        let want: Vec<u8> =
            (start..end).map(|offset| chunk[(offset % 1_000_003) as usize]).collect();
        assert_eq!(got, want, "{start}..{end}");
    }
    assert!(store.open_range(&missing, 0, 1).await.unwrap().is_none());
    store.delete(&large).await.unwrap();
}
