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
//! - `events`: [`Ledger::append_event`] and [`Ledger::verify`].
//! - `executions`: the record of each run; [`Ledger::recover`] fails what a killed orchestrator
//!   left `running` and releases its reservations and leases.
//! - `plans`: budgets; [`Ledger::reserve`] and [`Ledger::settle`] keep `reserved + spent ≤ budget`
//!   whatever runs at once (and a `CHECK` says so too).
//! - `leases`: [`Ledger::acquire_lease`] on a write prefix, with a TTL.
//! - `port`: the ledger as the orchestrator's `theory_core::ledger::RunLedger`: admission (lease,
//!   reservation, record) is one write and closing (record, release, settlement) another.

mod error;
mod events;
mod executions;
mod leases;
mod plans;
mod port;
mod schema;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

pub use error::LedgerError;
pub use events::{ChainReport, Event, GENESIS};
pub use executions::{ExecutionRecord, ExecutionStart, ExecutionStatus, Finish};
pub use leases::Lease;
pub use plans::{Plan, Settlement};
pub use port::{owner_is_gone, this_owner};

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
}

impl Ledger {
    /// Opens the ledger named by `database_url` (`postgres://…`, `sqlite://…`), or the SQLite file
    /// `default_file` when there is none; creates it and applies the migrations.
    pub async fn open(
        database_url: Option<&str>,
        default_file: &Path,
    ) -> Result<Ledger, LedgerError> {
        sqlx::any::install_default_drivers();
        let url = if let Some(url) = database_url {
            url.to_owned()
        } else {
            if let Some(parent) = default_file.parent() {
                std::fs::create_dir_all(parent).map_err(|error| {
                    LedgerError::Open(format!("cannot create {}: {error}", parent.display()))
                })?;
            }
            format!("sqlite://{}?mode=rwc", default_file.display())
        };
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
            .disable_statement_logging();
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
            .map_err(|error| LedgerError::Open(error.to_string()))?;
        let ledger = Ledger { pool, backend };
        schema::migrate(&ledger).await?;
        Ok(ledger)
    }

    /// Returns which database holds the ledger.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (not to be confused with `RunLedger::close`, which closes a run).
    pub async fn disconnect(&self) {
        self.pool.close().await;
    }
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
