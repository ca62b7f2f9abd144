//! The API tokens of `theory serve`. A token is shown once, when it is made; the ledger keeps
//! only its BLAKE3 hash (a token is 192 random bits, so a fast hash is enough), its name, the plan
//! its runs are charged to and what it may do. A revoked token stays listed, and never works
//! again.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::Row;

use crate::schema::is_conflict;
use crate::{Ledger, LedgerError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    /// Submit and cancel runs, upload inputs.
    #[serde(rename = "runs:write")]
    RunsWrite,
    /// See its runs: objects, events, receipts, artifacts.
    #[serde(rename = "runs:read")]
    RunsRead,
    /// Make plans, see every plan, charge any plan.
    #[serde(rename = "plans:admin")]
    PlansAdmin,
}

/// Every scope, as written.
pub const SCOPES: &[&str] = &["runs:write", "runs:read", "plans:admin"];

impl Scope {
    /// `runs:write`, `runs:read` or `plans:admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RunsWrite => "runs:write",
            Scope::RunsRead => "runs:read",
            Scope::PlansAdmin => "plans:admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Scope, String> {
        match text.trim() {
            "runs:write" => Ok(Scope::RunsWrite),
            "runs:read" => Ok(Scope::RunsRead),
            "plans:admin" => Ok(Scope::PlansAdmin),
            other => Err(format!("unknown scope {other:?} (known: {})", SCOPES.join(", "))),
        }
    }
}

/// A token as the ledger keeps it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    /// Its id: the submitter of the runs it makes.
    pub id: String,
    /// Its name, unique.
    pub name: String,
    /// The plan its runs are charged to.
    pub plan_key: Option<String>,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was made, epoch ms.
    pub created_at_ms: i64,
    /// When it was revoked.
    pub revoked_at_ms: Option<i64>,
}

impl Token {
    /// Whether it may do what `scope` allows.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// A token to make.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Its name.
    pub name: &'a str,
    /// The plan its runs are charged to (it must exist).
    pub plan_key: Option<&'a str>,
    /// What it may do.
    pub scopes: &'a [Scope],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut text, byte| {
        text.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        text.push(char::from_digit(u32::from(byte & 15), 16).unwrap_or('0'));
        text
    })
}

/// The hash kept for a secret.
fn hash_of(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

fn token_of(row: &sqlx::any::AnyRow) -> Result<Token, LedgerError> {
    let scopes: String = row.try_get("scopes")?;
    Ok(Token {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        plan_key: row.try_get("plan_key")?,
        scopes: scopes
            .split(',')
            .filter(|scope| !scope.is_empty())
            .map(|scope| scope.parse().map_err(LedgerError::Corrupt))
            .collect::<Result<_, _>>()?,
        created_at_ms: row.try_get("created_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}

impl Ledger {
    /// Makes a token; returns it with its secret (`thy_` and 48 hex digits), which is shown
    /// once and kept nowhere.
    pub async fn create_token(&self, new: NewToken<'_>) -> Result<(Token, String), LedgerError> {
        if let Some(plan) = new.plan_key {
            self.plan(plan).await?;
        }
        let mut random = [0_u8; 24];
        getrandom::fill(&mut random)
            .map_err(|error| LedgerError::Open(format!("no randomness for a token: {error}")))?;
        let secret = format!("thy_{}", hex(&random));
        // The id is public (it names the submitter of runs): derived, so it reveals nothing.
        let id = format!("tok_{}", &hash_of(&secret)[..16]);
        let mut scopes = new.scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let token = Token {
            id,
            name: new.name.to_owned(),
            plan_key: new.plan_key.map(str::to_owned),
            scopes,
            created_at_ms: crate::now_ms(),
            revoked_at_ms: None,
        };
        let turn = self.write_turn().await;
        let written = sqlx::query(
            "INSERT INTO tokens (id, name, hash, plan_key, scopes, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(hash_of(&secret))
        .bind(token.plan_key.as_deref())
        .bind(token.scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>().join(","))
        .bind(token.created_at_ms)
        .execute(self.pool())
        .await;
        drop(turn);
        match written {
            Ok(_) => Ok((token, secret)),
            Err(error) if is_conflict(&error) => Err(LedgerError::TokenExists(new.name.to_owned())),
            Err(error) => Err(error.into()),
        }
    }

    /// Every token, oldest first, revoked ones too.
    pub async fn tokens(&self) -> Result<Vec<Token>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at_ms, id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(token_of).collect()
    }

    /// How many tokens work (are not revoked).
    pub async fn live_tokens(&self) -> Result<i64, LedgerError> {
        let row = sqlx::query("SELECT count(*) AS n FROM tokens WHERE revoked_at_ms IS NULL")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The live token whose secret this is.
    pub async fn token_by_secret(&self, secret: &str) -> Result<Option<Token>, LedgerError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = $1 AND revoked_at_ms IS NULL")
            .bind(hash_of(secret))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(token_of).transpose()
    }

    /// Revokes the token named `name` (revoking it again changes nothing).
    pub async fn revoke_token(&self, name: &str) -> Result<Token, LedgerError> {
        let turn = self.write_turn().await;
        sqlx::query(
            "UPDATE tokens SET revoked_at_ms = $1 WHERE name = $2 AND revoked_at_ms IS NULL",
        )
        .bind(crate::now_ms())
        .bind(name)
        .execute(self.pool())
        .await?;
        drop(turn);
        let row = sqlx::query("SELECT * FROM tokens WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => token_of(&row),
            None => Err(LedgerError::UnknownToken(name.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_works_by_its_secret_until_it_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(None, &dir.path().join("t.db")).await.unwrap();
        let scopes = [Scope::RunsRead, Scope::RunsWrite, Scope::RunsRead];
        let (token, secret) = ledger
            .create_token(NewToken { name: "ci", plan_key: None, scopes: &scopes })
            .await
            .unwrap();
        assert!(secret.starts_with("thy_") && secret.len() == 52, "{secret}");
        assert_eq!(token.scopes, [Scope::RunsWrite, Scope::RunsRead]);
        assert_eq!(ledger.token_by_secret(&secret).await.unwrap(), Some(token.clone()));
        assert_eq!(ledger.token_by_secret("thy_guess").await.unwrap(), None);
        let again =
            ledger.create_token(NewToken { name: "ci", plan_key: None, scopes: &scopes }).await;
        assert!(matches!(again, Err(LedgerError::TokenExists(_))), "{again:?}");
        let unknown_plan = ledger
            .create_token(NewToken { name: "x", plan_key: Some("nope"), scopes: &scopes })
            .await;
        assert!(matches!(unknown_plan, Err(LedgerError::UnknownPlan(_))), "{unknown_plan:?}");
        assert_eq!(ledger.live_tokens().await.unwrap(), 1);
        let revoked = ledger.revoke_token("ci").await.unwrap();
        assert!(revoked.revoked_at_ms.is_some());
        assert_eq!(ledger.token_by_secret(&secret).await.unwrap(), None);
        assert_eq!(ledger.live_tokens().await.unwrap(), 0);
        assert_eq!(ledger.tokens().await.unwrap().len(), 1);
        assert!(matches!(ledger.revoke_token("other").await, Err(LedgerError::UnknownToken(_))));
        // Only the hash is kept.
        let stored: Vec<(String,)> =
            sqlx::query_as("SELECT hash FROM tokens").fetch_all(ledger.pool()).await.unwrap();
        assert!(!stored[0].0.contains(&secret[4..]));
    }
}
