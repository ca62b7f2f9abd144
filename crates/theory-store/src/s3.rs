//! The S3-compatible store (MinIO in development, S3 in production) over `object_store`.
//!
//! Writes stream: bytes are kept until 8 MiB have come, then go out as a multipart upload in
//! 8 MiB parts (at most two in flight), so memory stays bounded whatever the object's size; a
//! smaller object is one `PUT`. Nothing is visible at the key before `commit` (S3 shows an object
//! only once its `PUT` or `CompleteMultipartUpload` succeeds); `abort` aborts the upload.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};
use theory_core::{ArtifactStore, ByteStream, ObjectWriter, StoreError, WorldPath};

use crate::s3_config::S3Config;

/// Size of a multipart part, and of the buffer before an upload turns multipart.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Artifacts in an S3 bucket; the object key is the world path without its leading `/`.
#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    config: S3Config,
}

fn backend(path: &WorldPath, error: &object_store::Error) -> StoreError {
    StoreError::Backend(format!("{path}: {error}"))
}

/// The object key of a world path.
fn key(path: &WorldPath) -> ObjectPath {
    path.key().split('/').collect()
}

impl S3Store {
    /// Builds the client for `config` (no request is made).
    pub fn new(config: S3Config) -> Result<S3Store, StoreError> {
        // TLS for HTTPS endpoints: the ring provider, unless the process installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|error| StoreError::Backend(error.to_string()))?;
        Ok(S3Store { store: Arc::new(store), config })
    }

    /// The settings it was built from.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Makes one request to prove the endpoint, the keys and the bucket work; the error names the
    /// variable to fix, never a value.
    pub async fn check(&self) -> Result<(), StoreError> {
        let probe = ObjectPath::from(".theory-check");
        match self.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(StoreError::Backend(self.config.explain(&error))),
        }
    }

    /// A presigned URL for `method` on `path`, valid for `valid_for`.
    pub async fn presign(
        &self,
        method: http::Method,
        path: &WorldPath,
        valid_for: Duration,
    ) -> Result<String, StoreError> {
        self.store
            .signed_url(method, &key(path), valid_for)
            .await
            .map(|url| url.to_string())
            .map_err(|error| backend(path, &error))
    }
}

fn attributes(mime: &str) -> Attributes {
    Attributes::from_iter([(Attribute::ContentType, mime.to_owned())])
}

#[async_trait]
impl ArtifactStore for S3Store {
    fn kind(&self) -> &'static str {
        self.config.kind
    }

    async fn begin(
        &self,
        path: &WorldPath,
        mime: &str,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(S3Writer {
            store: Arc::clone(&self.store),
            path: path.clone(),
            mime: mime.to_owned(),
            buffer: BytesMut::new(),
            upload: None,
        }))
    }

    async fn open(&self, path: &WorldPath) -> Result<Option<ByteStream>, StoreError> {
        match self.store.get(&key(path)).await {
            Ok(result) => {
                let shown = path.to_string();
                let stream = result
                    .into_stream()
                    .map_err(move |error| std::io::Error::other(format!("{shown}: {error}")));
                Ok(Some(stream.boxed()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(backend(path, &error)),
        }
    }

    async fn delete(&self, path: &WorldPath) -> Result<(), StoreError> {
        match self.store.delete(&key(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(backend(path, &error)),
        }
    }

    async fn presign_put(
        &self,
        path: &WorldPath,
        valid_for: Duration,
    ) -> Result<Option<String>, StoreError> {
        self.presign(http::Method::PUT, path, valid_for).await.map(Some)
    }

    async fn presign_get(
        &self,
        path: &WorldPath,
        valid_for: Duration,
    ) -> Result<Option<String>, StoreError> {
        self.presign(http::Method::GET, path, valid_for).await.map(Some)
    }
}

/// An object being written: buffered while small, a multipart upload once large.
struct S3Writer {
    store: Arc<AmazonS3>,
    path: WorldPath,
    mime: String,
    buffer: BytesMut,
    upload: Option<WriteMultipart>,
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        if let Some(upload) = &mut self.upload {
            upload.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| backend(&self.path, &e))?;
            upload.put(chunk);
            return Ok(());
        }
        self.buffer.extend_from_slice(&chunk);
        if self.buffer.len() >= PART_SIZE {
            let options =
                PutMultipartOptions { attributes: attributes(&self.mime), ..Default::default() };
            let started = self
                .store
                .put_multipart_opts(&key(&self.path), options)
                .await
                .map_err(|error| backend(&self.path, &error))?;
            let mut upload = WriteMultipart::new_with_chunk_size(started, PART_SIZE);
            upload.put(std::mem::take(&mut self.buffer).freeze());
            self.upload = Some(upload);
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let S3Writer { store, path, mime, buffer, upload } = *self;
        if let Some(upload) = upload {
            return upload.finish().await.map(drop).map_err(|error| backend(&path, &error));
        }
        let options = PutOptions { attributes: attributes(&mime), ..Default::default() };
        store
            .put_opts(&key(&path), PutPayload::from(buffer.freeze()), options)
            .await
            .map(drop)
            .map_err(|error| backend(&path, &error))
    }

    async fn abort(self: Box<Self>) {
        if let Some(upload) = self.upload
            && let Err(error) = upload.abort().await
        {
            tracing::warn!(path = %self.path, %error, "could not abort a multipart upload");
        }
    }
}
