//! The S3-compatible store (MinIO in development, S3 in production) over `object_store`.
//!
//! Objects are written once. A small object (under 8 MiB) is one `PUT` with `If-None-Match: *`,
//! which the server refuses when the key exists. A larger one streams as a multipart upload in
//! 8 MiB parts (at most two in flight, so memory stays bounded) completed with
//! `If-None-Match: *` (`s3_upload.rs`, `s3_complete.rs`). Nothing is visible at the key before
//! `commit`; `abort`, a drop and a failure abort the upload, and an upload a crash interrupted
//! is aborted by the next command ([`S3Store::recover_uploads`]). Presigned `PUT`
//! URLs sign `If-None-Match: *` too, so a direct upload can create its object but never replace
//! one, not even a second time with the same URL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};
use theory_core::{ArtifactStore, ByteStream, ObjectWriter, StoreError, WorldPath};

use crate::s3_config::S3Config;
use crate::s3_upload::{Completer, Upload, UploadJournal};

/// Size of a multipart part, and of the buffer before an upload turns multipart.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// How long a connection to the server may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request is retried before it fails.
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// Artifacts in an S3 bucket; the object key is the world path without its leading `/`.
#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    config: S3Config,
    journal: UploadJournal,
    /// Sends the conditional completions of multipart uploads.
    client: reqwest::Client,
}

fn backend(path: &WorldPath, error: &object_store::Error) -> StoreError {
    StoreError::Backend(format!("{path}: {error}"))
}

/// The object key of a world path.
fn key(path: &WorldPath) -> ObjectPath {
    path.key().split('/').collect()
}

impl S3Store {
    /// Reads an object (or the range `options` names) as a stream, or `None` when there is none.
    async fn get(
        &self,
        path: &WorldPath,
        options: object_store::GetOptions,
    ) -> Result<Option<ByteStream>, StoreError> {
        match self.store.get_opts(&key(path), options).await {
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

    /// Builds the client for `config` (no request is made).
    pub fn new(config: S3Config) -> Result<S3Store, StoreError> {
        // TLS for HTTPS endpoints: the ring provider, unless the process installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = config.credentials.apply(
            AmazonS3Builder::new().with_bucket_name(&config.bucket).with_region(&config.region),
        );
        let roots = extra_roots(&config)?;
        let mut options = ClientOptions::new().with_connect_timeout(CONNECT_TIMEOUT);
        if let Some(pem) = &roots {
            for root in object_store::Certificate::from_pem_bundle(pem).map_err(roots_failure)? {
                options = options.with_root_certificate(root);
            }
        }
        // A lost server fails a command within about half a minute, not object_store's three.
        builder = builder.with_client_options(options).with_retry(RetryConfig {
            max_retries: 5,
            retry_timeout: RETRY_TIMEOUT,
            ..RetryConfig::default()
        });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|error| StoreError::Backend(error.to_string()))?;
        let mut client = reqwest::Client::builder();
        if let Some(pem) = &roots {
            for root in reqwest::Certificate::from_pem_bundle(pem).map_err(roots_failure)? {
                client = client.add_root_certificate(root);
            }
        }
        let client = client
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(RETRY_TIMEOUT)
            .build()
            .map_err(|error| StoreError::Backend(error.to_string()))?;
        Ok(S3Store { store: Arc::new(store), config, journal: UploadJournal::new(None), client })
    }

    /// Writes every multipart upload down in `file` while it is under way, so
    /// [`S3Store::recover_uploads`] can abort the ones a crash or a lost server interrupted.
    #[must_use]
    pub fn with_upload_journal(mut self, file: std::path::PathBuf) -> S3Store {
        self.journal = UploadJournal::new(Some(file));
        self
    }

    /// Aborts the uploads of the journal that a process now gone left unfinished; returns how
    /// many.
    pub async fn recover_uploads(&self) -> Result<usize, StoreError> {
        self.journal.recover(&self.store).await
    }

