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

use async_trait::async_trait;

use crate::batch::Change;
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
    /// The processor.
    pub processor_ref: String,
    /// The plan it is charged to.
    pub plan_key: Option<String>,
}

/// A run to queue.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// Its execution id.
    pub id: &'a str,
    /// The request, as the API received it.
    pub request: &'a str,
    /// The processor.
    pub processor_ref: &'a str,
    /// The plan it is charged to.
    pub plan_key: Option<&'a str>,
    /// Who submits it.
    pub submitter: Option<&'a str>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// How many runs may wait at most; a run over it is [`LedgerError::QueueFull`] (checked in
    /// the statement that queues it).
    pub max_queued: i64,
    /// The front end that claims it as it is queued (one with a worker free hands it over at
    /// once), or `None` to leave it for the first worker of any front end.
    pub claimed_by: Option<&'a str>,
}

/// What to list of the queue: newest first, filtered.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// A client status: `queued`, `starting`, `running`, `succeeded`, `failed`, `cancelled`.
    pub status: Option<String>,
    /// Runs of this processor.
    pub processor_ref: Option<String>,
    /// Runs charged to this plan.
    pub plan_key: Option<String>,
    /// Only runs of this submitter, or charged to this plan (what an API token sees).
    pub visible_to: Option<(String, Option<String>)>,
    /// Runs after this one in the listing (`created_at_ms:id` of the last one seen).
    pub cursor: Option<(i64, String)>,
}

/// The SQL that selects the runs of a client status.
fn status_condition(status: &str) -> Option<&'static str> {
    Some(match status {
        "queued" => "q.state = 'queued'",
        "starting" => "q.state = 'claimed' AND e.id IS NULL",
        "running" => "e.status = 'running'",
        "succeeded" => "e.status = 'success'",
        "cancelled" => {
            "(e.error_code = 'ERR_CANCELLED' OR (e.id IS NULL AND q.state = 'done' AND q.cancel_requested = 1))"
        }
        "failed" => {
            "((e.status = 'error' AND COALESCE(e.error_code, '') <> 'ERR_CANCELLED') OR (e.id IS NULL AND q.state = 'done' AND q.cancel_requested = 0))"
        }
        _ => return None,
    })
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
        processor_ref: row.try_get("processor_ref")?,
        plan_key: row.try_get("plan_key")?,
    })
}

