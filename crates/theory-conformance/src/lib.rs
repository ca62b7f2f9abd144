//! Test support for `theory.run.v1`: a low-level test client, a stand-in object store, helpers
//! to start a processor binary, and the conformance suite that any processor endpoint must pass.
//!
//! # Layout
//!
//! - `client`: connect (with or without the subprotocol), send any frame, collect a
//!   [`client::Transcript`] whose outputs are hashed while they stream.
//! - `sink`: [`sink::UploadSink`], an HTTP server that records PUTs and serves GETs, for
//!   `put_urls` plans and `get_url` input files.
//! - `process`: [`process::SpawnedProcessor`] starts a processor binary on a free port;
//!   [`process::process_stats`] reads its threads, file descriptors and memory.
//! - `llm`: [`llm::LlmStandIn`], a local server speaking OpenAI's and Anthropic's streaming
//!   chat APIs (and misbehaving on request), for `llm/litellm@1`.
//! - `replicate`: [`replicate::ReplicateStandIn`], a local server speaking Replicate's
//!   predictions API, for processors that use the official `replicate` client.
//! - `tls`: [`tls::tls_acceptor`], a throwaway CA and a 127.0.0.1 certificate for `https`
//!   stand-ins.
//! - `suite`: [`run_suite`] runs every check against a [`Target`] and returns a [`Report`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() {
//! use theory_conformance::{RunSpec, Target, run_suite};
//!
//! let quick = RunSpec::mock(serde_json::json!({"messages": [{"role": "user", "content": "Hi"}]}));
//! let report = run_suite(&Target::new("http://127.0.0.1:8000", quick)).await;
//! assert!(report.failures().is_empty(), "{report}");
//! # }
//! ```

mod checks;
pub mod client;
pub mod llm;
pub mod process;
pub mod replicate;
mod report;
pub mod sink;
mod suite;
mod target;
pub mod tls;

pub use report::{Outcome, Report};
pub use suite::run_suite;
pub use target::{RunSpec, Target};

/// Returns an HTTP client for tests; installs the ring TLS provider as the process default once.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
