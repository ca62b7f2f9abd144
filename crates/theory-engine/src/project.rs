//! The project: where `registry/` and `.theory/` are, the registry (built in, then the
//! project's), the artifact store and the ledger it uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use theory_core::Failure;
use theory_protocol::ErrorCode;

use theory_core::registry::{Document, DocumentKind, Registry, RegistryError, Source, list_dir};
use theory_core::{ArtifactStore, EnvSnapshot};
use theory_store::{FsStore, S3Config, S3Store};

use theory_core::env::names;

include!(concat!(env!("OUT_DIR"), "/builtin_registry.rs"));

/// The folder of a project and what it holds.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding `registry/` and `.theory/`.
    pub root: PathBuf,
}

impl Project {
    /// Uses `explicit` when given, else the nearest folder upward holding `registry/` or
    /// `.theory/`, else the working directory.
    pub fn locate(explicit: Option<&Path>) -> Result<Project, Failure> {
        if let Some(root) = explicit {
            if !root.is_dir() {
                return Err(Failure::with_hint(
                    ErrorCode::Usage,
                    format!("project folder {} does not exist", root.display()),
                    "pass an existing folder to --project (or THEORY_PROJECT)",
                ));
            }
            return Ok(Project { root: root.to_path_buf() });
        }
        let here = std::env::current_dir().map_err(|error| {
            Failure::with_hint(
                ErrorCode::Usage,
                format!("cannot read the working directory: {error}"),
                "run from an existing folder",
            )
        })?;
        let found = here.ancestors().find(|folder| {
            folder.join("registry").is_dir()
                || folder.join(".theory").is_dir()
                || folder.join(crate::PROJECT_FILE).is_file()
        });
        Ok(Project { root: found.unwrap_or(&here).to_path_buf() })
    }

    /// Returns the project's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns `.theory/` (created by whoever writes there first).
    pub fn state(&self) -> PathBuf {
        self.root.join(".theory")
    }

    /// Loads the built-in registry files, then the project's (which replace built-ins of the
    /// same ref); any problem fails the whole load.
    pub fn registry(&self) -> Result<Registry, Vec<RegistryError>> {
        let registry = self.registry_partial()?;
        if registry.problems().is_empty() {
            Ok(registry)
        } else {
            Err(registry.problems().to_vec())
        }
    }

    /// Loads the registry as [`Project::registry`] does, keeping every valid document when some
    /// files have problems ([`Registry::problems`]); fails only when the `registry/` folder
    /// cannot be read.
    pub fn registry_partial(&self) -> Result<Registry, Vec<RegistryError>> {
        let sources: Vec<Source> = BUILTIN
            .iter()
            .map(|(folder, relative, text)| Source {
                origin: format!("builtin:{relative}"),
                kind: kind_of(folder),
                text: (*text).to_owned(),
                builtin: true,
            })
            .collect();
        // Name files as the user sees them in the project: registry/processors/x.yaml.
        let origin_of =
            |path: &Path| path.strip_prefix(&self.root).unwrap_or(path).display().to_string();
        let index_file = self.state().join("cache").join("registry-index.json");
        let project = list_dir(&self.root.join("registry"))
            .and_then(|listed| crate::registry_index::documents(listed, &index_file, origin_of));
        match project {
            Ok(project) => {
                let mut documents: Vec<Document> =
                    sources.into_iter().map(Document::Text).collect();
                documents.extend(project);
                Ok(Registry::load_documents(documents))
            }
            Err(error) => Err(vec![RegistryError {
                origin: self.root.join("registry").display().to_string(),
                key: None,
                message: error.to_string(),
            }]),
        }
    }

