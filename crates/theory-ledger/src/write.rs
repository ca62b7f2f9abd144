//! One write to the ledger: a transaction that takes the event log's lock first, so the rows it
//! changes and the events that say so commit together or not at all (the events in one
//! statement: every statement is a round trip to the database's thread or server), and every writer (of any
//! process, on either database) is ordered by that one lock. Taking it first also means a SQLite
//! transaction never has to upgrade a read lock to a write lock, and PostgreSQL writers cannot
//! deadlock on each other's rows.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::events::{Event, EventKind, GENESIS, chain_hash};
use crate::schema::is_conflict;
use crate::{Backend, Ledger, LedgerError};

/// How often a write is tried when the database stays busy.
const ATTEMPTS: u32 = 50;
/// Events per `INSERT` (seven parameters each, under every database's limit).
const EVENTS_PER_STATEMENT: usize = 1_000;

/// An open write: the transaction, the head of the chain it appends to, and the events it
/// appends (inserted together at commit, in one statement).
pub(crate) struct Write {
    transaction: sqlx::Transaction<'static, sqlx::Any>,
    /// The sequence number the next event gets.
    next_seq: i64,
    /// The hash of the newest event.
    head_hash: String,
    /// Events appended by this write, not yet inserted.
    pending: Vec<Event>,
    /// This process's turn to write, held until the write ends (see [`Ledger::write_turn`]).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// The head of the chain, read in the statement that takes the lock (SQLite: the write lock is
/// exclusive, so what the statement reads is current).
const LOCK_AND_HEAD: &str = "UPDATE ledger_locks SET n = n + 1 WHERE name = 'events'
     RETURNING (SELECT seq FROM events ORDER BY seq DESC LIMIT 1) AS seq,
               (SELECT this_hash FROM events ORDER BY seq DESC LIMIT 1) AS this_hash";
/// The head of the chain, read after the lock is held (PostgreSQL: a statement that waited for
/// the lock reads with the snapshot it started with, so the head is read by the next one).
const HEAD: &str = "SELECT seq, this_hash FROM events ORDER BY seq DESC LIMIT 1";

impl Write {
    /// Begins a write: opens a transaction, takes the log's lock and reads its head.
    pub(crate) async fn begin(ledger: &Ledger) -> Result<Write, LedgerError> {
        let turn = ledger.write_turn().await;
        let mut transaction = ledger.pool().begin().await?;
        let head = match ledger.backend() {
            Backend::Sqlite => sqlx::query(LOCK_AND_HEAD).fetch_optional(&mut *transaction).await?,
            Backend::Postgres => {
                crate::schema::lock(&mut transaction, "events").await?;
                sqlx::query(HEAD).fetch_optional(&mut *transaction).await?
            }
        };
        let seq = head.as_ref().map(|row| row.try_get::<Option<i64>, _>("seq")).transpose()?;
        let (next_seq, head_hash) = match (seq.flatten(), head) {
            (Some(seq), Some(row)) => (seq + 1, row.try_get::<String, _>("this_hash")?),
            _ => (1, GENESIS.to_owned()),
        };
        Ok(Write { transaction, next_seq, head_hash, pending: Vec::new(), _turn: turn })
    }

    /// The connection to run the write's statements on.
    pub(crate) fn db(&mut self) -> &mut AnyConnection {
        &mut self.transaction
    }

    /// Appends an event to the chain, inserted with the rest of the write at commit.
    pub(crate) fn event(
        &mut self,
        execution_id: Option<&str>,
        kind: EventKind,
        body: &Value,
    ) -> Result<Event, LedgerError> {
        let kind = kind.as_str();
        let seq = self.next_seq;
        let at_ms = crate::now_ms();
        let this_hash = chain_hash(&self.head_hash, seq, execution_id, kind, body, at_ms)?;
        let prev_hash = std::mem::replace(&mut self.head_hash, this_hash.clone());
        self.next_seq += 1;
        let event = Event {
            seq,
            execution_id: execution_id.map(str::to_owned),
            kind: kind.to_owned(),
            body: body.clone(),
            at_ms,
            prev_hash,
            this_hash,
        };
        self.pending.push(event.clone());
        Ok(event)
    }

    /// Inserts the write's events and commits.
    pub(crate) async fn commit(mut self) -> Result<(), LedgerError> {
        for chunk in self.pending.chunks(EVENTS_PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let first = row * 7;
                    let parameters: Vec<String> =
                        (first + 1..=first + 7).map(|number| format!("${number}")).collect();
                    format!("({})", parameters.join(", "))
                })
                .collect();
            let statement = format!(
                "INSERT INTO events (seq, execution_id, kind, body, at_ms, prev_hash, this_hash) VALUES {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(&statement);
            for event in chunk {
                query = query
                    .bind(event.seq)
                    .bind(event.execution_id.as_deref())
                    .bind(event.kind.as_str())
                    .bind(event.body.to_string())
                    .bind(event.at_ms)
                    .bind(event.prev_hash.as_str())
                    .bind(event.this_hash.as_str());
            }
            query.execute(&mut *self.transaction).await?;
        }
        self.transaction.commit().await?;
        Ok(())
    }
}

/// Runs `attempt` again while the database reports a busy or conflicting writer (a SQLite
/// `BUSY` past the busy timeout, a PostgreSQL serialization failure).
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, LedgerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LedgerError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(error) => match pause_before_retry(tries, &error) {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return Err(error),
            },
            done => return done,
        }
    }
}

/// How long to wait before trying a write again after its `tries`-th attempt failed with
/// `error`; `None` when it should not be tried again.
pub(crate) fn pause_before_retry(tries: u32, error: &LedgerError) -> Option<std::time::Duration> {
    match error {
        LedgerError::Database(error) if is_conflict(error) && tries < ATTEMPTS => {
            Some(std::time::Duration::from_millis(u64::from(tries % 8) + 1))
        }
        _ => None,
    }
}
