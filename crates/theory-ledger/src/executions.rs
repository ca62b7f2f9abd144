//! The record of each execution: opened `running` before the processor starts, closed with its
//! status, error code, cost and envelope. [`Ledger::recover`] fails what an orchestrator that
//! died left `running`, and gives back its reservation and leases.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::events::EventKind;
use crate::leases::release_in;
use crate::plans::settle_in;
use crate::write::{Write, retrying};
use crate::{Ledger, LedgerError};

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Started, not finished.
    Running,
    /// Finished with a success envelope.
    Success,
    /// Finished with an error envelope, or abandoned.
    Error,
}

impl ExecutionStatus {
    /// `running`, `success` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Success => "success",
            ExecutionStatus::Error => "error",
        }
    }

    fn parse(text: &str) -> Result<ExecutionStatus, LedgerError> {
        match text {
            "running" => Ok(ExecutionStatus::Running),
            "success" => Ok(ExecutionStatus::Success),
            "error" => Ok(ExecutionStatus::Error),
            other => Err(LedgerError::Corrupt(format!("unknown execution status {other:?}"))),
        }
    }
}

/// What is known when an execution starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionStart {
    /// The execution id.
    pub id: String,
    /// The processor.
    pub processor_ref: String,
    /// `local` or `modal`.
    pub adapter: String,
    /// `process`, `docker`, `modal`.
    pub runtime: String,
    /// `mock` or `real`.
    pub mode: String,
    /// The memo key.
    pub memo_key: String,
    /// The plan it is charged to.
    pub plan_key: Option<String>,
    /// The expanded write prefix.
    pub write_prefix: String,
    /// What admission reserved.
    pub reserved_usd_micro: i64,
    /// `host:pid` of the orchestrator running it.
    pub owner: String,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// `success` or `error`.
    pub status: ExecutionStatus,
    /// The error code, for errors.
    pub error_code: Option<String>,
    /// What it cost, when known.
    pub cost_usd_micro: Option<i64>,
    /// Attempts made (retries included).
    pub attempts: i64,
    /// Wall time.
    pub duration_ms: i64,
    /// The envelope.
    pub envelope: Value,
    /// The key that signed the run's attestation, if it wrote one (in the finishing event).
    pub signed_by: Option<String>,
}

/// One row of `theory executions list|show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionRecord {
    /// The execution id.
    pub id: String,
    /// The processor.
    pub processor_ref: String,
    /// `local` or `modal`.
    pub adapter: String,
    /// `process`, `docker`, `modal`.
    pub runtime: Option<String>,
    /// `mock` or `real`.
    pub mode: String,
    /// Where it is.
    pub status: ExecutionStatus,
    /// The error code, for errors.
    pub error_code: Option<String>,
    /// The memo key.
    pub memo_key: Option<String>,
    /// The plan it was charged to.
    pub plan_key: Option<String>,
    /// Its write prefix.
    pub write_prefix: String,
    /// What admission reserved.
    pub reserved_usd_micro: i64,
    /// What it cost.
    pub cost_usd_micro: Option<i64>,
    /// Attempts made.
    pub attempts: i64,
    /// Start, epoch ms.
    pub started_at_ms: i64,
    /// End, epoch ms.
    pub finished_at_ms: Option<i64>,
    /// Wall time.
    pub duration_ms: Option<i64>,
    /// `host:pid` of the orchestrator that ran it.
    pub owner: String,
    /// The envelope, once finished.
    pub envelope: Option<Value>,
}

fn record_of(row: &sqlx::any::AnyRow) -> Result<ExecutionRecord, LedgerError> {
    let status: String = row.try_get("status")?;
    let envelope: Option<String> = row.try_get("envelope")?;
    Ok(ExecutionRecord {
        id: row.try_get("id")?,
        processor_ref: row.try_get("processor_ref")?,
        adapter: row.try_get("adapter")?,
        runtime: row.try_get("runtime")?,
        mode: row.try_get("mode")?,
        status: ExecutionStatus::parse(&status)?,
        error_code: row.try_get("error_code")?,
        memo_key: row.try_get("memo_key")?,
        plan_key: row.try_get("plan_key")?,
        write_prefix: row.try_get("write_prefix")?,
        reserved_usd_micro: row.try_get("reserved_usd_micro")?,
        cost_usd_micro: row.try_get("cost_usd_micro")?,
        attempts: row.try_get("attempts")?,
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        duration_ms: row.try_get("duration_ms")?,
        owner: row.try_get("owner")?,
        envelope: envelope
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|error| LedgerError::Corrupt(format!("envelope is not JSON: {error}")))?,
    })
}

