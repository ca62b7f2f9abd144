//! Every statement the ledger runs for the CLI and the server reads through an index, on both
//! databases: the statements are taken from the ledger itself (its `trace` log of each one) while
//! this test drives every list, lookup and change, and each is then explained by the database.
//! A full scan, or a sort of rows no index narrowed, fails — except for the statements that read
//! a whole table by their purpose (`ledger verify`, `ledger audit`), named below with why.

use std::collections::BTreeSet;
use std::sync::{LazyLock, Mutex};

use serde_json::json;
use sqlx::{Connection, Row};
use theory_core::ledger::{Admission, Closing, RunLedger};
use theory_core::{PlanKey, ProcessorRef, WritePrefix};
use theory_ledger::{
    Delivery, Deployment, ExecutionStart, ExecutionStatus, Finish, NewRun, NewToken, RunFilter,
    Scope, StoredFrame,
};
use theory_protocol::{Envelope, ExecutionId, Meta, Mode, SuccessEnvelope};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::support::{Fresh, both};

/// Statements that read every row by their purpose, each with the table it reads whole.
const WHOLE_TABLE_READS: &[(&str, &str)] = &[
    // `ledger verify` and `ledger audit` replay the whole log and check every table against it.
    ("SELECT * FROM events ORDER BY seq", "verify and audit read the whole event log"),
    ("SELECT plan_key, budget_usd_micro", "audit checks every plan against the log"),
    ("SELECT id, status, error_code FROM executions", "audit checks every run against the log"),
    // `/metrics` counts every run of the queue by status, once per scrape.
    ("SELECT q.processor_ref AS processor_ref,", "the metrics count every run by status"),
];

/// What reads or changes rows (the rest — transactions, settings, DDL — has no plan).
const EXPLAINED: &[&str] = &["SELECT", "UPDATE", "DELETE", "INSERT", "WITH"];

/// Statements not explained: the migrations' own bookkeeping and SQLite's catalogue.
const NOT_EXPLAINED: &[&str] = &[
    "SELECT MAX(version) AS version FROM theory_migrations",
    "SELECT count(*) AS n FROM sqlite_master",
    "INSERT INTO theory_migrations",
];

/// Every statement the ledger has logged in this test binary.
static STATEMENTS: LazyLock<Mutex<BTreeSet<String>>> = LazyLock::new(Mutex::default);

/// Collects the SQL of sqlx's `sqlx::query` events.
struct Capture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut fields = SqlFields::default();
        event.record(&mut fields);
        // sqlx gives short statements as the summary alone and longer ones in full.
        let sql =
            if fields.statement.trim().is_empty() { fields.summary } else { fields.statement };
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        if !sql.is_empty() {
            STATEMENTS.lock().unwrap().insert(sql);
        }
    }
}

#[derive(Default)]
struct SqlFields {
    summary: String,
    statement: String,
}

impl tracing::field::Visit for SqlFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.statement),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, text.trim_matches('"'));
    }
}

fn start(id: &str, at: usize) -> ExecutionStart {
    ExecutionStart {
        id: id.into(),
        processor_ref: "theory/probe@1".into(),
        adapter: "local".into(),
        runtime: "process".into(),
        mode: "mock".into(),
        memo_key: format!("memo-{}", at % 3),
        plan_key: Some("team".into()),
        write_prefix: format!("/artifacts/outputs/{id}/"),
        reserved_usd_micro: 1,
        owner: "host:1".into(),
    }
}

