//! The ledger: every execution, plans with budgets, path leases, and an append-only event log
//! whose entries are hash-chained (`this_hash = BLAKE3(prev_hash ‖ canonical event)`).
//!
//! One code path on two databases: sqlx's `Any` driver runs the same SQL on SQLite (the default,
//! `.theory/theory.db`, created on first use) and on PostgreSQL (`DATABASE_URL=postgres://…`).
//! The SQL is the portable subset both accept (`$N` parameters, `BIGINT`, `TEXT`, `CASE`).
//!
//! - `schema`: migrations, applied on open, recorded in `theory_migrations`.
//! - `write`: every change is one transaction that takes the event log's lock first and commits
//!   the rows it changes with the events that say so.
//! - `batch`: group commit — the hot changes (queueing, claims, admission, closing, frames)
//!   that arrive together are written in one transaction.
//! - `checkpoint`: for `theory serve` on SQLite, checkpoints in a task of their own rather than
//!   in the batch writer's commits ([`Ledger::checkpoint_in_background`]).
//! - `events`: [`Ledger::append_event`] and [`Ledger::verify`].
//! - `audit`: the tables replayed from the event log in one snapshot ([`Ledger::audit`]) and SQLite's own
//!   check of the file ([`Ledger::file_problems`]).
//! - `executions`: the record of each run; [`Ledger::recover`] fails what a killed orchestrator
//!   left `running` and releases its reservations and leases.
//! - `plans`: budgets; [`Ledger::reserve`] and [`Ledger::settle`] keep `reserved + spent ≤ budget`
//!   whatever runs at once (and a `CHECK` says so too).
//! - `leases`: [`Ledger::acquire_lease`] on a write prefix, with a TTL.
//! - `queue`: the durable run queue of `theory serve` ([`Ledger::enqueue`],
//!   [`Ledger::claim_next`]), claims taken under the write lock.
//! - `frames`: the frames each run's processor sent, appended in batches
//!   ([`Ledger::append_frames`]) and read back in order ([`Ledger::frames_after`]).
//! - `deliveries`: every webhook delivery attempt ([`Ledger::record_delivery`]).
//! - `deployments`: the Modal deployments a team shares ([`Ledger::deployment`],
//!   [`Ledger::record_deployment`]).
//! - `tokens`: the API tokens of `theory serve`, kept as hashes ([`Ledger::create_token`],
//!   [`Ledger::token_by_secret`]).
//! - `port`: the ledger as the orchestrator's `theory_core::ledger::RunLedger`: admission (lease,
//!   reservation, record) is one write and closing (record, release, settlement) another; the
//!   server asks for the records it closes ([`Ledger::keep_closed`]) to answer waiting requests.

mod audit;
mod batch;
mod checkpoint;
mod deliveries;
mod deployments;
mod error;
mod events;
mod executions;
mod frames;
mod leases;
mod plans;
mod port;
mod queue;
mod schema;
mod tokens;
mod write;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions};

pub use audit::{Audit, Drift};
pub use deliveries::Delivery;
pub use deployments::Deployment;
pub use error::LedgerError;
pub use events::{ChainReport, Event, EventKind, GENESIS, check_chain};
pub use executions::{ExecutionRecord, ExecutionStart, ExecutionStatus, Finish};
pub use frames::StoredFrame;
pub use leases::Lease;
pub use plans::{Plan, Settlement};
pub use port::{owner_is_gone, this_owner};
pub use queue::{Enqueued, NewRun, QueueState, QueuedRun, RunFilter};
pub use tokens::{NewToken, SCOPES, Scope, Token};

/// How long opening the ledger waits for the database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database holds the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The ledger of one project (or one database server).
#[derive(Clone)]
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
    /// Taken by every write on SQLite: the file has one writer at a time, and writers of this
    /// process wait here, woken in turn, instead of in SQLite's busy handler (which sleeps
    /// 1, 2, 5, 10… ms between tries). Writers of other processes still meet the busy timeout.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Where the hot changes (queue, admission, closing, frames) go to be written in batches;
    /// `None` in the batch writer's own handle.
    batcher: Option<batch::Batcher>,
    /// The records of runs this process closed, kept for [`Ledger::take_closed`] once
    /// [`Ledger::keep_closed`] asked for them (the server answers waiting requests from them).
    closed: std::sync::Arc<
        std::sync::Mutex<Option<std::collections::HashMap<String, ExecutionRecord>>>,
    >,
    /// Whether SQLite's checkpoints run in the background (see `checkpoint.rs`).
    checkpoints: std::sync::Arc<checkpoint::Checkpoints>,
}

