//! Webhook deliveries: every attempt to deliver a run's webhook, as `theory serve` made it
//! (when, which message and event, the answer's status or the error). The target's URL is not
//! kept: it may carry credentials.

use serde::Serialize;
use sqlx::Row;

use crate::{Ledger, LedgerError};

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The run.
    pub run_id: String,
    /// The message (`webhook-id`), the same over its retries.
    pub message_id: String,
    /// `start`, `output`, `logs` or `completed`.
    pub event: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// The target's HTTP status, when it answered.
    pub status_code: Option<i64>,
    /// What went wrong, when it did not answer.
    pub error: Option<String>,
    /// When, epoch ms.
    pub at_ms: i64,
}

impl Ledger {
    /// Records a delivery attempt.
    pub async fn record_delivery(&self, delivery: &Delivery) -> Result<(), LedgerError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO webhook_deliveries (run_id, message_id, event, attempt, status_code, error, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&delivery.run_id)
        .bind(&delivery.message_id)
        .bind(&delivery.event)
        .bind(delivery.attempt)
        .bind(delivery.status_code)
        .bind(delivery.error.as_deref())
        .bind(delivery.at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A run's delivery attempts, oldest first.
    pub async fn deliveries(&self, run_id: &str) -> Result<Vec<Delivery>, LedgerError> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE run_id = $1 ORDER BY at_ms, message_id, attempt",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Delivery {
                    run_id: row.try_get("run_id")?,
                    message_id: row.try_get("message_id")?,
                    event: row.try_get("event")?,
                    attempt: row.try_get("attempt")?,
                    status_code: row.try_get("status_code")?,
                    error: row.try_get("error")?,
                    at_ms: row.try_get("at_ms")?,
                })
            })
            .collect()
    }
}