impl Ledger {
    /// Records an execution as `running`.
    pub async fn start_execution(&self, start: &ExecutionStart) -> Result<(), LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            start_in(&mut write, start).await?;
            write.commit().await
        })
        .await
    }

    /// Records how an execution ended.
    pub async fn finish_execution(&self, id: &str, finish: &Finish) -> Result<(), LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            finish_in(&mut write, id, finish).await?;
            write.commit().await
        })
        .await
    }

    /// What a finished run claims, to check it against the store
    /// ([`theory_core::verify::check_run`]): its success envelope's outputs and index, its write
    /// prefix, and what the log recorded of the signing of its records (those of the run a
    /// memo-cache hit reused). Nothing but the default for a run that did not succeed.
    pub async fn claims(
        &self,
        record: &ExecutionRecord,
    ) -> Result<theory_core::verify::Claims, LedgerError> {
        let envelope = record.envelope.clone().and_then(|value| serde_json::from_value(value).ok());
        let Some(theory_protocol::Envelope::Success(success)) = envelope else {
            return Ok(theory_core::verify::Claims::default());
        };
        let index = success.index_path.parse::<theory_core::WorldPath>().ok();
        let owner = index.as_ref().and_then(theory_core::verify::record_owner);
        let signed_by = self.signed_by(owner.unwrap_or(&record.id)).await?;
        Ok(theory_core::verify::Claims {
            outputs: Some(success.outputs),
            index_path: Some(success.index_path),
            write_prefix: Some(record.write_prefix.clone()),
            signed_by,
        })
    }

    /// Returns one execution.
    pub async fn execution(&self, id: &str) -> Result<ExecutionRecord, LedgerError> {
        let row = sqlx::query("SELECT * FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| LedgerError::UnknownExecution(id.to_owned()))?;
        record_of(&row)
    }

    /// Returns the newest executions first, at most `limit`, only those with `status` when one
    /// is given.
    pub async fn executions_with(
        &self,
        limit: i64,
        status: Option<ExecutionStatus>,
    ) -> Result<Vec<ExecutionRecord>, LedgerError> {
        let rows = match status {
            None => return self.executions(limit).await,
            Some(status) => sqlx::query(
                "SELECT * FROM executions WHERE status = $1 ORDER BY started_at_ms DESC, id DESC LIMIT $2",
            )
            .bind(status.as_str())
            .bind(limit),
        }
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record_of).collect()
    }

    /// Returns the execution whose id is `wanted`, or whose generated id starts with it (any
    /// letter case): the one run a short prefix names. Two runs sharing the prefix → [`LedgerError::AmbiguousExecution`].
    pub async fn find_execution(&self, wanted: &str) -> Result<ExecutionRecord, LedgerError> {
        // An exact id first: a client may choose ids in any case, with `.`, `_` or `-`.
        match self.execution(wanted).await {
            Err(LedgerError::UnknownExecution(_)) => {}
            found => return found,
        }
        let prefix = wanted.to_ascii_uppercase();
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(LedgerError::UnknownExecution(wanted.to_owned()));
        }
        // A range on the key, which the index answers on both databases: ids are upper-case
        // letters and digits, so every id with the prefix sorts between it and it padded with
        // `Z` (the greatest of them), in byte order and in any locale's.
        let rows =
            sqlx::query("SELECT * FROM executions WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT 3")
                .bind(&prefix)
                .bind(format!("{prefix}{}", "Z".repeat(64)))
                .fetch_all(self.pool())
                .await?;
        let mut matching = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = record_of(row)?;
            if record.id.starts_with(&prefix) {
                matching.push(record);
            }
        }
        match matching.len() {
            0 => Err(LedgerError::UnknownExecution(wanted.to_owned())),
            1 => Ok(matching.remove(0)),
            _ if matching[0].id == prefix => Ok(matching.remove(0)),
            _ => Err(LedgerError::AmbiguousExecution(wanted.to_owned())),
        }
    }

    /// Returns the newest executions first, at most `limit`.
    pub async fn executions(&self, limit: i64) -> Result<Vec<ExecutionRecord>, LedgerError> {
        let rows =
            sqlx::query("SELECT * FROM executions ORDER BY started_at_ms DESC, id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(record_of).collect()
    }

    /// Returns the execution that owns the object at `path`, other than `asking`, if the ledger
    /// knows one: a successful run that wrote it (its envelope lists it, or it is that run's
    /// `receipt.json`), else a live run whose write prefix holds it. One indexed look-up by the
    /// path's folders.
    pub async fn owner_of(&self, path: &str, asking: &str) -> Result<Option<String>, LedgerError> {
        let folders: Vec<&str> =
            path.match_indices('/').skip(1).map(|(index, _)| &path[..=index]).collect();
        if folders.is_empty() {
            return Ok(None);
        }
        let placeholders: Vec<String> = (2..=folders.len() + 1).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT id, status, write_prefix, envelope FROM executions
             WHERE id <> $1 AND write_prefix IN ({}) AND status IN ('running', 'success')
             ORDER BY started_at_ms DESC",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(asking);
        for folder in &folders {
            query = query.bind(*folder);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let listed = format!("\"path\":{}", Value::from(path));
        let mut live = None;
        for row in rows {
            let status: String = row.try_get("status")?;
            if status == "running" {
                live = live.or(Some(row.try_get("id")?));
                continue;
            }
            let prefix: String = row.try_get("write_prefix")?;
            let envelope: Option<String> = row.try_get("envelope")?;
            if path == format!("{prefix}receipt.json")
                || envelope.is_some_and(|envelope| envelope.contains(&listed))
            {
                return Ok(Some(row.try_get("id")?));
            }
        }
        Ok(live)
    }

    /// Returns the newest successful execution with this memo key, if any.
    pub async fn memo_hit(&self, memo_key: &str) -> Result<Option<ExecutionRecord>, LedgerError> {
        let row = sqlx::query(
            "SELECT * FROM executions WHERE memo_key = $1 AND status = 'success'
             ORDER BY finished_at_ms DESC LIMIT 1",
        )
        .bind(memo_key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record_of).transpose()
    }

    /// Fails every `running` execution whose owner `is_gone`, releasing its reservation and
    /// leases; returns their ids.
    pub async fn recover(
        &self,
        is_gone: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, LedgerError> {
        let rows = sqlx::query("SELECT * FROM executions WHERE status = 'running'")
            .fetch_all(self.pool())
            .await?;
        let mut recovered = Vec::new();
        for row in &rows {
            let record = record_of(row)?;
            if !is_gone(&record.owner) {
                continue;
            }
            let message = format!(
                "the orchestrator running it ({}) stopped before it finished",
                record.owner
            );
            let envelope = json!({"status": "error", "execution_id": record.id,
                "error": {"code": "ERR_RUNTIME", "message": message}, "meta": {}});
            let finish = Finish {
                status: ExecutionStatus::Error,
                error_code: Some("ERR_RUNTIME".into()),
                cost_usd_micro: None,
                attempts: record.attempts,
                duration_ms: crate::now_ms() - record.started_at_ms,
                envelope,
                signed_by: None,
            };
            // One write per record: failed, settled and released together. Another recovering
            // process may have been first: then there is nothing to do.
            let recovered_one = retrying(|| async {
                let mut write = Write::begin(self).await?;
                finish_in(&mut write, &record.id, &finish).await?;
                if let Some(plan) = &record.plan_key
                    && record.reserved_usd_micro > 0
                {
                    let reserved = record.reserved_usd_micro;
                    settle_in(&mut write, plan, &record.id, reserved, 0, Some("ERR_RUNTIME"))
                        .await?;
                }
                release_in(&mut write, &record.id).await?;
                write.commit().await
            })
            .await;
            match recovered_one {
                Ok(()) => {}
                Err(LedgerError::UnknownExecution(_)) => continue,
                Err(error) => return Err(error),
            }
            recovered.push(record.id);
        }
        Ok(recovered)
    }
}

/// [`Ledger::start_execution`] within a write; returns the position of its `execution.started`
/// event.
pub(crate) async fn start_in(
    write: &mut Write,
    start: &ExecutionStart,
) -> Result<i64, LedgerError> {
    sqlx::query(
        "INSERT INTO executions (id, processor_ref, adapter, runtime, mode, status, memo_key,
             plan_key, write_prefix, reserved_usd_micro, attempts, started_at_ms, owner)
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, $9, 1, $10, $11)",
    )
    .bind(&start.id)
    .bind(&start.processor_ref)
    .bind(&start.adapter)
    .bind(&start.runtime)
    .bind(&start.mode)
    .bind(&start.memo_key)
    .bind(&start.plan_key)
    .bind(&start.write_prefix)
    .bind(start.reserved_usd_micro)
    .bind(crate::now_ms())
    .bind(&start.owner)
    .execute(write.db())
    .await?;
    let body = json!({"processor_ref": start.processor_ref, "adapter": start.adapter,
                      "runtime": start.runtime, "mode": start.mode, "memo_key": start.memo_key,
                      "plan": start.plan_key, "write_prefix": start.write_prefix});
    Ok(write.event(Some(&start.id), EventKind::ExecutionStarted, &body)?.seq)
}

