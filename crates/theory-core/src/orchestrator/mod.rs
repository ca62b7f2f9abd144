//! The orchestrator: turns a [`RunRequest`] into an envelope, through an [`crate::Adapter`], the
//! protocol session and an [`crate::ArtifactStore`].
//!
//! - `run`: [`Orchestrator::run`], the life of a run.
//! - `memo`: [`MemoCache`], reuse of finished identical runs.

mod memo;
mod run;

pub use memo::MemoCache;
pub use run::{Orchestrator, RunOutcome, RunRequest, default_write_prefix, resolve_write_prefix};