/// Drives every list, lookup and change of the ledger once (or more), so each statement the
/// CLI and the server make is logged.
async fn drive(fresh: &Fresh) {
    let ledger = &fresh.ledger;
    ledger.create_plan("team", 1_000_000).await.unwrap();
    for at in 0..6 {
        let id = format!("E{at}");
        ledger.start_execution(&start(&id, at)).await.unwrap();
        ledger.reserve("team", &id, 1).await.unwrap();
        ledger.acquire_lease(&format!("/artifacts/outputs/{id}/"), &id, 60_000).await.unwrap();
        if at % 2 == 0 {
            let finish = Finish {
                status: ExecutionStatus::Success,
                error_code: None,
                cost_usd_micro: Some(1),
                attempts: 1,
                duration_ms: 3,
                envelope: json!({"status": "success", "execution_id": id}),
                signed_by: None,
            };
            ledger.finish_execution(&id, &finish).await.unwrap();
            ledger.settle("team", &id, 1, 1).await.unwrap();
            ledger.release_leases(&id).await.unwrap();
        }
    }
    admit_and_close(ledger).await;
    ledger.execution("E1").await.unwrap();
    ledger.executions(50).await.unwrap();
    ledger.executions_with(50, Some(ExecutionStatus::Success)).await.unwrap();
    ledger.find_execution("E").await.unwrap_err();
    ledger.find_execution("E3").await.unwrap();
    ledger.owner_of("/artifacts/outputs/E2/a/b.txt", "E9").await.unwrap();
    ledger.memo_hit("memo-1").await.unwrap();
    ledger.recover(|_| false).await.unwrap();
    ledger.events(Some("E1")).await.unwrap();
    ledger.signed_by("E2").await.unwrap();
    ledger.event_at(1).await.unwrap();
    ledger.plan("team").await.unwrap();
    ledger.plans().await.unwrap();
    ledger.verify().await.unwrap();
    ledger.audit().await.unwrap();
    drive_queue(ledger).await;
    drive_server_records(ledger).await;
}

/// The server's queue and its run frames.
async fn drive_queue(ledger: &theory_ledger::Ledger) {
    for at in 0..4 {
        let id = format!("Q{at}");
        let key = format!("key-{at}");
        let run = NewRun {
            id: &id,
            request: "{}",
            processor_ref: "theory/probe@1",
            plan_key: Some("team"),
            submitter: Some("alice"),
            idempotency_key: Some(&key),
            max_queued: 100,
            claimed_by: None,
        };
        ledger.enqueue(run).await.unwrap();
    }
    let limits = std::collections::HashMap::from([("theory/probe@1".to_owned(), 2)]);
    let claimed = ledger.claim_next("server:1", &limits).await.unwrap().unwrap();
    ledger.release_claim(&claimed.id).await.unwrap();
    ledger.claim_next("server:1", &std::collections::HashMap::default()).await.unwrap().unwrap();
    ledger.request_cancel("Q3").await.unwrap();
    ledger.finish_queued("Q3").await.unwrap();
    ledger.queued("Q1").await.unwrap();
    ledger.queued_by_key("key-1", Some("alice")).await.unwrap();
    for status in [None, Some("queued"), Some("running"), Some("succeeded"), Some("failed")] {
        let filter = RunFilter {
            status: status.map(str::to_owned),
            processor_ref: Some("theory/probe@1".into()),
            plan_key: Some("team".into()),
            visible_to: Some(("alice".into(), Some("team".into()))),
            cursor: Some((i64::MAX, "Z".into())),
        };
        ledger.queued_runs(&filter, 20).await.unwrap();
    }
    ledger.queued_runs(&RunFilter::default(), 20).await.unwrap();
    ledger.run_counts().await.unwrap();
    ledger.queue_depth().await.unwrap();
    ledger.requeue_abandoned(|_| true).await.unwrap();
    let frames: Vec<StoredFrame> =
        (1..=2).map(|seq| StoredFrame { run_id: "Q1".into(), seq, frame: "{}".into() }).collect();
    ledger.append_frames(&frames, &["Q1".to_owned()]).await.unwrap();
    ledger.frames_after("Q1", 0, 100).await.unwrap();
}

