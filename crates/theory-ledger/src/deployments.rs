//! The Modal deployments of a team: what `theory modal start|deploy` deployed, per environment
//! and ref — the app, its web endpoint and the pinned image. Kept in the ledger, so a teammate
//! or CI with the same `DATABASE_URL` runs against the same deployments.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Ledger, LedgerError};

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

fn deployment_of(row: &sqlx::any::AnyRow) -> Result<Deployment, LedgerError> {
    Ok(Deployment {
        reference: row.try_get("ref")?,
        env: row.try_get("env")?,
        app_name: row.try_get("app_name")?,
        url: row.try_get("url")?,
        image_ref: row.try_get("image_ref")?,
        proxy_auth: row.try_get::<i64, _>("proxy_auth")? != 0,
        deployed_at: row.try_get("deployed_at")?,
    })
}

impl Ledger {
    /// The deployment of `reference` in `env`, if any.
    pub async fn deployment(
        &self,
        env: &str,
        reference: &str,
    ) -> Result<Option<Deployment>, LedgerError> {
        let row = sqlx::query("SELECT * FROM modal_deployments WHERE env = $1 AND ref = $2")
            .bind(env)
            .bind(reference)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(deployment_of).transpose()
    }

    /// Every deployment, by environment and ref.
    pub async fn deployments(&self) -> Result<Vec<Deployment>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM modal_deployments ORDER BY env, ref")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(deployment_of).collect()
    }

    /// Records a deployment, replacing the one of the same environment and ref.
    pub async fn record_deployment(&self, deployment: &Deployment) -> Result<(), LedgerError> {
        let turn = self.write_turn().await;
        let written = sqlx::query(
            "INSERT INTO modal_deployments (env, ref, app_name, url, image_ref, proxy_auth, deployed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (env, ref) DO UPDATE SET app_name = excluded.app_name, url = excluded.url,
                 image_ref = excluded.image_ref, proxy_auth = excluded.proxy_auth,
                 deployed_at = excluded.deployed_at",
        )
        .bind(&deployment.env)
        .bind(&deployment.reference)
        .bind(&deployment.app_name)
        .bind(&deployment.url)
        .bind(&deployment.image_ref)
        .bind(i64::from(deployment.proxy_auth))
        .bind(&deployment.deployed_at)
        .execute(self.pool())
        .await;
        drop(turn);
        written?;
        Ok(())
    }

    /// Forgets the deployment of `reference` in `env`; returns it.
    pub async fn forget_deployment(
        &self,
        env: &str,
        reference: &str,
    ) -> Result<Option<Deployment>, LedgerError> {
        let turn = self.write_turn().await;
        let row =
            sqlx::query("DELETE FROM modal_deployments WHERE env = $1 AND ref = $2 RETURNING *")
                .bind(env)
                .bind(reference)
                .fetch_optional(self.pool())
                .await;
        drop(turn);
        row?.as_ref().map(deployment_of).transpose()
    }
}
