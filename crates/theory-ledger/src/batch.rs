//! Group commit: the changes that arrive while one batch is being written wait and go together
//! in the next, in one transaction — one lock, one read of the chain's head, one insert of the
//! events, one commit — instead of one transaction each. On SQLite, whose file has one writer at
//! a time, this is what lets `theory serve` record many runs a second.
//!
//! A batch is what those changes would have done one after another: each sees the ones before
//! it. When any change of a batch fails (a plan over budget, a lease taken, a busy database),
//! the batch is rolled back whole and its changes are written one by one, each in its own
//! transaction and retried as any write is, so a failure is only ever its own change's.

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::write::{Write, pause_before_retry};
use crate::{Ledger, LedgerError};

/// Changes written in one transaction at most.
const BATCH: usize = 256;

/// A change to the ledger, written within a [`Write`]. It may be applied more than once (a
/// batch rolled back is written again change by change), so it must not consume itself.
#[async_trait]
pub(crate) trait Change: Send + Sync + 'static {
    /// What the change answers.
    type Output: Send + 'static;

    /// Applies the change within `write` (which commits it, or rolls it back).
    async fn apply(&self, write: &mut Write) -> Result<Self::Output, LedgerError>;
}

/// A change waiting for its batch, and where its answer goes.
#[async_trait]
pub(crate) trait Waiting: Send {
    /// Applies the change, keeping its answer until the batch commits.
    async fn apply(&mut self, write: &mut Write) -> Result<(), LedgerError>;

    /// Sends the kept answer (the batch committed) or `error`.
    fn answer(self: Box<Self>, error: Option<LedgerError>);
}

struct Pending<C: Change> {
    change: C,
    output: Option<C::Output>,
    reply: oneshot::Sender<Result<C::Output, LedgerError>>,
}

#[async_trait]
impl<C: Change> Waiting for Pending<C> {
    async fn apply(&mut self, write: &mut Write) -> Result<(), LedgerError> {
        self.output = Some(self.change.apply(write).await?);
        Ok(())
    }

    fn answer(self: Box<Self>, error: Option<LedgerError>) {
        let answer = match (error, self.output) {
            (Some(error), _) => Err(error),
            (None, Some(output)) => Ok(output),
            (None, None) => Err(LedgerError::Corrupt("a change was answered before it ran".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// Where changes are sent to be written in batches.
pub(crate) type Batcher = mpsc::UnboundedSender<Box<dyn Waiting>>;

/// Starts the task that writes batches to `ledger`'s database; it ends when every sender is
/// gone (`ledger` must not hold one itself).
pub(crate) fn start(ledger: Ledger) -> Batcher {
    let (sender, mut changes) = mpsc::unbounded_channel::<Box<dyn Waiting>>();
    tokio::spawn(async move {
        let mut own = Own::default();
        while let Some(first) = changes.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match changes.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            write_batch(&ledger, batch, &mut own).await;
        }
    });
    sender
}

/// What the batch writer keeps between batches on SQLite: the head of the chain as its last
/// batch left it (see `write::Held::Own`).
#[derive(Default)]
struct Own {
    head: Option<(i64, String)>,
}

async fn write_batch(ledger: &Ledger, mut batch: Vec<Box<dyn Waiting>>, own: &mut Own) {
    let together = match ledger.backend() {
        crate::Backend::Sqlite => Some(write_on_own(ledger, &mut batch, own).await),
        crate::Backend::Postgres if batch.len() > 1 => {
            Some(write_together(ledger, &mut batch).await)
        }
        crate::Backend::Postgres => None,
    };
    match together {
        Some(Ok(())) => {
            for waiting in batch {
                waiting.answer(None);
            }
            return;
        }
        Some(Err(error)) => {
            tracing::debug!(%error, size = batch.len(), "a batch failed; writing its changes one by one");
        }
        None => {}
    }
    for mut waiting in batch {
        let written = write_alone(ledger, &mut *waiting).await;
        waiting.answer(written.err());
    }
}

/// Writes a batch in a transaction begun by hand on SQLite (see `write::Held::Own`); on any
/// failure it is rolled back and the head forgotten (the changes are then written one by one).
async fn write_on_own(
    ledger: &Ledger,
    batch: &mut [Box<dyn Waiting>],
    own: &mut Own,
) -> Result<(), LedgerError> {
    let connection = ledger.pool().acquire().await?;
    let mut write = Write::begin_own(ledger, connection, own.head.take()).await?;
    for waiting in batch.iter_mut() {
        if let Err(error) = waiting.apply(&mut write).await {
            write.roll_back_own().await;
            return Err(error);
        }
    }
    own.head = Some(write.commit_own().await?);
    Ok(())
}

/// Writes one change in its own transaction, tried again while the database is busy.
async fn write_alone(ledger: &Ledger, waiting: &mut dyn Waiting) -> Result<(), LedgerError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let attempt = async {
            let mut write = Write::begin(ledger).await?;
            waiting.apply(&mut write).await?;
            write.commit().await
        };
        match attempt.await {
            Err(error) => match pause_before_retry(tries, &error) {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return Err(error),
            },
            Ok(()) => return Ok(()),
        }
    }
}

async fn write_together(
    ledger: &Ledger,
    batch: &mut [Box<dyn Waiting>],
) -> Result<(), LedgerError> {
    let mut write = Write::begin(ledger).await?;
    for waiting in batch.iter_mut() {
        waiting.apply(&mut write).await?;
    }
    write.commit().await
}

impl Ledger {
    /// Writes `change` with whatever other changes are waiting (see the module's comment).
    pub(crate) async fn apply<C: Change>(&self, change: C) -> Result<C::Output, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let mut pending = Box::new(Pending { change, output: None, reply });
        if let Some(batcher) = &self.batcher {
            batcher
                .send(pending)
                .map_err(|_| LedgerError::Open("the ledger's writer has stopped".into()))?;
        } else {
            // The batch writer's own handle: written alone, here.
            let written = write_alone(self, &mut *pending).await;
            pending.answer(written.err());
        }
        answer.await.map_err(|_| LedgerError::Open("the ledger's writer has stopped".into()))?
    }
}
