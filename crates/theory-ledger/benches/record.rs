//! What the ledger adds to a run: `admit` (reserve, lease, open the record) and `close` (record
//! the envelope, release, settle), with their hash-chained events, timed per run on SQLite and on PostgreSQL; and executions
//! recorded per second with several runs at once.
//!
//! `cargo bench -p theory-ledger --bench record` (PostgreSQL on 127.0.0.1:55432, or
//! `THEORY_TEST_POSTGRES_URL`; `scripts/bench` starts it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use theory_core::ledger::{Admission, Closing, RunLedger};
use theory_ledger::Ledger;
use theory_protocol::{Envelope, ExecutionId, Meta, Mode, SuccessEnvelope};

const RUNS: usize = 2_000;
const CONCURRENT: usize = 8;
/// Enough for every run of the bench at 1 micro-USD each.
const BUDGET: i64 = 1_000_000;

/// One run as the orchestrator records it through the port: `admit` (reserve on the plan, lease
/// the write prefix, open the record) and `close` (record the envelope, give the lease back,
/// settle the reservation).
async fn record_one(ledger: &Ledger, id: &str, plan: Option<&str>) {
    let execution_id: ExecutionId = id.parse().expect("id");
    let write_prefix: theory_core::WritePrefix =
        format!("/artifacts/outputs/theory_probe/{id}/").parse().expect("prefix");
    let reference: theory_core::ProcessorRef = "theory/probe@1".parse().expect("ref");
    let plan: Option<theory_core::PlanKey> = plan.map(|plan| plan.parse().expect("plan key"));
    let memo_key = format!("memo-{id}");
    let admission = Admission {
        execution_id: &execution_id,
        processor_ref: &reference,
        adapter: theory_core::AdapterKind::Local,
        runtime: theory_core::Runtime::Process,
        mode: Mode::Real,
        memo_key: &memo_key,
        write_prefix: &write_prefix,
        plan: plan.as_ref(),
        estimate_usd_micro: 1,
        lease_ttl_s: Some(900),
    };
    let admitted = ledger.admit(&admission).await.expect("admit");
    let envelope = Envelope::Success(SuccessEnvelope {
        execution_id: execution_id.clone(),
        outputs: Vec::new(),
        index_path: format!("/artifacts/execution/{id}/outputs.json"),
        meta: Meta::default(),
    });
    let closing = Closing {
        execution_id: &execution_id,
        processor_ref: &reference,
        adapter: theory_core::AdapterKind::Local,
        mode: Mode::Real,
        envelope: &envelope,
        cost_usd_micro: Some(1),
        signed_by: None,
        attempts: 1,
        duration_ms: 5,
    };
    ledger.close(&closing, Some(&admitted)).await.expect("the run is recorded");
}

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

/// The p50 and p99 of `RUNS` runs one after the other, in ms.
async fn sequential(ledger: &Ledger, name: &str, plan: Option<&str>) -> (f64, f64) {
    for warm in 0..50 {
        record_one(ledger, &format!("{name}warm{warm}"), plan).await;
    }
    let mut latencies = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let started = Instant::now();
        record_one(ledger, &format!("{name}seq{run}"), plan).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let ms = |per_mille| percentile(&latencies, per_mille).as_secs_f64() * 1e3;
    (ms(500), ms(990))
}

async fn measure(name: &str, ledger: Ledger) {
    ledger.create_plan("bench", BUDGET).await.expect("plan");
    let (plain_p50, plain_p99) = sequential(&ledger, "plain", None).await;
    let (charged_p50, charged_p99) = sequential(&ledger, "plan", Some("bench")).await;
    let ledger = Arc::new(ledger);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|worker| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                for run in 0..RUNS / CONCURRENT {
                    record_one(&ledger, &format!("par{worker}-{run}"), Some("bench")).await;
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
        "{name:<9} added latency per run (admit + close): p50 {plain_p50:>6.3} ms  p99 {plain_p99:>6.3} ms | \
         charged to a plan: p50 {charged_p50:>6.3} ms  p99 {charged_p99:>6.3} ms | \
         {CONCURRENT} at once: {per_second:>5.0} executions/s"
    );
}

// The runtime `theory` itself runs on.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let folder = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or("/tmp".into()))
        .expect("temp dir");
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
    postgres.disconnect().await;
    sqlx::query(&format!("DROP DATABASE {name}")).execute(&mut connection).await.expect("drop db");
}