/// Tokens, webhook deliveries and Modal deployments.
async fn drive_server_records(ledger: &theory_ledger::Ledger) {
    let token = NewToken { name: "alice", plan_key: Some("team"), scopes: &[Scope::RunsRead] };
    let (_, secret) = ledger.create_token(token).await.unwrap();
    ledger.tokens().await.unwrap();
    ledger.live_tokens().await.unwrap();
    ledger.token_by_secret(&secret).await.unwrap();
    ledger.revoke_token("alice").await.unwrap();

    let delivery = Delivery {
        run_id: "Q1".into(),
        message_id: "msg_1".into(),
        event: "run.completed".into(),
        attempt: 1,
        status_code: Some(200),
        error: None,
        at_ms: 1,
    };
    ledger.record_delivery(&delivery).await.unwrap();
    ledger.deliveries("Q1").await.unwrap();

    let deployment = Deployment {
        env: "dev".into(),
        reference: "theory/probe@1".into(),
        app_name: "theory-dev-probe".into(),
        url: "https://example.modal.run".into(),
        image_ref: "r@sha256:00".into(),
        proxy_auth: false,
        deployed_at: "2026-12-01T00:00:00Z".into(),
    };
    ledger.record_deployment(&deployment).await.unwrap();
    ledger.deployment("dev", "theory/probe@1").await.unwrap();
    ledger.deployments().await.unwrap();
    ledger.forget_deployment("dev", "theory/probe@1").await.unwrap();
}

/// A run as the orchestrator records it: admitted (reservation, lease, record) and closed.
async fn admit_and_close(ledger: &theory_ledger::Ledger) {
    let reference: ProcessorRef = "theory/probe@1".parse().unwrap();
    let plan: PlanKey = "team".parse().unwrap();
    let id: ExecutionId = "P1".parse().unwrap();
    let prefix: WritePrefix = "/artifacts/outputs/P1/".parse().unwrap();
    let admission = Admission {
        execution_id: &id,
        processor_ref: &reference,
        adapter: theory_core::AdapterKind::Local,
        runtime: theory_core::Runtime::Process,
        mode: Mode::Mock,
        memo_key: "memo-p",
        write_prefix: &prefix,
        plan: Some(&plan),
        estimate_usd_micro: 5,
        lease_ttl_s: Some(60),
    };
    let admitted = ledger.admit(&admission).await.unwrap();
    let envelope = Envelope::Success(SuccessEnvelope {
        execution_id: id.clone(),
        outputs: Vec::new(),
        index_path: "/artifacts/outputs/P1/outputs.json".into(),
        meta: Meta::default(),
    });
    let closing = Closing {
        execution_id: &id,
        processor_ref: &reference,
        adapter: theory_core::AdapterKind::Local,
        mode: Mode::Mock,
        envelope: &envelope,
        cost_usd_micro: Some(1),
        signed_by: None,
        attempts: 1,
        duration_ms: 2,
    };
    ledger.close(&closing, Some(&admitted)).await.unwrap();
}

/// What is wrong with a plan, if anything: a full scan, or a sort no index narrowed.
fn sqlite_problem(plan: &[String]) -> Option<String> {
    // A subquery's own rows (a co-routine, a materialized view) are not a table.
    let derived: Vec<&str> = plan
        .iter()
        .filter_map(|line| {
            line.strip_prefix("CO-ROUTINE ").or_else(|| line.strip_prefix("MATERIALIZE "))
        })
        .collect();
    let scan = plan.iter().find(|line| {
        line.strip_prefix("SCAN ").is_some_and(|scanned| {
            !scanned.contains("USING")
                && scanned != "CONSTANT ROW"
                && !derived.contains(&scanned.trim())
        })
    });
    if let Some(scan) = scan {
        return Some(format!("a full scan: {scan}"));
    }
    let sorts = plan.iter().any(|line| line.contains("USE TEMP B-TREE"));
    let narrowed = plan.iter().any(|line| line.starts_with("SEARCH "));
    (sorts && !narrowed).then(|| "a sort of rows no index narrowed".to_owned())
}

fn postgres_problem(plan: &[String]) -> Option<String> {
    if let Some(scan) = plan.iter().find(|line| line.contains("Seq Scan")) {
        return Some(format!("a full scan: {}", scan.trim()));
    }
    let sorts = plan
        .iter()
        .any(|line| line.trim_start().starts_with("-> Sort") || line.starts_with("Sort"));
    let narrowed = plan.iter().any(|line| line.contains("Index Cond"));
    (sorts && !narrowed).then(|| "a sort of rows no index narrowed".to_owned())
}

