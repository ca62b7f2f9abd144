//! The ledger port: what the orchestrator records of every run, and the budget it asks for
//! before starting one. The backend (SQLite or PostgreSQL) lives in `theory-ledger`.

use async_trait::async_trait;
use theory_protocol::{Envelope, ExecutionId, Mode};

use crate::Failure;

/// What is asked of the ledger before a run starts.
#[derive(Debug, Clone)]
pub struct Admission<'a> {
    /// The run.
    pub execution_id: &'a ExecutionId,
    /// The processor.
    pub processor_ref: &'a str,
    /// `local` or `modal`.
    pub adapter: &'a str,
    /// `process`, `docker`, `modal`.
    pub runtime: &'a str,
    /// `mock` or `real`.
    pub mode: Mode,
    /// The memo key.
    pub memo_key: &'a str,
    /// The expanded write prefix.
    pub write_prefix: &'a str,
    /// The plan to charge (`--plan`).
    pub plan: Option<&'a str>,
    /// What to reserve on the plan, in micro-USD.
    pub estimate_usd_micro: u64,
}

/// What the ledger granted: kept by the orchestrator and handed back when the run closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The plan charged, if any.
    pub plan: Option<String>,
    /// What was reserved on it.
    pub reserved_usd_micro: u64,
}

/// How a run ended, for the ledger.
#[derive(Debug, Clone)]
pub struct Closing<'a> {
    /// The run.
    pub execution_id: &'a ExecutionId,
    /// The processor.
    pub processor_ref: &'a str,
    /// `local` or `modal`.
    pub adapter: &'a str,
    /// `mock` or `real`.
    pub mode: Mode,
    /// The envelope returned to the user.
    pub envelope: &'a Envelope,
    /// What the run cost, when known (0 for mock runs).
    pub cost_usd_micro: Option<u64>,
    /// Wall time.
    pub duration_ms: u64,
}

/// Keeps the record of runs and the money of plans.
#[async_trait]
pub trait RunLedger: Send + Sync {
    /// Reserves the estimate on the plan (`ERR_BUDGET` naming what is available when it cannot)
    /// and opens the run's record as running.
    async fn admit(&self, admission: &Admission<'_>) -> Result<Admitted, Failure>;

    /// Closes the run's record with its envelope and settles its reservation: the actual cost is
    /// charged and the rest released. A run refused before admission is recorded too.
    async fn close(&self, closing: &Closing<'_>, admitted: Option<&Admitted>);
}
