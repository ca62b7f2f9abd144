//! The dashboard's pages with 10,000 runs in the ledger, timed on the server: `theory serve`
//! answers the page (`/`, its script and style) and every API call a page makes to draw itself
//! (the runs list first, filtered and paged; one run; the plans and processors). One line per
//! request: median and p95 of 30, from a client on loopback. Goal: the runs page (its document
//! and its first `/v1/runs` page) under 200 ms on the server.
//!
//! Run with `scripts/bench` (release build); `DASHBOARD_RUNS` changes the ledger's size.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SAMPLES: usize = 30;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_theory"))
}

/// A mock run first (it makes the ledger), then `runs` finished runs queued and recorded
/// directly: a third on a plan, one in seven failed.
fn fill(project: &Path, runs: usize) {
    let made = Command::new(binary())
        .args(["run", "--ref", "theory/probe@1", "--mode", "mock", "--json"])
        .current_dir(project)
        .env("THEORY_LOG", "error")
        .env("THEORY_LOCAL_RUNTIME", "process")
        .env("THEORY_PROCESSOR_PATH", binary().parent().expect("a folder"))
        .output()
        .expect("theory runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let made = Command::new(binary())
        .args(["plan", "create", "--key", "team-a", "--budget-usd-micro", "100000000"])
        .current_dir(project)
        .output()
        .expect("theory runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", project.join(".theory/theory.db").display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("ledger");
        let mut transaction = connection.begin().await.unwrap();
        for row in 0..i64::try_from(runs).expect("runs") {
            let id = format!("01JBENCH{row:018}");
            let at = 1_790_000_000_000_i64 + row * 1000;
            let plan = (row % 3 == 0).then_some("team-a");
            let failed = row % 7 == 0;
            let envelope = if failed {
                format!(
                    r#"{{"status":"error","execution_id":"{id}","error":{{"code":"ERR_RUNTIME","message":"bench"}}}}"#
                )
            } else {
                format!(
                    r#"{{"status":"success","execution_id":"{id}","outputs":[],"index_path":"/artifacts/execution/{id}/outputs.json","meta":{{"cached":false}}}}"#
                )
            };
            sqlx::query(
                "INSERT INTO queue (id, request, state, submitter, created_at_ms, claimed_at_ms,
                 claimed_by, processor_ref, plan_key)
                 VALUES ($1, '{\"ref\":\"theory/probe@1\",\"inputs\":{}}', 'done', NULL, $2, $2,
                 'bench:1', 'theory/probe@1', $3)",
            )
            .bind(&id)
            .bind(at)
            .bind(plan)
            .execute(&mut *transaction)
            .await
            .expect("queue row");
            sqlx::query(
                "INSERT INTO executions (id, processor_ref, adapter, runtime, mode, status,
                 error_code, memo_key, plan_key, write_prefix, started_at_ms, finished_at_ms,
                 duration_ms, cost_usd_micro, owner, envelope)
                 VALUES ($1, 'theory/probe@1', 'local', 'process', 'mock', $2, $3, $4, $5, $6, $7,
                 $8, 12, 0, 'bench:1', $9)",
            )
            .bind(&id)
            .bind(if failed { "error" } else { "success" })
            .bind(failed.then_some("ERR_RUNTIME"))
            .bind(format!("memo-{row}"))
            .bind(plan)
            .bind(format!("/artifacts/outputs/theory_probe/{id}/"))
            .bind(at)
            .bind(at + 12)
            .bind(envelope)
            .execute(&mut *transaction)
            .await
            .expect("execution row");
        }
        transaction.commit().await.unwrap();
    });
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(project: &Path) -> Server {
    let mut child = Command::new(binary())
        .args(["serve", "--no-auth", "--listen", "127.0.0.1:0"])
        .current_dir(project)
        .env("THEORY_LOG", "error")
        .env("THEORY_LOCAL_RUNTIME", "process")
        .env("THEORY_PROCESSOR_PATH", binary().parent().expect("a folder"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("theory serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let listening: Value = serde_json::from_str(&line).unwrap();
    let url = format!("http://{}", listening["listening"].as_str().unwrap());
    Server(child, url)
}

async fn time(http: &reqwest::Client, url: &str) -> (Duration, Duration, usize) {
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut size = 0;
    for round in 0..=SAMPLES {
        let started = Instant::now();
        let answer = http.get(url).send().await.expect("an answer");
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
        size = answer.bytes().await.expect("a body").len();
        if round > 0 {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    (samples[SAMPLES / 2], samples[SAMPLES * 95 / 100], size)
}

fn main() {
    let runs: usize =
        std::env::var("DASHBOARD_RUNS").ok().and_then(|text| text.parse().ok()).unwrap_or(10_000);
    let project = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(project.path().join("registry/processors")).expect("registry");
    fill(project.path(), runs);
    let server = serve(project.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let tls = theory_core::tls::client_config(&theory_core::EnvSnapshot::capture()).unwrap();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .build()
            .unwrap();
        let base = &server.1;
        let page: Value = http
            .get(format!("{base}/v1/runs?limit=50"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();
        let one = page["runs"][0]["id"].as_str().expect("a run").to_owned();
        let requests = [
            ("the page (/)", "/".to_owned()),
            ("its script", "/ui/app.js".to_owned()),
            ("runs page: /v1/runs, newest 50", "/v1/runs?limit=50".to_owned()),
            ("runs page, status=failed", "/v1/runs?limit=50&status=failed".to_owned()),
            ("runs page, plan=team-a", "/v1/runs?limit=50&plan=team-a".to_owned()),
            ("runs page, processor", "/v1/runs?limit=50&ref=theory/probe@1".to_owned()),
            ("runs page, the next 50", format!("/v1/runs?limit=50&cursor={cursor}")),
            ("one run", format!("/v1/runs/{one}")),
            ("plans", "/v1/plans".to_owned()),
            ("processors", "/v1/processors".to_owned()),
            ("the ledger's chain (plans page)", "/v1/ledger/verify".to_owned()),
        ];
        for (name, path) in requests {
            let (median, p95, size) = time(&http, &format!("{base}{path}")).await;
            eprintln!(
                "dashboard with {runs} runs: {name}: p50 {:.2} ms, p95 {:.2} ms ({size} bytes) | goal: runs page < 200 ms",
                median.as_secs_f64() * 1000.0,
                p95.as_secs_f64() * 1000.0
            );
        }
    });
}
