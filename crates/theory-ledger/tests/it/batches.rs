//! Group commit under contention, on both backends: changes sent at once are written together,
//! a limit checked inside a batch holds exactly, every queued run is claimed once, and a change
//! that fails inside a batch fails alone — the others of its batch are kept and the chain
//! verifies. Checkpoints in the background copy the log into the database file (SQLite).

use std::collections::HashSet;
use std::sync::Arc;

use theory_core::ledger::{Admission, RunLedger};
use theory_core::{ProcessorRef, WritePrefix};
use theory_ledger::{Enqueued, Ledger, LedgerError, NewRun};
use theory_protocol::{ErrorCode, ExecutionId, Mode};

use crate::support::both;

/// Queues `runs` runs at once against a limit of `limit`; returns how many were queued.
async fn queue_at_once(ledger: &Arc<Ledger>, runs: usize, limit: i64) -> usize {
    let tasks: Vec<_> = (0..runs)
        .map(|index| {
            let ledger = Arc::clone(ledger);
            tokio::spawn(async move {
                let id = format!("Q{index:04}");
                let run = NewRun {
                    id: &id,
                    request: "{}",
                    processor_ref: "theory/probe@1",
                    plan_key: None,
                    submitter: None,
                    idempotency_key: None,
                    max_queued: limit,
                    claimed_by: None,
                };
                ledger.enqueue(run).await
            })
        })
        .collect();
    let mut queued = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Enqueued::New(_)) => queued += 1,
            Err(LedgerError::QueueFull(full)) => assert_eq!(full, limit),
            other => panic!("unexpected: {other:?}"),
        }
    }
    queued
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_refuses_exactly_past_its_limit_and_every_run_is_claimed_once() {
    for (backend, fresh) in both().await {
        let ledger = Arc::new(fresh.ledger.clone());
        assert_eq!(queue_at_once(&ledger, 60, 45).await, 45, "{backend}");
        let claimers: Vec<_> = (0..6)
            .map(|claimer| {
                let ledger = Arc::clone(&ledger);
                tokio::spawn(async move {
                    let mut claimed = Vec::new();
                    let owner = format!("front-end-{claimer}");
                    let limits = std::collections::HashMap::new();
                    while let Some(run) = ledger.claim_next(&owner, &limits).await.unwrap() {
                        claimed.push(run.id);
                    }
                    claimed
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for claimer in claimers {
            for id in claimer.await.unwrap() {
                assert!(seen.insert(id.clone()), "{backend}: {id} was claimed twice");
            }
        }
        assert_eq!(seen.len(), 45, "{backend}");
        assert_eq!(ledger.queue_depth().await.unwrap(), 0, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admission_refused_inside_a_batch_leaves_the_others_recorded() {
    for (backend, fresh) in both().await {
        let ledger = Arc::new(fresh.ledger.clone());
        let tasks: Vec<_> = (0..24)
            .map(|index| {
                let ledger = Arc::clone(&ledger);
                // Runs 0 and 1 want the same prefix: one of them is refused.
                let folder = if index < 2 { 0 } else { index };
                tokio::spawn(async move { admit(&ledger, &format!("A{index:03}"), folder).await })
            })
            .collect();
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => {}
                Err(ErrorCode::Lease) => refused += 1,
                Err(other) => panic!("{backend}: unexpected {other}"),
            }
        }
        assert_eq!(refused, 1, "{backend}");
        let running = ledger.executions(100).await.unwrap();
        assert_eq!(running.len(), 23, "{backend}: every admitted run is recorded");
        let chain = ledger.verify().await.unwrap();
        assert!(chain.first_bad_seq.is_none(), "{backend}: {chain:?}");
        assert_eq!(chain.entries, 23 * 2, "{backend}: a lease and a start per admitted run");
    }
}

#[tokio::test]
async fn a_run_claimed_as_it_is_queued_is_nobody_elses_until_given_back() {
    for (backend, fresh) in both().await {
        let ledger = fresh.ledger.clone();
        let run = NewRun {
            id: "H1",
            request: "{}",
            processor_ref: "theory/probe@1",
            plan_key: None,
            submitter: None,
            idempotency_key: None,
            max_queued: 10,
            claimed_by: Some("front-end-a"),
        };
        let Enqueued::New(handed) = ledger.enqueue(run).await.unwrap() else {
            panic!("{backend}: not queued")
        };
        assert_eq!(handed.claimed_by.as_deref(), Some("front-end-a"), "{backend}");
        let stored = ledger.queued("H1").await.unwrap().unwrap();
        assert_eq!((stored.state, stored.claimed_by), (handed.state, handed.claimed_by));
        let limits = std::collections::HashMap::new();
        assert_eq!(ledger.claim_next("front-end-b", &limits).await.unwrap(), None, "{backend}");
        ledger.release_claim("H1").await.unwrap();
        let claimed = ledger.claim_next("front-end-b", &limits).await.unwrap().unwrap();
        assert_eq!(
            (claimed.id.as_str(), claimed.claimed_by.as_deref()),
            ("H1", Some("front-end-b"))
        );
    }
}

/// Admits run `id` through `ledger`'s port, writing under a folder named by `folder` (a lease
/// and a start: two events); a refusal is its code.
async fn admit(ledger: &Ledger, id: &str, folder: usize) -> Result<(), ErrorCode> {
    let id: ExecutionId = id.parse().unwrap();
    let prefix: WritePrefix = format!("/artifacts/outputs/folder{folder}/").parse().unwrap();
    let reference: ProcessorRef = "theory/probe@1".parse().unwrap();
    let admission = Admission {
        execution_id: &id,
        processor_ref: &reference,
        adapter: theory_core::AdapterKind::Local,
        runtime: theory_core::Runtime::Process,
        mode: Mode::Mock,
        memo_key: "memo",
        write_prefix: &prefix,
        plan: None,
        estimate_usd_micro: 0,
        lease_ttl_s: Some(60),
    };
    ledger.admit(&admission).await.map(|_| ()).map_err(|failure| failure.code)
}

#[tokio::test]
async fn a_writer_that_remembers_the_chains_head_notices_another_process_wrote_after_it() {
    for (backend, fresh) in both().await {
        let other = fresh.another_process().await;
        admit(&fresh.ledger, "P001", 101).await.unwrap();
        admit(&other, "P002", 102).await.unwrap();
        // The first process's last known head is stale now: its batch must not fork the chain.
        admit(&fresh.ledger, "P003", 103).await.unwrap();
        admit(&other, "P004", 104).await.unwrap();
        let chain = fresh.ledger.verify().await.unwrap();
        assert!(chain.first_bad_seq.is_none(), "{backend}: {chain:?}");
        assert_eq!(chain.entries, 8, "{backend}");
        assert_eq!(fresh.ledger.executions(10).await.unwrap().len(), 4, "{backend}");
    }
}

/// Bytes of the SQLite file itself (the write-ahead log aside): it changes only when the log is
/// checkpointed into it.
fn database_bytes(file: &std::path::Path) -> u64 {
    std::fs::metadata(file).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_checkpoints_copy_the_log_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("theory.db");
    let ledger = Arc::new(Ledger::open(None, &file).await.unwrap());
    // A new ledger is made whole under another name and linked into place (its log checkpointed
    // as it closed): from here the file grows only by a checkpoint.
    let before = database_bytes(&file);
    ledger.checkpoint_in_background();
    assert_eq!(queue_at_once(&ledger, 200, 1_000).await, 200);
    // Far fewer pages than SQLite's own threshold (1,000): only the background task copies them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while database_bytes(&file) == before {
        assert!(std::time::Instant::now() < deadline, "the log never reached the database file");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ledger.queue_depth().await.unwrap(), 200);
    ledger.disconnect().await;
}