/// Explains `sql` on the backend as the ledger would run it: SQLite's query plan; PostgreSQL's
/// generic plan (the one for any values) with full scans and sorts priced out, so the plan
/// names an index wherever one could serve.
async fn explain(backend: &str, connection: &mut sqlx::AnyConnection, sql: &str) -> Vec<String> {
    if backend == "sqlite" {
        let rows =
            sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}")).fetch_all(&mut *connection).await;
        let rows = rows.unwrap_or_else(|error| panic!("sqlite cannot explain {sql}: {error}"));
        return rows.iter().map(|row| row.get::<String, _>("detail")).collect();
    }
    let parameters = (1..=20).rev().find(|n| sql.contains(&format!("${n}"))).unwrap_or(0);
    sqlx::raw_sql(&format!("PREPARE theory_plan AS {sql}"))
        .execute(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("postgres cannot prepare {sql}: {error}"));
    let values = vec!["NULL"; parameters].join(", ");
    let execute = if parameters == 0 {
        "EXPLAIN EXECUTE theory_plan".to_owned()
    } else {
        format!("EXPLAIN EXECUTE theory_plan({values})")
    };
    let rows = sqlx::raw_sql(&execute).fetch_all(&mut *connection).await;
    let rows = rows.unwrap_or_else(|error| panic!("postgres cannot explain {sql}: {error}"));
    sqlx::raw_sql("DEALLOCATE theory_plan").execute(&mut *connection).await.unwrap();
    rows.iter().map(|row| row.get::<String, _>(0)).collect()
}

#[tokio::test]
async fn every_list_and_lookup_reads_an_index_on_both_databases() {
    let _ = tracing_subscriber::registry().with(Capture).try_init();
    for (backend, fresh) in both().await {
        STATEMENTS.lock().unwrap().clear();
        drive(&fresh).await;
        let statements = STATEMENTS.lock().unwrap().clone();
        assert!(
            statements.len() > 40,
            "{backend}: the ledger's statements were not captured ({} of them)",
            statements.len()
        );
        let mut connection = sqlx::AnyConnection::connect(&fresh.url).await.unwrap();
        if backend == "postgres" {
            sqlx::raw_sql(
                "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_sort = off",
            )
            .execute(&mut connection)
            .await
            .unwrap();
        }
        let mut problems = Vec::new();
        let mut explained = 0;
        // One logged string may hold several statements (a batch and its `COMMIT`); an
        // `INSERT … VALUES` reads nothing.
        let parts: BTreeSet<&str> = statements
            .iter()
            .flat_map(|sql| sql.split(';'))
            .map(str::trim)
            .filter(|sql| !sql.is_empty())
            .filter(|sql| EXPLAINED.iter().any(|verb| sql.starts_with(verb)))
            .filter(|sql| !NOT_EXPLAINED.iter().any(|prefix| sql.starts_with(prefix)))
            .filter(|sql| !sql.starts_with("INSERT") || sql.contains("SELECT"))
            .collect();
        for sql in parts {
            let plan = explain(backend, &mut connection, sql).await;
            explained += 1;
            let problem =
                if backend == "sqlite" { sqlite_problem(&plan) } else { postgres_problem(&plan) };
            let allowed = WHOLE_TABLE_READS.iter().any(|(prefix, _)| sql.starts_with(prefix));
            if let (Some(problem), false) = (problem, allowed) {
                problems.push(format!("{sql}\n    {problem}\n    plan: {plan:?}"));
            }
        }
        for (listed, why) in WHOLE_TABLE_READS {
            if !statements.iter().any(|sql| sql.starts_with(listed)) {
                problems.push(format!(
                    "{listed}… ({why}) is listed as a whole-table read but no longer run: take it off the list"
                ));
            }
        }
        assert!(explained > 30, "{backend}: only {explained} statements explained");
        assert!(problems.is_empty(), "{backend}:\n{}", problems.join("\n"));
    }
}
