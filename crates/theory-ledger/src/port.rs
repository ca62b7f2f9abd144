//! The ledger as the orchestrator's [`RunLedger`]: admission leases, reserves and opens the
//! record; closing records the envelope, releases and settles — each one write.

use async_trait::async_trait;
use theory_core::Failure;
use theory_core::ledger::{Admission, Admitted, Closing, RunLedger};
use theory_protocol::{Envelope, ErrorCode, ExecutionId};

use crate::batch::Change;
use crate::events::EventKind;
use crate::executions::{finish_in, start_in};
use crate::leases::{acquire_in, release_in};
use crate::plans::{reserve_in, settle_in};
use crate::write::Write;
use crate::{ExecutionRecord, ExecutionStart, ExecutionStatus, Finish, Ledger, LedgerError};

/// `host:pid` of this process, the owner of the runs it records.
pub fn this_owner() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

fn host_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "localhost".into(), |name| name.trim().to_owned())
    })
}

/// Whether the orchestrator that owns a record is gone: it ran on this host and its process no
/// longer exists. Owners on other hosts are left to their own host.
pub fn owner_is_gone(owner: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once(':') else { return false };
    host == host_name()
        && pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
}

fn ledger_failure(error: &LedgerError) -> Failure {
    match error {
        LedgerError::Budget { key, available_usd_micro, required_usd_micro } => Failure::new(
            ErrorCode::Budget,
            format!(
                "plan {key} has {available_usd_micro} µUSD available; this run needs {required_usd_micro}"
            ),
        )
        .hint(format!("see the plan with `theory plan show {key}`, or run with another plan")),
        LedgerError::UnknownPlan(key) => {
            Failure::new(ErrorCode::Budget, format!("there is no plan with key {key}"))
                .hint(format!("create it with `theory plan create --key {key} --budget-usd-micro N`"))
        }
        LedgerError::Leased { prefix, holder, .. } => Failure::new(
            ErrorCode::Lease,
            format!("{prefix} is leased by the live execution {holder}"),
        )
        .hint("wait for it to finish, or write elsewhere with --write-prefix"),
        other => Failure::new(ErrorCode::Ledger, other.to_string())
            .hint("check the ledger with `theory ledger verify`"),
    }
}

#[async_trait]
impl RunLedger for Ledger {
    /// One write: the lease, the reservation and the open record commit together, so a refusal
    /// leaves nothing to undo.
    async fn admit(&self, admission: &Admission<'_>) -> Result<Admitted, Failure> {
        let id = admission.execution_id.to_string();
        let reserved = i64::try_from(admission.estimate_usd_micro).unwrap_or(i64::MAX);
        let start = ExecutionStart {
            id: id.clone(),
            processor_ref: admission.processor_ref.to_string(),
            adapter: admission.adapter.to_string(),
            runtime: admission.runtime.to_string(),
            mode: admission.mode.to_string(),
            memo_key: admission.memo_key.to_owned(),
            plan_key: admission.plan.map(ToString::to_string),
            write_prefix: admission.write_prefix.to_string(),
            reserved_usd_micro: if admission.plan.is_some() { reserved } else { 0 },
            owner: this_owner(),
        };
        let lease_ttl_ms = admission
            .lease_ttl_s
            .map(|ttl_s| i64::try_from(ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX));
        let position = self
            .apply(Admit {
                lease: lease_ttl_ms.map(|ttl_ms| (admission.write_prefix.to_string(), ttl_ms)),
                reservation: admission.plan.map(|plan| (plan.to_string(), reserved)),
                start,
            })
            .await
            .map_err(|error| ledger_failure(&error))?;
        Ok(Admitted {
            plan: admission.plan.cloned(),
            reserved_usd_micro: admission.estimate_usd_micro,
            position: u64::try_from(position).ok(),
        })
    }

