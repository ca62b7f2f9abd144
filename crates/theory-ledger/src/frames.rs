//! The frames each run's processor sent (events, tokens, logs, output headers, the result), kept
//! so that `GET /v1/runs/{id}/events` replays them on any front end, during the run and after.
//!
//! Frames are numbered from 1 per run by the front end that runs it, and appended in batches (one
//! statement for many frames of many runs); an append that repeats a frame already kept is a
//! no-op, so a batch tried twice leaves one copy.

use async_trait::async_trait;
use sqlx::Row;

use crate::batch::Change;
use crate::write::Write;
use crate::{Ledger, LedgerError};

/// Rows per `INSERT` (three parameters each, under every database's limit).
const ROWS_PER_STATEMENT: usize = 300;

/// One kept frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrame {
    /// The run.
    pub run_id: String,
    /// Its number within the run, from 1.
    pub seq: i64,
    /// The frame's JSON.
    pub frame: String,
}

impl Ledger {
    /// Keeps frames, and marks the queue rows of `ended` runs `done`, in one write (batched with
    /// other changes); frames already kept are left as they are.
    pub async fn append_frames(
        &self,
        frames: &[StoredFrame],
        ended: &[String],
    ) -> Result<(), LedgerError> {
        if frames.is_empty() && ended.is_empty() {
            return Ok(());
        }
        self.apply(Append { frames: frames.to_vec(), ended: ended.to_vec() }).await
    }

    /// A run's frames numbered after `after`, in order, at most `limit`.
    pub async fn frames_after(
        &self,
        run_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT seq, frame FROM run_frames WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(run_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("frame")?)))
            .collect()
    }
}

/// Frames appended, and runs whose queue rows are done.
struct Append {
    frames: Vec<StoredFrame>,
    ended: Vec<String>,
}

#[async_trait]
impl Change for Append {
    type Output = ();

    async fn apply(&self, write: &mut Write) -> Result<(), LedgerError> {
        for chunk in self.frames.chunks(ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|row| format!("(${}, ${}, ${})", 3 * row + 1, 3 * row + 2, 3 * row + 3))
                .collect();
            let sql = format!(
                "INSERT INTO run_frames (run_id, seq, frame) VALUES {} ON CONFLICT (run_id, seq) DO NOTHING",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for frame in chunk {
                query =
                    query.bind(frame.run_id.as_str()).bind(frame.seq).bind(frame.frame.as_str());
            }
            query.execute(write.db()).await?;
        }
        for chunk in self.ended.chunks(ROWS_PER_STATEMENT) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "UPDATE queue SET state = 'done' WHERE id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            query.execute(write.db()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(run_id: &str, seq: i64) -> StoredFrame {
        StoredFrame { run_id: run_id.to_owned(), seq, frame: format!("{{\"n\":{seq}}}") }
    }

    #[tokio::test]
    async fn frames_come_back_in_order_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(None, &dir.path().join("t.db")).await.unwrap();
        let batch: Vec<_> = (1..=700).map(|seq| frame("E1", seq)).chain([frame("E2", 1)]).collect();
        ledger.append_frames(&batch, &[]).await.unwrap();
        ledger.append_frames(&batch[..10], &[]).await.unwrap();
        let all = ledger.frames_after("E1", 0, 1000).await.unwrap();
        assert_eq!(all.len(), 700);
        assert!(all.windows(2).all(|pair| pair[0].0 + 1 == pair[1].0));
        let rest = ledger.frames_after("E1", 698, 10).await.unwrap();
        assert_eq!(rest, vec![(699, "{\"n\":699}".to_owned()), (700, "{\"n\":700}".to_owned())]);
        assert_eq!(ledger.frames_after("E2", 0, 10).await.unwrap().len(), 1);
        assert!(ledger.frames_after("E3", 0, 10).await.unwrap().is_empty());
    }
}