/// [`Ledger::finish_execution`] within a write, returning the closed record; an execution that
/// is not `running` is [`LedgerError::UnknownExecution`].
pub(crate) async fn finish_in(
    write: &mut Write,
    id: &str,
    finish: &Finish,
) -> Result<ExecutionRecord, LedgerError> {
    let closed = sqlx::query(
        "UPDATE executions SET status = $1, error_code = $2, cost_usd_micro = $3, attempts = $4,
             duration_ms = $5, finished_at_ms = $6, envelope = $7
         WHERE id = $8 AND status = 'running'
         RETURNING *",
    )
    .bind(finish.status.as_str())
    .bind(&finish.error_code)
    .bind(finish.cost_usd_micro)
    .bind(finish.attempts)
    .bind(finish.duration_ms)
    .bind(crate::now_ms())
    .bind(finish.envelope.to_string())
    .bind(id)
    .fetch_optional(write.db())
    .await?
    .ok_or_else(|| LedgerError::UnknownExecution(id.to_owned()))?;
    let record = record_of(&closed)?;
    let body = json!({"status": finish.status.as_str(), "error_code": finish.error_code,
                      "cost_usd_micro": finish.cost_usd_micro, "attempts": finish.attempts,
                      "signed_by": finish.signed_by});
    write.event(Some(id), EventKind::ExecutionFinished, &body)?;
    Ok(record)
}