/// The row a run queued at `now` has.
fn new_row(run: NewRun<'_>, now: i64) -> QueuedRun {
    QueuedRun {
        id: run.id.to_owned(),
        request: run.request.to_owned(),
        state: if run.claimed_by.is_some() { QueueState::Claimed } else { QueueState::Queued },
        submitter: run.submitter.map(str::to_owned),
        idempotency_key: run.idempotency_key.map(str::to_owned),
        created_at_ms: now,
        claimed_at_ms: run.claimed_by.map(|_| now),
        claimed_by: run.claimed_by.map(str::to_owned),
        cancel_requested: false,
        processor_ref: run.processor_ref.to_owned(),
        plan_key: run.plan_key.map(str::to_owned),
    }
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
    /// Queues a run. With an idempotency key already used by its submitter, nothing is queued
    /// and the earlier run is returned.
    pub async fn enqueue(&self, run: NewRun<'_>) -> Result<Enqueued, LedgerError> {
        if run.idempotency_key.is_none() {
            // Nothing to look up first: one statement, written with whatever else is waiting
            // (see `batch`). An id already queued (`PUT /v1/runs/{id}` twice) is the earlier run.
            let now = crate::now_ms();
            let inserted = self.apply(Insert::of(&run, now)).await?;
            if inserted == 0 {
                return match self.queued(run.id).await? {
                    Some(existing) => Ok(Enqueued::Existing(existing)),
                    None => Err(LedgerError::QueueFull(run.max_queued)),
                };
            }
            return Ok(Enqueued::New(new_row(run, now)));
        }
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            if let Some(key) = run.idempotency_key {
                let existing = sqlx::query(
                    "SELECT * FROM queue WHERE idempotency_key = $1
                     AND COALESCE(submitter, '') = COALESCE($2, '')",
                )
                .bind(key)
                .bind(run.submitter)
                .fetch_optional(write.db())
                .await?;
                if let Some(row) = existing {
                    let existing = queued_of(&row)?;
                    write.commit().await?;
                    return Ok(Enqueued::Existing(existing));
                }
            }
            let now = crate::now_ms();
            if Insert::of(&run, now).apply(&mut write).await? == 0 {
                let taken = sqlx::query("SELECT * FROM queue WHERE id = $1")
                    .bind(run.id)
                    .fetch_optional(write.db())
                    .await?;
                return match taken {
                    Some(row) => Ok(Enqueued::Existing(queued_of(&row)?)),
                    None => Err(LedgerError::QueueFull(run.max_queued)),
                };
            }
            write.commit().await?;
            Ok(Enqueued::New(new_row(run, now)))
        })
        .await
    }

    /// Lists queued runs, newest first, at most `limit`, as `filter` says; an unknown status
    /// lists nothing.
    pub async fn queued_runs(
        &self,
        filter: &RunFilter,
        limit: i64,
    ) -> Result<Vec<QueuedRun>, LedgerError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(status) = &filter.status {
            match status_condition(status) {
                Some(condition) => conditions.push(condition.to_owned()),
                None => return Ok(Vec::new()),
            }
        }
        for (column, value) in
            [("q.processor_ref", &filter.processor_ref), ("q.plan_key", &filter.plan_key)]
        {
            if let Some(value) = value {
                binds.push(value.clone());
                conditions.push(format!("{column} = ${}", binds.len()));
            }
        }
        if let Some((submitter, plan)) = &filter.visible_to {
            binds.push(submitter.clone());
            let mine = format!("q.submitter = ${}", binds.len());
            match plan {
                Some(plan) => {
                    binds.push(plan.clone());
                    conditions.push(format!("({mine} OR q.plan_key = ${})", binds.len()));
                }
                None => conditions.push(mine),
            }
        }
        let mut cursor_at = None;
        if let Some((at_ms, id)) = &filter.cursor {
            binds.push(id.clone());
            cursor_at = Some(*at_ms);
            conditions.push(format!(
                "(q.created_at_ms < ${at} OR (q.created_at_ms = ${at} AND q.id < ${id}))",
                at = binds.len() + 1,
                id = binds.len()
            ));
        }
        let placeholder = binds.len() + usize::from(cursor_at.is_some()) + 1;
        let sql = format!(
            "SELECT q.* FROM queue q LEFT JOIN executions e ON e.id = q.id {} ORDER BY q.created_at_ms DESC, q.id DESC LIMIT ${placeholder}",
            if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            }
        );
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = query.bind(value.as_str());
        }
        if let Some(at_ms) = cursor_at {
            query = query.bind(at_ms);
        }
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(queued_of).collect()
    }

    /// Claims the oldest queued run for the front end `owner` whose processor is under its
    /// limit of runs at once (`limits`, by processor ref, counted over every front end), if
    /// there is one.
    pub async fn claim_next(
        &self,
        owner: &str,
        limits: &std::collections::HashMap<String, u32>,
    ) -> Result<Option<QueuedRun>, LedgerError> {
        self.apply(Claim { owner: owner.to_owned(), limits: limits.clone() }).await
    }

    /// Gives a claimed run that never started back to the queue, for any front end (a front end
    /// stopping with runs handed to it).
    pub async fn release_claim(&self, id: &str) -> Result<(), LedgerError> {
        self.apply(Release { id: id.to_owned() }).await
    }

    /// Marks a queued run done (its run ended, or it was cancelled before it started).
    pub async fn finish_queued(&self, id: &str) -> Result<(), LedgerError> {
        self.set_queue_state(id, QueueState::Done).await
    }

    async fn set_queue_state(&self, id: &str, state: QueueState) -> Result<(), LedgerError> {
        self.apply(SetState { id: id.to_owned(), state }).await
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

    /// The run an idempotency key of a submitter made, if it made one.
    pub async fn queued_by_key(
        &self,
        key: &str,
        submitter: Option<&str>,
    ) -> Result<Option<QueuedRun>, LedgerError> {
        let row = sqlx::query(
            "SELECT * FROM queue WHERE idempotency_key = $1 AND COALESCE(submitter, '') = COALESCE($2, '')",
        )
        .bind(key)
        .bind(submitter)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(queued_of).transpose()
    }

    /// A queued run by id.
    pub async fn queued(&self, id: &str) -> Result<Option<QueuedRun>, LedgerError> {
        let row = sqlx::query("SELECT * FROM queue WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(queued_of).transpose()
    }

    /// How many runs the queue holds, by processor and client status (`queued`, `starting`,
    /// `running`, `succeeded`, `failed`, `cancelled`).
    pub async fn run_counts(&self) -> Result<Vec<(String, String, i64)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT q.processor_ref AS processor_ref,
                CASE
                    WHEN e.id IS NULL AND q.state = 'queued' THEN 'queued'
                    WHEN e.id IS NULL AND q.state = 'claimed' THEN 'starting'
                    WHEN e.id IS NULL AND q.cancel_requested = 1 THEN 'cancelled'
                    WHEN e.id IS NULL THEN 'failed'
                    WHEN e.status = 'running' THEN 'running'
                    WHEN e.status = 'success' THEN 'succeeded'
                    WHEN e.error_code = 'ERR_CANCELLED' THEN 'cancelled'
                    ELSE 'failed'
                END AS status,
                count(*) AS n
             FROM queue q LEFT JOIN executions e ON e.id = q.id
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((row.try_get("processor_ref")?, row.try_get("status")?, row.try_get("n")?))
            })
            .collect()
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
            let _turn = self.write_turn().await;
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