    /// One write: the record closed, the lease given back and the plan settled together.
    async fn close(
        &self,
        closing: &Closing<'_>,
        admitted: Option<&Admitted>,
    ) -> Result<(), Failure> {
        let id = closing.execution_id.to_string();
        let (status, error_code) = match closing.envelope {
            Envelope::Success(_) => (ExecutionStatus::Success, None),
            Envelope::Error(error) => (ExecutionStatus::Error, Some(error.error.code.to_string())),
        };
        let cost = closing.cost_usd_micro.map(|cost| i64::try_from(cost).unwrap_or(i64::MAX));
        let finish = Finish {
            status,
            error_code,
            cost_usd_micro: cost,
            attempts: i64::from(closing.attempts),
            duration_ms: i64::try_from(closing.duration_ms).unwrap_or(i64::MAX),
            envelope: serde_json::to_value(closing.envelope).unwrap_or_default(),
            signed_by: closing.signed_by.map(str::to_owned),
        };
        // Refused before admission (bad inputs, a missing secret…): recorded all the same.
        let refused = admitted.is_none().then(|| ExecutionStart {
            id: id.clone(),
            processor_ref: closing.processor_ref.to_string(),
            adapter: closing.adapter.to_string(),
            runtime: String::new(),
            mode: closing.mode.to_string(),
            memo_key: String::new(),
            plan_key: None,
            write_prefix: String::new(),
            reserved_usd_micro: 0,
            owner: this_owner(),
        });
        let settlement = self
            .apply(Close {
                refused,
                id,
                finish,
                settle: admitted.and_then(|admitted| {
                    let plan = admitted.plan.as_ref()?;
                    let reserved = i64::try_from(admitted.reserved_usd_micro).unwrap_or(i64::MAX);
                    // Unknown cost of a success: the estimate is charged. A failure costs what
                    // it reported.
                    let actual = cost.unwrap_or(if status == ExecutionStatus::Success {
                        reserved
                    } else {
                        0
                    });
                    Some((plan.to_string(), reserved, actual))
                }),
            })
            .await;
        let settlement = settlement.map(|(settled, record)| {
            self.closed(record);
            settled
        });
        match settlement {
            Ok(Some((plan, settlement))) => {
                tracing::info!(
                    plan = %plan,
                    charged_usd_micro = settlement.charged_usd_micro,
                    released_usd_micro = settlement.released_usd_micro,
                    "settled"
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(error) => Err(Failure::new(
                ErrorCode::Ledger,
                format!("the ledger could not record how the run ended: {error}"),
            )
            .hint("the next theory command marks the run failed; check the disk or the database, then `theory ledger verify`")),
        }
    }

    async fn attempt_failed(&self, execution_id: &ExecutionId, attempt: u32, failure: &Failure) {
        let body = serde_json::json!({"attempt": attempt, "code": failure.code, "message": failure.message});
        if let Err(error) = self
            .append_event(Some(&execution_id.to_string()), EventKind::AttemptFailed, &body)
            .await
        {
            tracing::warn!(%error, "the ledger could not record a failed attempt");
        }
    }

    async fn owner_of(
        &self,
        path: &theory_core::WorldPath,
        asking: &ExecutionId,
    ) -> Option<ExecutionId> {
        match Ledger::owner_of(self, path.as_str(), asking.as_str()).await {
            Ok(owner) => owner.and_then(|id| id.parse().ok()),
            Err(error) => {
                tracing::warn!(%error, "the ledger could not say who owns {path}");
                None
            }
        }
    }

    async fn memo(&self, memo_key: &str) -> Option<Envelope> {
        match self.memo_hit(memo_key).await {
            Ok(record) => record
                .and_then(|record| record.envelope)
                .and_then(|envelope| serde_json::from_value(envelope).ok()),
            Err(error) => {
                tracing::warn!(%error, "the ledger could not be asked for a finished identical run");
                None
            }
        }
    }
}

/// Admission as one change: the lease, the reservation and the open record.
struct Admit {
    /// The write prefix and the lease's time to live, in ms.
    lease: Option<(String, i64)>,
    /// The plan and the amount reserved on it.
    reservation: Option<(String, i64)>,
    start: ExecutionStart,
}

#[async_trait]
impl Change for Admit {
    type Output = i64;

    async fn apply(&self, write: &mut Write) -> Result<i64, LedgerError> {
        if let Some((prefix, ttl_ms)) = &self.lease {
            acquire_in(write, prefix, &self.start.id, *ttl_ms).await?;
        }
        if let Some((plan, reserved)) = &self.reservation {
            reserve_in(write, plan, &self.start.id, *reserved).await?;
        }
        start_in(write, &self.start).await
    }
}

/// Closing as one change: the record (opened first when the run was refused before
/// admission), the lease given back, the plan settled.
struct Close {
    refused: Option<ExecutionStart>,
    id: String,
    finish: Finish,
    /// The plan, what was reserved on it and what the run cost.
    settle: Option<(String, i64, i64)>,
}

#[async_trait]
impl Change for Close {
    /// The plan settled and how, and the closed record.
    type Output = (Option<(String, crate::Settlement)>, ExecutionRecord);

    async fn apply(&self, write: &mut Write) -> Result<Self::Output, LedgerError> {
        if let Some(start) = &self.refused {
            start_in(write, start).await?;
        }
        let record = finish_in(write, &self.id, &self.finish).await?;
        release_in(write, &self.id).await?;
        let Some((plan, reserved, actual)) = &self.settle else { return Ok((None, record)) };
        let code = self.finish.error_code.as_deref();
        let settlement = settle_in(write, plan, &self.id, *reserved, *actual, code).await?;
        Ok((Some((plan.clone(), settlement)), record))
    }
}
