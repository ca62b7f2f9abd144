//! What `theory ledger verify` checks beyond the chain: the tables against the event log they
//! must follow (each plan's budget, reserved and spent recomputed from `plan.*` events; each
//! execution's status and error code from its `execution.*` events), the database file itself
//! (SQLite's `integrity_check`), and the log's length against the positions receipts recorded.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::events::{Event, EventKind};
use crate::{Backend, Ledger, LedgerError};

/// A table row that says something other than the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// What disagrees: `plan team`, `execution 01…`.
    pub subject: String,
    /// The field.
    pub field: String,
    /// What the table holds.
    pub table: String,
    /// What the event log says it must hold.
    pub log: String,
}

/// A plan's money as its events say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Money {
    budget: i64,
    reserved: i64,
    spent: i64,
}

fn number(body: &Value, key: &str) -> i64 {
    body.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Replays the plan events.
fn plans_from(events: &[Event]) -> BTreeMap<String, Money> {
    let mut plans: BTreeMap<String, Money> = BTreeMap::new();
    for event in events {
        let Some(key) = text(&event.body, "plan") else { continue };
        match EventKind::parse(&event.kind) {
            Some(EventKind::PlanCreated) => {
                plans.entry(key).or_default().budget = number(&event.body, "budget_usd_micro");
            }
            Some(EventKind::PlanReserved) => {
                plans.entry(key).or_default().reserved += number(&event.body, "amount_usd_micro");
            }
            Some(EventKind::PlanSettled) => {
                let money = plans.entry(key).or_default();
                money.reserved -= number(&event.body, "reserved_usd_micro");
                money.spent += number(&event.body, "charged_usd_micro");
            }
            _ => {}
        }
    }
    plans
}

/// Replays the execution events: the last `execution.finished` of each, or running.
fn executions_from(events: &[Event]) -> BTreeMap<String, (String, Option<String>)> {
    let mut executions = BTreeMap::new();
    for event in events {
        let Some(id) = &event.execution_id else { continue };
        match EventKind::parse(&event.kind) {
            Some(EventKind::ExecutionStarted) => {
                executions.insert(id.clone(), ("running".to_owned(), None));
            }
            Some(EventKind::ExecutionFinished) => {
                let status = text(&event.body, "status").unwrap_or_default();
                executions.insert(id.clone(), (status, text(&event.body, "error_code")));
            }
            _ => {}
        }
    }
    executions
}

fn drift(
    subject: String,
    field: &str,
    table: &dyn std::fmt::Display,
    log: &dyn std::fmt::Display,
) -> Drift {
    Drift { subject, field: field.to_owned(), table: table.to_string(), log: log.to_string() }
}

/// The event log and what the tables say of it, read at one moment.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Where the plans and executions tables disagree with the events.
    pub drifts: Vec<Drift>,
}

impl Ledger {
    /// Reads the event log, the plans and the executions in one read transaction (one snapshot:
    /// runs going on meanwhile cannot look like drift) and compares the tables with what the
    /// log says they hold.
    pub async fn audit(&self) -> Result<Audit, LedgerError> {
        let mut snapshot = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *snapshot)
                .await?;
        }
        let events = sqlx::query("SELECT * FROM events ORDER BY seq")
            .fetch_all(&mut *snapshot)
            .await?
            .iter()
            .map(crate::events::event_of)
            .collect::<Result<Vec<_>, _>>()?;
        let plans = sqlx::query(
            "SELECT plan_key, budget_usd_micro, reserved_usd_micro, spent_usd_micro FROM plans",
        )
        .fetch_all(&mut *snapshot)
        .await?;
        let executions = sqlx::query("SELECT id, status, error_code FROM executions")
            .fetch_all(&mut *snapshot)
            .await?;
        snapshot.rollback().await?;
        let mut drifts = plan_drifts(&events, &plans)?;
        drifts.extend(execution_drifts(&events, &executions)?);
        Ok(Audit { events, drifts })
    }
}

