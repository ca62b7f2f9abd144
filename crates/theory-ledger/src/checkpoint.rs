//! Checkpoints of the SQLite ledger off the write path, for a long-lived process (`theory
//! serve`). By default SQLite checkpoints inside the commit that takes the write-ahead log past
//! 1,000 pages: that commit copies the log into the database and syncs both files (milliseconds
//! on a disk), and every writer of the process waits behind it. With checkpoints in the
//! background the batch writer's connections do not checkpoint; a task copies the log every
//! [`PERIOD`] on a connection of its own (`PASSIVE`: it waits for no reader or writer), and a log
//! that outgrew [`MOST_FRAMES`] because writes never paused is restarted (`RESTART`: it waits for
//! the writer of that moment, then the log starts over).
//!
//! Processes that run and exit (`theory run`) keep SQLite's own checkpoints.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::Row;

use crate::{Backend, Ledger};

/// How often the log is copied while there are commits.
const PERIOD: Duration = Duration::from_millis(100);
/// A log longer than this (in pages, ~40 MiB) is restarted rather than left to grow.
const MOST_FRAMES: i64 = 10_000;

/// Whether checkpoints run in the background, and the commits they follow.
#[derive(Debug, Default)]
pub(crate) struct Checkpoints {
    on: AtomicBool,
    commits: AtomicU64,
}

impl Checkpoints {
    /// Whether the writers leave checkpoints to the background task.
    pub(crate) fn in_background(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Counts a commit (the background task checkpoints only after some).
    pub(crate) fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
}

impl Ledger {
    /// From now on, checkpoints the SQLite ledger in the background rather than in the commits
    /// of the batch writer (see the module's comment); nothing on PostgreSQL. The task ends when
    /// the ledger is disconnected.
    pub fn checkpoint_in_background(&self) {
        if self.backend() != Backend::Sqlite || self.checkpoints.on.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, checkpoints) = (self.pool().clone(), std::sync::Arc::clone(&self.checkpoints));
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                tokio::time::sleep(PERIOD).await;
                if pool.is_closed() {
                    return;
                }
                let commits = checkpoints.commits.load(Ordering::Relaxed);
                if commits != seen {
                    seen = commits;
                    checkpoint(&pool).await;
                }
            }
        });
    }
}

/// Copies the log into the database; restarts a log that grew too long.
async fn checkpoint(pool: &AnyPool) {
    let copied = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await;
    let frames = match copied.and_then(|row| row.try_get::<i64, _>(1)) {
        Ok(frames) => frames,
        Err(error) => {
            tracing::debug!(%error, "a background checkpoint of the ledger failed");
            return;
        }
    };
    if frames > MOST_FRAMES
        && let Err(error) = sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(pool).await
    {
        tracing::debug!(%error, frames, "the ledger's write-ahead log could not be restarted");
    }
}
