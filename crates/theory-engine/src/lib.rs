//! The parts of Theory assembled for a front end: the project (its registry, built in and its
//! own; its artifact store; its ledger) and the adapters a run may use. The CLI and the server
//! build their orchestrators here, the same way, so they cannot disagree about a run.
//!
//! - `project`: [`Project`], found from the working directory or `--project`; its registry,
//!   store (`STORAGE_BACKEND`) and ledger (`DATABASE_URL`).
//! - `project_file`: `theory.toml`, the settings a team shares ([`with_project_defaults`]).
//! - `adapters`: [`adapters::all`], the local and Modal adapters.
//! - `keys`, `trust`: the signing key, and the public keys whose attestations are trusted
//!   ([`sign_and_trust`]).
//! - [`orchestrator`]: the orchestrator over them.
//!
//! ```no_run
//! # async fn example() -> Result<(), theory_core::Failure> {
//! let env = theory_core::EnvSnapshot::capture();
//! let project = theory_engine::Project::locate(None)?;
//! let store = project.store(&env).await?;
//! let adapters = theory_engine::adapters::all(&project, &env, None)?;
//! # let _ = (store, adapters);
//! # Ok(())
//! # }
//! ```

pub mod adapters;
mod keys;
mod project;
mod project_file;
mod registry_index;
mod trust;

use std::sync::Arc;

use theory_core::orchestrator::MemoCache;
use theory_core::registry::Registry;
use theory_core::{ArtifactStore, EnvSnapshot, Orchestrator, Redactor};

pub use keys::KeySource;
pub use project::Project;
pub use project_file::{PROJECT_FILE, with_project_defaults};
pub use trust::{TrustedKey, public_key_from_text, read_public_key, sign_and_trust};

/// An orchestrator over a store, a ledger (also the memo cache), a registry and adapters: what
/// `theory run` and `theory serve` run with.
pub fn orchestrator(
    store: Arc<dyn ArtifactStore>,
    ledger: theory_ledger::Ledger,
    registry: impl Into<Arc<Registry>>,
    adapters: adapters::Adapters,
    env: EnvSnapshot,
    redactor: Redactor,
) -> Orchestrator {
    let ledger: Arc<dyn theory_core::ledger::RunLedger> = Arc::new(ledger);
    Orchestrator {
        registry: registry.into(),
        store,
        adapters,
        memo: MemoCache::from_ledger(Arc::clone(&ledger)),
        env,
        redactor,
        ledger: Some(ledger),
        warm: None,
        signer: None,
    }
}