/// The plans table against the `plan.*` events.
fn plan_drifts(events: &[Event], rows: &[sqlx::any::AnyRow]) -> Result<Vec<Drift>, LedgerError> {
    let mut drifts = Vec::new();
    let mut expected = plans_from(events);
    for row in rows {
        let key: String = row.try_get("plan_key")?;
        let table = Money {
            budget: row.try_get("budget_usd_micro")?,
            reserved: row.try_get("reserved_usd_micro")?,
            spent: row.try_get("spent_usd_micro")?,
        };
        {
            let subject = format!("plan {key}");
            let Some(money) = expected.remove(&key) else {
                drifts.push(drift(subject, "plan", &"present", &"no plan.created event"));
                continue;
            };
            for (field, table, log) in [
                ("budget_usd_micro", table.budget, money.budget),
                ("reserved_usd_micro", table.reserved, money.reserved),
                ("spent_usd_micro", table.spent, money.spent),
            ] {
                if table != log {
                    drifts.push(drift(subject.clone(), field, &table, &log));
                }
            }
        }
    }
    for key in expected.into_keys() {
        drifts.push(drift(format!("plan {key}"), "plan", &"missing", &"created by an event"));
    }
    Ok(drifts)
}

/// The executions table against the `execution.*` events.
fn execution_drifts(
    events: &[Event],
    rows: &[sqlx::any::AnyRow],
) -> Result<Vec<Drift>, LedgerError> {
    let mut drifts = Vec::new();
    {
        let mut expected = executions_from(events);
        for row in rows {
            let id: String = row.try_get("id")?;
            let status: String = row.try_get("status")?;
            let error_code: Option<String> = row.try_get("error_code")?;
            let subject = format!("execution {id}");
            match expected.remove(&id) {
                None => drifts.push(drift(
                    subject,
                    "execution",
                    &"present",
                    &"no execution.started event",
                )),
                Some((log_status, log_code)) => {
                    if status != log_status {
                        drifts.push(drift(subject.clone(), "status", &status, &log_status));
                    }
                    if error_code != log_code {
                        drifts.push(drift(
                            subject,
                            "error_code",
                            &error_code.unwrap_or_else(|| "none".into()),
                            &log_code.unwrap_or_else(|| "none".into()),
                        ));
                    }
                }
            }
        }
        for id in expected.into_keys() {
            drifts.push(drift(
                format!("execution {id}"),
                "execution",
                &"missing",
                &"started by an event",
            ));
        }
        Ok(drifts)
    }
}

impl Ledger {
    /// SQLite's own check of the database file (`PRAGMA integrity_check`): `None` when it is
    /// sound (and always on PostgreSQL, which checks itself), else what SQLite found.
    pub async fn file_problems(&self) -> Result<Option<String>, LedgerError> {
        if self.backend() != Backend::Sqlite {
            return Ok(None);
        }
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(self.pool()).await?;
        let found: Vec<String> =
            rows.iter().filter_map(|row| row.try_get::<String, _>(0).ok()).collect();
        Ok((found != ["ok"]).then(|| found.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Money, plans_from};
    use crate::events::Event;

    fn event(kind: &str, body: serde_json::Value) -> Event {
        Event {
            seq: 0,
            execution_id: None,
            kind: kind.into(),
            body,
            at_ms: 0,
            prev_hash: String::new(),
            this_hash: String::new(),
        }
    }

    #[test]
    fn plans_are_replayed_from_their_events() {
        let events = [
            event("plan.created", json!({"plan": "p", "budget_usd_micro": 1000})),
            event("plan.reserved", json!({"plan": "p", "amount_usd_micro": 300})),
            event("plan.reserved", json!({"plan": "p", "amount_usd_micro": 200})),
            event(
                "plan.settled",
                json!({"plan": "p", "reserved_usd_micro": 300, "charged_usd_micro": 120}),
            ),
        ];
        let plans = plans_from(&events);
        assert_eq!(plans["p"], Money { budget: 1000, reserved: 200, spent: 120 });
    }
}
