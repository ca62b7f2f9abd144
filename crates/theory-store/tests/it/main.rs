//! The store contract on every backend: the filesystem store, and the S3 store against a real
//! S3-compatible server.

mod conformance;
mod filesystem;
mod s3;
mod s3_credentials;
mod s3_interrupted;
