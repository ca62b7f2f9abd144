//! Artifact store backends behind `theory_core::ArtifactStore`.
//!
//! - [`FsStore`]: files under a folder (`.theory/artifacts/` by default), written to a temporary
//!   file and renamed into place.
//! - [`S3Store`]: an S3-compatible bucket (`STORAGE_BACKEND=minio|s3`, configured by
//!   [`S3Config::from_env`]), written as one `PUT` or a streaming multipart upload; it can hand out
//!   presigned URLs for direct uploads and downloads.

mod fs;
mod s3;
mod s3_complete;
mod s3_config;
mod s3_credentials;
mod s3_upload;

pub use fs::FsStore;
pub use s3::S3Store;
pub use s3_config::{ConfigError, DEFAULT_MINIO_BUCKET, S3Config, S3Credentials};
