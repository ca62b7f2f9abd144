//! Plans and budgets, in micro-USD. Admission reserves an estimate; settlement charges the
//! actual cost and releases the rest. Each is one write under the ledger's lock (a conditional
//! `UPDATE` and its event), so whatever runs at once a plan never goes below zero and
//! `reserved + spent` never exceeds the budget; the table's `CHECK` refuses any write that would
//! break it.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::events::EventKind;
use crate::write::{Write, retrying};
use crate::{Ledger, LedgerError};

/// A plan and its money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Its key (`--plan KEY`).
    pub key: String,
    /// The budget.
    pub budget_usd_micro: i64,
    /// Held by admitted runs that have not settled.
    pub reserved_usd_micro: i64,
    /// Charged by settled runs.
    pub spent_usd_micro: i64,
    /// `budget − reserved − spent`.
    pub available_usd_micro: i64,
    /// When it was created, epoch ms.
    pub created_at_ms: i64,
}

/// What a settlement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// What the run cost.
    pub actual_usd_micro: i64,
    /// What was charged: the actual cost, capped by what the plan could still cover.
    pub charged_usd_micro: i64,
    /// What went back to the plan.
    pub released_usd_micro: i64,
}

fn plan_of(row: &sqlx::any::AnyRow) -> Result<Plan, LedgerError> {
    let budget: i64 = row.try_get("budget_usd_micro")?;
    let reserved: i64 = row.try_get("reserved_usd_micro")?;
    let spent: i64 = row.try_get("spent_usd_micro")?;
    Ok(Plan {
        key: row.try_get("plan_key")?,
        budget_usd_micro: budget,
        reserved_usd_micro: reserved,
        spent_usd_micro: spent,
        available_usd_micro: budget - reserved - spent,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

impl Ledger {
    /// Creates a plan; a key that exists already is refused.
    pub async fn create_plan(&self, key: &str, budget_usd_micro: i64) -> Result<Plan, LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            let inserted = sqlx::query(
                "INSERT INTO plans (plan_key, budget_usd_micro, reserved_usd_micro, spent_usd_micro, created_at_ms)
                 VALUES ($1, $2, 0, 0, $3)",
            )
            .bind(key)
            .bind(budget_usd_micro)
            .bind(crate::now_ms())
            .execute(write.db())
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(error))
                    if matches!(error.kind(), sqlx::error::ErrorKind::UniqueViolation) =>
                {
                    return Err(LedgerError::PlanExists(key.to_owned()));
                }
                Err(error) => return Err(error.into()),
            }
            let body = json!({"plan": key, "budget_usd_micro": budget_usd_micro});
            write.event(None, EventKind::PlanCreated, &body)?;
            write.commit().await
        })
        .await?;
        self.plan(key).await
    }

    /// Returns a plan.
    pub async fn plan(&self, key: &str) -> Result<Plan, LedgerError> {
        let row = sqlx::query("SELECT * FROM plans WHERE plan_key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| LedgerError::UnknownPlan(key.to_owned()))?;
        plan_of(&row)
    }

    /// Returns every plan, by key.
    pub async fn plans(&self) -> Result<Vec<Plan>, LedgerError> {
        let rows =
            sqlx::query("SELECT * FROM plans ORDER BY plan_key").fetch_all(self.pool()).await?;
        rows.iter().map(plan_of).collect()
    }

    /// Reserves `amount` on a plan for an execution, or refuses with what is available.
    pub async fn reserve(
        &self,
        key: &str,
        execution_id: &str,
        amount: i64,
    ) -> Result<Plan, LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            reserve_in(&mut write, key, execution_id, amount).await?;
            write.commit().await
        })
        .await?;
        self.plan(key).await
    }

    /// Settles a reservation: charges the actual cost (capped by the reservation plus what the
    /// plan still has) and releases the rest.
    pub async fn settle(
        &self,
        key: &str,
        execution_id: &str,
        reserved: i64,
        actual: i64,
    ) -> Result<Settlement, LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            let settlement =
                settle_in(&mut write, key, execution_id, reserved, actual, None).await?;
            write.commit().await?;
            Ok(settlement)
        })
        .await
    }
}

/// [`Ledger::reserve`] within a write: one conditional `UPDATE` and its event.
pub(crate) async fn reserve_in(
    write: &mut Write,
    key: &str,
    execution_id: &str,
    amount: i64,
) -> Result<(), LedgerError> {
    let updated = sqlx::query(
        "UPDATE plans SET reserved_usd_micro = reserved_usd_micro + $1
         WHERE plan_key = $2 AND budget_usd_micro - reserved_usd_micro - spent_usd_micro >= $1",
    )
    .bind(amount)
    .bind(key)
    .execute(write.db())
    .await?
    .rows_affected();
    if updated == 0 {
        let row = sqlx::query("SELECT * FROM plans WHERE plan_key = $1")
            .bind(key)
            .fetch_optional(write.db())
            .await?
            .ok_or_else(|| LedgerError::UnknownPlan(key.to_owned()))?;
        return Err(LedgerError::Budget {
            key: key.to_owned(),
            available_usd_micro: plan_of(&row)?.available_usd_micro,
            required_usd_micro: amount,
        });
    }
    let body = json!({"plan": key, "amount_usd_micro": amount});
    write.event(Some(execution_id), EventKind::PlanReserved, &body)?;
    Ok(())
}

/// [`Ledger::settle`] within a write. The write holds the ledger's lock, so nothing changes the
/// plan between reading its ceiling and charging. A cost within the reservation is charged in
/// full (the reservation covers it) without reading the plan first. The event names the run's
/// error code when it failed.
pub(crate) async fn settle_in(
    write: &mut Write,
    key: &str,
    execution_id: &str,
    reserved: i64,
    actual: i64,
    error_code: Option<&str>,
) -> Result<Settlement, LedgerError> {
    let actual = actual.max(0);
    let charged = if actual <= reserved {
        actual
    } else {
        // What this run may be charged at most: its reservation plus what is still free.
        let row = sqlx::query(
            "SELECT budget_usd_micro - reserved_usd_micro - spent_usd_micro + $1 AS ceiling
             FROM plans WHERE plan_key = $2",
        )
        .bind(reserved)
        .bind(key)
        .fetch_optional(write.db())
        .await?
        .ok_or_else(|| LedgerError::UnknownPlan(key.to_owned()))?;
        actual.min(row.try_get::<i64, _>("ceiling")?).max(0)
    };
    let updated = sqlx::query(
        "UPDATE plans SET reserved_usd_micro = reserved_usd_micro - $1,
                          spent_usd_micro = spent_usd_micro + $2
         WHERE plan_key = $3 AND reserved_usd_micro >= $1",
    )
    .bind(reserved)
    .bind(charged)
    .bind(key)
    .execute(write.db())
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(LedgerError::Corrupt(format!(
            "plan {key:?} does not hold the reservation of {reserved} µUSD being settled"
        )));
    }
    let body = json!({"plan": key, "reserved_usd_micro": reserved, "actual_usd_micro": actual,
                      "charged_usd_micro": charged, "error_code": error_code});
    write.event(Some(execution_id), EventKind::PlanSettled, &body)?;
    Ok(Settlement {
        actual_usd_micro: actual,
        charged_usd_micro: charged,
        released_usd_micro: reserved - charged.min(reserved),
    })
}
