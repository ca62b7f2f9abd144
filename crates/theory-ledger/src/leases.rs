//! Path leases: a live execution holds its write prefix for a TTL; a second execution whose
//! prefix overlaps (one is a prefix of the other) is refused, naming the holder. Expired leases
//! are taken over.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::events::EventKind;
use crate::write::{Write, retrying};
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
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            let lease = acquire_in(&mut write, prefix, execution_id, ttl_ms).await?;
            write.commit().await?;
            Ok(lease)
        })
        .await
    }

    /// Gives back every lease an execution holds.
    pub async fn release_leases(&self, execution_id: &str) -> Result<(), LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            release_in(&mut write, execution_id).await?;
            write.commit().await
        })
        .await
    }
}

/// Whether the lease row's `prefix` overlaps `$1`: either starts with the other.
const OVERLAPS: &str =
    "(substr(prefix, 1, length($1)) = $1 OR substr($1, 1, length(prefix)) = prefix)";

/// [`Ledger::acquire_lease`] within a write (whose lock keeps two writers from both finding a
/// prefix free): one statement that inserts unless a live lease overlaps, taking over an expired
/// lease on the same prefix.
pub(crate) async fn acquire_in(
    write: &mut Write,
    prefix: &str,
    execution_id: &str,
    ttl_ms: i64,
) -> Result<Lease, LedgerError> {
    let now = crate::now_ms();
    let expires_at_ms = now.saturating_add(ttl_ms);
    let inserted = sqlx::query(&format!(
        "INSERT INTO leases (prefix, execution_id, expires_at_ms)
         SELECT $1, $2, $3
         WHERE NOT EXISTS (SELECT 1 FROM leases WHERE expires_at_ms > $4 AND {OVERLAPS})
         ON CONFLICT (prefix) DO UPDATE
             SET execution_id = excluded.execution_id, expires_at_ms = excluded.expires_at_ms"
    ))
    .bind(prefix)
    .bind(execution_id)
    .bind(expires_at_ms)
    .bind(now)
    .execute(write.db())
    .await?
    .rows_affected();
    if inserted == 0 {
        let holder = sqlx::query(&format!(
            "SELECT * FROM leases WHERE expires_at_ms > $2 AND {OVERLAPS} ORDER BY prefix LIMIT 1"
        ))
        .bind(prefix)
        .bind(now)
        .fetch_one(write.db())
        .await?;
        return Err(LedgerError::Leased {
            prefix: holder.try_get("prefix")?,
            holder: holder.try_get("execution_id")?,
            expires_at_ms: holder.try_get("expires_at_ms")?,
        });
    }
    let body = json!({"prefix": prefix, "expires_at_ms": expires_at_ms});
    write.event(Some(execution_id), EventKind::LeaseAcquired, &body)?;
    Ok(Lease { prefix: prefix.to_owned(), execution_id: execution_id.to_owned(), expires_at_ms })
}

/// [`Ledger::release_leases`] within a write, which also clears every expired lease; an
/// execution holding none leaves no event.
pub(crate) async fn release_in(write: &mut Write, execution_id: &str) -> Result<(), LedgerError> {
    let released = sqlx::query(
        "DELETE FROM leases WHERE execution_id = $1 OR expires_at_ms <= $2
         RETURNING execution_id",
    )
    .bind(execution_id)
    .bind(crate::now_ms())
    .fetch_all(write.db())
    .await?;
    let mut holders = released.iter().map(|row| row.try_get::<String, _>("execution_id"));
    if holders.any(|holder| holder.is_ok_and(|holder| holder == execution_id)) {
        write.event(Some(execution_id), EventKind::LeaseReleased, &json!({}))?;
    }
    Ok(())
}