/// A run queued (or queued and claimed), in one statement that also keeps the queue under its
/// limit (an id already queued, by `PUT /v1/runs/{id}` twice, is left as it is); answers how
/// many rows it inserted.
struct Insert {
    id: String,
    request: String,
    submitter: Option<String>,
    idempotency_key: Option<String>,
    created_at_ms: i64,
    processor_ref: String,
    plan_key: Option<String>,
    max_queued: i64,
    claimed_by: Option<String>,
}

impl Insert {
    fn of(run: &NewRun<'_>, now: i64) -> Insert {
        Insert {
            id: run.id.to_owned(),
            request: run.request.to_owned(),
            submitter: run.submitter.map(str::to_owned),
            idempotency_key: run.idempotency_key.map(str::to_owned),
            created_at_ms: now,
            processor_ref: run.processor_ref.to_owned(),
            plan_key: run.plan_key.map(str::to_owned),
            max_queued: run.max_queued,
            claimed_by: run.claimed_by.map(str::to_owned),
        }
    }
}

#[async_trait]
impl Change for Insert {
    type Output = u64;

    async fn apply(&self, write: &mut Write) -> Result<u64, LedgerError> {
        let state =
            if self.claimed_by.is_some() { QueueState::Claimed } else { QueueState::Queued };
        // Counting stops at the limit: a long queue costs no more to check than a full one.
        Ok(sqlx::query(
            "INSERT INTO queue (id, request, state, submitter, idempotency_key, created_at_ms,
                 cancel_requested, processor_ref, plan_key, claimed_by, claimed_at_ms)
             SELECT $1, $2, $9, $3, $4, $5, 0, $6, $7, $10, $11
             WHERE (SELECT count(*) FROM (SELECT 1 FROM queue WHERE state = 'queued' LIMIT $8) AS waiting) < $8
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&self.id)
        .bind(&self.request)
        .bind(&self.submitter)
        .bind(&self.idempotency_key)
        .bind(self.created_at_ms)
        .bind(&self.processor_ref)
        .bind(&self.plan_key)
        .bind(self.max_queued)
        .bind(state.as_str())
        .bind(&self.claimed_by)
        .bind(self.claimed_by.as_ref().map(|_| self.created_at_ms))
        .execute(write.db())
        .await?
        .rows_affected())
    }
}

/// The claim of the oldest queued run whose processor is under its limit (see
/// [`Ledger::claim_next`]): one statement that picks and claims it.
struct Claim {
    owner: String,
    limits: std::collections::HashMap<String, u32>,
}

#[async_trait]
impl Change for Claim {
    type Output = Option<QueuedRun>;

    async fn apply(&self, write: &mut Write) -> Result<Option<QueuedRun>, LedgerError> {
        let mut running = std::collections::HashMap::<String, i64>::new();
        if !self.limits.is_empty() {
            let rows = sqlx::query(
                "SELECT processor_ref, count(*) AS n FROM queue WHERE state = 'claimed' GROUP BY processor_ref",
            )
            .fetch_all(write.db())
            .await?;
            for row in rows {
                running.insert(row.try_get("processor_ref")?, row.try_get("n")?);
            }
        }
        // Oldest first, skipping the processors at their limit.
        let full: Vec<&String> = self
            .limits
            .iter()
            .filter(|(reference, limit)| {
                running.get(reference.as_str()).copied().unwrap_or(0) >= i64::from(**limit)
            })
            .map(|(reference, _)| reference)
            .collect();
        let excluded = if full.is_empty() {
            String::new()
        } else {
            let placeholders: Vec<String> = (3..3 + full.len()).map(|n| format!("${n}")).collect();
            format!("AND processor_ref NOT IN ({})", placeholders.join(", "))
        };
        let sql = format!(
            "UPDATE queue SET state = 'claimed', claimed_by = $1, claimed_at_ms = $2
             WHERE state = 'queued' AND id = (SELECT id FROM queue WHERE state = 'queued' {excluded}
                                              ORDER BY created_at_ms, id LIMIT 1)
             RETURNING *"
        );
        let mut query = sqlx::query(&sql).bind(&self.owner).bind(crate::now_ms());
        for reference in &full {
            query = query.bind(reference.as_str());
        }
        query.fetch_optional(write.db()).await?.as_ref().map(queued_of).transpose()
    }
}

/// A queue row moved to another state.
struct SetState {
    id: String,
    state: QueueState,
}

#[async_trait]
impl Change for SetState {
    type Output = ();

    async fn apply(&self, write: &mut Write) -> Result<(), LedgerError> {
        sqlx::query("UPDATE queue SET state = $1 WHERE id = $2")
            .bind(self.state.as_str())
            .bind(&self.id)
            .execute(write.db())
            .await?;
        Ok(())
    }
}

/// A claim given back.
struct Release {
    id: String,
}

#[async_trait]
impl Change for Release {
    type Output = ();

    async fn apply(&self, write: &mut Write) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE queue SET state = 'queued', claimed_by = NULL, claimed_at_ms = NULL
             WHERE id = $1 AND state = 'claimed'",
        )
        .bind(&self.id)
        .execute(write.db())
        .await?;
        Ok(())
    }
}
