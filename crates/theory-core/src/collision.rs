//! Collisions: a run about to write a path that already holds an object. Records are
//! write-once (see [`crate::ArtifactStore`]), so this is an error, raised before any byte is
//! written where it can be seen coming, and it names the execution that owns the path.

use theory_protocol::{ErrorCode, ExecutionId};

use crate::ledger::RunLedger;
use crate::{ArtifactStore, Failure, WorldPath};

/// The folder of every run's index and receipt.
const EXECUTION_FACET: &str = "/artifacts/execution/";

/// Where to look up who owns a path, on behalf of which run.
#[derive(Clone, Copy)]
pub struct Owners<'a> {
    /// The ledger, when there is one.
    pub ledger: Option<&'a dyn RunLedger>,
    /// The run that collided: never named as the owner.
    pub asking: &'a ExecutionId,
}

/// Who owns `path`: the run whose record folder it is in, else what the ledger knows.
async fn owner(path: &WorldPath, owners: Owners<'_>) -> Option<ExecutionId> {
    if let Some(rest) = path.as_str().strip_prefix(EXECUTION_FACET)
        && let Some((id, _)) = rest.split_once('/')
    {
        return id.parse().ok();
    }
    owners.ledger?.owner_of(path, owners.asking).await
}

/// The failure for an object already at `path`, naming its owner when it is known.
pub async fn collision(path: &WorldPath, owners: Owners<'_>) -> Failure {
    let whose = match owner(path, owners).await {
        Some(owner) => format!("it belongs to execution {owner}"),
        None if owners.ledger.is_none() => {
            "its owner is unknown: this run has no ledger".to_owned()
        }
        None => "its owner is unknown: no run in the ledger wrote it, or the ledger could not say"
            .to_owned(),
    };
    Failure::new(
        ErrorCode::Collision,
        format!("{path} already exists ({whose}); records are written once and never replaced"),
    )
    .hint(
        "write each run under its own prefix: keep the default write prefix, or put {execution_id} in --write-prefix",
    )
}

/// Checks that nothing is at any of `paths` yet; the first taken one is a [`collision`].
pub async fn ensure_free(
    store: &dyn ArtifactStore,
    owners: Owners<'_>,
    paths: &[WorldPath],
) -> Result<(), Failure> {
    for path in paths {
        if store.exists(path).await? {
            return Err(collision(path, owners).await);
        }
    }
    Ok(())
}
