//! The run queue of `theory serve`, durable in the ledger's database: a run submitted to any
//! front end is a row here until a worker of some front end claims it; a restart loses nothing.
//!
//! A row is `queued`, then `claimed` by one front end (`owner`, `host:pid` like an execution's),
//! then `done`. Claims go through the ledger's write lock, so two front ends on one PostgreSQL
//! never claim the same run; a claim whose front end died goes back to the queue
//! ([`Ledger::requeue_abandoned`]). The request is kept as the JSON the API received; the run's
//! record (`executions`) starts when the orchestrator admits it.

use serde::Serialize;
use sqlx::Row;

use crate::write::{Write, retrying};
use crate::{Ledger, LedgerError};

/// Where a queued run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Waiting for a worker.
    Queued,
    /// A worker of some front end runs it.
    Claimed,
    /// Its run ended (or it was cancelled before it started).
    Done,
}

impl QueueState {
    fn as_str(self) -> &'static str {
        match self {
            QueueState::Queued => "queued",
            QueueState::Claimed => "claimed",
            QueueState::Done => "done",
        }
    }

    fn parse(text: &str) -> Result<QueueState, LedgerError> {
        match text {
            "queued" => Ok(QueueState::Queued),
            "claimed" => Ok(QueueState::Claimed),
            "done" => Ok(QueueState::Done),
            other => Err(LedgerError::Corrupt(format!("unknown queue state {other:?}"))),
        }
    }
}

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedRun {
    /// The run's execution id.
    pub id: String,
    /// The request, as the API received it (JSON).
    pub request: String,
    /// Where it is.
    pub state: QueueState,
    /// The token (or caller) that submitted it, for who may see it.
    pub submitter: Option<String>,
    /// `Idempotency-Key`, when one was given.
    pub idempotency_key: Option<String>,
    /// When it was submitted, epoch ms.
    pub created_at_ms: i64,
    /// When a worker claimed it.
    pub claimed_at_ms: Option<i64>,
    /// The front end that claimed it.
    pub claimed_by: Option<String>,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
}

fn queued_of(row: &sqlx::any::AnyRow) -> Result<QueuedRun, LedgerError> {
    Ok(QueuedRun {
        id: row.try_get("id")?,
        request: row.try_get("request")?,
        state: QueueState::parse(&row.try_get::<String, _>("state")?)?,
        submitter: row.try_get("submitter")?,
        idempotency_key: row.try_get("idempotency_key")?,
        created_at_ms: row.try_get("created_at_ms")?,
        claimed_at_ms: row.try_get("claimed_at_ms")?,
        claimed_by: row.try_get("claimed_by")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
    })
}

/// What submitting a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Enqueued {
    /// A new row.
    New(QueuedRun),
    /// The idempotency key was used before: the run it made.
    Existing(QueuedRun),
}

