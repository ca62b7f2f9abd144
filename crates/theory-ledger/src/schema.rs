//! Migrations: numbered steps of portable SQL, applied in order on open, each recorded in
//! `theory_migrations` inside the transaction that applies it.

use sqlx::Row;

use crate::{Ledger, LedgerError};

/// The steps, in order. Append; never edit a released step.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            processor_ref TEXT NOT NULL,
            adapter TEXT NOT NULL,
            runtime TEXT,
            mode TEXT NOT NULL,
            status TEXT NOT NULL,
            error_code TEXT,
            memo_key TEXT,
            plan_key TEXT,
            write_prefix TEXT NOT NULL,
            reserved_usd_micro BIGINT NOT NULL DEFAULT 0,
            cost_usd_micro BIGINT,
            attempts BIGINT NOT NULL DEFAULT 1,
            started_at_ms BIGINT NOT NULL,
            finished_at_ms BIGINT,
            duration_ms BIGINT,
            owner TEXT NOT NULL,
            envelope TEXT
        )",
            "CREATE INDEX executions_by_memo_key ON executions (memo_key, status)",
            "CREATE INDEX executions_by_status ON executions (status)",
            "CREATE TABLE plans (
            plan_key TEXT PRIMARY KEY,
            budget_usd_micro BIGINT NOT NULL,
            reserved_usd_micro BIGINT NOT NULL DEFAULT 0,
            spent_usd_micro BIGINT NOT NULL DEFAULT 0,
            created_at_ms BIGINT NOT NULL,
            CHECK (budget_usd_micro >= 0 AND reserved_usd_micro >= 0 AND spent_usd_micro >= 0
                   AND reserved_usd_micro + spent_usd_micro <= budget_usd_micro)
        )",
            "CREATE TABLE events (
            seq BIGINT PRIMARY KEY,
            execution_id TEXT,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            at_ms BIGINT NOT NULL,
            prev_hash TEXT NOT NULL,
            this_hash TEXT NOT NULL
        )",
            // One row per critical section: updating it first in a transaction serializes that
            // section on both databases (a row lock in PostgreSQL, the write lock in SQLite).
            "CREATE TABLE ledger_locks (name TEXT PRIMARY KEY, n BIGINT NOT NULL)",
            "INSERT INTO ledger_locks (name, n) VALUES ('events', 0)",
            "INSERT INTO ledger_locks (name, n) VALUES ('leases', 0)",
            "CREATE TABLE leases (
            prefix TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL,
            expires_at_ms BIGINT NOT NULL
        )",
        ],
    ),
    (
        2,
        &[
            // Who owns a world path: the executions whose write prefix is one of its folders.
            "CREATE INDEX executions_by_write_prefix ON executions (write_prefix)",
        ],
    ),
    (
        3,
        &[
            // The run queue of `theory serve` (queue.rs).
            "CREATE TABLE queue (
                id TEXT PRIMARY KEY,
                request TEXT NOT NULL,
                state TEXT NOT NULL,
                submitter TEXT,
                idempotency_key TEXT,
                created_at_ms BIGINT NOT NULL,
                claimed_at_ms BIGINT,
                claimed_by TEXT,
                cancel_requested BIGINT NOT NULL DEFAULT 0,
                processor_ref TEXT NOT NULL,
                plan_key TEXT
            )",
            "CREATE INDEX queue_by_state ON queue (state, created_at_ms)",
            "CREATE INDEX queue_by_created ON queue (created_at_ms, id)",
            "CREATE UNIQUE INDEX queue_by_idempotency_key ON queue (idempotency_key, submitter)",
        ],
    ),
    (
        4,
        &[
            // The frames a run's processor sent, for `GET /v1/runs/{id}/events` on any front end
            // (frames.rs).
            "CREATE TABLE run_frames (
                run_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                frame TEXT NOT NULL,
                PRIMARY KEY (run_id, seq)
            )",
        ],
    ),
    (
        5,
        &[
            // The API tokens of `theory serve` (tokens.rs): only a hash of each is kept.
            "CREATE TABLE tokens (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                hash TEXT NOT NULL UNIQUE,
                plan_key TEXT,
                scopes TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                revoked_at_ms BIGINT
            )",
        ],
    ),
    (
        6,
        &[
            // Every attempt to deliver a run's webhook (theory-server's webhooks).
            "CREATE TABLE webhook_deliveries (
                run_id TEXT NOT NULL,
                message_id TEXT NOT NULL,
                event TEXT NOT NULL,
                attempt BIGINT NOT NULL,
                status_code BIGINT,
                error TEXT,
                at_ms BIGINT NOT NULL,
                PRIMARY KEY (message_id, attempt)
            )",
            "CREATE INDEX webhook_deliveries_by_run ON webhook_deliveries (run_id, at_ms)",
        ],
    ),
    (
        7,
        &[
            // What `theory modal start|deploy` deployed (deployments.rs), shared by everyone
            // using this ledger.
            "CREATE TABLE modal_deployments (
                env TEXT NOT NULL,
                ref TEXT NOT NULL,
                app_name TEXT NOT NULL,
                url TEXT NOT NULL,
                image_ref TEXT NOT NULL,
                proxy_auth BIGINT NOT NULL,
                deployed_at TEXT NOT NULL,
                PRIMARY KEY (env, ref)
            )",
        ],
    ),
    (
        8,
        &[
            // Every list and lookup the CLI and the server make reads an index, so its cost does
            // not grow with the ledger (tests/it/query_plans.rs checks each statement's plan).
            // `executions list`, newest first, with and without a status.
            "CREATE INDEX executions_by_started ON executions (started_at_ms, id)",
            "CREATE INDEX executions_by_status_started ON executions (status, started_at_ms, id)",
            "DROP INDEX executions_by_status",
            // The memo cache's newest hit.
            "CREATE INDEX executions_by_memo_hit ON executions (memo_key, status, finished_at_ms)",
            "DROP INDEX executions_by_memo_key",
            // A run's events (`executions show`, the server's run events).
            "CREATE INDEX events_by_execution ON events (execution_id, seq)",
            // Live leases, and the leases a closing run gives back.
            "CREATE INDEX leases_by_expiry ON leases (expires_at_ms)",
            "CREATE INDEX leases_by_execution ON leases (execution_id)",
            // `token list`, and the count of live tokens every request of the server asks.
            "CREATE INDEX tokens_by_created ON tokens (created_at_ms, id)",
            "CREATE INDEX tokens_by_revoked ON tokens (revoked_at_ms)",
        ],
    ),
];

