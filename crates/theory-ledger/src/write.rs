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
    held: Held,
    /// The sequence number the next event gets.
    next_seq: i64,
    /// The hash of the newest event.
    head_hash: String,
    /// Events appended by this write, not yet inserted.
    pending: Vec<Event>,
    /// This process's turn to write, held until the write ends (see [`Ledger::write_turn`]).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Told of the commit (see `checkpoint.rs`).
    checkpoints: std::sync::Arc<crate::checkpoint::Checkpoints>,
}

/// A connection of the ledger's pool.
type PoolConnection = sqlx::pool::PoolConnection<sqlx::Any>;

/// What a write runs its statements on.
enum Held {
    /// A sqlx transaction (PostgreSQL, and every SQLite write but the batch writer's).
    Transaction(sqlx::Transaction<'static, sqlx::Any>),
    /// A connection of the SQLite batch writer, in a transaction it began by hand: `COMMIT`
    /// goes in the statement that inserts the events (one round trip fewer), and the head of
    /// the chain comes from the batch before (one more fewer; a stale head is caught by the
    /// events' primary key, and the batch is written again the slow way).
    Own(PoolConnection),
    /// Ended (its connection given back).
    Gone,
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
        Ok(Write {
            held: Held::Transaction(transaction),
            next_seq,
            head_hash,
            pending: Vec::new(),
            _turn: turn,
            checkpoints: std::sync::Arc::clone(&ledger.checkpoints),
        })
    }

    /// Begins a write of the SQLite batch writer on `connection`: `BEGIN IMMEDIATE`
    /// (the file's write lock), appending after `head` (the newest event's `seq` and
    /// `this_hash`, `(0, GENESIS)` for none, as the batch writer last knew it), or after the
    /// head read here when it is not known. On failure the connection is given back.
    pub(crate) async fn begin_own(
        ledger: &Ledger,
        mut connection: PoolConnection,
        head: Option<(i64, String)>,
    ) -> Result<Write, LedgerError> {
        let turn = ledger.write_turn().await;
        // With checkpoints in the background, this connection's commits leave them alone.
        let begin = if ledger.checkpoints.in_background() {
            "PRAGMA wal_autocheckpoint = 0; BEGIN IMMEDIATE"
        } else {
            "BEGIN IMMEDIATE"
        };
        sqlx::query(begin).execute(&mut *connection).await?;
        let head = match head {
            Some(head) => Ok(head),
            None => read_head(&mut connection).await,
        };
        let (last_seq, head_hash) = match head {
            Ok(head) => head,
            Err(error) => {
                roll_back(connection).await;
                return Err(error);
            }
        };
        let next_seq = last_seq + 1;
        Ok(Write {
            held: Held::Own(connection),
            next_seq,
            head_hash,
            pending: Vec::new(),
            _turn: turn,
            checkpoints: std::sync::Arc::clone(&ledger.checkpoints),
        })
    }

    /// Commits a write begun by [`Write::begin_own`]: the events and `COMMIT` in one round trip.
    /// Returns the new head of the chain; on an error the transaction is rolled back.
    pub(crate) async fn commit_own(mut self) -> Result<(i64, String), LedgerError> {
        let Held::Own(mut connection) = std::mem::replace(&mut self.held, Held::Gone) else {
            unreachable!("commit_own on a write begun by Write::begin_own")
        };
        let head = (self.next_seq - 1, self.head_hash.clone());
        // The events in statements of at most EVENTS_PER_STATEMENT, the last one with the
        // commit.
        let mut committed = Ok(());
        let mut chunks = self.pending.chunks(EVENTS_PER_STATEMENT).peekable();
        if chunks.peek().is_none() {
            committed = sqlx::query("COMMIT").execute(&mut *connection).await.map(|_| ());
        }
        while let Some(chunk) = chunks.next() {
            let then = if chunks.peek().is_none() { "; COMMIT" } else { "" };
            let sql = insert_events_sql(chunk.len(), then);
            committed =
                bind_events(sqlx::query(&sql), chunk).execute(&mut *connection).await.map(|_| ());
            if committed.is_err() {
                break;
            }
        }
        match committed {
            Ok(()) => {
                self.checkpoints.committed();
                Ok(head)
            }
            Err(error) => {
                roll_back(connection).await;
                Err(error.into())
            }
        }
    }

    /// Rolls back a write begun by [`Write::begin_own`].
    pub(crate) async fn roll_back_own(mut self) {
        let Held::Own(connection) = std::mem::replace(&mut self.held, Held::Gone) else {
            unreachable!("roll_back_own on a write begun by Write::begin_own")
        };
        roll_back(connection).await;
    }

    /// The connection to run the write's statements on.
    pub(crate) fn db(&mut self) -> &mut AnyConnection {
        match &mut self.held {
            Held::Transaction(transaction) => transaction,
            Held::Own(connection) => connection,
            Held::Gone => unreachable!("a write used after it ended"),
        }
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
        let Held::Transaction(mut transaction) = std::mem::replace(&mut self.held, Held::Gone)
        else {
            unreachable!("commit on a write begun by Write::begin")
        };
        for chunk in self.pending.chunks(EVENTS_PER_STATEMENT) {
            let sql = insert_events_sql(chunk.len(), "");
            bind_events(sqlx::query(&sql), chunk).execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        self.checkpoints.committed();
        Ok(())
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        // A write of the batch writer dropped half-way (a panic in a change): its connection is
        // closed, which rolls the transaction back, never given back to the pool inside it.
        if let Held::Own(connection) = std::mem::replace(&mut self.held, Held::Gone) {
            drop(connection.detach());
        }
    }
}

/// Rolls back a transaction begun by hand; a connection that cannot is closed rather than given
/// back to the pool inside a transaction.
async fn roll_back(mut connection: PoolConnection) {
    if sqlx::query("ROLLBACK").execute(&mut *connection).await.is_err() {
        let _ = sqlx::Connection::close(connection.detach()).await;
    }
}

/// The newest event's `seq` and `this_hash`, `(0, GENESIS)` when there is none.
async fn read_head(connection: &mut sqlx::AnyConnection) -> Result<(i64, String), LedgerError> {
    let row = sqlx::query(HEAD).fetch_optional(connection).await?;
    Ok(match row {
        Some(row) => (row.try_get("seq")?, row.try_get("this_hash")?),
        None => (0, GENESIS.to_owned()),
    })
}

/// The statement that inserts `count` events, followed by `then` (more SQL, or "").
fn insert_events_sql(count: usize, then: &str) -> String {
    let rows: Vec<String> = (0..count)
        .map(|row| {
            let first = row * 7;
            let parameters: Vec<String> =
                (first + 1..=first + 7).map(|number| format!("${number}")).collect();
            format!("({})", parameters.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO events (seq, execution_id, kind, body, at_ms, prev_hash, this_hash) VALUES {}{then}",
        rows.join(", ")
    )
}

/// Binds `events` to the statement of [`insert_events_sql`].
fn bind_events<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    events: &'q [Event],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for event in events {
        query = query
            .bind(event.seq)
            .bind(event.execution_id.as_deref())
            .bind(event.kind.as_str())
            .bind(event.body.to_string())
            .bind(event.at_ms)
            .bind(event.prev_hash.as_str())
            .bind(event.this_hash.as_str());
    }
    query
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