    /// The settings it was built from.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Makes one request to prove the endpoint, the keys and the bucket work; the error names the
    /// variable to fix, never a value.
    pub async fn check(&self) -> Result<(), StoreError> {
        // Asked first, so a provider that gives none is named as such.
        if let Err(error) = self.store.credentials().get_credential().await {
            return Err(StoreError::Backend(self.config.no_credentials(&error)));
        }
        let probe = ObjectPath::from(".theory-check");
        match self.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(StoreError::Backend(self.config.explain(&error))),
        }
    }

    /// A presigned URL for `method` on `path`, valid for `valid_for`. A `PUT` URL signs
    /// `If-None-Match: *`: the uploader must send that header, and the server then refuses the
    /// upload when the object exists (records are write-once).
    pub async fn presign(
        &self,
        method: http::Method,
        path: &WorldPath,
        valid_for: Duration,
    ) -> Result<String, StoreError> {
        let mut options = SignedUrlOptions::default();
        if method == http::Method::PUT {
            options = options.with_signed_header(
                http::header::IF_NONE_MATCH,
                http::HeaderValue::from_static("*"),
            );
        }
        self.store
            .signed_url_opts(method, &key(path), valid_for, &options)
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
            journal: self.journal.clone(),
            completer: Completer { config: self.config.clone(), client: self.client.clone() },
            path: path.clone(),
            mime: mime.to_owned(),
            buffer: BytesMut::new(),
            upload: None,
        }))
    }

    async fn exists(&self, path: &WorldPath) -> Result<bool, StoreError> {
        match self.store.head(&key(path)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(backend(path, &error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<WorldPath>, StoreError> {
        // object_store lists by whole segments: list the folder, keep what starts with prefix.
        let key_prefix = prefix.trim_start_matches('/');
        let folder = key_prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
        let folder = (!folder.is_empty()).then(|| ObjectPath::from(folder));
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(folder.as_ref())
            .try_collect()
            .await
            .map_err(|error| StoreError::Backend(format!("list {prefix}: {error}")))?;
        Ok(listed
            .into_iter()
            .filter(|meta| meta.location.as_ref().starts_with(key_prefix))
            .filter_map(|meta| format!("/{}", meta.location).parse().ok())
            .collect())
    }

    async fn size(&self, path: &WorldPath) -> Result<Option<u64>, StoreError> {
        match self.store.head(&key(path)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(backend(path, &error)),
        }
    }

    async fn open_range(
        &self,
        path: &WorldPath,
        start: u64,
        end: u64,
    ) -> Result<Option<ByteStream>, StoreError> {
        if start >= end {
            return Ok(self.open(path).await?.map(|_| futures_util::stream::empty().boxed()));
        }
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(start..end)),
            ..Default::default()
        };
        self.get(path, options).await
    }

    async fn open(&self, path: &WorldPath) -> Result<Option<ByteStream>, StoreError> {
        self.get(path, object_store::GetOptions::default()).await
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
    journal: UploadJournal,
    completer: Completer,
    path: WorldPath,
    mime: String,
    buffer: BytesMut,
    upload: Option<Upload>,
}

impl S3Writer {
    /// Sends the buffer as the next part once it is a whole part.
    async fn send_full_parts(&mut self) -> Result<(), StoreError> {
        while self.buffer.len() >= PART_SIZE {
            let part = self.buffer.split_to(PART_SIZE).freeze();
            if self.upload.is_none() {
                let options = PutMultipartOptions {
                    attributes: attributes(&self.mime),
                    ..PutMultipartOptions::default()
                };
                let started = Upload::start(
                    Arc::clone(&self.store),
                    self.journal.clone(),
                    self.completer.clone(),
                    &self.path,
                    options,
                )
                .await?;
                self.upload = Some(started);
            }
            let Some(upload) = self.upload.as_mut() else { break };
            upload.put(part).await.map_err(|error| backend(&self.path, &error))?;
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.buffer.extend_from_slice(&chunk);
        self.send_full_parts().await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        if let Some(mut upload) = self.upload.take() {
            if !self.buffer.is_empty() {
                let last = std::mem::take(&mut self.buffer).freeze();
                upload.put(last).await.map_err(|error| backend(&self.path, &error))?;
            }
            return upload.finish(&self.path).await;
        }
        let options = PutOptions {
            mode: PutMode::Create,
            attributes: attributes(&self.mime),
            ..Default::default()
        };
        let payload = PutPayload::from(std::mem::take(&mut self.buffer).freeze());
        match self.store.put_opts(&key(&self.path), payload, options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(StoreError::Exists { path: self.path.to_string() })
            }
            Err(error) => Err(backend(&self.path, &error)),
        }
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(mut upload) = self.upload.take() {
            upload.abort().await;
        }
    }
}

/// The PEM text of `SSL_CERT_FILE`, when it is set.
fn extra_roots(config: &S3Config) -> Result<Option<Vec<u8>>, StoreError> {
    config
        .extra_roots
        .as_ref()
        .map(|file| {
            std::fs::read(file)
                .map_err(|error| StoreError::Backend(format!("SSL_CERT_FILE={file}: {error}")))
        })
        .transpose()
}

fn roots_failure(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("SSL_CERT_FILE holds no usable certificate: {error}"))
}