    /// Builds the artifact store `STORAGE_BACKEND` names (default `local`: `.theory/artifacts/`;
    /// `minio` and `s3` from the seeds' variables, checked with one request before anything
    /// starts). Errors name the variable, never its value.
    pub async fn store(&self, env: &EnvSnapshot) -> Result<Arc<dyn ArtifactStore>, Failure> {
        let backend = env.get(names::STORAGE_BACKEND).unwrap_or("local");
        if backend == "local" || backend.is_empty() {
            let store = FsStore::new(self.state().join("artifacts"));
            store.sweep_partial();
            return Ok(Arc::new(store));
        }
        let config = S3Config::from_env(backend, env).map_err(|error| {
            config_failure(
                format!("STORAGE_BACKEND={backend}: {error}"),
                "see the storage variables in the README (MINIO_STORAGE_*, AWS_*, ARTIFACTS_*)",
            )
        })?;
        let store = S3Store::new(config)
            .map_err(|error| {
                config_failure(
                    format!("STORAGE_BACKEND={backend}: {error}"),
                    "check the storage variables",
                )
            })?
            .with_upload_journal(self.state().join("s3_uploads.json"));
        store.check().await.map_err(|error| {
            config_failure(
                format!("STORAGE_BACKEND={backend}: {error}"),
                "fix the variable named above, or unset STORAGE_BACKEND to use .theory/artifacts/",
            )
        })?;
        match store.recover_uploads().await {
            Ok(0) => {}
            Ok(count) => {
                tracing::info!(count, "aborted uploads an interrupted command left in the bucket");
            }
            Err(error) => {
                tracing::warn!(%error, "could not abort an interrupted upload; the next command tries again");
            }
        }
        Ok(Arc::new(store))
    }
}

impl Project {
    /// Opens the ledger: PostgreSQL or SQLite as `DATABASE_URL` says, else `.theory/theory.db`
    /// (created on first use). Runs a killed orchestrator left `running` are failed and their
    /// reservations released. Errors never show the URL (it may hold a password).
    pub async fn ledger(&self, env: &EnvSnapshot) -> Result<theory_ledger::Ledger, Failure> {
        let url = env.get(names::DATABASE_URL).filter(|url| !url.is_empty());
        let ledger = theory_ledger::Ledger::open(url, &self.state().join("theory.db"))
            .await
            .map_err(|error| {
                let mut message = error.to_string();
                if let Some(url) = url {
                    message = message.replace(url, names::DATABASE_URL);
                }
                // Settings that lead to no ledger are the user's to fix (exit 2); a ledger that
                // is there but cannot be used is a failure of the ledger (exit 1).
                let code = match &error {
                    theory_ledger::LedgerError::Open(_) => ErrorCode::Config,
                    _ => ErrorCode::Ledger,
                };
                let hint = if let theory_ledger::LedgerError::Unreadable { .. } = error {
                    "restore it from a backup, or move theory.db, theory.db-wal and theory.db-shm away together (theory then starts a new, empty ledger); `theory ledger verify` checks a restored one"
                } else if url.is_some() {
                    "check DATABASE_URL (postgres://user:password@host:port/db), or unset it to use .theory/theory.db"
                } else {
                    "check that .theory/ is writable"
                };
                Failure::with_hint(code, message, hint)
            })?;
        match ledger.recover(theory_ledger::owner_is_gone).await {
            Ok(recovered) if !recovered.is_empty() => tracing::info!(
                executions = %recovered.join(","),
                "marked runs of a stopped orchestrator failed and released their reservations"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not recover abandoned runs"),
        }
        Ok(ledger)
    }
}

/// A setting that leads nowhere (`ERR_CONFIG`, exit status 2): the message names the variable.
fn config_failure(message: String, hint: &str) -> Failure {
    Failure::with_hint(ErrorCode::Config, message, hint)
}

fn kind_of(folder: &str) -> DocumentKind {
    match folder {
        "schemas" => DocumentKind::Schema,
        "policies" => DocumentKind::Policy,
        "prompts" => DocumentKind::Prompt,
        _ => DocumentKind::Processor,
    }
}
