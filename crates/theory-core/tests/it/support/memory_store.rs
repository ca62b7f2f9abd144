//! An artifact store in memory, for orchestrator tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use theory_core::{ArtifactStore, ByteStream, ObjectWriter, StoreError, WorldPath};

#[derive(Clone, Default)]
pub(crate) struct MemoryStore {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
    presigns: bool,
}

impl MemoryStore {
    /// A store that hands out `memory:///<key>` URLs, standing in for presigned ones: a test
    /// processor "uploads" by writing into the store it shares.
    pub(crate) fn presigning() -> MemoryStore {
        MemoryStore { presigns: true, ..MemoryStore::default() }
    }

    pub(crate) fn insert(&self, path: &str, bytes: Bytes) {
        self.objects.lock().unwrap().insert(path.to_owned(), bytes);
    }

    pub(crate) fn get(&self, path: &str) -> Option<Bytes> {
        self.objects.lock().unwrap().get(path).cloned()
    }

    pub(crate) fn paths(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    pub(crate) fn replace(&self, path: &str, bytes: &'static [u8]) {
        self.objects.lock().unwrap().insert(path.to_owned(), Bytes::from_static(bytes));
    }
}

#[async_trait]
impl ArtifactStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn begin(
        &self,
        path: &WorldPath,
        _mime: &str,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(MemoryWriter {
            store: self.clone(),
            path: path.to_string(),
            buffer: BytesMut::new(),
        }))
    }

    async fn exists(&self, path: &WorldPath) -> Result<bool, StoreError> {
        Ok(self.get(path.as_str()).is_some())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<WorldPath>, StoreError> {
        Ok(self
            .paths()
            .iter()
            .filter(|path| path.starts_with(prefix))
            .filter_map(|path| path.parse().ok())
            .collect())
    }

    async fn open(&self, path: &WorldPath) -> Result<Option<ByteStream>, StoreError> {
        Ok(self
            .get(path.as_str())
            .map(|bytes| Box::pin(futures_util::stream::iter([Ok(bytes)])) as ByteStream))
    }

    async fn size(&self, path: &WorldPath) -> Result<Option<u64>, StoreError> {
        Ok(self.get(path.as_str()).map(|bytes| bytes.len() as u64))
    }

    async fn delete(&self, path: &WorldPath) -> Result<(), StoreError> {
        self.objects.lock().unwrap().remove(path.as_str());
        Ok(())
    }

    async fn presign_put(
        &self,
        path: &WorldPath,
        _valid_for: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.presigns.then(|| format!("memory://{path}")))
    }

    async fn presign_get(
        &self,
        path: &WorldPath,
        valid_for: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        self.presign_put(path, valid_for).await
    }
}

struct MemoryWriter {
    store: MemoryStore,
    path: String,
    buffer: BytesMut,
}

#[async_trait]
impl ObjectWriter for MemoryWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.buffer.extend_from_slice(&chunk);
        Ok(())
    }

    /// Write-once, like every store.
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let mut objects = self.store.objects.lock().unwrap();
        if objects.contains_key(&self.path) {
            return Err(StoreError::Exists { path: self.path });
        }
        objects.insert(self.path, self.buffer.freeze());
        Ok(())
    }

    async fn abort(self: Box<Self>) {}
}
