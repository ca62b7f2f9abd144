//! The event log: append-only, each entry chained to the one before by
//! `this_hash = BLAKE3(prev_hash ‖ canonical event)`, the first after the genesis hash (64 zeros).
//! The canonical event is the RFC 8785 JSON of `{seq, execution_id, kind, body, at_ms}`.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::write::{Write, retrying};
use crate::{Ledger, LedgerError};

/// What an entry records; its name is the entry's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A run was admitted (`execution.started`).
    ExecutionStarted,
    /// A run ended (`execution.finished`).
    ExecutionFinished,
    /// An attempt failed transiently and will be tried again (`execution.attempt_failed`).
    AttemptFailed,
    /// A plan was created (`plan.created`).
    PlanCreated,
    /// A run's estimate was reserved on its plan (`plan.reserved`).
    PlanReserved,
    /// A run's reservation was settled (`plan.settled`).
    PlanSettled,
    /// A run took a lease on its write prefix (`lease.acquired`).
    LeaseAcquired,
    /// A run gave its leases back (`lease.released`).
    LeaseReleased,
}

impl EventKind {
    /// Every kind, for reading entries back.
    pub const ALL: [EventKind; 8] = [
        EventKind::ExecutionStarted,
        EventKind::ExecutionFinished,
        EventKind::AttemptFailed,
        EventKind::PlanCreated,
        EventKind::PlanReserved,
        EventKind::PlanSettled,
        EventKind::LeaseAcquired,
        EventKind::LeaseReleased,
    ];

    /// The name stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ExecutionStarted => "execution.started",
            EventKind::ExecutionFinished => "execution.finished",
            EventKind::AttemptFailed => "execution.attempt_failed",
            EventKind::PlanCreated => "plan.created",
            EventKind::PlanReserved => "plan.reserved",
            EventKind::PlanSettled => "plan.settled",
            EventKind::LeaseAcquired => "lease.acquired",
            EventKind::LeaseReleased => "lease.released",
        }
    }

    /// The kind of a stored name, if it is one of these.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Its position, from 1.
    pub seq: i64,
    /// The execution it is about, if any.
    pub execution_id: Option<String>,
    /// What happened: `execution.started`, `plan.reserved`, … ([`EventKind`]); kept as stored,
    /// so an entry of a kind this build does not know still verifies.
    pub kind: String,
    /// The details.
    pub body: Value,
    /// When, in epoch milliseconds.
    pub at_ms: i64,
    /// The hash of the entry before (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub this_hash: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    execution_id: Option<&'a str>,
    kind: &'a str,
    body: &'a Value,
    at_ms: i64,
}

/// Computes the hash of an entry from its fields and the hash before it.
pub(crate) fn chain_hash(
    prev_hash: &str,
    seq: i64,
    execution_id: Option<&str>,
    kind: &str,
    body: &Value,
    at_ms: i64,
) -> Result<String, LedgerError> {
    let canonical =
        serde_json_canonicalizer::to_string(&Canonical { seq, execution_id, kind, body, at_ms })
            .map_err(|error| {
                LedgerError::Corrupt(format!("event is not canonical JSON: {error}"))
            })?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    Ok(hasher.finalize().to_hex().to_string())
}

/// What `theory ledger verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: i64,
    /// The first entry whose hash or link does not hold, if any.
    pub first_bad_seq: Option<i64>,
    /// Why it does not hold.
    pub reason: Option<String>,
}

impl Ledger {
    /// Appends an event at the end of the chain, on its own, and returns it.
    pub async fn append_event(
        &self,
        execution_id: Option<&str>,
        kind: EventKind,
        body: &Value,
    ) -> Result<Event, LedgerError> {
        retrying(|| async {
            let mut write = Write::begin(self).await?;
            let event = write.event(execution_id, kind, body)?;
            write.commit().await?;
            Ok(event)
        })
        .await
    }

    /// Returns the events of one execution, or every event, in order.
    pub async fn events(&self, execution_id: Option<&str>) -> Result<Vec<Event>, LedgerError> {
        let rows = match execution_id {
            Some(id) => {
                sqlx::query("SELECT * FROM events WHERE execution_id = $1 ORDER BY seq")
                    .bind(id)
                    .fetch_all(self.pool())
                    .await?
            }
            None => sqlx::query("SELECT * FROM events ORDER BY seq").fetch_all(self.pool()).await?,
        };
        rows.iter().map(event_of).collect()
    }

    /// What the log recorded of the signing of an execution's records, from its last
    /// `execution.finished` ([`SignedBy::Missing`](theory_core::verify::SignedBy::Missing) when
    /// it has none).
    pub async fn signed_by(
        &self,
        execution_id: &str,
    ) -> Result<theory_core::verify::SignedBy, LedgerError> {
        use theory_core::verify::SignedBy;
        let finished = EventKind::ExecutionFinished.as_str();
        let row = sqlx::query(
            "SELECT * FROM events WHERE execution_id = $1 AND kind = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(execution_id)
        .bind(finished)
        .fetch_optional(self.pool())
        .await?;
        let Some(event) = row.as_ref().map(event_of).transpose()? else {
            return Ok(SignedBy::Missing);
        };
        Ok(match event.body.get("signed_by") {
            None => SignedBy::Unrecorded,
            Some(serde_json::Value::String(key)) => SignedBy::Key(key.clone()),
            Some(_) => SignedBy::Nobody,
        })
    }

    /// Returns the entry at a position, if the log is that long.
    pub async fn event_at(&self, seq: i64) -> Result<Option<Event>, LedgerError> {
        let row = sqlx::query("SELECT * FROM events WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(event_of).transpose()
    }

    /// Walks the chain from the start and names the first entry that does not hold: a hash
    /// that is not the hash of its fields, a link to anything but the entry before, or a gap.
    pub async fn verify(&self) -> Result<ChainReport, LedgerError> {
        check_chain(&self.events(None).await?)
    }
}

/// [`Ledger::verify`] over events already read (in order).
pub fn check_chain(events: &[Event]) -> Result<ChainReport, LedgerError> {
    let entries = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let mut prev_hash = GENESIS.to_owned();
    for (expected_seq, event) in (1_i64..).zip(events.iter()) {
        let bad = |reason: String| ChainReport {
            entries,
            first_bad_seq: Some(event.seq),
            reason: Some(reason),
        };
        if event.seq != expected_seq {
            return Ok(bad(format!("expected entry {expected_seq}, found {}", event.seq)));
        }
        if event.prev_hash != prev_hash {
            return Ok(bad("its prev_hash is not the hash of the entry before".into()));
        }
        let recomputed = chain_hash(
            &event.prev_hash,
            event.seq,
            event.execution_id.as_deref(),
            &event.kind,
            &event.body,
            event.at_ms,
        )?;
        if recomputed != event.this_hash {
            return Ok(bad("its contents do not hash to its this_hash".into()));
        }
        prev_hash.clone_from(&event.this_hash);
    }
    Ok(ChainReport { entries, first_bad_seq: None, reason: None })
}

pub(crate) fn event_of(row: &sqlx::any::AnyRow) -> Result<Event, LedgerError> {
    let body: String = row.try_get("body")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        execution_id: row.try_get("execution_id")?,
        kind: row.try_get("kind")?,
        body: serde_json::from_str(&body)
            .map_err(|error| LedgerError::Corrupt(format!("event body is not JSON: {error}")))?,
        at_ms: row.try_get("at_ms")?,
        prev_hash: row.try_get("prev_hash")?,
        this_hash: row.try_get("this_hash")?,
    })
}