/// Applies the migrations `ledger` lacks; `connection` (one of its pool's) reads what it has.
pub(crate) async fn migrate(
    ledger: &Ledger,
    connection: &mut sqlx::AnyConnection,
) -> Result<(), LedgerError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS theory_migrations (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
    )
    .execute(&mut *connection)
    .await?;
    // One read of the version on an up-to-date ledger (every command opens one).
    let mut applied = schema_version(&mut *connection).await?;
    for (version, statements) in MIGRATIONS {
        if applied >= *version {
            continue;
        }
        if let Err(error) = apply(ledger, *version, statements).await {
            // Another process applying the same step at the same moment wins; then it is here.
            if schema_version(ledger.pool()).await? < *version {
                return Err(error);
            }
        }
        applied = applied.max(*version);
    }
    Ok(())
}

async fn apply(ledger: &Ledger, version: i64, statements: &[&str]) -> Result<(), LedgerError> {
    let mut transaction = ledger.pool().begin().await?;
    for statement in statements {
        sqlx::query(statement).execute(&mut *transaction).await?;
    }
    sqlx::query("INSERT INTO theory_migrations (version, applied_at_ms) VALUES ($1, $2)")
        .bind(version)
        .bind(crate::now_ms())
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// Returns the newest applied migration.
pub(crate) async fn schema_version<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
) -> Result<i64, LedgerError> {
    let row = sqlx::query("SELECT MAX(version) AS version FROM theory_migrations")
        .fetch_one(executor)
        .await?;
    Ok(row.try_get::<Option<i64>, _>("version")?.unwrap_or(0))
}

/// Whether an error is a unique-key conflict or a busy database (both: try again).
pub(crate) fn is_conflict(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database) => {
            matches!(database.kind(), sqlx::error::ErrorKind::UniqueViolation)
                || database.code().is_some_and(|code| {
                    // SQLite BUSY/LOCKED (and their extended codes); PostgreSQL serialization
                    // failure and deadlock.
                    matches!(code.as_ref(), "5" | "6" | "517" | "262" | "40001" | "40P01")
                })
                || database.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Takes the named lock for the rest of `transaction` (see `ledger_locks`).
pub(crate) async fn lock(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
) -> Result<(), LedgerError> {
    sqlx::query("UPDATE ledger_locks SET n = n + 1 WHERE name = $1")
        .bind(name)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}
