//! The local adapter: processors on this host.
//!
//! - [`LocalAdapter`] implements `theory_core::Adapter`: it plans (finds the binary and hashes it,
//!   so the memo key names exactly what runs) and starts instances.
//! - `process`: the `process` runtime — the processor's own binary on `127.0.0.1:0`, its address
//!   read from the `{"listening":…}` line it prints, ready once `/healthz` answers, killed when its
//!   instance is dropped; its stderr goes to our log.
//! - `identity`: the `b3:` identity of a host binary, cached by file stamp.
//! - `health`: the `/healthz` probe.

mod adapter;
mod health;
mod identity;
mod process;

pub use adapter::LocalAdapter;
pub use health::{healthy_once, wait_healthy};
pub use identity::{IdentityCache, hash_file};
pub use process::{BinarySearch, ProcessInstance, ProcessSettings};