impl Ledger {
    /// Queues a run. With an idempotency key already used by `submitter`, nothing is queued and
    /// the earlier run is returned.
    pub async fn enqueue(
        &self,
        id: &str,
        request: &str,
        submitter: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Enqueued, LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            if let Some(key) = idempotency_key {
                let existing = sqlx::query(
                    "SELECT * FROM queue WHERE idempotency_key = $1
                     AND COALESCE(submitter, '') = COALESCE($2, '')",
                )
                .bind(key)
                .bind(submitter)
                .fetch_optional(write.db())
                .await?;
                if let Some(row) = existing {
                    let run = queued_of(&row)?;
                    write.commit().await?;
                    return Ok(Enqueued::Existing(run));
                }
            }
            let now = crate::now_ms();
            sqlx::query(
                "INSERT INTO queue (id, request, state, submitter, idempotency_key, created_at_ms,
                     cancel_requested)
                 VALUES ($1, $2, 'queued', $3, $4, $5, 0)",
            )
            .bind(id)
            .bind(request)
            .bind(submitter)
            .bind(idempotency_key)
            .bind(now)
            .execute(write.db())
            .await?;
            write.commit().await?;
            Ok(Enqueued::New(QueuedRun {
                id: id.to_owned(),
                request: request.to_owned(),
                state: QueueState::Queued,
                submitter: submitter.map(str::to_owned),
                idempotency_key: idempotency_key.map(str::to_owned),
                created_at_ms: now,
                claimed_at_ms: None,
                claimed_by: None,
                cancel_requested: false,
            }))
        })
        .await
    }

    /// Claims the oldest queued run for the front end `owner`, if there is one.
    pub async fn claim_next(&self, owner: &str) -> Result<Option<QueuedRun>, LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            let row = sqlx::query(
                "SELECT * FROM queue WHERE state = 'queued' ORDER BY created_at_ms, id LIMIT 1",
            )
            .fetch_optional(write.db())
            .await?;
            let Some(row) = row else {
                write.commit().await?;
                return Ok(None);
            };
            let mut run = queued_of(&row)?;
            let now = crate::now_ms();
            sqlx::query(
                "UPDATE queue SET state = 'claimed', claimed_by = $1, claimed_at_ms = $2
                 WHERE id = $3 AND state = 'queued'",
            )
            .bind(owner)
            .bind(now)
            .bind(&run.id)
            .execute(write.db())
            .await?;
            write.commit().await?;
            run.state = QueueState::Claimed;
            run.claimed_by = Some(owner.to_owned());
            run.claimed_at_ms = Some(now);
            Ok(Some(run))
        })
        .await
    }

    /// Marks a queued run done (its run ended, or it was cancelled before it started).
    pub async fn finish_queued(&self, id: &str) -> Result<(), LedgerError> {
        self.set_queue_state(id, QueueState::Done).await
    }

    async fn set_queue_state(&self, id: &str, state: QueueState) -> Result<(), LedgerError> {
        sqlx::query("UPDATE queue SET state = $1 WHERE id = $2")
            .bind(state.as_str())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Asks for a run to be cancelled: a queued one is done at once (returns `true`), a claimed
    /// one is flagged for the front end running it to see.
    pub async fn request_cancel(&self, id: &str) -> Result<bool, LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            let dropped = sqlx::query(
                "UPDATE queue SET state = 'done', cancel_requested = 1
                 WHERE id = $1 AND state = 'queued'",
            )
            .bind(id)
            .execute(write.db())
            .await?
            .rows_affected();
            if dropped == 0 {
                sqlx::query("UPDATE queue SET cancel_requested = 1 WHERE id = $1")
                    .bind(id)
                    .execute(write.db())
                    .await?;
            }
            write.commit().await?;
            Ok(dropped > 0)
        })
        .await
    }

    /// A queued run by id.
    pub async fn queued(&self, id: &str) -> Result<Option<QueuedRun>, LedgerError> {
        let row = sqlx::query("SELECT * FROM queue WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(queued_of).transpose()
    }

    /// How many runs wait for a worker.
    pub async fn queue_depth(&self) -> Result<i64, LedgerError> {
        let row = sqlx::query("SELECT count(*) AS n FROM queue WHERE state = 'queued'")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Gives the claims of front ends that are gone back to the queue, when their run never
    /// started (a run that started is the executions' recovery's); returns how many.
    pub async fn requeue_abandoned(
        &self,
        is_gone: impl Fn(&str) -> bool,
    ) -> Result<usize, LedgerError> {
        let rows = sqlx::query(
            "SELECT q.id, q.claimed_by, e.id AS started FROM queue q
             LEFT JOIN executions e ON e.id = q.id WHERE q.state = 'claimed'",
        )
        .fetch_all(self.pool())
        .await?;
        let mut requeued = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            let owner: Option<String> = row.try_get("claimed_by")?;
            if !owner.as_deref().is_some_and(&is_gone) {
                continue;
            }
            let started: Option<String> = row.try_get("started")?;
            let state = if started.is_some() { QueueState::Done } else { QueueState::Queued };
            sqlx::query(
                "UPDATE queue SET state = $1, claimed_by = NULL, claimed_at_ms = NULL
                 WHERE id = $2 AND state = 'claimed'",
            )
            .bind(state.as_str())
            .bind(&id)
            .execute(self.pool())
            .await?;
            if state == QueueState::Queued {
                requeued += 1;
            }
        }
        Ok(requeued)
    }
}