impl Ledger {
    /// Opens the ledger named by `database_url` (`postgres://…`, `sqlite://…`), or the SQLite file
    /// `default_file` when there is none, and applies the migrations. The default file is created
    /// whole or not at all (built under a temporary name, then linked into place); one that
    /// exists must be a ledger, so a file emptied or replaced is an error, never a new ledger.
    pub async fn open(
        database_url: Option<&str>,
        default_file: &Path,
    ) -> Result<Ledger, LedgerError> {
        sqlx::any::install_default_drivers();
        match database_url {
            Some(url) => Ledger::open_url(url, None).await,
            None => Ledger::open_default(default_file).await,
        }
    }

    async fn open_default(file: &Path) -> Result<Ledger, LedgerError> {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|error| {
                LedgerError::Open(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        if !file.exists() {
            // A write-ahead log left without its database would be replayed into a new one by
            // name: never start a ledger beside one.
            for suffix in ["-wal", "-shm"] {
                let orphan = PathBuf::from(format!("{}{suffix}", file.display()));
                if orphan.exists() {
                    return Err(LedgerError::Unreadable {
                        file: file.display().to_string(),
                        reason: format!(
                            "it is missing but {} is there: a ledger's files move together",
                            orphan.display()
                        ),
                    });
                }
            }
            create_default(file).await?;
        }
        check_not_empty(file)?;
        Ledger::open_url(&format!("sqlite://{}?mode=rw", file.display()), Some(file)).await
    }

    async fn open_url(url: &str, existing_file: Option<&Path>) -> Result<Ledger, LedgerError> {
        let url = url.to_owned();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(LedgerError::Open(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into(),
            ));
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|error| LedgerError::Open(format!("DATABASE_URL is not usable: {error}")))?
            // Every statement at `trace` (`theory -vvv`; the query-plan test reads them), never
            // a "slow statement" warning in a user's terminal.
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::MAX);
        if let Some(file) = existing_file {
            check_header(file)?;
        }
        if backend == Backend::Postgres {
            // One connection first: the pool would retry a refused or misaddressed server until
            // its timeout and then say only that; this says why, at once.
            let probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await;
            match probe {
                Ok(Ok(connection)) => {
                    let _ = sqlx::Connection::close(connection).await;
                }
                Ok(Err(error)) => return Err(LedgerError::Open(error.to_string())),
                Err(_) => {
                    return Err(LedgerError::Open(format!(
                        "no answer from the database server within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(CONNECT_TIMEOUT)
            // A ping before every use would be one more round trip per write; a connection the
            // server dropped fails the one write that uses it instead.
            .test_before_acquire(false)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        use sqlx::Executor;
                        connection.execute("PRAGMA journal_mode = WAL").await?;
                        connection.execute("PRAGMA busy_timeout = 10000").await?;
                        connection.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|error| match existing_file {
                Some(file) => LedgerError::Unreadable {
                    file: file.display().to_string(),
                    reason: sqlite_reason(&error),
                },
                None => LedgerError::Open(error.to_string()),
            })?;
        // The checks at open run on one connection held throughout: a connection goes back to
        // the pool only after a ping from a task of its own, so statements in a row on the pool
        // would each open a connection.
        let mut connection = pool.acquire().await?;
        if let Some(file) = existing_file {
            check_is_ledger(&mut connection, file).await?;
        }
        let mut ledger = Ledger {
            pool,
            backend,
            writer: std::sync::Arc::default(),
            batcher: None,
            closed: std::sync::Arc::default(),
            checkpoints: std::sync::Arc::default(),
        };
        schema::migrate(&ledger, &mut connection).await?;
        drop(connection);
        connection_returned(&ledger.pool).await;
        ledger.batcher = Some(batch::start(ledger.clone()));
        Ok(ledger)
    }

    /// From now on, keeps the record of each run this process closes until
    /// [`Ledger::take_closed`] takes it: whoever asks must take every one.
    pub fn keep_closed(&self) {
        self.closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_default();
    }

    /// The record of a run this process closed, as the write that closed it returned it (no
    /// read); `None` when it was not kept or was taken already.
    pub fn take_closed(&self, id: &str) -> Option<ExecutionRecord> {
        self.closed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut()?.remove(id)
    }

    /// Keeps a record just closed, when records are kept.
    pub(crate) fn closed(&self, record: ExecutionRecord) {
        let mut closed = self.closed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(closed) = closed.as_mut() {
            closed.insert(record.id.clone(), record);
        }
    }

    /// Returns which database holds the ledger.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Waits for this process's turn to write (SQLite only; PostgreSQL orders its writers
    /// itself). Hold the guard until the write commits.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(std::sync::Arc::clone(&self.writer).lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// Closes every connection (not to be confused with `RunLedger::close`, which closes a run).
    pub async fn disconnect(&self) {
        self.pool.close().await;
    }
}

/// Creates the default ledger file: a new ledger, migrated under a temporary name, then linked at
/// `file` (which fails harmlessly when another process got there first).
async fn create_default(file: &Path) -> Result<(), LedgerError> {
    let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = file.with_file_name(format!("{name}.new-{}", std::process::id()));
    let remove_temporary = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temporary.display()));
        }
    };
    remove_temporary();
    let created =
        Ledger::open_url(&format!("sqlite://{}?mode=rwc", temporary.display()), None).await;
    let linked = match created {
        Ok(ledger) => {
            // Everything into the main file, so the link carries the whole ledger.
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(ledger.pool()).await;
            ledger.disconnect().await;
            match std::fs::hard_link(&temporary, file) {
                Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
                    Err(LedgerError::Open(format!("cannot create {}: {error}", file.display())))
                }
                _ => Ok(()),
            }
        }
        Err(error) => Err(error),
    };
    remove_temporary();
    linked
}

