//! The deployments `theory modal start|deploy` made, per environment and ref — the app name,
//! the web endpoint's URL and the pinned image — so runs and `status|logs|stop|verify-digest`
//! find them. They live in the ledger (`DATABASE_URL`, else `.theory/theory.db`), so a teammate
//! or CI sharing the ledger runs against the same deployments. A `.theory/modal_deployments.json`
//! an earlier version wrote is moved into the ledger the first time the book is opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use theory_core::EnvSnapshot;
use theory_core::env::names;
use theory_core::json_map::LockedJsonMap;
pub use theory_ledger::Deployment;
use theory_ledger::Ledger;
use tokio::sync::OnceCell;

use crate::naming::ModalEnv;

/// The deployments of a project, in its ledger.
#[derive(Clone)]
pub struct DeploymentBook {
    database_url: Option<String>,
    default_file: PathBuf,
    legacy: PathBuf,
    ledger: Arc<OnceCell<Ledger>>,
}

impl std::fmt::Debug for DeploymentBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentBook").field("place", &self.place()).finish_non_exhaustive()
    }
}

impl DeploymentBook {
    /// The book in the ledger `DATABASE_URL` names, else in `state/theory.db` (`state` is the
    /// project's `.theory/`). Opened on first use.
    pub fn new(state: &Path, env: &EnvSnapshot) -> DeploymentBook {
        DeploymentBook {
            database_url: env
                .get(names::DATABASE_URL)
                .filter(|url| !url.is_empty())
                .map(str::to_owned),
            default_file: state.join("theory.db"),
            legacy: state.join("modal_deployments.json"),
            ledger: Arc::new(OnceCell::new()),
        }
    }

    /// Where the book is, for messages (never the URL: it may hold a password).
    pub fn place(&self) -> String {
        match self.database_url {
            Some(_) => "the ledger DATABASE_URL names".to_owned(),
            None => self.default_file.display().to_string(),
        }
    }

    async fn ledger(&self) -> Result<&Ledger, String> {
        self.ledger
            .get_or_try_init(|| async {
                let ledger = Ledger::open(self.database_url.as_deref(), &self.default_file)
                    .await
                    .map_err(|error| self.without_url(error.to_string()))?;
                self.import_legacy(&ledger).await?;
                Ok(ledger)
            })
            .await
    }

    fn without_url(&self, message: String) -> String {
        match &self.database_url {
            Some(url) => message.replace(url.as_str(), names::DATABASE_URL),
            None => message,
        }
    }

    /// Moves the records of `.theory/modal_deployments.json` into the ledger (where the ledger
    /// has none for the same environment and ref), then renames the file `….imported`.
    async fn import_legacy(&self, ledger: &Ledger) -> Result<(), String> {
        if !self.legacy.is_file() {
            return Ok(());
        }
        let map = LockedJsonMap::new(self.legacy.clone(), "deployments");
        let old = map
            .read::<Deployment>()
            .map_err(|error| format!("cannot read {}: {error}", self.legacy.display()))?;
        for deployment in old.values() {
            let known = ledger
                .deployment(&deployment.env, &deployment.reference)
                .await
                .map_err(|error| self.without_url(error.to_string()))?;
            if known.is_none() {
                ledger
                    .record_deployment(deployment)
                    .await
                    .map_err(|error| self.without_url(error.to_string()))?;
            }
        }
        let imported = self.legacy.with_extension("json.imported");
        std::fs::rename(&self.legacy, &imported)
            .map_err(|error| format!("cannot rename {}: {error}", self.legacy.display()))?;
        let _ = std::fs::remove_file(self.legacy.with_extension("json.lock"));
        tracing::info!(count = old.len(), file = %imported.display(), "moved the recorded Modal deployments into the ledger");
        Ok(())
    }

    /// The deployment of `reference` in `env`, if any.
    pub async fn get(&self, env: ModalEnv, reference: &str) -> Result<Option<Deployment>, String> {
        let ledger = self.ledger().await?;
        ledger
            .deployment(env.as_str(), reference)
            .await
            .map_err(|error| self.without_url(error.to_string()))
    }

    /// Every deployment, by environment and ref.
    pub async fn all(&self) -> Result<Vec<Deployment>, String> {
        let ledger = self.ledger().await?;
        ledger.deployments().await.map_err(|error| self.without_url(error.to_string()))
    }

    /// Records a deployment, replacing the one of the same environment and ref.
    pub async fn record(&self, deployment: &Deployment) -> Result<(), String> {
        let _: ModalEnv = deployment.env.parse()?;
        let ledger = self.ledger().await?;
        ledger
            .record_deployment(deployment)
            .await
            .map_err(|error| self.without_url(error.to_string()))
    }

    /// Forgets the deployment of `reference` in `env`; returns it.
    pub async fn forget(
        &self,
        env: ModalEnv,
        reference: &str,
    ) -> Result<Option<Deployment>, String> {
        let ledger = self.ledger().await?;
        ledger
            .forget_deployment(env.as_str(), reference)
            .await
            .map_err(|error| self.without_url(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Deployment, DeploymentBook};
    use crate::naming::ModalEnv;
    use theory_core::EnvSnapshot;

    fn deployment(env: &str) -> Deployment {
        Deployment {
            reference: "a/b@1".into(),
            env: env.into(),
            app_name: "x-y-a-b".into(),
            url: "https://w--x-y-a-b-serve.modal.run".into(),
            image_ref: format!("r/i@sha256:{}", "a".repeat(64)),
            proxy_auth: true,
            deployed_at: "2026-11-22T00:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn deployments_are_kept_per_env_and_ref_in_the_ledger() {
        let folder = tempfile::tempdir().unwrap();
        let env = EnvSnapshot::default();
        let book = DeploymentBook::new(folder.path(), &env);
        assert_eq!(book.get(ModalEnv::Dev, "a/b@1").await.unwrap(), None);
        book.record(&deployment("dev")).await.unwrap();
        // Another book on the same ledger (a teammate, CI) sees it.
        let other = DeploymentBook::new(folder.path(), &env);
        assert_eq!(other.get(ModalEnv::Dev, "a/b@1").await.unwrap(), Some(deployment("dev")));
        assert_eq!(other.get(ModalEnv::Main, "a/b@1").await.unwrap(), None);
        assert_eq!(book.forget(ModalEnv::Dev, "a/b@1").await.unwrap(), Some(deployment("dev")));
        assert!(other.all().await.unwrap().is_empty());
        assert!(book.record(&deployment("prod")).await.is_err());
    }

    #[tokio::test]
    async fn an_earlier_json_book_is_moved_into_the_ledger() {
        let folder = tempfile::tempdir().unwrap();
        let legacy = folder.path().join("modal_deployments.json");
        let old = serde_json::json!({"staging/a/b@1": deployment("staging")});
        std::fs::write(&legacy, old.to_string()).unwrap();
        let env = EnvSnapshot::default();
        let book = DeploymentBook::new(folder.path(), &env);
        assert_eq!(
            book.get(ModalEnv::Staging, "a/b@1").await.unwrap(),
            Some(deployment("staging"))
        );
        assert!(!legacy.exists());
        assert!(folder.path().join("modal_deployments.json.imported").is_file());
    }
}
