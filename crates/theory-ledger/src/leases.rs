//! Path leases: a live execution holds its write prefix for a TTL; a second execution whose
//! prefix overlaps (one is a prefix of the other) is refused, naming the holder. Expired leases
//! are taken over.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::plans::retrying;
use crate::{Ledger, LedgerError};

/// A lease held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The write prefix.
    pub prefix: String,
    /// Who holds it.
    pub execution_id: String,
    /// When it ends, epoch ms.
    pub expires_at_ms: i64,
}

impl Ledger {
    /// Takes a lease on `prefix` for `ttl_ms`, or fails with [`LedgerError::Leased`] naming the
    /// live holder of an overlapping prefix.
    pub async fn acquire_lease(
        &self,
        prefix: &str,
        execution_id: &str,
        ttl_ms: i64,
    ) -> Result<Lease, LedgerError> {
        let lease = retrying(|| async {
            let now = crate::now_ms();
            let mut transaction = self.pool().begin().await?;
            crate::schema::lock(&mut transaction, "leases").await?;
            sqlx::query("DELETE FROM leases WHERE expires_at_ms <= $1")
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            // Overlap: the held prefix starts with ours, or ours starts with it.
            let rows = sqlx::query("SELECT * FROM leases").fetch_all(&mut *transaction).await?;
            for row in &rows {
                let held: String = row.try_get("prefix")?;
                if held.starts_with(prefix) || prefix.starts_with(&held) {
                    return Err(LedgerError::Leased {
                        prefix: held,
                        holder: row.try_get("execution_id")?,
                        expires_at_ms: row.try_get("expires_at_ms")?,
                    });
                }
            }
            let expires_at_ms = now + ttl_ms;
            sqlx::query(
                "INSERT INTO leases (prefix, execution_id, expires_at_ms) VALUES ($1, $2, $3)",
            )
            .bind(prefix)
            .bind(execution_id)
            .bind(expires_at_ms)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
            Ok(Lease {
                prefix: prefix.to_owned(),
                execution_id: execution_id.to_owned(),
                expires_at_ms,
            })
        })
        .await?;
        self.append_event(
            Some(execution_id),
            "lease.acquired",
            &json!({"prefix": prefix, "expires_at_ms": lease.expires_at_ms}),
        )
        .await?;
        Ok(lease)
    }

    /// Gives back every lease an execution holds.
    pub async fn release_leases(&self, execution_id: &str) -> Result<(), LedgerError> {
        let released = sqlx::query("DELETE FROM leases WHERE execution_id = $1")
            .bind(execution_id)
            .execute(self.pool())
            .await?
            .rows_affected();
        if released > 0 {
            self.append_event(Some(execution_id), "lease.released", &json!({})).await?;
        }
        Ok(())
    }
}
