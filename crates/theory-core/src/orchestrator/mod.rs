//! The orchestrator: turns a [`RunRequest`] into an envelope, through an [`crate::Adapter`], the
//! protocol session and an [`crate::ArtifactStore`].
//!
//! - `run`: [`Orchestrator::run`], the life of a run.
//! - `memo`: [`MemoCache`], reuse of finished identical runs.
//! - `predicates`: the spec's admission and success predicates (`ERR_PREDICATE`).
//! - `transfer`: [`Transfer`], whether bytes go through the session or straight to the store.

mod cost;
mod memo;
mod predicates;
mod run;
mod transfer;

pub use memo::MemoCache;
pub use run::{Orchestrator, RunOutcome, RunRequest, default_write_prefix, resolve_write_prefix};
pub use transfer::{Transfer, TransferRequest};