/// Refuses a ledger file of zero bytes: SQLite would take it for a new, empty database and the
/// ledger would start over, its history gone without a word.
fn check_not_empty(file: &Path) -> Result<(), LedgerError> {
    let unreadable =
        |reason: String| LedgerError::Unreadable { file: file.display().to_string(), reason };
    let metadata = std::fs::metadata(file).map_err(|error| unreadable(error.to_string()))?;
    if !metadata.is_file() {
        return Err(unreadable("it is not a regular file".into()));
    }
    if metadata.len() == 0 {
        return Err(unreadable("it is empty (0 bytes), so its history is gone".into()));
    }
    Ok(())
}

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Checks an existing ledger file's header before SQLite opens it: a damaged file, or one that
/// is not a database, is named at once in one line (the pool would retry opening it for its
/// whole timeout and log every attempt). Reading 16 bytes costs nothing next to a connection.
fn check_header(file: &Path) -> Result<(), LedgerError> {
    use std::io::Read;
    let unreadable =
        |reason: String| LedgerError::Unreadable { file: file.display().to_string(), reason };
    let mut header = [0u8; 16];
    std::fs::File::open(file)
        .and_then(|mut opened| opened.read_exact(&mut header))
        .map_err(|error| unreadable(format!("its header cannot be read ({error})")))?;
    if &header != SQLITE_HEADER {
        return Err(unreadable(
            "it is damaged or not a SQLite database (its header is wrong)".into(),
        ));
    }
    Ok(())
}

/// Lets the connection just dropped go back to the pool before the next statement asks for
/// one: sqlx pings it and returns it from a task of its own, which on a one-thread runtime runs
/// only while this one yields — else the next statement opens a connection of its own (a few
/// hundred microseconds on SQLite, a round trip or more on PostgreSQL). Yields until the pool
/// holds an idle connection, or a few hundred times at most.
pub(crate) async fn connection_returned(pool: &AnyPool) {
    for _ in 0..500 {
        if pool.num_idle() > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Refuses an existing SQLite file that holds no Theory ledger (another program's database):
/// the migrations would otherwise start a new ledger in it.
async fn check_is_ledger(connection: &mut AnyConnection, file: &Path) -> Result<(), LedgerError> {
    use sqlx::Row;
    let unreadable =
        |reason: String| LedgerError::Unreadable { file: file.display().to_string(), reason };
    let row = sqlx::query(
        "SELECT count(*) AS n FROM sqlite_master WHERE name IN ('theory_migrations', 'events')",
    )
    .fetch_one(connection)
    .await
    .map_err(|error| unreadable(sqlite_reason(&error)))?;
    let tables: i64 = row.try_get("n").map_err(|error| unreadable(sqlite_reason(&error)))?;
    if tables < 2 {
        return Err(unreadable("it is a SQLite database without a Theory ledger in it".into()));
    }
    Ok(())
}

/// What a SQLite error means, in words.
fn sqlite_reason(error: &sqlx::Error) -> String {
    let message = error.to_string();
    if message.contains("not a database") || message.contains("malformed") {
        format!("it is damaged or not a SQLite database ({message})")
    } else {
        message
    }
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
