//! The orchestrator: turns a [`RunRequest`] into an envelope, through an [`crate::Adapter`], the
//! protocol session and an [`crate::ArtifactStore`].
//!
//! - `run`: [`Orchestrator::run`], the life of a run in one readable sequence, and admission.
//! - `prepare`: what is checked and decided before anything starts.
//! - `attempts`: starting the processor and running the session, retried and cancellable.
//! - `finish`: index, receipts and envelope; or the removal of a failed run's outputs.
//! - `memo`: [`MemoCache`], reuse of finished identical runs.
//! - `predicates`: the spec's admission and success predicates (`ERR_PREDICATE`).
//! - `transfer`: [`Transfer`], whether bytes go through the session or straight to the store.
//! - `warm`: [`WarmPool`], started instances kept for the next run (`theory serve`).

mod attempts;
mod cost;
mod finish;
mod memo;
mod predicates;
mod prepare;
mod run;
mod transfer;
mod warm;

pub use memo::MemoCache;
pub use run::{Orchestrator, RunOutcome, RunRequest, default_write_prefix, resolve_write_prefix};
pub use transfer::{Transfer, TransferRequest};
pub use warm::{WarmPool, WarmSettings};
