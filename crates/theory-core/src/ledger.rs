//! The ledger port: what the orchestrator records of every run, and the budget it asks for
//! before starting one. The backend (SQLite or PostgreSQL) lives in `theory-ledger`.

use async_trait::async_trait;
use theory_protocol::{Envelope, ExecutionId, Mode};

use crate::{AdapterKind, Failure, PlanKey, ProcessorRef, Runtime, WorldPath, WritePrefix};

/// What is asked of the ledger before a run starts.
#[derive(Debug, Clone)]
pub struct Admission<'a> {
    /// The run.
    pub execution_id: &'a ExecutionId,
    /// The processor.
    pub processor_ref: &'a ProcessorRef,
    /// Where it runs.
    pub adapter: AdapterKind,
    /// How it runs.
    pub runtime: Runtime,
    /// `mock` or `real`.
    pub mode: Mode,
    /// The memo key.
    pub memo_key: &'a str,
    /// The expanded write prefix.
    pub write_prefix: &'a WritePrefix,
    /// The plan to charge (`--plan`).
    pub plan: Option<&'a PlanKey>,
    /// What to reserve on the plan, in micro-USD.
    pub estimate_usd_micro: u64,
    /// How long the lease on the write prefix lives (the policy's `leases.default_ttl_s`);
    /// `None` when the policy turns path leases off.
    pub lease_ttl_s: Option<u64>,
}

/// What the ledger granted: kept by the orchestrator and handed back when the run closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The plan charged, if any.
    pub plan: Option<PlanKey>,
    /// What was reserved on it.
    pub reserved_usd_micro: u64,
    /// The position of the admission in the ledger's event log (recorded in the receipt).
    pub position: Option<u64>,
}

/// How a run ended, for the ledger.
#[derive(Debug, Clone)]
pub struct Closing<'a> {
    /// The run.
    pub execution_id: &'a ExecutionId,
    /// The processor.
    pub processor_ref: &'a ProcessorRef,
    /// Where it ran.
    pub adapter: AdapterKind,
    /// `mock` or `real`.
    pub mode: Mode,
    /// The envelope returned to the user.
    pub envelope: &'a Envelope,
    /// What the run cost, when known (0 for mock runs).
    pub cost_usd_micro: Option<u64>,
    /// The key that signed the attestation of the records this run wrote; `None` for a run
    /// that wrote none (a failure, a memo-cache hit) or had no key. Recorded in the hash-chained
    /// log, so that a store writer cannot pass a signed run off as unsigned.
    pub signed_by: Option<&'a str>,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// Wall time.
    pub duration_ms: u64,
}

/// Keeps the record of runs and the money of plans.
#[async_trait]
pub trait RunLedger: Send + Sync {
    /// Reserves the estimate on the plan (`ERR_BUDGET` naming what is available when it cannot),
    /// takes the lease on the write prefix (`ERR_LEASE` naming the live holder of an
    /// overlapping prefix) and opens the run's record as running; undoes what it did on failure.
    async fn admit(&self, admission: &Admission<'_>) -> Result<Admitted, Failure>;

    /// Closes the run's record with its envelope, settles its reservation (the actual cost is
    /// charged and the rest released) and gives its lease back, in one write. A run refused
    /// before admission is recorded too. A failure (`ERR_LEDGER`: a full disk, a lost server)
    /// leaves the record open, for the recovery of a later command to fail it.
    async fn close(
        &self,
        closing: &Closing<'_>,
        admitted: Option<&Admitted>,
    ) -> Result<(), Failure>;

    /// Records an attempt that failed transiently and will be tried again.
    async fn attempt_failed(&self, execution_id: &ExecutionId, attempt: u32, failure: &Failure);

    /// The envelope of the newest successful run with this memo key, if any (the caller checks
    /// its blobs before reusing it).
    async fn memo(&self, memo_key: &str) -> Option<Envelope>;

    /// The execution that owns the object at `path` (the successful run that wrote it, or else
    /// a live run writing under it), other than `asking`, when the ledger knows one: named in
    /// collision errors.
    async fn owner_of(&self, path: &WorldPath, asking: &ExecutionId) -> Option<ExecutionId>;
}
