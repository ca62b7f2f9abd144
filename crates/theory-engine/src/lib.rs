//! The parts of Theory assembled for a front end: the project (its registry, built in and its
//! own; its artifact store; its ledger) and the adapters a run may use. The CLI and the server
//! build their orchestrators here, the same way, so they cannot disagree about a run.
//!
//! - `project`: [`Project`], found from the working directory or `--project`; its registry,
//!   store (`STORAGE_BACKEND`) and ledger (`DATABASE_URL`).
//! - `adapters`: [`adapters::all`], the local and Modal adapters.
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
mod project;

pub use project::Project;
