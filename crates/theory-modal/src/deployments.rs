//! `.theory/modal_deployments.json`: what `theory modal start|deploy` deployed, per environment
//! and ref — the app name, the web endpoint's URL and the pinned image — so runs and
//! `status|logs|stop|verify-digest` find it. Reads and writes hold a lock on a sibling file;
//! writes are atomic (temp file + rename).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use theory_core::json_map::LockedJsonMap;

use crate::naming::ModalEnv;

/// One deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The processor.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `dev`, `staging` or `main`.
    pub env: String,
    /// The Modal app.
    pub app_name: String,
    /// The web endpoint, `https://…modal.run`.
    pub url: String,
    /// The image deployed, `repo@sha256:…`.
    pub image_ref: String,
    /// Whether callers must send a proxy auth token.
    pub proxy_auth: bool,
    /// When, RFC 3339.
    pub deployed_at: String,
}

/// The deployments of a project.
#[derive(Debug, Clone)]
pub struct DeploymentBook {
    map: LockedJsonMap,
}

fn key(env: ModalEnv, reference: &str) -> String {
    format!("{env}/{reference}")
}

impl DeploymentBook {
    /// The book at `state/modal_deployments.json` (`state` is the project's `.theory/`).
    pub fn new(state: &Path) -> DeploymentBook {
        DeploymentBook {
            map: LockedJsonMap::new(state.join("modal_deployments.json"), "deployments"),
        }
    }

    /// Where the book is.
    pub fn path(&self) -> &Path {
        self.map.path()
    }

    /// The deployment of `reference` in `env`, if any.
    pub fn get(&self, env: ModalEnv, reference: &str) -> io::Result<Option<Deployment>> {
        Ok(self.map.read::<Deployment>()?.remove(&key(env, reference)))
    }

    /// Every deployment.
    pub fn all(&self) -> io::Result<Vec<Deployment>> {
        Ok(self.map.read::<Deployment>()?.into_values().collect())
    }

    /// Records a deployment, replacing the one of the same env and ref.
    pub fn record(&self, deployment: &Deployment) -> io::Result<()> {
        let env: ModalEnv = deployment.env.parse().map_err(io::Error::other)?;
        self.map.update(|book| {
            book.insert(key(env, &deployment.reference), deployment.clone());
            Ok(((), true))
        })
    }

    /// Forgets the deployment of `reference` in `env`; returns it.
    pub fn forget(&self, env: ModalEnv, reference: &str) -> io::Result<Option<Deployment>> {
        self.map.update(|book: &mut std::collections::BTreeMap<String, Deployment>| {
            let removed = book.remove(&key(env, reference));
            let changed = removed.is_some();
            Ok((removed, changed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Deployment, DeploymentBook};
    use crate::naming::ModalEnv;

    #[test]
    fn deployments_are_kept_per_env_and_ref() {
        let folder = tempfile::tempdir().unwrap();
        let book = DeploymentBook::new(folder.path());
        assert_eq!(book.get(ModalEnv::Dev, "a/b@1").unwrap(), None);
        let deployment = Deployment {
            reference: "a/b@1".into(),
            env: "dev".into(),
            app_name: "x-y-a-b".into(),
            url: "https://w--x-y-a-b-serve.modal.run".into(),
            image_ref: format!("r/i@sha256:{}", "a".repeat(64)),
            proxy_auth: true,
            deployed_at: "2026-11-22T00:00:00Z".into(),
        };
        book.record(&deployment).unwrap();
        assert_eq!(book.get(ModalEnv::Dev, "a/b@1").unwrap(), Some(deployment.clone()));
        assert_eq!(book.get(ModalEnv::Main, "a/b@1").unwrap(), None);
        assert_eq!(book.forget(ModalEnv::Dev, "a/b@1").unwrap(), Some(deployment));
        assert!(book.all().unwrap().is_empty());
    }
}
