//! What the ledger adds to a run: `admit` (open the record) and `close` (record the envelope),
//! each with its hash-chained event, timed per run on SQLite and on PostgreSQL; and executions
//! recorded per second with several runs at once.
//!
//! `cargo bench -p theory-ledger --bench record` (PostgreSQL on 127.0.0.1:55432, or
//! `THEORY_TEST_POSTGRES_URL`; `scripts/bench` starts it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use theory_ledger::{ExecutionStart, ExecutionStatus, Finish, Ledger};

const RUNS: usize = 2_000;
const CONCURRENT: usize = 8;

fn start(id: &str) -> ExecutionStart {
    ExecutionStart {
        id: id.into(),
        processor_ref: "theory/probe@1".into(),
        adapter: "local".into(),
        runtime: "process".into(),
        mode: "mock".into(),
        memo_key: format!("memo-{id}"),
        plan_key: None,
        write_prefix: format!("/artifacts/outputs/theory_probe/{id}/"),
        reserved_usd_micro: 0,
        owner: "bench:1".into(),
    }
}

fn finish(id: &str) -> Finish {
    Finish {
        status: ExecutionStatus::Success,
        error_code: None,
        cost_usd_micro: Some(0),
        attempts: 1,
        duration_ms: 5,
        envelope: json!({"status": "success", "execution_id": id, "outputs": [], "index_path": "/x", "meta": {}}),
    }
}

async fn record_one(ledger: &Ledger, id: &str) {
    ledger.start_execution(&start(id)).await.expect("start");
    ledger.finish_execution(id, &finish(id)).await.expect("finish");
}

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

async fn measure(name: &str, ledger: Ledger) {
    for warm in 0..50 {
        record_one(&ledger, &format!("warm{warm}")).await;
    }
    let mut latencies = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let started = Instant::now();
        record_one(&ledger, &format!("seq{run}")).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let ledger = Arc::new(ledger);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|worker| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                for run in 0..RUNS / CONCURRENT {
                    record_one(&ledger, &format!("par{worker}-{run}")).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker");
    }
    let per_second = RUNS as f64 / started.elapsed().as_secs_f64();
    assert!(ledger.verify().await.expect("verify").first_bad_seq.is_none());
    eprintln!(
        "{name:<9} added latency per run (admit + close): p50 {:>7.3} ms  p99 {:>7.3} ms | {CONCURRENT} at once: {per_second:>7.0} executions/s",
        percentile(&latencies, 500).as_secs_f64() * 1e3,
        percentile(&latencies, 990).as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let folder = tempfile::tempdir().expect("temp dir");
    let sqlite = Ledger::open(None, &folder.path().join("theory.db")).await.expect("sqlite");
    measure("sqlite", sqlite).await;

    let admin = std::env::var("THEORY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into());
    let mut connection = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL on 127.0.0.1:55432: scripts/services/postgres start");
    let name = format!("theory_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create db");
    let url = format!("{}/{name}", admin.rsplit_once('/').expect("url").0);
    let postgres = Ledger::open(Some(&url), folder.path()).await.expect("postgres");
    measure("postgres", postgres.clone()).await;
    postgres.close().await;
    sqlx::query(&format!("DROP DATABASE {name}")).execute(&mut connection).await.expect("drop db");
}
